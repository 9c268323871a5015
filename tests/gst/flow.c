/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Flow control between a producer and its consumers: what a slow, synced,
 * paused or buffering downstream does to the producer and to itself. Every
 * check counts frames and events; nothing asserts on speed. */
#include "bipstest.h"

#include <gst/app/gstappsrc.h>

#include <glib/gstdio.h>
#include <string.h>

#define LIVE_CAPS "video/x-raw,format=RGBA,width=320,height=240,framerate=30/1"

/* A live 30 fps producer on @channel. */
static GstElement *
start_live_producer (const gchar *channel)
{
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc is-live=true "
      "pattern=ball ! " LIVE_CAPS " ! bipssink name=sink channel=%s", channel);
  return bt_start (desc);
}

/* A latest consumer whose sink syncs to the clock keeps up with a 30 fps
 * stream: it must not skip frames because of its own pipeline latency. */
static void
check_latest_synced (const gchar *downstream)
{
  g_autofree gchar *channel = bt_channel_name ("latest-sync");
  GstElement *producer = start_live_producer (channel);
  g_autofree gchar *desc = g_strdup_printf ("bipssrc name=src channel=%s "
      "policy=latest ! %s", channel, downstream);
  GstElement *consumer = bt_start (desc);
  GstElement *src = bt_by_name (consumer, "src");
  /* Until the consumer has settled (attached, latency configured). */
  bt_wait_stat_at_least (src, "received", 10, BT_WAIT_MS);
  const guint64 r0 = bt_stat_u64 (src, "received");
  const guint64 s0 = bt_stat_u64 (src, "skipped");
  g_usleep (5 * G_USEC_PER_SEC);
  const guint64 received = bt_stat_u64 (src, "received") - r0;
  const guint64 skipped = bt_stat_u64 (src, "skipped") - s0;
  g_print ("latest into '%s': %" G_GUINT64_FORMAT " received, %"
      G_GUINT64_FORMAT " skipped in 5 s\n", downstream, received, skipped);
  fail_unless (received > 0, "nothing received");
  fail_unless (received * 100 >= (received + skipped) * 95,
      "latest into '%s' received only %" G_GUINT64_FORMAT " of %"
      G_GUINT64_FORMAT " frames", downstream, received, received + skipped);
  bt_stop (consumer);
  bt_stop (producer);
  bt_remove_channel (channel);
}

GST_START_TEST (test_latest_synced_keeps_up)
{
  check_latest_synced ("fakesink sync=true");
  check_latest_synced ("videoconvert ! video/x-raw,format=I420 ! "
      "fakesink sync=true");
}
GST_END_TEST

/* ---- Held buffers: a downstream that keeps buffers must not stall the
 * producer (bipssrc copies frames out past max-held). */

/* A private folder for output files; remove with remove_dir(). */
static gchar *
make_dir (void)
{
  g_autoptr (GError) err = NULL;
  gchar *dir = g_dir_make_tmp ("bips-flow-XXXXXX", &err);
  fail_unless (dir != NULL, "no temporary folder: %s",
      err ? err->message : "?");
  return dir;
}

static void
remove_dir (const gchar *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const gchar *name;
  while (d != NULL && (name = g_dir_read_name (d)) != NULL) {
    g_autofree gchar *path = g_build_filename (dir, name, NULL);
    g_unlink (path);
  }
  if (d != NULL)
    g_dir_close (d);
  g_rmdir (dir);
}

static GBytes *
read_file (const gchar *path)
{
  gchar *data = NULL;
  gsize size = 0;
  g_autoptr (GError) err = NULL;
  fail_unless (g_file_get_contents (path, &data, &size, &err), "cannot read "
      "%s: %s", path, err ? err->message : "?");
  return g_bytes_new_take (data, size);
}

/* The payload of the "data" chunk of a RIFF/WAVE file (a sub-range of
 * @wav), so that the header (sizes wavenc fixes at EOS) is left out. */
