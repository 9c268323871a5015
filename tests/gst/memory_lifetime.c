/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Buffers that outlive their elements stay valid, then unmap cleanly. */
#include "bipstest.h"

#include <gst/app/gstappsink.h>

#include <string.h>

#define VIDEO_CAPS \
  "video/x-raw,format=RGBA,width=160,height=120,framerate=30/1"

static GstElement *
start_consumer (const gchar *channel)
{
  g_autofree gchar *desc = g_strdup_printf ("bipssrc name=src channel=%s "
      "timeout=%d policy=lossless ! appsink name=out sync=false", channel,
      BT_WAIT_MS);
  return bt_start (desc);
}

static GstElement *
start_producer (const gchar *channel, gboolean live)
{
  /* Not live: 60 frames through 3 slots, so every slot is reused. */
  g_autofree gchar *desc = live ?
      g_strdup_printf ("videotestsrc is-live=true pattern=ball ! " VIDEO_CAPS
      " ! bipssink name=sink channel=%s wait-for-consumer=true", channel) :
      g_strdup_printf ("videotestsrc num-buffers=60 pattern=ball ! " VIDEO_CAPS
      " ! bipssink name=sink channel=%s wait-for-consumer=true slots=3 "
      "sync=false", channel);
  return bt_start (desc);
}

/* Pulls one sample and keeps a private copy of its bytes. */
static GstSample *
hold_sample (GstElement *consumer, GBytes **copy)
{
  GstElement *out = gst_bin_get_by_name (GST_BIN (consumer), "out");
  GstSample *sample = gst_app_sink_try_pull_sample (GST_APP_SINK (out),
      BT_WAIT_MS * GST_MSECOND);
  gst_object_unref (out);
  fail_unless (sample != NULL, "no frame within %d ms", BT_WAIT_MS);
  GstMapInfo map;
  fail_unless (gst_buffer_map (gst_sample_get_buffer (sample), &map,
          GST_MAP_READ));
  *copy = g_bytes_new (map.data, map.size);
  gst_buffer_unmap (gst_sample_get_buffer (sample), &map);
  return sample;
}

/* Fails the test if the object behind @ref is still alive, i.e. leaked:
 * by now nothing may hold it. */
static void
expect_finalized (GWeakRef *ref, const gchar *what)
{
  GObject *obj = g_weak_ref_get (ref);
  fail_unless (obj == NULL, "%s still alive (%u refs besides this check)",
      what, obj ? obj->ref_count - 1 : 0);
  g_weak_ref_clear (ref);
}

/* Reads the held sample after its elements are gone, then releases it:
 * the bytes must be unchanged and still in the channel's memory (the
 * memfd, read-only), and afterwards no mapping of that memory and no
 * allocator of the plugin may remain. */
static void
release_and_check (GstSample *sample, GBytes *copy, const gchar *channel,
    GWeakRef *elements)
{
  GstMemory *mem = gst_buffer_peek_memory (gst_sample_get_buffer (sample), 0);
  GWeakRef allocator;
  g_weak_ref_init (&allocator, mem->allocator);
  GstMapInfo map;
  BtMemfdId id;
  gchar perms[5];
  fail_unless (gst_buffer_map (gst_sample_get_buffer (sample), &map,
          GST_MAP_READ));
  fail_unless_equals_uint64 (map.size, g_bytes_get_size (copy));
  fail_unless (memcmp (map.data, g_bytes_get_data (copy, NULL),
          map.size) == 0, "held frame changed after its pipelines stopped");
  fail_unless (bt_find_channel_mapping (map.data, channel, &id, perms),
      "held frame %p is not in a mapping of /memfd:bips-%s", map.data,
      channel);
  fail_unless (perms[1] == '-' && perms[3] == 's',
      "held frame's mapping is %s, expected read-only shared", perms);
  gst_buffer_unmap (gst_sample_get_buffer (sample), &map);
  gst_sample_unref (sample);
  g_bytes_unref (copy);
  fail_unless_equals_int (bt_count_mappings (&id), 0);
  expect_finalized (&allocator, "the consumer's allocator");
  expect_finalized (&elements[0], "bipssrc");
  expect_finalized (&elements[1], "bipssink");
  bt_remove_channel (channel);
}

/* Proves: a sample held past bipssrc's NULL state stays mapped and intact
 * while the producer goes on through many more frames than it has slots
 * (so its slot is not reused under the reader) and past the producer's
 * end; releasing it unmaps the channel's memory. */
