/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Attach, detach, restart and refusal; blocked renders that must unblock. */
#include "bipstest.h"

#include <gst/app/gstappsink.h>

#include <string.h>
#include <unistd.h>

#define CAPS_160 "video/x-raw,format=RGBA,width=160,height=120,framerate=30/1"
#define CAPS_320 "video/x-raw,format=RGBA,width=320,height=240,framerate=30/1"

static void
count_marshal (GClosure *closure, GValue *ret, guint n_params,
    const GValue *params, gpointer hint, gpointer marshal_data)
{
  (void) ret;
  (void) n_params;
  (void) params;
  (void) hint;
  (void) marshal_data;
  g_atomic_int_inc ((gint *) closure->data);
}

/* Counts emissions of @signal whatever its arguments are. */
static void
count_signal (GstElement *e, const gchar *signal, gint *counter)
{
  fail_unless (g_str_has_prefix (signal, "notify::") ||
      g_signal_lookup (signal, G_OBJECT_TYPE (e)) != 0, "%s has no signal %s",
      GST_OBJECT_NAME (e), signal);
  GClosure *closure = g_closure_new_simple (sizeof (GClosure), counter);
  g_closure_set_marshal (closure, count_marshal);
  g_signal_connect_closure (e, signal, closure, FALSE);
}

static gint
wait_counter (gint *counter, gint value)
{
  gint64 end = g_get_monotonic_time () + BT_WAIT_MS * G_TIME_SPAN_MILLISECOND;
  while (g_atomic_int_get (counter) < value && g_get_monotonic_time () < end)
    g_usleep (10000);
  return g_atomic_int_get (counter);
}

static GstElement *
start_live_producer (const gchar *channel, const gchar *caps)
{
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc is-live=true ! %s "
      "! bipssink name=sink channel=%s", caps, channel);
  GstElement *p = bt_start (desc);
  fail_unless (bt_wait_stat_at_least (bt_by_name (p, "sink"), "published", 1,
          BT_WAIT_MS) >= 1, "the producer published nothing");
  return p;
}

/* Pulls @n samples and checks their caps against @caps. */
static void
pull_frames (GstElement *consumer, guint n, const gchar *caps)
{
  g_autoptr (GstCaps) want = gst_caps_from_string (caps);
  for (guint i = 0; i < n; i++) {
    GstSample *s = gst_app_sink_try_pull_sample (GST_APP_SINK (bt_by_name
            (consumer, "out")), BT_WAIT_MS * GST_MSECOND);
    fail_unless (s != NULL, "no frame %u within %d ms", i, BT_WAIT_MS);
    fail_unless (gst_caps_is_subset (gst_sample_get_caps (s), want),
        "caps %" GST_PTR_FORMAT ", expected %" GST_PTR_FORMAT,
        gst_sample_get_caps (s), want);
    gst_sample_unref (s);
  }
}

/* Proves: a consumer joining a running producer gets its caps and frames;
 * `consumers` follows attach and detach (with notify), consumer-added and
 * consumer-removed fire once per attach / detach, and the same bipssrc
 * attaches again after a NULL -> PLAYING cycle. The channel's socket is
 * there while the producer runs and gone once it stopped. (fakesink, not appsink:
 * appsink 1.22 keeps its last pulled buffer until it restarts, and whether
 * a detached bipssrc whose frame is still held counts as a consumer is not
 * part of the contract.) */
