/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared helpers of the element tests: channel names, bounded waits, stats. */
#pragma once

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

G_BEGIN_DECLS

/* Generous bound for anything that should happen "soon". A bug fails the
 * test instead of hanging it; a slow machine never fails because of it. */
#define BT_WAIT_MS 20000

/* Creates an element of @factory that the caller owns (not floating), or
 * fails the test with a hint when the plugin is not found. */
GstElement *bt_make (const gchar *factory);

/* A channel name no other test (or test run) uses: topic, pid, counter.
 * Free with g_free(). */
gchar *bt_channel_name (const gchar *topic);

/* Path of the channel's socket ($BIPS_DIR or /dev/shm, then bips-NAME). */
gchar *bt_channel_path (const gchar *channel);
/* TRUE if something has the channel's name (a socket, unless a test
 * planted something else there). */
gboolean bt_channel_exists (const gchar *channel);
/* TRUE if the channel's name is a unix socket. */
gboolean bt_channel_is_socket (const gchar *channel);
/* Removes the channel's socket if one is left (a killed producer leaves
 * it); for test clean-up. */
void bt_remove_channel (const gchar *channel);

/* Pops the first message of one of @types from @element's bus, waiting at
 * most @timeout_ms; NULL on timeout. Caller owns the message. */
GstMessage *bt_pop_message (GstElement *element, GstMessageType types,
    guint timeout_ms);

/* Waits for EOS on @pipeline's bus and fails the test on an error message
 * or after @timeout_ms. */
void bt_expect_eos (GstElement *pipeline, guint timeout_ms);

/* Waits for an error message and returns it (fails the test on EOS or
 * timeout). Caller owns the message. */
GstMessage *bt_expect_error (GstElement *pipeline, guint timeout_ms);

/* Sets the state and fails the test if the change fails. */
void bt_set_state (GstElement *element, GstState state);

/* Sets the state from another thread and fails the test if the call does
 * not return within BT_WAIT_MS (a blocked streaming thread that ignores
 * unlock would otherwise hang the test). */
void bt_set_state_bounded (GstElement *element, GstState state);

/* gst_parse_launch() that fails the test on a syntax error. */
GstElement *bt_parse (const gchar *desc);
/* bt_parse() and set to PLAYING. */
GstElement *bt_start (const gchar *desc);
/* Sets to NULL and drops the caller's reference. */
void bt_stop (GstElement *pipeline);
/* The element named @name in @pipeline (borrowed: the pipeline owns it). */
GstElement *bt_by_name (GstElement *pipeline, const gchar *name);

/* Reads the `stats` property and one of its fields, failing the test if the
 * field is missing or of the wrong type (the contract fixes the types). */
guint64 bt_stat_u64 (GstElement *element, const gchar *field);
guint bt_stat_uint (GstElement *element, const gchar *field);

/* Polls @element's uint property @name until it equals @value or @timeout_ms
 * pass; returns the last value read. */
guint bt_wait_uint_property (GstElement *element, const gchar *name,
    guint value, guint timeout_ms);

/* Polls a stat until it reaches at least @value; returns the last value. */
guint64 bt_wait_stat_at_least (GstElement *element, const gchar *field,
    guint64 value, guint timeout_ms);

/* The channel's memory as /proc/self/maps shows it. The producer keeps a
 * channel's frames in a memfd named "bips-NAME" (no file in any folder)
 * and hands it to consumers over the socket, so every mapping of it reads
 * "/memfd:bips-NAME (deleted)". A channel recreated under the same name
 * gets a new memfd with the same name but another inode; @ino, when not 0,
 * singles out one of them. */
typedef struct
{
  gchar path[300];
  guint64 ino;
} BtMemfdId;

/* Looks @p up in /proc/self/maps. Returns TRUE if it lies in a mapping of
 * the memfd of @channel; then fills @id (with that memfd's inode) and
 * copies the mapping's four permission characters ("r--s", "rw-s") into
 * @perms. */
gboolean bt_find_channel_mapping (gconstpointer p, const gchar *channel,
    BtMemfdId *id, gchar perms[5]);

/* Counts the mappings of the memfd @id in this process. */
guint bt_count_mappings (const BtMemfdId *id);

/* A byte that depends on the frame index, the row and the column, so that
 * a frame, row or column out of place changes the content. */
static inline guint8
bt_pattern_byte (guint frame, guint row, guint col)
{
  return (guint8) (frame * 37u + row * 11u + col * 3u + 1u);
}

G_END_DECLS
