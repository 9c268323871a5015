// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: BipsSlot, a writable slot handed out by a producer.
#pragma once

#include <glib-object.h>

#include "bips-export.h"

G_BEGIN_DECLS

#define BIPS_TYPE_SLOT (bips_slot_get_type())
BIPS_API G_DECLARE_FINAL_TYPE(BipsSlot, bips_slot, BIPS, SLOT, GObject)

BIPS_API guint64 bips_slot_get_data_address(BipsSlot *self);
BIPS_API guint64 bips_slot_get_capacity(BipsSlot *self);
BIPS_API guint bips_slot_get_index(BipsSlot *self);
BIPS_API gboolean bips_slot_is_pending(BipsSlot *self);

G_END_DECLS