GST_START_TEST (test_attach_detach_reattach)
{
  g_autofree gchar *channel = bt_channel_name ("attach");
  gint added = 0, removed = 0, notified = 0;
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc is-live=true ! "
      CAPS_160 " ! bipssink name=sink channel=%s", channel);
  GstElement *producer = bt_parse (desc);
  GstElement *sink = bt_by_name (producer, "sink");
  count_signal (sink, "consumer-added", &added);
  count_signal (sink, "consumer-removed", &removed);
  count_signal (sink, "notify::consumers", &notified);
  bt_set_state (producer, GST_STATE_PLAYING);
  fail_unless (bt_wait_stat_at_least (sink, "published", 1, BT_WAIT_MS) >= 1);
  fail_unless (bt_channel_is_socket (channel), "no channel socket while the "
      "producer runs");

  g_autofree gchar *cdesc = g_strdup_printf ("bipssrc name=src channel=%s "
      "policy=latest ! fakesink name=out sync=false", channel);
  GstElement *consumer = bt_start (cdesc);
  GstElement *src = bt_by_name (consumer, "src");
  g_autoptr (GstCaps) want = gst_caps_from_string (CAPS_160);
  for (gint round = 1; round <= 2; round++) {
    guint64 received = bt_stat_u64 (src, "received");
    fail_unless (bt_wait_stat_at_least (src, "received", received + 3,
            BT_WAIT_MS) >= received + 3, "round %d: no frames", round);
    GstPad *pad = gst_element_get_static_pad (bt_by_name (consumer, "out"),
        "sink");
    GstCaps *caps = gst_pad_get_current_caps (pad);
    fail_unless (caps != NULL && gst_caps_is_subset (caps, want),
        "consumer caps %" GST_PTR_FORMAT, caps);
    gst_caps_unref (caps);
    gst_object_unref (pad);
    fail_unless_equals_int (bt_wait_uint_property (sink, "consumers", 1,
            BT_WAIT_MS), 1);
    fail_unless_equals_int (wait_counter (&added, round), round);
    fail_unless_equals_int (bt_stat_uint (sink, "consumers"), 1);

    bt_set_state_bounded (consumer, GST_STATE_NULL);
    fail_unless_equals_int (bt_wait_uint_property (sink, "consumers", 0,
            BT_WAIT_MS), 0);
    fail_unless_equals_int (wait_counter (&removed, round), round);
    if (round == 1)
      bt_set_state (consumer, GST_STATE_PLAYING);
  }
  fail_unless (g_atomic_int_get (&notified) >= 4,
      "notify::consumers fired %d times for 2 attaches and 2 detaches",
      g_atomic_int_get (&notified));
  fail_unless_equals_int (g_atomic_int_get (&added), 2);
  fail_unless_equals_int (g_atomic_int_get (&removed), 2);

  gst_object_unref (consumer);
  bt_stop (producer);
  fail_if (bt_channel_exists (channel), "the stopped producer left its "
      "channel socket");
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: a second producer on a channel with a live producer is refused
 * with an error message, and the first one keeps the channel. */
