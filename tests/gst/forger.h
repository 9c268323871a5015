/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A bips producer for the element tests that writes whatever metadata a
 * test asks for, to play a buggy or hostile producer (forger.cpp, over the
 * core's C++ API). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BtForger BtForger;

/* The fields of one video meta record as bipssink writes it (see
 * lib/include/bips/framemeta.h: blob "BMT1", record "VMET"), taken as they are:
 * nothing is checked, that is the point. */
typedef struct
{
  const gchar *format;          /* format name; up to 31 characters kept */
  guint32 flags;
  guint32 width, height, n_planes;
  guint64 offset[4];
  gint32 stride[4];
} BtForgedVideoMeta;

/* Creates channel @channel (4 slots of @slot_size bytes) with @caps as its
 * stream info. NULL with *error set on failure (free it with g_free()). */
BtForger *bt_forger_new (const gchar *channel, guint64 slot_size,
    const gchar *caps, gchar **error);

/* Waits up to @timeout_ms until @n consumers are attached. */
gboolean bt_forger_wait_consumers (BtForger *forger, guint n,
    guint timeout_ms);

/* Publishes a frame of @size bytes copied from @data whose metadata blob is
 * a well-formed blob holding one video meta record @meta (NULL: no blob at
 * all). FALSE with *error set on failure. */
gboolean bt_forger_publish (BtForger *forger, const guint8 *data, gsize size,
    const BtForgedVideoMeta *meta, gchar **error);

/* The same with @blob (@blob_size bytes) as the metadata, as it is. */
gboolean bt_forger_publish_blob (BtForger *forger, const guint8 *data,
    gsize size, const guint8 *blob, gsize blob_size, gchar **error);

/* The same with a blob made by the library's codec, holding one custom meta
 * per name of @names (NULL-terminated), each with the field n = (int) its
 * position in @names. */
gboolean bt_forger_publish_custom (BtForger *forger, const guint8 *data,
    gsize size, const gchar *const *names, gchar **error);

/* The same with one custom meta named @meta_name holding @n_fields int
 * fields named "@prefix<i>" and, if @caps_text is not NULL, a field "caps"
 * serialized as a GstCaps of that text. */
gboolean bt_forger_publish_fields (BtForger *forger, const guint8 *data,
    gsize size, const gchar *meta_name, const gchar *prefix, guint n_fields,
    const gchar *caps_text, gchar **error);

void bt_forger_end_of_stream (BtForger *forger);

/* Destroys the producer (its channel goes away). */
void bt_forger_free (BtForger *forger);

G_END_DECLS
