/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bipssink under GstHarness: proposed pool and allocator, zero-copy vs copy. */
#include "bipstest.h"

#include <gst/video/video.h>

#include <sys/stat.h>

#define CAPS_STR "video/x-raw,format=RGBA,width=64,height=48,framerate=30/1"
#define FRAME_SIZE (64 * 48 * 4)

typedef struct
{
  GstHarness *h;
  GstElement *sink;
  GstBus *bus;                  /* the sink's private bus, for its errors */
  gchar *channel;
} SinkFixture;

/* Creates a bipssink on a fresh channel with @props ("name", value, ...,
 * NULL) set before the harness starts it, and pushes CAPS_STR. */
static void
sink_fixture_init (SinkFixture *f, const gchar *first_prop, ...)
{
  va_list args;

  f->channel = bt_channel_name ("harness");
  f->sink = bt_make ("bipssink");
  fail_unless (f->sink != NULL, "bipssink not found: is GST_PLUGIN_PATH set?");
  g_object_set (f->sink, "channel", f->channel, NULL);
  va_start (args, first_prop);
  if (first_prop)
    g_object_set_valist (G_OBJECT (f->sink), first_prop, args);
  va_end (args);

  f->bus = gst_bus_new ();
  gst_element_set_bus (f->sink, f->bus);
  f->h = gst_harness_new_with_element (f->sink, "sink", NULL);
  gst_harness_set_src_caps_str (f->h, CAPS_STR);
}

static void
sink_fixture_clear (SinkFixture *f)
{
  if (f->h)
    gst_harness_teardown (f->h);
  gst_element_set_bus (f->sink, NULL);
  gst_object_unref (f->bus);
  gst_object_unref (f->sink);
  bt_remove_channel (f->channel);
  g_free (f->channel);
}

/* Sends an allocation query as an upstream element would and returns the
 * proposed pool, configured and activated the way videotestsrc does it. */
static GstBufferPool *
negotiate_pool (SinkFixture *f, GstAllocator **allocator_out,
    gboolean *has_video_meta)
{
  g_autoptr (GstCaps) caps = gst_caps_from_string (CAPS_STR);
  GstQuery *query = gst_query_new_allocation (caps, TRUE);
  GstBufferPool *pool = NULL;
  GstAllocator *allocator = NULL;
  GstAllocationParams params;
  guint size = 0, min = 0, max = 0;

  fail_unless (gst_pad_peer_query (f->h->srcpad, query),
      "bipssink did not answer the allocation query");
  fail_unless (gst_query_get_n_allocation_pools (query) >= 1,
      "bipssink proposed no buffer pool");
  gst_query_parse_nth_allocation_pool (query, 0, &pool, &size, &min, &max);
  fail_unless (pool != NULL, "bipssink proposed a NULL pool");
  fail_unless (size >= FRAME_SIZE, "proposed size %u < frame size %u",
      size, FRAME_SIZE);
  if (has_video_meta)
    *has_video_meta =
        gst_query_find_allocation_meta (query, GST_VIDEO_META_API_TYPE, NULL);
  if (gst_query_get_n_allocation_params (query) > 0)
    gst_query_parse_nth_allocation_param (query, 0, &allocator, &params);
  gst_query_unref (query);

  /* The allocator the pool itself will use. */
  if (!gst_buffer_pool_is_active (pool)) {
    GstStructure *config = gst_buffer_pool_get_config (pool);
    gst_buffer_pool_config_set_params (config, caps, size, min, max);
    if (!gst_buffer_pool_set_config (pool, config)) {
      config = gst_buffer_pool_get_config (pool);
      fail_unless (gst_buffer_pool_config_validate_params (config, caps,
              size, min, max), "pool rejected its own proposed parameters");
      fail_unless (gst_buffer_pool_set_config (pool, config));
    }
    fail_unless (gst_buffer_pool_set_active (pool, TRUE),
        "the proposed pool does not activate");
  }
  if (allocator_out) {
    GstStructure *config = gst_buffer_pool_get_config (pool);
    GstAllocator *pool_allocator = NULL;
    gst_buffer_pool_config_get_allocator (config, &pool_allocator, NULL);
    *allocator_out = pool_allocator ? gst_object_ref (pool_allocator) : NULL;
    gst_structure_free (config);
  }
  if (allocator)
    gst_object_unref (allocator);
  return pool;
}

/* Acquires without blocking forever: a pool that pins its slots fails the
 * test instead of hanging it. */