static GBytes *
wav_data (GBytes *wav)
{
  gsize size = 0;
  const guint8 *p = g_bytes_get_data (wav, &size);
  fail_unless (size >= 12 && memcmp (p, "RIFF", 4) == 0
      && memcmp (p + 8, "WAVE", 4) == 0, "not a WAVE file (%" G_GSIZE_FORMAT
      " bytes)", size);
  gsize at = 12;
  while (at + 8 <= size) {
    guint32 len = GST_READ_UINT32_LE (p + at + 4);
    if (memcmp (p + at, "data", 4) == 0) {
      fail_unless (at + 8 + len <= size, "data chunk of %u bytes runs past "
          "the end of the file (%" G_GSIZE_FORMAT " bytes)", len, size);
      return g_bytes_new_from_bytes (wav, at + 8, len);
    }
    at += 8 + len + (len & 1);
  }
  ck_abort_msg ("WAVE file without a data chunk");
  return NULL;
}

/* Fails unless @got and @want hold the same bytes; names the first
 * difference. */
static void
expect_same_bytes (GBytes *got, GBytes *want, const gchar *what)
{
  gsize got_size = 0, want_size = 0;
  const guint8 *g = g_bytes_get_data (got, &got_size);
  const guint8 *w = g_bytes_get_data (want, &want_size);
  const gsize common = MIN (got_size, want_size);
  if (common > 0 && memcmp (g, w, common) != 0) {
    gsize i = 0;
    while (g[i] == w[i])
      i++;
    ck_abort_msg ("%s: byte %" G_GSIZE_FORMAT " differs (%u, expected %u)",
        what, i, g[i], w[i]);
  }
  fail_unless_equals_uint64 (got_size, want_size);
}

#define AUDIO_CAPS \
  "audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved"
/* 240 frames of 4 bytes: 960-byte buffers, 5 ms each, 2 s in all. */
#define AUDIO_BUFFERS 400
#define AUDIO_SRC "audiotestsrc num-buffers=" G_STRINGIFY (AUDIO_BUFFERS) \
  " samplesperbuffer=240 wave=sine freq=441"

/* Proves: raw audio in small buffers through `bipssrc ! audioconvert !
 * wavenc ! filesink` (filesink in its default buffer mode keeps 64 KiB of
 * buffers before it writes) does not hold the live producer back: no
 * eviction, every buffer published and received, frames beyond max-held
 * copied out, and the file holds every sample, identical to the same
 * audiotestsrc stream written directly. */
GST_START_TEST (test_wav_to_filesink_keeps_every_sample)
{
  g_autofree gchar *channel = bt_channel_name ("wav");
  g_autofree gchar *dir = make_dir ();
  g_autofree gchar *got_path = g_build_filename (dir, "consumer.wav", NULL);
  g_autofree gchar *want_path = g_build_filename (dir, "reference.wav", NULL);

  g_autofree gchar *ref_desc = g_strdup_printf (AUDIO_SRC " ! " AUDIO_CAPS
      " ! wavenc ! filesink location=%s", want_path);
  GstElement *ref = bt_start (ref_desc);
  bt_expect_eos (ref, BT_WAIT_MS);
  bt_stop (ref);

  g_autofree gchar *cons_desc = g_strdup_printf ("bipssrc name=src "
      "channel=%s timeout=%d policy=lossless ! audioconvert ! wavenc ! "
      "filesink location=%s", channel, BT_WAIT_MS, got_path);
  GstElement *consumer = bt_start (cons_desc);
  /* Live: the producer publishes at the stream's own rate. */
  g_autofree gchar *prod_desc = g_strdup_printf (AUDIO_SRC " is-live=true ! "
      AUDIO_CAPS " ! bipssink name=sink channel=%s slot-size=4096 "
      "wait-for-consumer=true sync=false", channel);
  GstElement *producer = bt_start (prod_desc);
  bt_expect_eos (producer, BT_WAIT_MS);
  bt_expect_eos (consumer, BT_WAIT_MS);

  GstElement *src = bt_by_name (consumer, "src");
  GstElement *sink = bt_by_name (producer, "sink");
  const guint64 published = bt_stat_u64 (sink, "published");
  const guint64 received = bt_stat_u64 (src, "received");
  const guint64 copied = bt_stat_u64 (src, "copied");
  const guint64 reconnects = bt_stat_u64 (src, "reconnects");
  const guint max_held = bt_stat_uint (src, "max-held");
  g_print ("wav: %" G_GUINT64_FORMAT " published, %" G_GUINT64_FORMAT
      " received, %" G_GUINT64_FORMAT " copied, %" G_GUINT64_FORMAT
      " reconnects, max-held %u\n", published, received, copied, reconnects,
      max_held);
  fail_unless_equals_uint64 (published, AUDIO_BUFFERS);
  fail_unless_equals_uint64 (received, AUDIO_BUFFERS);
  fail_unless_equals_uint64 (reconnects, 0);    /* never dropped (evicted) */
  fail_unless_equals_int (max_held, 2); /* (8 slots - 2) / 3 */
  fail_unless (copied > 0, "filesink kept buffers but nothing was copied");
  fail_unless (copied <= received);
  bt_stop (producer);
  bt_stop (consumer);           /* filesink closes the file */

  g_autoptr (GBytes) got_file = read_file (got_path);
  g_autoptr (GBytes) want_file = read_file (want_path);
  g_autoptr (GBytes) got = wav_data (got_file);
  g_autoptr (GBytes) want = wav_data (want_file);
  fail_unless_equals_uint64 (g_bytes_get_size (want), AUDIO_BUFFERS * 960);
  expect_same_bytes (got, want, "consumer.wav samples");
  remove_dir (dir);
  bt_remove_channel (channel);
}
GST_END_TEST

