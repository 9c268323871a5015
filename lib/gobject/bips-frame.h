// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: BipsFrame, a read-only view of one published frame.
#pragma once

#include <glib-object.h>

#include "bips-export.h"

G_BEGIN_DECLS

#define BIPS_TYPE_FRAME (bips_frame_get_type())
BIPS_API G_DECLARE_FINAL_TYPE(BipsFrame, bips_frame, BIPS, FRAME, GObject)

BIPS_API BipsFrame *bips_frame_new(void);
BIPS_API gboolean bips_frame_get_data_region(BipsFrame *self, guint64 *out_address,
                                             guint64 *out_size, GError **error);
BIPS_API gboolean bips_frame_get_view(BipsFrame *self, guint64 *out_address, guint64 *out_size,
                                      const gchar **out_stream_info,
                                      const gchar **out_video_format, guint *out_video_width,
                                      guint *out_video_height, guint *out_video_planes,
                                      guint64 *out_video_offsets, gint *out_video_strides,
                                      const gchar **out_meta_problem, GError **error);
BIPS_API GVariant *bips_frame_get_metas(BipsFrame *self, GError **error);
BIPS_API guint64 bips_frame_get_data_address(BipsFrame *self);
BIPS_API guint64 bips_frame_get_size(BipsFrame *self);
BIPS_API guint64 bips_frame_get_pts(BipsFrame *self);
BIPS_API guint64 bips_frame_get_dts(BipsFrame *self);
BIPS_API guint64 bips_frame_get_duration(BipsFrame *self);
BIPS_API guint32 bips_frame_get_flags(BipsFrame *self);
BIPS_API guint64 bips_frame_get_sequence(BipsFrame *self);
BIPS_API guint bips_frame_get_slot(BipsFrame *self);
BIPS_API guint64 bips_frame_get_epoch(BipsFrame *self);
BIPS_API const gchar *bips_frame_get_stream_info(BipsFrame *self);
BIPS_API guint64 bips_frame_get_stream_info_generation(BipsFrame *self);
BIPS_API GBytes *bips_frame_get_meta(BipsFrame *self);
BIPS_API gboolean bips_frame_is_released(BipsFrame *self);
BIPS_API void bips_frame_release(BipsFrame *self);

G_END_DECLS