static GstBuffer *
acquire (GstBufferPool *pool)
{
  GstBufferPoolAcquireParams params = {
    .flags = GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT
  };
  gint64 end = g_get_monotonic_time () + BT_WAIT_MS * G_TIME_SPAN_MILLISECOND;
  for (;;) {
    GstBuffer *buf = NULL;
    GstFlowReturn ret = gst_buffer_pool_acquire_buffer (pool, &buf, &params);
    if (ret == GST_FLOW_OK)
      return buf;
    fail_unless (ret == GST_FLOW_EOS, "acquire failed: %s",
        gst_flow_get_name (ret));
    fail_unless (g_get_monotonic_time () < end,
        "no free buffer in the pool within %d ms", BT_WAIT_MS);
    g_usleep (5000);
  }
}

static void
fill_frame (GstBuffer *buf, guint frame)
{
  GstMapInfo map;
  fail_unless (gst_buffer_map (buf, &map, GST_MAP_WRITE));
  fail_unless (map.size >= FRAME_SIZE);
  for (gsize i = 0; i < FRAME_SIZE; i++)
    map.data[i] = bt_pattern_byte (frame, (guint) (i / 256), (guint) (i % 256));
  gst_buffer_unmap (buf, &map);
  gst_buffer_set_size (buf, FRAME_SIZE);
  GST_BUFFER_PTS (buf) = frame * GST_SECOND / 30;
  GST_BUFFER_DURATION (buf) = GST_SECOND / 30;
}

static void
check_frame (GstBuffer *buf, guint frame)
{
  GstMapInfo map;
  fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
  fail_unless_equals_uint64 (map.size, FRAME_SIZE);
  for (gsize i = 0; i < FRAME_SIZE; i++) {
    guint8 want = bt_pattern_byte (frame, (guint) (i / 256), (guint) (i % 256));
    fail_unless (map.data[i] == want, "frame %u byte %zu: %u != %u", frame,
        i, map.data[i], want);
  }
  gst_buffer_unmap (buf, &map);
}

/* Proves: the allocation answer carries a pool whose allocator is the bips
 * allocator, plus GstVideoMeta; its buffers are one "bips" memory that is
 * a writable mapping of the channel's own memfd. */
GST_START_TEST (test_proposes_bips_pool)
{
  SinkFixture f;
  GstAllocator *allocator = NULL;
  gboolean video_meta = FALSE;
  gchar perms[5];

  sink_fixture_init (&f, NULL);
  GstBufferPool *pool = negotiate_pool (&f, &allocator, &video_meta);

  fail_unless (video_meta, "GST_VIDEO_META_API_TYPE not in the query answer");
  fail_unless (allocator != NULL, "the pool config has no allocator");
  fail_unless_equals_string (allocator->mem_type, "bips");

  GstBuffer *buf = acquire (pool);
  fail_unless_equals_int (gst_buffer_n_memory (buf), 1);
  GstMemory *mem = gst_buffer_peek_memory (buf, 0);
  fail_unless (gst_memory_is_type (mem, "bips"), "pool memory type is %s",
      mem->allocator ? mem->allocator->mem_type : "(none)");

  GstMapInfo map;
  fail_unless (gst_buffer_map (buf, &map, GST_MAP_WRITE));
  BtMemfdId id;
  fail_unless (bt_find_channel_mapping (map.data, f.channel, &id, perms),
      "pool buffer data %p is not in a mapping of /memfd:bips-%s", map.data,
      f.channel);
  fail_unless (perms[0] == 'r' && perms[1] == 'w' && perms[3] == 's',
      "producer mapping is %s, expected rw-s", perms);
  gst_buffer_unmap (buf, &map);

  gst_buffer_unref (buf);
  gst_object_unref (allocator);
  gst_buffer_pool_set_active (pool, FALSE);
  gst_object_unref (pool);
  sink_fixture_clear (&f);
}
GST_END_TEST

/* Proves: a pool buffer is published without a copy and a foreign buffer
 * is copied; both are counted in `stats` and both arrive intact at a
 * bipssrc. */