/* An appsrc producer of application data; frames are pushed by hand. */
static GstElement *
start_appsrc_producer (const gchar *channel, const gchar *props)
{
  g_autofree gchar *desc = g_strdup_printf ("appsrc name=in format=time "
      "block=true max-bytes=16384 ! bipssink name=sink channel=%s "
      "slot-size=65536 sync=false wait-for-consumer=true %s", channel, props);
  return bt_start (desc);
}

/* Frame @index of @size bytes: the index in the first 4 bytes (if they
 * fit), then a pattern that depends on both. */
static GstBuffer *
indexed_buffer (guint index, gsize size, GstClockTime duration)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, size, NULL);
  GstMapInfo map;
  fail_unless (gst_buffer_map (buf, &map, GST_MAP_WRITE));
  for (gsize i = 0; i < size; i++)
    map.data[i] = bt_pattern_byte (index, (guint) (i / 1000), (guint) i);
  if (size >= 4)
    GST_WRITE_UINT32_LE (map.data, index);
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = index * duration;
  GST_BUFFER_DURATION (buf) = duration;
  return buf;
}

static void
push_frame (GstElement *producer, GstBuffer *buf, GstCaps *caps)
{
  GstSample *sample = gst_sample_new (buf, caps, NULL, NULL);
  GstAppSrc *in = GST_APP_SRC (bt_by_name (producer, "in"));
  fail_unless_equals_int (gst_app_src_push_sample (in, sample), GST_FLOW_OK);
  gst_sample_unref (sample);
  gst_buffer_unref (buf);
}

#define VAR_FRAMES 300

/* 1 to about 30 000 bytes, in no order: no two neighbours alike. */
static gsize
var_size (guint i)
{
  return 1 + (i * 7919u + 13u) % 30011u;
}

/* Proves: a stream of buffers of varying sizes (and a caps change half
 * way) through `bipssrc ! filesink` arrives byte-exact: the file is every
 * buffer in order; the producer was never held back long enough to drop
 * the consumer; filesink's buffering made bipssrc copy frames out, into a
 * pool that grows with the sizes. */
