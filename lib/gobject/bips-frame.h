// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: BipsFrame, a read-only view of one published frame.
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define BIPS_TYPE_FRAME (bips_frame_get_type())
G_DECLARE_FINAL_TYPE(BipsFrame, bips_frame, BIPS, FRAME, GObject)

gboolean bips_frame_get_data_region(BipsFrame *self, guint64 *out_address, guint64 *out_size,
                                    GError **error);
guint64 bips_frame_get_data_address(BipsFrame *self);
guint64 bips_frame_get_size(BipsFrame *self);
guint64 bips_frame_get_pts(BipsFrame *self);
guint64 bips_frame_get_dts(BipsFrame *self);
guint64 bips_frame_get_duration(BipsFrame *self);
guint32 bips_frame_get_flags(BipsFrame *self);
guint64 bips_frame_get_sequence(BipsFrame *self);
guint bips_frame_get_slot(BipsFrame *self);
guint64 bips_frame_get_epoch(BipsFrame *self);
const gchar *bips_frame_get_stream_info(BipsFrame *self);
guint64 bips_frame_get_stream_info_generation(BipsFrame *self);
GBytes *bips_frame_get_meta(BipsFrame *self);
gboolean bips_frame_is_released(BipsFrame *self);
void bips_frame_release(BipsFrame *self);

G_END_DECLS
