/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Flow control between a producer and its consumers: what a slow, synced,
 * paused or buffering downstream does to the producer and to itself. Every
 * check counts frames and events; nothing asserts on speed. */
#include "bipstest.h"

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

static Suite *
flow_suite (void)
{
  Suite *s = suite_create ("bips-flow");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 150);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_latest_synced_keeps_up);
  return s;
}

GST_CHECK_MAIN (flow)