GST_START_TEST (test_variable_sizes_to_filesink)
{
  g_autofree gchar *channel = bt_channel_name ("varsize");
  g_autofree gchar *dir = make_dir ();
  g_autofree gchar *path = g_build_filename (dir, "stream.bin", NULL);
  g_autofree gchar *cons_desc = g_strdup_printf ("bipssrc name=src "
      "channel=%s timeout=%d policy=lossless ! filesink location=%s",
      channel, BT_WAIT_MS, path);
  GstElement *consumer = bt_start (cons_desc);
  GstElement *producer = start_appsrc_producer (channel, "");
  g_autoptr (GstCaps) caps1 =
      gst_caps_from_string ("application/x-bips-test,part=(int)1");
  g_autoptr (GstCaps) caps2 =
      gst_caps_from_string ("application/x-bips-test,part=(int)2");
  GByteArray *want = g_byte_array_new ();

  for (guint i = 0; i < VAR_FRAMES; i++) {
    GstBuffer *buf = indexed_buffer (i, var_size (i), GST_SECOND / 100);
    GstMapInfo map;
    fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
    g_byte_array_append (want, map.data, (guint) map.size);
    gst_buffer_unmap (buf, &map);
    push_frame (producer, buf, i < VAR_FRAMES / 2 ? caps1 : caps2);
  }
  gst_app_src_end_of_stream (GST_APP_SRC (bt_by_name (producer, "in")));
  bt_expect_eos (producer, BT_WAIT_MS);
  bt_expect_eos (consumer, BT_WAIT_MS);

  GstElement *src = bt_by_name (consumer, "src");
  GstElement *sink = bt_by_name (producer, "sink");
  const guint64 published = bt_stat_u64 (sink, "published");
  const guint64 received = bt_stat_u64 (src, "received");
  const guint64 copied = bt_stat_u64 (src, "copied");
  const guint64 reconnects = bt_stat_u64 (src, "reconnects");
  g_print ("variable sizes: %" G_GUINT64_FORMAT " published, %"
      G_GUINT64_FORMAT " received, %" G_GUINT64_FORMAT " copied, %"
      G_GUINT64_FORMAT " reconnects, %u bytes\n", published, received, copied,
      reconnects, want->len);
  fail_unless_equals_uint64 (published, VAR_FRAMES);
  fail_unless_equals_uint64 (received, VAR_FRAMES);
  fail_unless_equals_uint64 (reconnects, 0);
  fail_unless (copied > 0, "filesink kept buffers but nothing was copied");
  bt_stop (producer);
  bt_stop (consumer);

  g_autoptr (GBytes) got = read_file (path);
  g_autoptr (GBytes) expected = g_byte_array_free_to_bytes (want);
  expect_same_bytes (got, expected, "stream.bin");
  remove_dir (dir);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Runs 60 frames through `bipssrc @src_props ! @downstream` on a channel
 * of @slots slots and returns how many bipssrc copied; checks the hold
 * limit in effect. */
static guint64
copied_with (const gchar *src_props, const gchar *downstream, guint slots,
    guint want_max_held)
{
  g_autofree gchar *channel = bt_channel_name ("zerocopy");
  g_autofree gchar *cons_desc = g_strdup_printf ("bipssrc name=src "
      "channel=%s timeout=%d policy=lossless %s ! %s", channel, BT_WAIT_MS,
      src_props, downstream);
  GstElement *consumer = bt_start (cons_desc);
  g_autofree gchar *prod_desc = g_strdup_printf ("videotestsrc num-buffers=60 "
      "! " LIVE_CAPS " ! bipssink name=sink channel=%s slots=%u "
      "wait-for-consumer=true sync=false", channel, slots);
  GstElement *producer = bt_start (prod_desc);
  bt_expect_eos (producer, BT_WAIT_MS);
  bt_expect_eos (consumer, BT_WAIT_MS);
  GstElement *src = bt_by_name (consumer, "src");
  const guint64 received = bt_stat_u64 (src, "received");
  const guint64 copied = bt_stat_u64 (src, "copied");
  g_print ("bipssrc %s ! %s on %u slots: %" G_GUINT64_FORMAT " received, %"
      G_GUINT64_FORMAT " copied\n", src_props, downstream, slots, received,
      copied);
  fail_unless_equals_uint64 (received, 60);
  fail_unless_equals_int (bt_stat_uint (src, "max-held"), want_max_held);
  fail_unless (bt_stat_uint (src, "held") <= want_max_held);
  bt_stop (producer);
  bt_stop (consumer);
  bt_remove_channel (channel);
  return copied;
}

/* Proves: a downstream that drops each buffer before the next one comes
 * gets every frame without a copy. fakesink keeps its last buffer unless
 * enable-last-sample=false: one buffer held besides the one it renders,
 * which the default 6 slots (max-held 1) do not allow, so every other
 * frame is a copy there, but 8 slots (max-held 2) or max-held=2 do. */
GST_START_TEST (test_fakesink_stays_zero_copy)
{
  fail_unless_equals_uint64 (copied_with ("", "fakesink sync=false "
          "enable-last-sample=false", 6, 1), 0);
  fail_unless_equals_uint64 (copied_with ("", "fakesink sync=false", 8, 2),
      0);
  fail_unless_equals_uint64 (copied_with ("max-held=2", "fakesink sync=false",
          6, 2), 0);
  const guint64 copied = copied_with ("", "fakesink sync=false", 6, 1);
  fail_unless (copied > 0 && copied < 60, "%" G_GUINT64_FORMAT " of 60 frames "
      "copied with fakesink's last sample on 6 slots", copied);
}
GST_END_TEST

/* ---- A consumer the producer dropped: DISCONT and a GAP event. */

typedef enum
{ LOG_BUFFER, LOG_GAP } LogKind;

typedef struct
{
  LogKind kind;
  guint32 index;                /* buffers: the frame index */
  GstClockTime ts, duration;    /* PTS/duration, or the GAP's */
  gboolean discont;
} LogEntry;

/* What a consumer's bipssrc pushed, in order (from its streaming thread). */
typedef struct
{
  GMutex lock;
  GArray *entries;              /* LogEntry */
  /* Blocking: when the frame of index block_at arrives, the streaming
   * thread waits until @healthy (another consumer's bipssrc) has received
   * block_ahead more frames than that, which the producer can only publish
   * once it dropped this (lossless) consumer. */
  guint block_at;
  guint block_ahead;
  GstElement *healthy;
  gboolean blocked;             /* the wait happened */
  gboolean block_timed_out;
  guint after_block;            /* buffers pushed after the wait */
} PushLog;

static void
push_log_init (PushLog *log, guint block_at, GstElement *healthy)
{
  g_mutex_init (&log->lock);
  log->entries = g_array_new (FALSE, TRUE, sizeof (LogEntry));
  log->block_at = block_at;
  log->block_ahead = 30;
  log->healthy = healthy;
  log->blocked = FALSE;
  log->block_timed_out = FALSE;
  log->after_block = 0;
}

static void
push_log_clear (PushLog *log)
{
  g_array_unref (log->entries);
  g_mutex_clear (&log->lock);
}

static guint
push_log_after_block (PushLog *log)
{
  g_mutex_lock (&log->lock);
  guint n = log->blocked ? log->after_block : 0;
  g_mutex_unlock (&log->lock);
  return n;
}

static GstPadProbeReturn
log_probe (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  PushLog *log = data;
  LogEntry e = { 0 };
  (void) pad;

  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
    guint8 head[4] = { 0 };
    gst_buffer_extract (buf, 0, head, sizeof head);
    e.kind = LOG_BUFFER;
    e.index = GST_READ_UINT32_LE (head);
    e.ts = GST_BUFFER_PTS (buf);
    e.duration = GST_BUFFER_DURATION (buf);
    e.discont = GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DISCONT);
  } else {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
    if (GST_EVENT_TYPE (event) != GST_EVENT_GAP)
      return GST_PAD_PROBE_OK;
    e.kind = LOG_GAP;
    gst_event_parse_gap (event, &e.ts, &e.duration);
  }
  g_mutex_lock (&log->lock);
  g_array_append_val (log->entries, e);
  if (log->blocked && e.kind == LOG_BUFFER)
    log->after_block++;
  const gboolean block = e.kind == LOG_BUFFER && !log->blocked
      && log->healthy != NULL && e.index == log->block_at;
  g_mutex_unlock (&log->lock);

  if (block) {
    /* Wait (bounded) while holding this buffer: the consumer neither reads
     * nor releases, as if its downstream had stalled. */
    const guint64 want = log->block_at + log->block_ahead;
    const guint64 got = bt_wait_stat_at_least (log->healthy, "received",
        want, BT_WAIT_MS);
    g_mutex_lock (&log->lock);
    log->blocked = TRUE;
    log->block_timed_out = got < want;
    g_mutex_unlock (&log->lock);
  }
  return GST_PAD_PROBE_OK;
}

