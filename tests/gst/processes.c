/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Producer and consumer in separate processes: crashes, restarts, timeouts. */
#include "bipstest.h"

#include <gst/app/gstappsink.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Children are this program re-executed with "--child ROLE ..." (fork
 * followed by exec, so no GStreamer state is shared with the test). They
 * die with the test process (PR_SET_PDEATHSIG) so none outlives a failure.
 * All of them see the private BIPS_DIR set up in main(). */

#define CAPS_160 "video/x-raw,format=RGBA,width=160,height=120,framerate=30/1"
#define CAPS_320 "video/x-raw,format=RGBA,width=320,height=240,framerate=30/1"
#define N_FRAMES 20

enum
{
  CHILD_OK = 0,
  CHILD_ERROR = 1,              /* the pipeline posted an error */
  CHILD_TIMEOUT = 2,            /* no EOS within the bound */
  CHILD_COUNT = 3,              /* consume: wrong number of frames */
  CHILD_CONTENT = 4,            /* consume: a frame differs */
  CHILD_USAGE = 5,
};

static gchar *self_exe;

/* ---- child side ---------------------------------------------------- */

/* Runs @p until EOS; returns a CHILD_* code. */
static int
child_run_pipeline (GstElement *p)
{
  gst_element_set_state (p, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus (p);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 120 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  int code = CHILD_TIMEOUT;
  if (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
    code = CHILD_OK;
  } else if (msg) {
    GError *err = NULL;
    gst_message_parse_error (msg, &err, NULL);
    g_printerr ("child %d: error: %s\n", (int) getpid (), err->message);
    g_error_free (err);
    code = CHILD_ERROR;
  }
  if (msg)
    gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (p, GST_STATE_NULL);
  return code;
}

/* SHA-1 of every frame that reaches the appsink "out" of @desc. */
static GPtrArray *
child_checksums (const gchar *desc, int *code)
{
  GstElement *p = gst_parse_launch (desc, NULL);
  GPtrArray *sums = g_ptr_array_new_with_free_func (g_free);
  if (p == NULL) {
    *code = CHILD_USAGE;
    return sums;
  }
  GstElement *out = gst_bin_get_by_name (GST_BIN (p), "out");
  gst_element_set_state (p, GST_STATE_PLAYING);
  GstSample *s;
  while ((s = gst_app_sink_try_pull_sample (GST_APP_SINK (out),
              BT_WAIT_MS * GST_MSECOND)) != NULL) {
    GstMapInfo map;
    gst_buffer_map (gst_sample_get_buffer (s), &map, GST_MAP_READ);
    g_ptr_array_add (sums, g_compute_checksum_for_data (G_CHECKSUM_SHA1,
            map.data, map.size));
    gst_buffer_unmap (gst_sample_get_buffer (s), &map);
    gst_sample_unref (s);
  }
  *code = gst_app_sink_is_eos (GST_APP_SINK (out)) ? CHILD_OK : CHILD_TIMEOUT;
  gst_object_unref (out);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (p);
  return sums;
}

/* "consume CHANNEL": a bipssrc consumer that checks every frame against a
 * local videotestsrc pattern=ball reference run of N_FRAMES at CAPS_320. */
static int
child_consume (const gchar *channel)
{
  int code;
  g_autofree gchar *desc = g_strdup_printf ("bipssrc channel=%s timeout=%d "
      "policy=lossless ! appsink name=out sync=false", channel, BT_WAIT_MS);
  GPtrArray *got = child_checksums (desc, &code);
  if (code != CHILD_OK)
    return code;
  GPtrArray *want = child_checksums ("videotestsrc num-buffers=20 "
      "pattern=ball ! " CAPS_320 " ! appsink name=out sync=false", &code);
  if (got->len != want->len) {
    g_printerr ("child consumer: %u frames, expected %u\n", got->len,
        want->len);
    return CHILD_COUNT;
  }
  for (guint i = 0; i < got->len; i++)
    if (strcmp (got->pdata[i], want->pdata[i]) != 0)
      return CHILD_CONTENT;
  g_ptr_array_unref (got);
  g_ptr_array_unref (want);
  return CHILD_OK;
}

static int
child_main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (argc == 5 && strcmp (argv[2], "run") == 0) {
    /* run DELAY_MS PIPELINE */
    g_usleep ((gulong) atoi (argv[3]) * 1000);
    GstElement *p = gst_parse_launch (argv[4], NULL);
    if (p == NULL)
      return CHILD_USAGE;
    int code = child_run_pipeline (p);
    gst_object_unref (p);
    return code;
  }
  if (argc == 4 && strcmp (argv[2], "consume") == 0)
    return child_consume (argv[3]);
  return CHILD_USAGE;
}