GST_START_TEST (test_second_producer_refused)
{
  g_autofree gchar *channel = bt_channel_name ("busy");
  GstElement *first = start_live_producer (channel, CAPS_160);

  g_autofree gchar *desc = g_strdup_printf ("videotestsrc is-live=true ! "
      CAPS_320 " ! bipssink channel=%s", channel);
  GstElement *second = bt_parse (desc);
  gst_element_set_state (second, GST_STATE_PLAYING);
  GstMessage *msg = bt_expect_error (second, BT_WAIT_MS);
  g_autoptr (GError) err = NULL;
  gst_message_parse_error (msg, &err, NULL);
  GST_INFO ("expected error: %s", err->message);
  fail_unless (strstr (err->message, channel) != NULL,
      "the error does not name the channel: %s", err->message);
  gst_message_unref (msg);
  bt_stop (second);

  GstElement *sink = bt_by_name (first, "sink");
  guint64 published = bt_stat_u64 (sink, "published");
  fail_unless (bt_wait_stat_at_least (sink, "published", published + 3,
          BT_WAIT_MS) >= published + 3, "the first producer stopped");
  g_autofree gchar *cdesc = g_strdup_printf ("bipssrc channel=%s "
      "policy=latest ! appsink name=out sync=false", channel);
  GstElement *consumer = bt_start (cdesc);
  pull_frames (consumer, 2, CAPS_160);
  bt_stop (consumer);
  bt_stop (first);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Runs a GRAY8-only consumer against an RGBA producer, the consumer
 * started first (caps set with its first frame) or second (caps known
 * when it negotiates), and checks the first error it posts. */
static void
check_refused_caps (gboolean consumer_first)
{
  g_autofree gchar *channel = bt_channel_name ("refused");
  g_autofree gchar *cdesc = g_strdup_printf ("bipssrc channel=%s timeout=%d "
      "! video/x-raw,format=GRAY8 ! fakesink", channel, BT_WAIT_MS);
  GstElement *consumer = NULL, *producer = NULL;
  if (consumer_first) {
    consumer = bt_start (cdesc);
    producer = start_live_producer (channel, CAPS_160);
  } else {
    producer = start_live_producer (channel, CAPS_160);
    consumer = bt_parse (cdesc);
    gst_element_set_state (consumer, GST_STATE_PLAYING);
  }
  GstMessage *msg = bt_expect_error (consumer, BT_WAIT_MS);
  g_autoptr (GError) err = NULL;
  gst_message_parse_error (msg, &err, NULL);
  GST_INFO ("expected error: %s", err->message);
  fail_unless (g_error_matches (err, GST_CORE_ERROR,
          GST_CORE_ERROR_NEGOTIATION), "not a negotiation error: %s",
      err->message);
  g_autofree gchar *named = g_strdup_printf ("channel '%s'", channel);
  fail_unless (strstr (err->message, named) != NULL, "the error does not "
      "name the channel: %s", err->message);
  fail_unless (strstr (err->message, "RGBA") != NULL, "the error does not "
      "name the channel's caps: %s", err->message);
  fail_unless (strstr (err->message, "GRAY8") != NULL, "the error does not "
      "say what downstream accepts: %s", err->message);
  fail_unless (strstr (err->message, "videoconvert") != NULL, "the error "
      "does not say what to do: %s", err->message);
  gst_message_unref (msg);
  bt_stop (consumer);
  bt_stop (producer);
  bt_remove_channel (channel);
}

/* Proves: when downstream refuses the channel's caps, the first error on
 * the bus is bipssrc's own, naming the channel, its caps, what downstream
 * accepts and the fix, not basesrc's bare "not-negotiated", whether the
 * caps were known when bipssrc negotiated or came with the first frame. */
GST_START_TEST (test_refused_caps_explained)
{
  check_refused_caps (FALSE);
  check_refused_caps (TRUE);
}
GST_END_TEST

/* Whether @msg is bipssrc's GstBipsSrcStats; its `received` goes to
 * @received. */
static gboolean
src_stats_received (GstMessage *msg, guint64 *received)
{
  const GstStructure *st = gst_message_get_structure (msg);
  if (st == NULL || !gst_structure_has_name (st, "GstBipsSrcStats"))
    return FALSE;
  fail_unless (gst_structure_get_uint64 (st, "received", received),
      "stats without received: %" GST_PTR_FORMAT, st);
  return TRUE;
}

/* Pops @pipeline's messages up to its EOS and returns the `received` of
 * the GstBipsSrcStats element message that came before it; fails on an
 * error, a second stats message, or none. */
static guint64
final_received (GstElement *pipeline)
{
  guint64 received = G_MAXUINT64;
  for (;;) {
    GstMessage *msg = bt_pop_message (pipeline, GST_MESSAGE_ELEMENT
        | GST_MESSAGE_EOS | GST_MESSAGE_ERROR, BT_WAIT_MS);
    fail_unless (msg != NULL, "no EOS within %d ms", BT_WAIT_MS);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      g_autoptr (GError) err = NULL;
      gst_message_parse_error (msg, &err, NULL);
      fail ("error before EOS: %s", err->message);
    }
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
      gst_message_unref (msg);
      break;
    }
    guint64 value;
    if (src_stats_received (msg, &value)) {
      fail_unless (received == G_MAXUINT64, "two stats messages before EOS");
      received = value;
    }
    gst_message_unref (msg);
  }
  fail_unless (received != G_MAXUINT64, "EOS came without a GstBipsSrcStats "
      "message before it");
  return received;
}

/* Proves: bipssrc posts its final stats before EOS however the stream
 * ends: at its own num-buffers limit (basesrc ends the stream there
 * without asking bipssrc for another buffer) and at the producer's EOS. */
GST_START_TEST (test_final_stats_at_every_end)
{
  g_autofree gchar *channel = bt_channel_name ("finalstats");
  GstElement *producer = start_live_producer (channel, CAPS_160);
  g_autofree gchar *cdesc = g_strdup_printf ("bipssrc channel=%s "
      "num-buffers=10 ! fakesink", channel);
  GstElement *consumer = bt_start (cdesc);
  fail_unless_equals_uint64 (final_received (consumer), 10);
  bt_stop (consumer);
  bt_stop (producer);
  bt_remove_channel (channel);

  g_autofree gchar *channel2 = bt_channel_name ("finalstats-eos");
  g_autofree gchar *cdesc2 = g_strdup_printf ("bipssrc channel=%s "
      "timeout=%d ! fakesink sync=false", channel2, BT_WAIT_MS);
  consumer = bt_start (cdesc2);
  g_autofree gchar *pdesc = g_strdup_printf ("videotestsrc num-buffers=7 ! "
      CAPS_160 " ! bipssink channel=%s wait-for-consumer=true sync=false",
      channel2);
  producer = bt_start (pdesc);
  fail_unless_equals_uint64 (final_received (consumer), 7);
  bt_expect_eos (producer, BT_WAIT_MS);
  bt_stop (consumer);
  bt_stop (producer);
  bt_remove_channel (channel2);
}
GST_END_TEST