static GstElement *
start_logged_consumer (const gchar *channel, PushLog *log)
{
  g_autofree gchar *desc = g_strdup_printf ("bipssrc name=src channel=%s "
      "timeout=%d policy=lossless ! fakesink sync=false", channel, BT_WAIT_MS);
  GstElement *p = bt_parse (desc);
  GstPad *pad = gst_element_get_static_pad (bt_by_name (p, "src"), "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER |
      GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, log_probe, log, NULL);
  gst_object_unref (pad);
  bt_set_state (p, GST_STATE_PLAYING);
  return p;
}

#define GAP_FRAME_NS (10 * GST_MSECOND)
#define GAP_BLOCK_AT 10
#define GAP_MAX_FRAMES 3000

/* Proves: a lossless consumer whose streaming thread stalls is dropped by
 * the producer after its max-wait and attaches again by itself; the first
 * buffer after the frames it lost has DISCONT, right after a GAP event
 * that spans from the end of the last buffer before the loss to that
 * buffer's PTS. A second consumer on the same channel, healthy, gets every
 * frame meanwhile. */
GST_START_TEST (test_dropped_consumer_gap_and_discont)
{
  g_autofree gchar *channel = bt_channel_name ("gap");
  PushLog healthy_log, stalled_log;
  push_log_init (&healthy_log, G_MAXUINT, NULL);
  GstElement *healthy = start_logged_consumer (channel, &healthy_log);
  push_log_init (&stalled_log, GAP_BLOCK_AT, bt_by_name (healthy, "src"));
  GstElement *stalled = start_logged_consumer (channel, &stalled_log);
  GstElement *producer = start_appsrc_producer (channel, "max-wait=500");
  GstElement *sink = bt_by_name (producer, "sink");
  g_autoptr (GstCaps) caps = gst_caps_from_string ("application/x-bips-test");

  /* Frame 0 waits for a consumer; both attach before frame 1. */
  push_frame (producer, indexed_buffer (0, 1024, GAP_FRAME_NS), caps);
  fail_unless_equals_int (bt_wait_uint_property (sink, "consumers", 2,
          BT_WAIT_MS), 2);
  /* About 100 frames a second (the stalled consumer blocks at frame 10
   * until the healthy one is 30 frames ahead), until the stalled one has
   * pushed 10 buffers after its stall. */
  guint n = 1;
  for (; n < GAP_MAX_FRAMES && push_log_after_block (&stalled_log) < 10; n++) {
    push_frame (producer, indexed_buffer (n, 1024, GAP_FRAME_NS), caps);
    g_usleep (GAP_FRAME_NS / GST_USECOND);
  }
  fail_if (stalled_log.block_timed_out, "the healthy consumer did not get 30 "
      "frames ahead of the stalled one within %d ms", BT_WAIT_MS);
  fail_unless (n < GAP_MAX_FRAMES, "the stalled consumer pushed only %u "
      "buffers after %u frames", push_log_after_block (&stalled_log), n);
  gst_app_src_end_of_stream (GST_APP_SRC (bt_by_name (producer, "in")));
  bt_expect_eos (producer, BT_WAIT_MS);
  bt_expect_eos (healthy, BT_WAIT_MS);
  bt_expect_eos (stalled, BT_WAIT_MS);
  const guint64 published = bt_stat_u64 (sink, "published");
  fail_unless_equals_uint64 (published, n);

  /* The healthy consumer: every frame, in order, and nothing dropped. */
  /* (It may have attached just after frame 0 was published.) */
  GstElement *hsrc = bt_by_name (healthy, "src");
  GArray *hlog = healthy_log.entries;
  fail_unless (hlog->len > 0);
  const guint start = g_array_index (hlog, LogEntry, 0).index;
  fail_unless (start <= 1, "the healthy consumer started at frame %u", start);
  guint expect = start;
  for (guint i = 0; i < hlog->len; i++) {
    LogEntry *e = &g_array_index (hlog, LogEntry, i);
    fail_unless (e->kind == LOG_BUFFER, "a GAP event in a stream that lost "
        "nothing");
    fail_unless_equals_int (e->index, expect);
    expect++;
  }
  fail_unless_equals_int (expect, n);
  fail_unless_equals_uint64 (bt_stat_u64 (hsrc, "received"), n - start);
  fail_unless_equals_uint64 (bt_stat_u64 (hsrc, "reconnects"), 0);

  /* The stalled one: dropped and back, a GAP then DISCONT at the loss. */
  GstElement *ssrc = bt_by_name (stalled, "src");
  const guint64 reconnects = bt_stat_u64 (ssrc, "reconnects");
  const guint64 received = bt_stat_u64 (ssrc, "received");
  g_print ("dropped consumer: %u published, %" G_GUINT64_FORMAT " received, "
      "%" G_GUINT64_FORMAT " reconnects\n", n, received, reconnects);
  fail_unless (reconnects >= 1, "the stalled consumer was never dropped");
  fail_unless (received < n, "the stalled consumer lost nothing");
  GArray *log = stalled_log.entries;
  LogEntry *last = NULL, *gap = NULL;
  guint losses = 0;
  for (guint i = 0; i < log->len; i++) {
    LogEntry *e = &g_array_index (log, LogEntry, i);
    LogEntry *before = i > 0 ? &g_array_index (log, LogEntry, i - 1) : NULL;
    if (e->kind == LOG_GAP) {
      fail_unless (last != NULL && last->index >= GAP_BLOCK_AT, "a GAP before "
          "the stall");
      gap = e;
      continue;
    }
    if (last != NULL && e->index != last->index + 1) {
      losses++;
      g_print ("loss after frame %u: next frame %u (%s), GAP %" GST_TIME_FORMAT
          " + %" GST_TIME_FORMAT "\n", last->index, e->index,
          e->discont ? "DISCONT" : "no DISCONT",
          GST_TIME_ARGS (gap ? gap->ts : GST_CLOCK_TIME_NONE),
          GST_TIME_ARGS (gap ? gap->duration : GST_CLOCK_TIME_NONE));
      fail_unless (e->index > last->index, "frame %u after %u", e->index,
          last->index);
      fail_unless (e->discont, "frame %u after frame %u has no DISCONT",
          e->index, last->index);
      fail_unless (gap != NULL && gap == before, "no GAP event right before "
          "frame %u", e->index);
      fail_unless_equals_clocktime (gap->ts, last->ts + last->duration);
      fail_unless_equals_clocktime (gap->ts + gap->duration, e->ts);
    } else {
      fail_unless (last == NULL || !e->discont, "frame %u has DISCONT without "
          "a loss", e->index);
      fail_unless (gap == NULL || gap != before, "GAP before frame %u without "
          "a loss", e->index);
    }
    last = e;
  }
  fail_unless_equals_int (losses, 1);
  /* Every frame from its first on was either received or counted as
   * skipped: the frames lost while it was dropped are in `skipped`. */
  guint sstart = G_MAXUINT;
  for (guint i = 0; i < log->len && sstart == G_MAXUINT; i++)
    if (g_array_index (log, LogEntry, i).kind == LOG_BUFFER)
      sstart = g_array_index (log, LogEntry, i).index;
  const guint64 skipped = bt_stat_u64 (ssrc, "skipped");
  g_print ("dropped consumer: first frame %u, %" G_GUINT64_FORMAT " received, %"
      G_GUINT64_FORMAT " skipped\n", sstart, received, skipped);
  fail_unless_equals_uint64 (received + skipped, n - sstart);

  bt_stop (producer);
  bt_stop (stalled);
  bt_stop (healthy);
  push_log_clear (&stalled_log);
  push_log_clear (&healthy_log);
  bt_remove_channel (channel);
}
GST_END_TEST