GST_START_TEST (test_zero_copy_and_copy_counted)
{
  SinkFixture f;
  sink_fixture_init (&f, "wait-for-consumer", TRUE, NULL);

  GstElement *src = bt_make ("bipssrc");
  fail_unless (src != NULL);
  g_object_set (src, "channel", f.channel, "timeout", (gint64) BT_WAIT_MS,
      NULL);
  gst_util_set_object_arg (G_OBJECT (src), "policy", "lossless");
  GstHarness *hsrc = gst_harness_new_with_element (src, NULL, "src");
  gst_harness_play (hsrc);

  GstBufferPool *pool = negotiate_pool (&f, NULL, NULL);
  GstBuffer *pooled = acquire (pool);
  fill_frame (pooled, 0);
  /* Blocks until the bipssrc attached (wait-for-consumer). */
  fail_unless_equals_int (gst_harness_push (f.h, pooled), GST_FLOW_OK);

  GstBuffer *foreign = gst_buffer_new_allocate (NULL, FRAME_SIZE, NULL);
  fill_frame (foreign, 1);
  fail_unless_equals_int (gst_harness_push (f.h, foreign), GST_FLOW_OK);

  fail_unless_equals_uint64 (bt_stat_u64 (f.sink, "published"), 2);
  fail_unless_equals_uint64 (bt_stat_u64 (f.sink, "zero-copy"), 1);
  fail_unless_equals_uint64 (bt_stat_u64 (f.sink, "copied"), 1);

  for (guint i = 0; i < 2; i++) {
    GstBuffer *out = gst_harness_pull (hsrc);
    fail_unless (out != NULL, "bipssrc delivered no frame %u", i);
    check_frame (out, i);
    gst_buffer_unref (out);
  }
  fail_unless_equals_uint64 (bt_stat_u64 (src, "received"), 2);
  fail_unless_equals_int (bt_stat_uint (f.sink, "consumers"), 1);

  gst_harness_teardown (hsrc);
  gst_object_unref (src);
  gst_buffer_pool_set_active (pool, FALSE);
  gst_object_unref (pool);
  sink_fixture_clear (&f);
}
GST_END_TEST

/* Proves: with allow-copy=false, pool buffers still flow but a foreign
 * buffer is refused with an error message on the bus (not a silent drop). */
