/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Frame times across pipelines that run different clocks: the channel
 * carries CLOCK_MONOTONIC times and each side converts from and to its own
 * clock, so a consumer that syncs renders the producer's frames on time and
 * with the producer's spacing. Counts frames; nothing asserts on speed. */
#include "bipstest.h"

#define CLOCK_CAPS "video/x-raw,format=RGBA,width=160,height=120,framerate=30/1"
#define CLOCK_FRAMES 60

typedef struct
{
  GMutex lock;
  GArray *pts;                  /* GstClockTime of each rendered buffer */
} Rendered;

static void
on_handoff (GstElement * sink, GstBuffer * buf, GstPad * pad, gpointer data)
{
  Rendered *r = data;
  GstClockTime pts = GST_BUFFER_PTS (buf);
  (void) sink;
  (void) pad;
  g_mutex_lock (&r->lock);
  g_array_append_val (r->pts, pts);
  g_mutex_unlock (&r->lock);
}

/* A system clock of @type, owned by the caller. */
static GstClock *
system_clock_of_type (GstClockType type)
{
  GstClock *clock = g_object_new (GST_TYPE_SYSTEM_CLOCK, "clock-type", type,
      NULL);
  gst_object_ref_sink (clock);
  return clock;
}

/* A live 30 fps producer on @producer_clock and a consumer on
 * @consumer_clock (NULL: the pipeline's default) whose fakesink syncs: it
 * renders at least 95% of the frames, spaced as the producer spaced them.
 * With @segment_base, the producer's segment has that base (its running
 * times, and so the times it publishes, are shifted by it). */
static void
check_clocks (GstClock * producer_clock, GstClock * consumer_clock,
    GstClockTime segment_base, const gchar * what)
{
  g_autofree gchar *channel = bt_channel_name ("clock");
  g_autofree gchar *cdesc = g_strdup_printf ("bipssrc name=src channel=%s "
      "timeout=%d policy=lossless ! fakesink name=out sync=true "
      "signal-handoffs=true", channel, BT_WAIT_MS);
  GstElement *consumer = bt_parse (cdesc);
  Rendered r;
  g_mutex_init (&r.lock);
  r.pts = g_array_new (FALSE, FALSE, sizeof (GstClockTime));
  g_signal_connect (bt_by_name (consumer, "out"), "handoff",
      G_CALLBACK (on_handoff), &r);
  if (consumer_clock)
    gst_pipeline_use_clock (GST_PIPELINE (consumer), consumer_clock);
  bt_set_state (consumer, GST_STATE_PLAYING);

  g_autofree gchar *pdesc = g_strdup_printf ("videotestsrc is-live=true "
      "num-buffers=%d ! " CLOCK_CAPS " ! identity name=shift ! bipssink "
      "channel=%s wait-for-consumer=true", CLOCK_FRAMES, channel);
  GstElement *producer = bt_parse (pdesc);
  if (producer_clock)
    gst_pipeline_use_clock (GST_PIPELINE (producer), producer_clock);
  if (segment_base)
    g_object_set (bt_by_name (producer, "shift"), "ts-offset",
        (gint64) segment_base, NULL);
  bt_set_state (producer, GST_STATE_PLAYING);
  bt_expect_eos (producer, BT_WAIT_MS);
  bt_expect_eos (consumer, BT_WAIT_MS);

  g_mutex_lock (&r.lock);
  guint spaced = 0;
  for (guint i = 1; i < r.pts->len; i++) {
    GstClockTime a = g_array_index (r.pts, GstClockTime, i - 1);
    GstClockTime b = g_array_index (r.pts, GstClockTime, i);
    GstClockTime want = GST_SECOND / 30;
    if (GST_CLOCK_TIME_IS_VALID (a) && GST_CLOCK_TIME_IS_VALID (b) && b > a
        && (b - a + GST_MSECOND > want) && (b - a < want + GST_MSECOND))
      spaced++;
  }
  g_print ("%s: %u of %d frames rendered, %u of the gaps between them as "
      "the producer spaced them\n", what, r.pts->len, CLOCK_FRAMES, spaced);
  fail_unless (r.pts->len * 100 >= CLOCK_FRAMES * 95, "%s: only %u of %d "
      "frames rendered", what, r.pts->len, CLOCK_FRAMES);
  fail_unless ((spaced + 1) * 100 >= r.pts->len * 95, "%s: only %u gaps "
      "spaced as the producer's", what, spaced);
  g_mutex_unlock (&r.lock);
  g_array_unref (r.pts);
  g_mutex_clear (&r.lock);
  bt_stop (producer);
  bt_stop (consumer);
  bt_remove_channel (channel);
}

GST_START_TEST (test_realtime_producer_monotonic_consumer)
{
  GstClock *realtime = system_clock_of_type (GST_CLOCK_TYPE_REALTIME);
  check_clocks (realtime, NULL, 0, "producer on a realtime clock");
  gst_object_unref (realtime);
}
GST_END_TEST

GST_START_TEST (test_monotonic_producer_realtime_consumer)
{
  GstClock *realtime = system_clock_of_type (GST_CLOCK_TYPE_REALTIME);
  check_clocks (NULL, realtime, 0, "consumer on a realtime clock");
  gst_object_unref (realtime);
}
GST_END_TEST

GST_START_TEST (test_producer_with_shifted_times)
{
  check_clocks (NULL, NULL, 200 * GST_MSECOND,
      "producer times shifted by 200 ms");
  GstClock *realtime = system_clock_of_type (GST_CLOCK_TYPE_REALTIME);
  check_clocks (realtime, realtime, 200 * GST_MSECOND,
      "both on a realtime clock, producer times shifted by 200 ms");
  gst_object_unref (realtime);
}
GST_END_TEST

static Suite *
clocks_suite (void)
{
  Suite *s = suite_create ("bips-clocks");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_realtime_producer_monotonic_consumer);
  tcase_add_test (tc, test_monotonic_producer_realtime_consumer);
  tcase_add_test (tc, test_producer_with_shifted_times);
  return s;
}

GST_CHECK_MAIN (clocks)