/* ---- parent side --------------------------------------------------- */

static void
die_with_parent (gpointer data)
{
  (void) data;
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static GPid
spawn_child (const gchar *role, const gchar *arg1, const gchar *arg2)
{
  const gchar *argv[] = { self_exe, "--child", role, arg1, arg2, NULL };
  g_autoptr (GError) err = NULL;
  GPid pid = 0;
  fail_unless (g_spawn_async (NULL, (gchar **) argv, NULL,
          G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent, NULL, &pid, &err),
      "cannot spawn child: %s", err ? err->message : "?");
  return pid;
}

static GPid
spawn_pipeline (guint delay_ms, const gchar *desc)
{
  g_autofree gchar *delay = g_strdup_printf ("%u", delay_ms);
  return spawn_child ("run", delay, desc);
}

/* Waits for @pid to exit (killing it after @timeout_ms) and returns its
 * exit code, or 128 + signal. */
static int
wait_child (GPid pid, guint timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  int status = 0;
  for (;;) {
    pid_t r = waitpid (pid, &status, WNOHANG);
    fail_unless (r >= 0, "waitpid: %s", g_strerror (errno));
    if (r == pid)
      break;
    if (g_get_monotonic_time () > end) {
      kill (pid, SIGKILL);
      waitpid (pid, &status, 0);
      fail ("child %d did not exit within %u ms", (int) pid, timeout_ms);
    }
    g_usleep (10000);
  }
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static void
kill_child (GPid pid)
{
  fail_unless (kill (pid, SIGKILL) == 0);
  fail_unless_equals_int (wait_child (pid, BT_WAIT_MS), 128 + SIGKILL);
}

/* Pulls one sample or fails after the bound. */
static GstSample *
pull (GstElement *pipeline)
{
  GstSample *s = gst_app_sink_try_pull_sample (GST_APP_SINK (bt_by_name
          (pipeline, "out")), BT_WAIT_MS * GST_MSECOND);
  fail_unless (s != NULL, "no frame within %d ms", BT_WAIT_MS);
  return s;
}

static gint
sample_width (GstSample *s)
{
  gint width = 0;
  gst_structure_get_int (gst_caps_get_structure (gst_sample_get_caps (s), 0),
      "width", &width);
  return width;
}

static gchar *
sample_sha1 (GstSample *s)
{
  GstMapInfo map;
  fail_unless (gst_buffer_map (gst_sample_get_buffer (s), &map, GST_MAP_READ));
  gchar *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA1, map.data,
      map.size);
  gst_buffer_unmap (gst_sample_get_buffer (s), &map);
  return sum;
}

static gchar *
consumer_desc (const gchar *channel, const gchar *extra)
{
  return g_strdup_printf ("bipssrc name=src channel=%s timeout=%d "
      "policy=lossless %s ! appsink name=out sync=false", channel, BT_WAIT_MS,
      extra);
}

/* Proves: frames of a producer in another process arrive byte-identical
 * (against a local reference run), with PTS spaced by their duration,
 * and the producer exits cleanly at EOS, removing its socket. */
GST_START_TEST (test_producer_in_child)
{
  g_autofree gchar *channel = bt_channel_name ("child-prod");
  g_autofree gchar *pdesc = g_strdup_printf ("videotestsrc num-buffers=%d "
      "pattern=ball ! " CAPS_320 " ! bipssink channel=%s "
      "wait-for-consumer=true sync=false", N_FRAMES, channel);
  GPid child = spawn_pipeline (0, pdesc);
  g_autofree gchar *cdesc = consumer_desc (channel, "");
  GstElement *consumer = bt_start (cdesc);

  GPtrArray *got = g_ptr_array_new_with_free_func (g_free);
  GstClockTime prev_pts = GST_CLOCK_TIME_NONE, prev_dur = 0;
  GstElement *out = bt_by_name (consumer, "out");
  GstSample *s;
  while ((s = gst_app_sink_try_pull_sample (GST_APP_SINK (out),
              BT_WAIT_MS * GST_MSECOND)) != NULL) {
    GstBuffer *b = gst_sample_get_buffer (s);
    fail_unless (GST_BUFFER_PTS_IS_VALID (b));
    if (GST_CLOCK_TIME_IS_VALID (prev_pts))
      fail_unless_equals_clocktime (GST_BUFFER_PTS (b) - prev_pts, prev_dur);
    prev_pts = GST_BUFFER_PTS (b);
    prev_dur = GST_BUFFER_DURATION (b);
    g_ptr_array_add (got, sample_sha1 (s));
    gst_sample_unref (s);
  }
  fail_unless (gst_app_sink_is_eos (GST_APP_SINK (out)), "no EOS");
  fail_unless_equals_int (wait_child (child, BT_WAIT_MS), CHILD_OK);
  fail_if (bt_channel_exists (channel), "the producer exited cleanly but "
      "left its channel socket");
  bt_stop (consumer);

  GstElement *ref = bt_start ("videotestsrc num-buffers=20 pattern=ball ! "
      CAPS_320 " ! appsink name=out sync=false");
  fail_unless_equals_int (got->len, N_FRAMES);
  for (guint i = 0; i < N_FRAMES; i++) {
    GstSample *r = pull (ref);
    g_autofree gchar *want = sample_sha1 (r);
    gst_sample_unref (r);
    fail_unless_equals_string (got->pdata[i], want);
  }
  bt_stop (ref);
  g_ptr_array_unref (got);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: the reverse direction: a consumer in another process receives
 * every frame intact (it checks them itself) and sees EOS; the channel's
 * socket exists while the producer runs and goes with it. */
GST_START_TEST (test_consumer_in_child)
{
  g_autofree gchar *channel = bt_channel_name ("child-cons");
  GPid child = spawn_child ("consume", channel, NULL);
  g_autofree gchar *pdesc = g_strdup_printf ("videotestsrc num-buffers=%d "
      "pattern=ball ! " CAPS_320 " ! bipssink name=sink channel=%s "
      "wait-for-consumer=true sync=false", N_FRAMES, channel);
  GstElement *producer = bt_start (pdesc);
  bt_expect_eos (producer, BT_WAIT_MS);
  fail_unless_equals_uint64 (bt_stat_u64 (bt_by_name (producer, "sink"),
          "published"), N_FRAMES);
  fail_unless_equals_int (wait_child (child, BT_WAIT_MS), CHILD_OK);
  fail_unless (bt_channel_is_socket (channel), "no channel socket while the "
      "producer runs");
  bt_stop (producer);
  fail_if (bt_channel_exists (channel), "the stopped producer left its "
      "channel socket");
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: with reconnect=true, a SIGKILLed producer replaced by a new one
 * (new caps) is followed: frames flow again with the new caps, EOS of the
 * new producer arrives, and `reconnects` counts it. */
GST_START_TEST (test_producer_killed_and_restarted)
{
  g_autofree gchar *channel = bt_channel_name ("restart");
  g_autofree gchar *first = g_strdup_printf ("videotestsrc is-live=true ! "
      CAPS_160 " ! bipssink channel=%s", channel);
  GPid a = spawn_pipeline (0, first);
  g_autofree gchar *cdesc = consumer_desc (channel, "reconnect=true");
  GstElement *consumer = bt_start (cdesc);

  for (guint i = 0; i < 3; i++) {
    GstSample *s = pull (consumer);
    fail_unless_equals_int (sample_width (s), 160);
    gst_sample_unref (s);
  }
  kill_child (a);

  g_autofree gchar *second = g_strdup_printf ("videotestsrc num-buffers=%d ! "
      CAPS_320 " ! bipssink channel=%s wait-for-consumer=true sync=false",
      N_FRAMES, channel);
  GPid b = spawn_pipeline (0, second);
  guint old = 0, renewed = 0;
  GstElement *out = bt_by_name (consumer, "out");
  GstSample *s;
  while ((s = gst_app_sink_try_pull_sample (GST_APP_SINK (out),
              BT_WAIT_MS * GST_MSECOND)) != NULL) {
    gint width = sample_width (s);
    gst_sample_unref (s);
    if (width == 160) {
      fail_unless (renewed == 0, "old-producer frame after a new one");
      old++;
    } else {
      fail_unless_equals_int (width, 320);
      renewed++;
    }
  }
  GST_INFO ("%u queued frames of the killed producer, %u of the new one",
      old, renewed);
  fail_unless (gst_app_sink_is_eos (GST_APP_SINK (out)),
      "no EOS after %u frames of the new producer", renewed);
  fail_unless_equals_int (renewed, N_FRAMES);
  fail_unless (bt_stat_u64 (bt_by_name (consumer, "src"), "reconnects") >= 1);
  fail_unless_equals_int (wait_child (b, BT_WAIT_MS), CHILD_OK);
  bt_stop (consumer);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Runs `bips clean` (path in $BIPS_CLI) and returns its stdout, or NULL if
 * the CLI is not built. */
static gchar *
run_bips_clean (void)
{
  const gchar *cli = g_getenv ("BIPS_CLI");
  if (cli == NULL || !g_file_test (cli, G_FILE_TEST_IS_EXECUTABLE))
    return NULL;
  const gchar *argv[] = { cli, "clean", NULL };
  gchar *out = NULL;
  gint status = 0;
  g_autoptr (GError) err = NULL;
  fail_unless (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_DEFAULT,
          NULL, NULL, &out, NULL, &status, &err), "bips clean: %s",
      err ? err->message : "?");
  fail_unless (g_spawn_check_wait_status (status, NULL),
      "bips clean failed: %s", out);
  return out;
}

/* Proves: with reconnect=false a SIGKILLed producer turns into an error
 * message (no hang); the killed producer's socket is left behind (nobody
 * could remove it) and `bips clean` then removes it. */
GST_START_TEST (test_producer_killed_no_reconnect)
{
  g_autofree gchar *channel = bt_channel_name ("killed");
  g_autofree gchar *pdesc = g_strdup_printf ("videotestsrc is-live=true ! "
      CAPS_160 " ! bipssink channel=%s", channel);
  GPid a = spawn_pipeline (0, pdesc);
  g_autofree gchar *cdesc = consumer_desc (channel, "reconnect=false");
  GstElement *consumer = bt_start (cdesc);
  gst_sample_unref (pull (consumer));
  kill_child (a);

  GstMessage *msg = bt_expect_error (consumer, BT_WAIT_MS);
  g_autoptr (GError) err = NULL;
  gst_message_parse_error (msg, &err, NULL);
  GST_INFO ("expected error: %s", err->message);
  gst_message_unref (msg);
  bt_stop (consumer);

  fail_unless (bt_channel_is_socket (channel),
      "the killed producer's channel socket vanished");
  g_autofree gchar *out = run_bips_clean ();
  if (out != NULL) {
    g_autofree gchar *line = g_strdup_printf ("removed %s", channel);
    fail_unless (strstr (out, line) != NULL, "bips clean said: %s", out);
    fail_if (bt_channel_exists (channel), "bips clean left the socket");
  } else {
    GST_WARNING ("BIPS_CLI not built; unlinking the socket instead");
  }
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: a SIGKILLed lossless consumer does not stop the producer: its
 * `consumers` drops back to 0 and `published` keeps rising. */
GST_START_TEST (test_consumer_killed)
{
  g_autofree gchar *channel = bt_channel_name ("cons-killed");
  g_autofree gchar *pdesc = g_strdup_printf ("videotestsrc is-live=true ! "
      CAPS_160 " ! bipssink name=sink channel=%s", channel);
  GstElement *producer = bt_start (pdesc);
  GstElement *sink = bt_by_name (producer, "sink");
  fail_unless (bt_wait_stat_at_least (sink, "published", 1, BT_WAIT_MS) >= 1);

  g_autofree gchar *cdesc = g_strdup_printf ("bipssrc channel=%s "
      "policy=lossless timeout=%d ! fakesink", channel, BT_WAIT_MS);
  GPid child = spawn_pipeline (0, cdesc);
  fail_unless_equals_int (bt_wait_uint_property (sink, "consumers", 1,
          BT_WAIT_MS), 1);
  guint64 before = bt_stat_u64 (sink, "published");
  fail_unless (bt_wait_stat_at_least (sink, "published", before + 5,
          BT_WAIT_MS) >= before + 5, "producer stalled with a consumer");

  kill_child (child);
  fail_unless_equals_int (bt_wait_uint_property (sink, "consumers", 0,
          BT_WAIT_MS), 0);
  fail_unless_equals_int (bt_stat_uint (sink, "consumers"), 0);
  guint64 after = bt_stat_u64 (sink, "published");
  fail_unless (bt_wait_stat_at_least (sink, "published", after + 10,
          BT_WAIT_MS) >= after + 10, "producer stalled after the kill");
  GstMessage *msg = bt_pop_message (producer, GST_MESSAGE_ERROR, 0);
  fail_unless (msg == NULL, "producer posted an error");
  bt_stop (producer);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: with no producer, timeout=500 ends in an error message, not
 * earlier than the timeout and not never. */
GST_START_TEST (test_timeout_without_producer)
{
  g_autofree gchar *channel = bt_channel_name ("timeout");
  g_autofree gchar *desc = g_strdup_printf ("bipssrc channel=%s timeout=500 "
      "! fakesink", channel);
  GstElement *consumer = gst_parse_launch (desc, NULL);
  fail_unless (consumer != NULL);
  gint64 t0 = g_get_monotonic_time ();
  /* The failure may come from the state change or later from streaming. */
  gst_element_set_state (consumer, GST_STATE_PLAYING);
  GstMessage *msg = bt_expect_error (consumer, BT_WAIT_MS);
  gint64 waited_ms = (g_get_monotonic_time () - t0) / 1000;
  g_autoptr (GError) err = NULL;
  gst_message_parse_error (msg, &err, NULL);
  GST_INFO ("error after %" G_GINT64_FORMAT " ms: %s", waited_ms,
      err->message);
  gst_message_unref (msg);
  fail_unless (waited_ms >= 450, "gave up after %" G_GINT64_FORMAT " ms, "
      "before its 500 ms timeout", waited_ms);
  fail_if (bt_channel_exists (channel), "a consumer created the channel");
  bt_stop (consumer);
}
GST_END_TEST

/* Proves: a bipssrc started before its producer (300 ms later, in another
 * process) waits for it and receives every frame, then EOS. */
GST_START_TEST (test_producer_starts_later)
{
  g_autofree gchar *channel = bt_channel_name ("later");
  g_autofree gchar *pdesc = g_strdup_printf ("videotestsrc num-buffers=%d ! "
      CAPS_160 " ! bipssink channel=%s wait-for-consumer=true sync=false",
      N_FRAMES, channel);
  g_autofree gchar *cdesc = consumer_desc (channel, "");
  GstElement *consumer = bt_start (cdesc);
  GPid child = spawn_pipeline (300, pdesc);

  for (guint i = 0; i < N_FRAMES; i++)
    gst_sample_unref (pull (consumer));
  bt_expect_eos (consumer, BT_WAIT_MS);
  fail_unless_equals_int (wait_child (child, BT_WAIT_MS), CHILD_OK);
  fail_unless_equals_uint64 (bt_stat_u64 (bt_by_name (consumer, "src"),
          "received"), N_FRAMES);
  bt_stop (consumer);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: timeout=-1 waits for a producer but NULL still interrupts it
 * (the test's own timeout catches a hang). */
GST_START_TEST (test_wait_forever_interruptible)
{
  g_autofree gchar *channel = bt_channel_name ("forever");
  g_autofree gchar *desc = g_strdup_printf ("bipssrc channel=%s timeout=-1 "
      "! fakesink", channel);
  GstElement *consumer = gst_parse_launch (desc, NULL);
  fail_unless (consumer != NULL);
  gst_element_set_state (consumer, GST_STATE_PLAYING);
  GstMessage *msg = bt_pop_message (consumer,
      GST_MESSAGE_ERROR | GST_MESSAGE_EOS, 1000);
  fail_unless (msg == NULL, "timeout=-1 gave up: %" GST_PTR_FORMAT, msg);
  bt_stop (consumer);
}
GST_END_TEST

static Suite *
processes_suite (void)
{
  Suite *s = suite_create ("bips-processes");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 150);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_producer_in_child);
  tcase_add_test (tc, test_consumer_in_child);
  tcase_add_test (tc, test_producer_killed_and_restarted);
  tcase_add_test (tc, test_producer_killed_no_reconnect);
  tcase_add_test (tc, test_consumer_killed);
  tcase_add_test (tc, test_timeout_without_producer);
  tcase_add_test (tc, test_producer_starts_later);
  tcase_add_test (tc, test_wait_forever_interruptible);
  return s;
}

/* Removes the private channel folder and whatever a failed test left in
 * it. */
static void
remove_channel_dir (const gchar *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const gchar *name;
  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL) {
    g_autofree gchar *path = g_build_filename (dir, name, NULL);
    g_printerr ("processes: removing leftover %s\n", path);
    unlink (path);
  }
  g_dir_close (d);
  rmdir (dir);
}

int
main (int argc, char **argv)
{
  if (argc >= 2 && strcmp (argv[1], "--child") == 0)
    return child_main (argc, argv);

  self_exe = g_file_read_link ("/proc/self/exe", NULL);
  g_assert (self_exe != NULL);
  /* A private channel folder, so `bips clean` only sees this test's
   * channels (tests of other suites may run in parallel). It holds only
   * the channels' sockets; kept short for the sockets' path limit. */
  gchar *dir = g_strdup ("/dev/shm/gsttest-bips-XXXXXX");
  if (g_mkdtemp_full (dir, 0700) == NULL)
    g_error ("cannot create %s: %s", dir, g_strerror (errno));
  g_setenv ("BIPS_DIR", dir, TRUE);

  gst_check_init (&argc, &argv);
  int failures = gst_check_run_suite (processes_suite (), "processes",
      __FILE__);
  remove_channel_dir (dir);
  g_free (dir);
  g_free (self_exe);
  return failures;
}
