// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: BipsProducer, the owner of a channel.
#pragma once

#include <gio/gio.h>

#include "bips-slot.h"

G_BEGIN_DECLS

#define BIPS_TYPE_PRODUCER (bips_producer_get_type())
BIPS_API G_DECLARE_FINAL_TYPE(BipsProducer, bips_producer, BIPS, PRODUCER, GObject)

BIPS_API BipsProducer *bips_producer_new(const gchar *channel, guint slot_count, guint64 slot_size,
                                         guint mode, GError **error);

BIPS_API BipsSlot *bips_producer_acquire(BipsProducer *self, gint64 timeout_ms, GError **error);
BIPS_API BipsSlot *bips_producer_poll_acquire(BipsProducer *self, gint64 timeout_ms,
                                              gint *out_code, gchar **out_message);
BIPS_API gboolean bips_producer_publish(BipsProducer *self, BipsSlot *slot, guint64 size,
                                        guint64 pts, guint64 dts, guint64 duration, guint32 flags,
                                        GError **error);
BIPS_API gboolean bips_producer_publish_with_metas(BipsProducer *self, BipsSlot *slot,
                                                  guint64 size, guint64 pts, guint64 dts,
                                                  guint64 duration, guint32 flags,
                                                  GVariant *metas, GError **error);
BIPS_API gboolean bips_producer_discard(BipsProducer *self, BipsSlot *slot);
BIPS_API gboolean bips_producer_set_stream_info(BipsProducer *self, const gchar *info,
                                                GError **error);
BIPS_API gboolean bips_producer_end_of_stream(BipsProducer *self, GError **error);
BIPS_API void bips_producer_interrupt(BipsProducer *self);
BIPS_API void bips_producer_resume(BipsProducer *self);
BIPS_API guint bips_producer_reap_dead_consumers(BipsProducer *self);
BIPS_API gboolean bips_producer_close(BipsProducer *self, GError **error);
BIPS_API gboolean bips_producer_is_closed(BipsProducer *self);

BIPS_API const gchar *bips_producer_get_name(BipsProducer *self);
BIPS_API guint64 bips_producer_get_epoch(BipsProducer *self);
BIPS_API guint64 bips_producer_get_published(BipsProducer *self);
BIPS_API guint bips_producer_get_slot_count(BipsProducer *self);
BIPS_API guint64 bips_producer_get_slot_size(BipsProducer *self);
BIPS_API guint bips_producer_get_consumer_count(BipsProducer *self);

G_END_DECLS