/* Pops @pipeline's GstBipsSrcStats messages that are already on its bus
 * (waiting up to @wait_ms for the first) and returns how many there were;
 * the last one's `received` goes to @received. */
static guint
pop_src_stats (GstElement *pipeline, gint wait_ms, guint64 *received)
{
  guint count = 0;
  GstMessage *msg;
  while ((msg = bt_pop_message (pipeline, GST_MESSAGE_ELEMENT,
              count ? 0 : wait_ms)) != NULL) {
    guint64 value;
    if (src_stats_received (msg, &value)) {
      count++;
      if (received != NULL)
        *received = value;
    }
    gst_message_unref (msg);
  }
  return count;
}

/* Proves: a run that ends without EOS (the application takes the pipeline
 * down) still posts bipssrc's final stats, once, with what it received;
 * and a run that ended with EOS does not post them a second time when it
 * stops. */
GST_START_TEST (test_final_stats_when_stopped)
{
  g_autofree gchar *channel = bt_channel_name ("finalstats-stop");
  GstElement *producer = start_live_producer (channel, CAPS_160);
  g_autofree gchar *cdesc = g_strdup_printf ("bipssrc name=src channel=%s "
      "! fakesink", channel);
  GstElement *consumer = bt_start (cdesc);
  GstElement *src = bt_by_name (consumer, "src");
  fail_unless (bt_wait_stat_at_least (src, "received", 5, BT_WAIT_MS) >= 5,
      "no frames");
  fail_unless_equals_int (pop_src_stats (consumer, 0, NULL), 0);
  fail_unless (gst_element_set_state (consumer, GST_STATE_READY)
      != GST_STATE_CHANGE_FAILURE);
  guint64 received = 0;
  fail_unless_equals_int (pop_src_stats (consumer, BT_WAIT_MS, &received), 1);
  fail_unless (received >= 5, "stats say %" G_GUINT64_FORMAT " frames",
      received);
  bt_stop (consumer);

  g_autofree gchar *edesc = g_strdup_printf ("bipssrc channel=%s "
      "num-buffers=4 ! fakesink", channel);
  consumer = bt_start (edesc);
  fail_unless_equals_uint64 (final_received (consumer), 4);
  fail_unless (gst_element_set_state (consumer, GST_STATE_READY)
      != GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int (pop_src_stats (consumer, 200, &received), 0);
  bt_stop (consumer);
  bt_stop (producer);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: max-consumers bounds the consumers of a channel: with 1, a
 * second bipssrc fails to start with an error that names the channel and
 * the property to raise, and the first one carries on. */
GST_START_TEST (test_max_consumers_refuses_one_more)
{
  g_autofree gchar *channel = bt_channel_name ("maxconsumers");
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc is-live=true ! "
      CAPS_160 " ! bipssink name=sink channel=%s max-consumers=1", channel);
  GstElement *producer = bt_start (desc);
  GstElement *sink = bt_by_name (producer, "sink");
  guint max_consumers = 0;
  g_object_get (sink, "max-consumers", &max_consumers, NULL);
  fail_unless_equals_int (max_consumers, 1);

  g_autofree gchar *cdesc = g_strdup_printf ("bipssrc name=src channel=%s "
      "policy=latest ! fakesink sync=false", channel);
  GstElement *first = bt_start (cdesc);
  GstElement *src = bt_by_name (first, "src");
  fail_unless (bt_wait_stat_at_least (src, "received", 1, BT_WAIT_MS) >= 1,
      "the first consumer got no frame");
  fail_unless_equals_int (bt_wait_uint_property (sink, "consumers", 1,
          BT_WAIT_MS), 1);

  GstElement *second = bt_parse (cdesc);
  gst_element_set_state (second, GST_STATE_PLAYING);
  GstMessage *msg = bt_expect_error (second, BT_WAIT_MS);
  g_autoptr (GError) err = NULL;
  gst_message_parse_error (msg, &err, NULL);
  GST_INFO ("expected error: %s", err->message);
  g_autofree gchar *named = g_strdup_printf ("the only consumer place of "
      "channel '%s' is taken", channel);
  fail_unless (strstr (err->message, named) != NULL, "the error does not say "
      "that the channel's one place is taken: %s", err->message);
  fail_unless (strstr (err->message, "max-consumers on bipssink") != NULL,
      "the error does not name the property to raise: %s", err->message);
  gst_message_unref (msg);
  bt_stop (second);

  guint64 received = bt_stat_u64 (src, "received");
  fail_unless (bt_wait_stat_at_least (src, "received", received + 3,
          BT_WAIT_MS) >= received + 3, "the first consumer stopped");
  fail_unless_equals_int (bt_stat_uint (sink, "consumers"), 1);
  bt_stop (first);
  bt_stop (producer);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: a render blocked in wait-for-consumer (no consumer ever comes)
 * returns when the pipeline goes to NULL, and nothing was published. */
GST_START_TEST (test_wait_for_consumer_unblocks)
{
  g_autofree gchar *channel = bt_channel_name ("waitunlock");
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc ! " CAPS_160
      " ! bipssink name=sink channel=%s wait-for-consumer=true sync=false",
      channel);
  GstElement *producer = bt_start (desc);
  /* Give it time to reach render and block there; nothing to assert on
   * the timing, only that NULL below returns. */
  GstMessage *msg = bt_pop_message (producer, GST_MESSAGE_ERROR, 300);
  fail_unless (msg == NULL, "error while waiting for a consumer");
  fail_unless_equals_uint64 (bt_stat_u64 (bt_by_name (producer, "sink"),
          "published"), 0);
  bt_set_state_bounded (producer, GST_STATE_NULL);
  gst_object_unref (producer);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: with max-wait=0 a lossless consumer whose downstream holds its
 * buffers applies backpressure for good (the producer stops publishing,
 * bounded by the slot count, and stays stopped past the default max-wait
 * of 2 s) and the producer blocked on it still stops promptly at NULL. */
GST_START_TEST (test_backpressure_unblocks)
{
  g_autofree gchar *channel = bt_channel_name ("backpressure");
  const guint slots = 4, n = 200;
  g_autofree gchar *cdesc = g_strdup_printf ("bipssrc name=src channel=%s "
      "policy=lossless timeout=%d ! appsink name=out sync=false max-buffers=1 "
      "drop=false", channel, BT_WAIT_MS);
  GstElement *consumer = bt_start (cdesc);
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc num-buffers=%u ! "
      CAPS_160 " ! bipssink name=sink channel=%s wait-for-consumer=true "
      "slots=%u sync=false max-wait=0", n, channel, slots);
  GstElement *producer = bt_start (desc);
  GstElement *sink = bt_by_name (producer, "sink");

  /* Wait until `published` stops moving (or the whole stream went by). */
  guint64 last = G_MAXUINT64, now = 0;
  gint64 end = g_get_monotonic_time () + BT_WAIT_MS * G_TIME_SPAN_MILLISECOND;
  while ((now = bt_stat_u64 (sink, "published")) != last
      && g_get_monotonic_time () < end) {
    last = now;
    g_usleep (300 * 1000);
  }
  GST_INFO ("published %" G_GUINT64_FORMAT " while the consumer holds", now);
  fail_unless (now >= 1 && now <= 2 * slots, "published %" G_GUINT64_FORMAT
      " frames to a lossless consumer that reads none (slots=%u)", now, slots);
  g_usleep (2500 * 1000);
  fail_unless_equals_uint64 (bt_stat_u64 (sink, "published"), now);
  fail_unless_equals_int (bt_stat_uint (sink, "consumers"), 1);
  fail_unless_equals_uint64 (bt_stat_u64 (bt_by_name (consumer, "src"),
          "reconnects"), 0);

  bt_set_state_bounded (producer, GST_STATE_NULL);
  gst_object_unref (producer);
  bt_set_state_bounded (consumer, GST_STATE_NULL);
  gst_object_unref (consumer);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: max-wait bounds that backpressure: a lossless consumer whose
 * downstream holds its buffers stalls the producer only for about
 * max-wait, then the producer drops it (`consumers` falls to 0 while the
 * consumer still runs); once its downstream reads again, bipssrc attaches
 * again by itself (counted in reconnects, same epoch) and frames flow. */
GST_START_TEST (test_max_wait_drops_stalled_consumer)
{
  g_autofree gchar *channel = bt_channel_name ("maxwait");
  g_autofree gchar *cdesc = g_strdup_printf ("bipssrc name=src channel=%s "
      "policy=lossless timeout=%d ! appsink name=out sync=false max-buffers=1 "
      "drop=false", channel, BT_WAIT_MS);
  GstElement *consumer = bt_start (cdesc);
  GstElement *src = bt_by_name (consumer, "src");
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc ! " CAPS_160
      " ! bipssink name=sink channel=%s wait-for-consumer=true slots=4 "
      "sync=false max-wait=200", channel);
  GstElement *producer = bt_start (desc);
  GstElement *sink = bt_by_name (producer, "sink");
  guint64 max_wait = 0;
  g_object_get (sink, "max-wait", &max_wait, NULL);
  fail_unless_equals_uint64 (max_wait, 200);

  fail_unless (bt_wait_stat_at_least (sink, "published", 1, BT_WAIT_MS) >= 1);
  fail_unless_equals_int (bt_wait_uint_property (sink, "consumers", 0,
          BT_WAIT_MS), 0);
  guint64 stalled_at = bt_stat_u64 (sink, "published");
  GST_INFO ("consumer dropped after %" G_GUINT64_FORMAT " frames",
      stalled_at);
  fail_unless_equals_uint64 (bt_stat_u64 (src, "reconnects"), 0);

  /* The producer says so on its bus, naming the consumer, and counts it. */
  GstMessage *warning = bt_pop_message (producer, GST_MESSAGE_WARNING,
      BT_WAIT_MS);
  fail_unless (warning != NULL, "no warning on the producer's bus");
  GError *err = NULL;
  gst_message_parse_warning (warning, &err, NULL);
  g_autofree gchar *expect = g_strdup_printf ("dropped this consumer (entry 0, "
      "which reports pid %d;", (int) getpid ());
  fail_unless (strstr (err->message, expect) != NULL
      && strstr (err->message, "max_wait") != NULL, "warning: %s",
      err->message);
  g_error_free (err);
  gst_message_unref (warning);
  fail_unless_equals_uint64 (bt_stat_u64 (sink, "evicted"), 1);
  fail_unless (bt_stat_u64 (sink, "waited-ns") >= 200 * GST_MSECOND,
      "waited-ns %" G_GUINT64_FORMAT " below max-wait",
      bt_stat_u64 (sink, "waited-ns"));

  /* Read again: bipssrc learns that it was dropped and attaches again. */
  GstAppSink *out = GST_APP_SINK (bt_by_name (consumer, "out"));
  gint64 end = g_get_monotonic_time () + BT_WAIT_MS * G_TIME_SPAN_MILLISECOND;
  while (bt_stat_u64 (src, "reconnects") < 1
      && g_get_monotonic_time () < end) {
    GstSample *s = gst_app_sink_try_pull_sample (out, 50 * GST_MSECOND);
    if (s)
      gst_sample_unref (s);
  }
  fail_unless (bt_stat_u64 (src, "reconnects") >= 1, "bipssrc did not "
      "attach again after the producer dropped it");
  fail_unless_equals_uint64 (bt_stat_u64 (src, "epoch"),
      bt_stat_u64 (sink, "epoch"));
  for (guint i = 0; i < 5; i++) {
    GstSample *s = gst_app_sink_try_pull_sample (out,
        BT_WAIT_MS * GST_MSECOND);
    fail_unless (s != NULL, "no frame %u after attaching again", i);
    gst_sample_unref (s);
  }
  fail_unless (bt_stat_u64 (sink, "published") > stalled_at,
      "the producer published nothing after the consumer came back");
  GstMessage *msg = bt_pop_message (consumer, GST_MESSAGE_ERROR, 0);
  fail_unless (msg == NULL, "the dropped consumer posted an error");
  msg = bt_pop_message (producer, GST_MESSAGE_ERROR, 0);
  fail_unless (msg == NULL, "the producer posted an error");

  bt_set_state_bounded (producer, GST_STATE_NULL);
  gst_object_unref (producer);
  bt_set_state_bounded (consumer, GST_STATE_NULL);
  gst_object_unref (consumer);
  bt_remove_channel (channel);
}
GST_END_TEST

static Suite *
lifecycle_suite (void)
{
  Suite *s = suite_create ("bips-lifecycle");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 150);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_attach_detach_reattach);
  tcase_add_test (tc, test_second_producer_refused);
  tcase_add_test (tc, test_refused_caps_explained);
  tcase_add_test (tc, test_final_stats_at_every_end);
  tcase_add_test (tc, test_final_stats_when_stopped);
  tcase_add_test (tc, test_max_consumers_refuses_one_more);
  tcase_add_test (tc, test_wait_for_consumer_unblocks);
  tcase_add_test (tc, test_backpressure_unblocks);
  tcase_add_test (tc, test_max_wait_drops_stalled_consumer);
  return s;
}

GST_CHECK_MAIN (lifecycle)