GST_START_TEST (test_allow_copy_false_errors)
{
  SinkFixture f;
  sink_fixture_init (&f, "allow-copy", FALSE, NULL);

  GstBufferPool *pool = negotiate_pool (&f, NULL, NULL);
  GstBuffer *pooled = acquire (pool);
  fill_frame (pooled, 0);
  fail_unless_equals_int (gst_harness_push (f.h, pooled), GST_FLOW_OK);

  GstBuffer *foreign = gst_buffer_new_allocate (NULL, FRAME_SIZE, NULL);
  fill_frame (foreign, 1);
  GstFlowReturn ret = gst_harness_push (f.h, foreign);
  fail_unless (ret == GST_FLOW_ERROR, "push of a foreign buffer returned %s",
      gst_flow_get_name (ret));

  GstMessage *msg = gst_bus_timed_pop_filtered (f.bus,
      BT_WAIT_MS * GST_MSECOND, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no error message on the bus");
  g_autoptr (GError) err = NULL;
  gst_message_parse_error (msg, &err, NULL);
  GST_INFO ("expected error: %s", err->message);
  gst_message_unref (msg);

  fail_unless_equals_uint64 (bt_stat_u64 (f.sink, "published"), 1);
  fail_unless_equals_uint64 (bt_stat_u64 (f.sink, "zero-copy"), 1);
  fail_unless_equals_uint64 (bt_stat_u64 (f.sink, "copied"), 0);

  gst_buffer_pool_set_active (pool, FALSE);
  gst_object_unref (pool);
  sink_fixture_clear (&f);
}
GST_END_TEST

/* Proves: zero-copy needs memory of *this* channel; a bips buffer from
 * another channel's pool is copied, not published by reference. */
GST_START_TEST (test_other_channel_buffer_is_copied)
{
  SinkFixture a, b;
  sink_fixture_init (&a, NULL);
  sink_fixture_init (&b, NULL);

  GstBufferPool *pool_a = negotiate_pool (&a, NULL, NULL);
  GstBuffer *buf = acquire (pool_a);
  fill_frame (buf, 0);
  fail_unless_equals_int (gst_harness_push (b.h, buf), GST_FLOW_OK);

  fail_unless_equals_uint64 (bt_stat_u64 (b.sink, "zero-copy"), 0);
  fail_unless_equals_uint64 (bt_stat_u64 (b.sink, "copied"), 1);
  fail_unless_equals_uint64 (bt_stat_u64 (a.sink, "published"), 0);

  gst_buffer_pool_set_active (pool_a, FALSE);
  gst_object_unref (pool_a);
  sink_fixture_clear (&b);
  sink_fixture_clear (&a);
}
GST_END_TEST

/* Proves: slots handed out by the pool and dropped unpublished go back to
 * free, so the pool never runs dry (shmsink hangs exactly there). */
GST_START_TEST (test_unpublished_slots_return)
{
  SinkFixture f;
  const guint slots = 3;
  sink_fixture_init (&f, "slots", slots, NULL);
  GstBufferPool *pool = negotiate_pool (&f, NULL, NULL);

  for (guint i = 0; i < 4 * slots; i++)
    gst_buffer_unref (acquire (pool));

  for (guint i = 0; i < 4 * slots; i++) {
    GstBuffer *buf = acquire (pool);
    fill_frame (buf, i);
    fail_unless_equals_int (gst_harness_push (f.h, buf), GST_FLOW_OK);
  }
  fail_unless_equals_uint64 (bt_stat_u64 (f.sink, "published"), 4 * slots);
  fail_unless_equals_uint64 (bt_stat_u64 (f.sink, "zero-copy"), 4 * slots);

  gst_buffer_pool_set_active (pool, FALSE);
  gst_object_unref (pool);
  sink_fixture_clear (&f);
}
GST_END_TEST

/* Proves: the documented defaults, the stats field types before any frame,
 * and that `perms` sets the mode of the channel's socket. */
GST_START_TEST (test_defaults_and_perms)
{
  GstElement *sink = bt_make ("bipssink");
  GstElement *src = bt_make ("bipssrc");
  fail_unless (sink != NULL && src != NULL);
  guint perms = 0, slots = 0, consumers = 99, max_consumers = 0;
  guint64 slot_size = 1, max_wait = 0;
  gboolean allow_copy = FALSE, wait = TRUE, reconnect = FALSE;
  g_object_get (sink, "perms", &perms, "allow-copy", &allow_copy,
      "wait-for-consumer", &wait, "slot-size", &slot_size, "slots", &slots,
      "consumers", &consumers, "max-wait", &max_wait, "max-consumers",
      &max_consumers, NULL);
  fail_unless_equals_int_hex (perms, 0600);
  fail_unless_equals_uint64 (max_wait, 2000);
  fail_unless_equals_int (max_consumers, 16);   /* ProducerOptions' default */
  fail_unless (allow_copy);
  fail_unless (!wait);
  fail_unless_equals_uint64 (slot_size, 0);
  fail_unless (slots >= 2, "default slots %u", slots);
  fail_unless_equals_int (consumers, 0);
  fail_unless_equals_uint64 (bt_stat_u64 (sink, "published"), 0);
  fail_unless_equals_int (bt_stat_uint (sink, "consumers"), 0);

  g_object_get (src, "reconnect", &reconnect, NULL);
  fail_unless (reconnect);
  GParamSpec *policy =
      g_object_class_find_property (G_OBJECT_GET_CLASS (src), "policy");
  fail_unless (policy != NULL && G_IS_PARAM_SPEC_ENUM (policy));
  GEnumClass *enum_class = G_PARAM_SPEC_ENUM (policy)->enum_class;
  fail_unless (g_enum_get_value_by_nick (enum_class, "lossless") != NULL);
  fail_unless (g_enum_get_value_by_nick (enum_class, "latest") != NULL);
  fail_unless_equals_uint64 (bt_stat_u64 (src, "received"), 0);
  fail_unless_equals_uint64 (bt_stat_u64 (src, "skipped"), 0);
  fail_unless_equals_uint64 (bt_stat_u64 (src, "rejected"), 0);
  fail_unless_equals_uint64 (bt_stat_u64 (src, "reconnects"), 0);
  gst_object_unref (sink);
  gst_object_unref (src);

  SinkFixture f;
  sink_fixture_init (&f, "perms", 0640, NULL);
  /* The channel exists once caps are known at the latest; push one frame
   * to be independent of when exactly it is created. */
  GstBuffer *buf = gst_buffer_new_allocate (NULL, FRAME_SIZE, NULL);
  fill_frame (buf, 0);
  fail_unless_equals_int (gst_harness_push (f.h, buf), GST_FLOW_OK);
  g_autofree gchar *path = bt_channel_path (f.channel);
  struct stat st;
  fail_unless (lstat (path, &st) == 0, "no channel socket at %s", path);
  fail_unless (S_ISSOCK (st.st_mode), "%s is not a socket (mode %o)", path,
      st.st_mode);
  fail_unless_equals_int_hex (st.st_mode & 0777, 0640);
  /* Stopping the sink removes the socket: nothing is left behind. */
  gst_harness_teardown (f.h);
  f.h = NULL;
  fail_if (bt_channel_exists (f.channel), "%s is still there after the sink "
      "stopped", path);
  sink_fixture_clear (&f);
}
GST_END_TEST

static Suite *
sink_harness_suite (void)
{
  Suite *s = suite_create ("bipssink-harness");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_proposes_bips_pool);
  tcase_add_test (tc, test_zero_copy_and_copy_counted);
  tcase_add_test (tc, test_allow_copy_false_errors);
  tcase_add_test (tc, test_other_channel_buffer_is_copied);
  tcase_add_test (tc, test_unpublished_slots_return);
  tcase_add_test (tc, test_defaults_and_perms);
  return s;
}

GST_CHECK_MAIN (sink_harness)