GST_START_TEST (test_sample_outlives_consumer)
{
  g_autofree gchar *channel = bt_channel_name ("lifetime-cons");
  GBytes *copy = NULL;
  GstElement *consumer = start_consumer (channel);
  GstElement *producer = start_producer (channel, FALSE);

  GstSample *sample = hold_sample (consumer, &copy);
  GWeakRef elements[2];
  g_weak_ref_init (&elements[0], bt_by_name (consumer, "src"));
  g_weak_ref_init (&elements[1], bt_by_name (producer, "sink"));
  /* A detached frame does not count as a consumer, so with
   * wait-for-consumer=true the producer waits until a second consumer
   * attaches; that one drains the remaining frames through the 3 slots. */
  bt_stop (consumer);
  g_autofree gchar *drain = g_strdup_printf ("bipssrc channel=%s timeout=%d "
      "policy=lossless ! fakesink sync=false", channel, BT_WAIT_MS);
  GstElement *second = bt_start (drain);
  bt_expect_eos (producer, BT_WAIT_MS);
  bt_stop (producer);
  bt_stop (second);
  release_and_check (sample, copy, channel, elements);
}
GST_END_TEST

/* Proves: the same when the producer goes first (its socket is gone, its
 * memory only kept by the held frame) and bipssrc, waiting to reconnect,
 * is then stopped. */
GST_START_TEST (test_sample_outlives_producer)
{
  g_autofree gchar *channel = bt_channel_name ("lifetime-prod");
  GBytes *copy = NULL;
  GstElement *consumer = start_consumer (channel);
  GstElement *producer = start_producer (channel, TRUE);

  GstSample *sample = hold_sample (consumer, &copy);
  GWeakRef elements[2];
  g_weak_ref_init (&elements[0], bt_by_name (consumer, "src"));
  g_weak_ref_init (&elements[1], bt_by_name (producer, "sink"));
  bt_stop (producer);
  bt_stop (consumer);
  release_and_check (sample, copy, channel, elements);
}
GST_END_TEST

/* Proves: a buffer from bipssink's pool, acquired but not pushed, stays
 * writable after the sink is torn down, and releasing it unmaps. */
GST_START_TEST (test_pool_buffer_outlives_sink)
{
  g_autofree gchar *channel = bt_channel_name ("lifetime-pool");
  GstElement *sink = bt_make ("bipssink");
  fail_unless (sink != NULL);
  g_object_set (sink, "channel", channel, NULL);
  GstHarness *h = gst_harness_new_with_element (sink, "sink", NULL);
  gst_harness_set_src_caps_str (h, VIDEO_CAPS);

  g_autoptr (GstCaps) caps = gst_caps_from_string (VIDEO_CAPS);
  GstQuery *query = gst_query_new_allocation (caps, TRUE);
  fail_unless (gst_pad_peer_query (h->srcpad, query));
  fail_unless (gst_query_get_n_allocation_pools (query) >= 1);
  GstBufferPool *pool = NULL;
  guint size = 0, min = 0, max = 0;
  gst_query_parse_nth_allocation_pool (query, 0, &pool, &size, &min, &max);
  gst_query_unref (query);
  fail_unless (pool != NULL);
  if (!gst_buffer_pool_is_active (pool)) {
    GstStructure *config = gst_buffer_pool_get_config (pool);
    gst_buffer_pool_config_set_params (config, caps, size, min, max);
    fail_unless (gst_buffer_pool_set_config (pool, config));
    fail_unless (gst_buffer_pool_set_active (pool, TRUE));
  }
  GstBuffer *buf = NULL;
  fail_unless_equals_int (gst_buffer_pool_acquire_buffer (pool, &buf, NULL),
      GST_FLOW_OK);
  BtMemfdId id;
  gchar perms[5];
  GstMapInfo map;
  fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
  fail_unless (bt_find_channel_mapping (map.data, channel, &id, perms),
      "pool buffer %p is not in a mapping of /memfd:bips-%s", map.data,
      channel);
  gst_buffer_unmap (buf, &map);
  GWeakRef pool_ref, allocator_ref, sink_ref;
  g_weak_ref_init (&pool_ref, pool);
  g_weak_ref_init (&allocator_ref, gst_buffer_peek_memory (buf, 0)->allocator);
  g_weak_ref_init (&sink_ref, sink);
  gst_object_unref (pool);

  gst_harness_teardown (h);
  gst_object_unref (sink);

  fail_unless (gst_buffer_map (buf, &map, GST_MAP_WRITE));
  memset (map.data, 0x5a, map.size);
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  fail_unless_equals_int (bt_count_mappings (&id), 0);
  expect_finalized (&pool_ref, "bipssink's pool");
  expect_finalized (&allocator_ref, "bipssink's allocator");
  expect_finalized (&sink_ref, "bipssink");
  bt_remove_channel (channel);
}
GST_END_TEST

static Suite *
memory_lifetime_suite (void)
{
  Suite *s = suite_create ("bips-memory-lifetime");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_sample_outlives_consumer);
  tcase_add_test (tc, test_sample_outlives_producer);
  tcase_add_test (tc, test_pool_buffer_outlives_sink);
  return s;
}

GST_CHECK_MAIN (memory_lifetime)
