// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: BipsConsumer, the reading side of a channel.
#pragma once

#include <gio/gio.h>

#include "bips-frame.h"
#include "bips-types.h"

G_BEGIN_DECLS

#define BIPS_TYPE_CONSUMER (bips_consumer_get_type())
BIPS_API G_DECLARE_FINAL_TYPE(BipsConsumer, bips_consumer, BIPS, CONSUMER, GObject)

BIPS_API BipsConsumer *bips_consumer_new(const gchar *channel, BipsPolicy policy, gint64 timeout_ms,
                                         GError **error);

BIPS_API BipsFrame *bips_consumer_next(BipsConsumer *self, gint64 timeout_ms, GError **error);
BIPS_API gboolean bips_consumer_reattach(BipsConsumer *self, gint64 timeout_ms, GError **error);
BIPS_API gboolean bips_consumer_poll_attach(BipsConsumer *self, gint64 timeout_ms,
                                           gint *out_code, gchar **out_message);
BIPS_API BipsFrame *bips_consumer_poll_next(BipsConsumer *self, gint64 timeout_ms, gint *out_code,
                                           gchar **out_message);
BIPS_API gboolean bips_consumer_poll_next_into(BipsConsumer *self, BipsFrame *frame,
                                               gint64 timeout_ms, gint *out_code,
                                               gchar **out_message, guint64 *out_address,
                                               guint64 *out_size, guint64 *out_layout_id);
BIPS_API gboolean bips_consumer_poll_reattach(BipsConsumer *self, gint64 timeout_ms,
                                             gint *out_code, gchar **out_message);
BIPS_API void bips_consumer_interrupt(BipsConsumer *self);
BIPS_API void bips_consumer_resume(BipsConsumer *self);
BIPS_API void bips_consumer_close(BipsConsumer *self);
BIPS_API gboolean bips_consumer_is_closed(BipsConsumer *self);

BIPS_API const gchar *bips_consumer_get_name(BipsConsumer *self);
BIPS_API BipsPolicy bips_consumer_get_policy(BipsConsumer *self);
BIPS_API gchar *bips_consumer_dup_stream_info(BipsConsumer *self);
BIPS_API guint64 bips_consumer_get_stream_info_generation(BipsConsumer *self);
BIPS_API guint64 bips_consumer_get_epoch(BipsConsumer *self);
BIPS_API guint64 bips_consumer_get_received(BipsConsumer *self);
BIPS_API guint64 bips_consumer_get_skipped(BipsConsumer *self);
BIPS_API guint64 bips_consumer_get_next_due(BipsConsumer *self);
BIPS_API gboolean bips_consumer_get_data_mapping(BipsConsumer *self, guint64 *out_address,
                                                 guint64 *out_size);

G_END_DECLS