/* A lossless consumer whose pipeline is PAUSED for longer than the
 * producer's max-wait: the producer waits for it only that long, drops it
 * (a bus warning and `evicted` say so) and goes on; a second lossless and
 * a latest consumer miss nothing; once PLAYING again the paused one
 * attaches again and counts the frames it lost as skipped. */
#define PAUSE_FRAMES 150

GST_START_TEST (test_paused_lossless_consumer_past_the_bound)
{
  g_autofree gchar *channel = bt_channel_name ("paused");
  g_autofree gchar *lossless = g_strdup_printf ("bipssrc name=src channel=%s "
      "timeout=%d policy=lossless ! fakesink sync=false", channel, BT_WAIT_MS);
  g_autofree gchar *latest = g_strdup_printf ("bipssrc name=src channel=%s "
      "timeout=%d policy=latest ! fakesink sync=false", channel, BT_WAIT_MS);
  GstElement *paused = bt_start (lossless);
  GstElement *other = bt_start (lossless);
  GstElement *newest = bt_start (latest);
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc is-live=true "
      "num-buffers=%d ! " LIVE_CAPS " ! bipssink name=sink channel=%s "
      "max-wait=300", PAUSE_FRAMES, channel);
  GstElement *producer = bt_parse (desc);
  GstElement *sink = bt_by_name (producer, "sink");
  GstElement *psrc = bt_by_name (paused, "src");
  bt_set_state (producer, GST_STATE_PLAYING);
  fail_unless (bt_wait_stat_at_least (psrc, "received", 5, BT_WAIT_MS) >= 5);

  gst_element_set_state (paused, GST_STATE_PAUSED);
  fail_unless (bt_wait_stat_at_least (sink, "evicted", 1, BT_WAIT_MS) >= 1,
      "the producer never dropped the paused consumer");
  const guint64 at_drop = bt_stat_u64 (sink, "published");
  fail_unless (bt_wait_stat_at_least (sink, "published", at_drop + 15,
          BT_WAIT_MS) >= at_drop + 15, "the producer did not go on");
  GstMessage *warning = bt_pop_message (producer, GST_MESSAGE_WARNING, 0);
  fail_unless (warning != NULL, "no warning on the producer's bus");
  gst_message_unref (warning);
  bt_set_state (paused, GST_STATE_PLAYING);

  bt_expect_eos (producer, BT_WAIT_MS);
  bt_expect_eos (other, BT_WAIT_MS);
  bt_expect_eos (newest, BT_WAIT_MS);
  bt_expect_eos (paused, BT_WAIT_MS);
  const guint64 published = bt_stat_u64 (sink, "published");
  fail_unless_equals_uint64 (published, PAUSE_FRAMES);
  GstElement *osrc = bt_by_name (other, "src");
  GstElement *nsrc = bt_by_name (newest, "src");
  g_print ("paused past the bound: published %" G_GUINT64_FORMAT ", evicted %"
      G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT " frames unread); paused one: %"
      G_GUINT64_FORMAT " received, %" G_GUINT64_FORMAT " skipped, %"
      G_GUINT64_FORMAT " reconnects; lossless: %" G_GUINT64_FORMAT
      " received, %" G_GUINT64_FORMAT " skipped; latest: %" G_GUINT64_FORMAT
      " received, %" G_GUINT64_FORMAT " skipped\n", published,
      bt_stat_u64 (sink, "evicted"), bt_stat_u64 (sink, "evicted-frames"),
      bt_stat_u64 (psrc, "received"), bt_stat_u64 (psrc, "skipped"),
      bt_stat_u64 (psrc, "reconnects"), bt_stat_u64 (osrc, "received"),
      bt_stat_u64 (osrc, "skipped"), bt_stat_u64 (nsrc, "received"),
      bt_stat_u64 (nsrc, "skipped"));
  /* Both others attached before the first frame. The lossless one got
   * every frame; the latest one every frame it could take: the frames
   * the live source had made while the producer waited come out in a
   * burst, of which latest takes the newest (and counts the rest). */
  fail_unless_equals_uint64 (bt_stat_u64 (osrc, "received"), published);
  fail_unless_equals_uint64 (bt_stat_u64 (osrc, "reconnects"), 0);
  fail_unless_equals_uint64 (bt_stat_u64 (nsrc, "received") +
      bt_stat_u64 (nsrc, "skipped"), published);
  fail_unless_equals_uint64 (bt_stat_u64 (nsrc, "reconnects"), 0);
  /* The paused one lost frames and knows how many. */
  fail_unless (bt_stat_u64 (psrc, "reconnects") >= 1);
  fail_unless (bt_stat_u64 (psrc, "skipped") > 0);
  fail_unless_equals_uint64 (bt_stat_u64 (psrc, "received") +
      bt_stat_u64 (psrc, "skipped"), published);
  bt_stop (producer);
  bt_stop (paused);
  bt_stop (other);
  bt_stop (newest);
  bt_remove_channel (channel);
}
GST_END_TEST

static Suite *
flow_suite (void)
{
  Suite *s = suite_create ("bips-flow");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 150);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_latest_synced_keeps_up);
  tcase_add_test (tc, test_paused_lossless_consumer_past_the_bound);
  tcase_add_test (tc, test_wav_to_filesink_keeps_every_sample);
  tcase_add_test (tc, test_variable_sizes_to_filesink);
  tcase_add_test (tc, test_fakesink_stays_zero_copy);
  tcase_add_test (tc, test_dropped_consumer_gap_and_discont);
  return s;
}

GST_CHECK_MAIN (flow)
