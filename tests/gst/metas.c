/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Metas that travel with frames: regions of interest with their parameter
 * structures and custom metas reach every consumer as real metas; too much
 * metadata is a clear error; a peer's custom meta unknown here is
 * registered, one whose name is taken is left out. */
#include "bipstest.h"
#include "forger.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>
#include <string.h>

#define W 64
#define H 48
#define FRAME_SIZE (W * H * 4)
#define CAPS "video/x-raw,format=RGBA,width=64,height=48,framerate=30/1"
#define FRAMES 12

static void
register_test_meta (void)
{
  static gsize done = 0;
  if (g_once_init_enter (&done)) {
    static const gchar *tags[] = { NULL };
    gst_meta_register_custom ("bips-test-info", tags, NULL, NULL, NULL);
    g_once_init_leave (&done, 1);
  }
}

/* Frame @i: a "person" with a detection (every field type that travels,
 * a fraction among them), a "face" inside it, and a custom meta. */
static GstBuffer *
frame_with_metas (guint i, guint extra_regions)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, FRAME_SIZE, NULL);
  gst_buffer_memset (buf, 0, (guint8) i, FRAME_SIZE);
  GST_BUFFER_PTS (buf) = i * GST_SECOND / 30;
  GST_BUFFER_DURATION (buf) = GST_SECOND / 30;

  GstVideoRegionOfInterestMeta *person =
      gst_buffer_add_video_region_of_interest_meta (buf, "person", i, 2 * i,
      30, 40);
  person->id = (gint) i + 1;
  person->parent_id = -1;
  gst_video_region_of_interest_meta_add_param (person,
      gst_structure_new ("detection", "label", G_TYPE_STRING, "person",
          "confidence", G_TYPE_DOUBLE, 0.5 + i / 100.0, "class-id", G_TYPE_INT,
          (gint) i, "tracked", G_TYPE_BOOLEAN, (gboolean) (i % 2),
          "rate", GST_TYPE_FRACTION, 30, 1, NULL));
  GstVideoRegionOfInterestMeta *face =
      gst_buffer_add_video_region_of_interest_meta (buf, "face", i + 5,
      2 * i + 5, 10, 10);
  face->id = 1000 + (gint) i;
  face->parent_id = person->id;
  for (guint k = 0; k < extra_regions; k++)
    gst_buffer_add_video_region_of_interest_meta (buf, "car", k, k, 4, 4);

  register_test_meta ();
  GstCustomMeta *custom = gst_buffer_add_custom_meta (buf, "bips-test-info");
  gst_structure_set (gst_custom_meta_get_structure (custom),
      "frame", G_TYPE_UINT64, (guint64) i, "model", G_TYPE_STRING, "yolo-é",
      NULL);
  return buf;
}

static void
push_frame (GstElement *producer, GstBuffer *buf)
{
  GstCaps *caps = gst_caps_from_string (CAPS);
  GstSample *sample = gst_sample_new (buf, caps, NULL, NULL);
  gst_app_src_push_sample (GST_APP_SRC (bt_by_name (producer, "in")), sample);
  gst_sample_unref (sample);
  gst_buffer_unref (buf);
  gst_caps_unref (caps);
}

static void
check_frame (GstBuffer *buf, guint i)
{
  GstVideoRegionOfInterestMeta *person =
      gst_buffer_get_video_region_of_interest_meta_id (buf, (gint) i + 1);
  fail_unless (person != NULL, "frame %u: no person region", i);
  fail_unless_equals_string (g_quark_to_string (person->roi_type), "person");
  fail_unless_equals_int (person->x, i);
  fail_unless_equals_int (person->y, 2 * i);
  fail_unless_equals_int (person->w, 30);
  fail_unless_equals_int (person->h, 40);
  fail_unless_equals_int (person->parent_id, -1);

  GstStructure *det =
      gst_video_region_of_interest_meta_get_param (person, "detection");
  fail_unless (det != NULL, "frame %u: the detection did not travel", i);
  fail_unless_equals_string (gst_structure_get_string (det, "label"),
      "person");
  gdouble confidence = 0;
  gint class_id = -1, num = 0, den = 0;
  gboolean tracked = !(i % 2);
  fail_unless (gst_structure_get_double (det, "confidence", &confidence));
  fail_unless (confidence == 0.5 + i / 100.0);
  fail_unless (gst_structure_get_int (det, "class-id", &class_id));
  fail_unless_equals_int (class_id, i);
  fail_unless (gst_structure_get_boolean (det, "tracked", &tracked));
  fail_unless_equals_int (tracked, i % 2);
  fail_unless (gst_structure_get_fraction (det, "rate", &num, &den));
  fail_unless (num == 30 && den == 1);

  GstVideoRegionOfInterestMeta *face =
      gst_buffer_get_video_region_of_interest_meta_id (buf, 1000 + (gint) i);
  fail_unless (face != NULL, "frame %u: no face region", i);
  fail_unless_equals_int (face->parent_id, person->id);
  fail_unless_equals_int (face->x, i + 5);

  GstCustomMeta *custom = gst_buffer_get_custom_meta (buf, "bips-test-info");
  fail_unless (custom != NULL, "frame %u: the custom meta did not travel", i);
  GstStructure *s = gst_custom_meta_get_structure (custom);
  guint64 frame = G_MAXUINT64;
  fail_unless (gst_structure_get_uint64 (s, "frame", &frame));
  fail_unless_equals_uint64 (frame, i);
  fail_unless_equals_string (gst_structure_get_string (s, "model"), "yolo-é");
}

/* Proves: regions of interest (box, type, ids, parameter structures of
 * every field type) and custom metas reach every consumer as real metas,
 * frame by frame. */
GST_START_TEST (test_regions_and_custom_metas_travel)
{
  g_autofree gchar *channel = bt_channel_name ("metas");
  GstElement *consumers[2];
  for (guint c = 0; c < 2; c++) {
    g_autofree gchar *desc = g_strdup_printf ("bipssrc channel=%s timeout=%d "
        "! appsink name=out sync=false", channel, BT_WAIT_MS);
    consumers[c] = bt_start (desc);
  }
  g_autofree gchar *desc = g_strdup_printf ("appsrc name=in format=time ! "
      "bipssink name=sink channel=%s sync=false", channel);
  GstElement *producer = bt_start (desc);
  push_frame (producer, frame_with_metas (0, 0));
  fail_unless_equals_int (bt_wait_uint_property (bt_by_name (producer, "sink"),
          "consumers", 2, BT_WAIT_MS), 2);
  for (guint i = 1; i < FRAMES; i++)
    push_frame (producer, frame_with_metas (i, 0));
  gst_app_src_end_of_stream (GST_APP_SRC (bt_by_name (producer, "in")));

  for (guint c = 0; c < 2; c++) {
    GstAppSink *out = GST_APP_SINK (bt_by_name (consumers[c], "out"));
    guint got = 0;
    GstSample *sample;
    while ((sample = gst_app_sink_try_pull_sample (out,
                BT_WAIT_MS * GST_MSECOND)) != NULL) {
      GstBuffer *buf = gst_sample_get_buffer (sample);
      GstMapInfo map;
      fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
      const guint i = map.data[0];
      gst_buffer_unmap (buf, &map);
      check_frame (buf, i);
      got++;
      gst_sample_unref (sample);
    }
    fail_unless (gst_app_sink_is_eos (out), "consumer %u: no EOS", c);
    /* The first frame may have been published before both attached. */
    fail_unless (got >= FRAMES - 1, "consumer %u got %u frames", c, got);
    bt_stop (consumers[c]);
  }
  bt_expect_eos (producer, BT_WAIT_MS);
  bt_stop (producer);
}
GST_END_TEST

/* Proves: a frame whose metadata does not fit meta-size stops the stream
 * with an error that gives the size, what the frame carries and the fix. */
GST_START_TEST (test_too_much_metadata_is_a_clear_error)
{
  g_autofree gchar *channel = bt_channel_name ("bigmeta");
  g_autofree gchar *desc = g_strdup_printf ("appsrc name=in format=time ! "
      "bipssink channel=%s sync=false meta-size=512", channel);
  GstElement *producer = bt_start (desc);
  push_frame (producer, frame_with_metas (0, 0));
  push_frame (producer, frame_with_metas (1, 40));
  GstMessage *msg = bt_expect_error (producer, BT_WAIT_MS);
  g_autoptr (GError) err = NULL;
  gst_message_parse_error (msg, &err, NULL);
  GST_INFO ("error: %s", err->message);
  fail_unless (strstr (err->message, "42 regions of interest") != NULL,
      "%s", err->message);
  fail_unless (strstr (err->message, "holds 512") != NULL, "%s", err->message);
  fail_unless (strstr (err->message, "meta-size") != NULL, "%s", err->message);
  gst_message_unref (msg);
  bt_stop (producer);
}
GST_END_TEST

/* Starts `bipssrc ! appsink name=out` on @channel (in *@consumer) and a
 * forging producer for it, and waits until the consumer is attached. */
static BtForger *
start_forged (const gchar *channel, GstElement **consumer)
{
  g_autofree gchar *desc = g_strdup_printf ("bipssrc channel=%s timeout=%d "
      "! appsink name=out sync=false", channel, BT_WAIT_MS);
  *consumer = bt_start (desc);
  g_autofree gchar *error = NULL;
  BtForger *forger = bt_forger_new (channel, FRAME_SIZE, CAPS, &error);
  fail_unless (forger != NULL, "cannot create the producer: %s", error);
  fail_unless (bt_forger_wait_consumers (forger, 1, BT_WAIT_MS));
  return forger;
}

/* Proves: a custom meta that only the producer's process has registered
 * is registered here under its name and attached; one whose name belongs
 * to another type here is left out, and the frame still goes. */
GST_START_TEST (test_peer_custom_metas)
{
  g_autofree gchar *channel = bt_channel_name ("peermeta");
  fail_unless (gst_meta_get_info ("bips-peer-only") == NULL);
  GstElement *consumer;
  BtForger *forger = start_forged (channel, &consumer);
  g_autofree gchar *error = NULL;

  guint8 *data = g_malloc0 (FRAME_SIZE);
  const gchar *names[] = { "GstBuffer", "bips-peer-only", NULL };
  fail_unless (bt_forger_publish_custom (forger, data, FRAME_SIZE, names,
          &error), "%s", error);
  g_free (data);

  GstSample *sample = gst_app_sink_try_pull_sample (GST_APP_SINK (bt_by_name
          (consumer, "out")), BT_WAIT_MS * GST_MSECOND);
  fail_unless (sample != NULL, "the frame did not arrive");
  GstBuffer *buf = gst_sample_get_buffer (sample);
  GstCustomMeta *custom = gst_buffer_get_custom_meta (buf, "bips-peer-only");
  fail_unless (custom != NULL, "the peer's custom meta was not attached");
  gint n = -1;
  fail_unless (gst_structure_get_int (gst_custom_meta_get_structure (custom),
          "n", &n));
  fail_unless_equals_int (n, 1);
  const GstMetaInfo *taken = gst_meta_get_info ("GstBuffer");
  fail_unless (taken == NULL, "a meta was registered under a type's name");
  gst_sample_unref (sample);

  bt_forger_end_of_stream (forger);
  bt_expect_eos (consumer, BT_WAIT_MS);
  bt_stop (consumer);
  bt_forger_free (forger);
}
GST_END_TEST

/* Proves: names a producer sends are learned only up to a budget (GLib
 * never frees a GQuark, so a producer sending new names frame after frame
 * would grow the consumer without end), and serialized values that could
 * name new structures (caps) are not parsed; every frame still arrives. */
GST_START_TEST (test_peer_names_are_bounded)
{
  g_autofree gchar *channel = bt_channel_name ("peernames");
  GstElement *consumer;
  BtForger *forger = start_forged (channel, &consumer);
  g_autofree gchar *error = NULL;
  GstAppSink *out = GST_APP_SINK (bt_by_name (consumer, "out"));

  guint8 *data = g_malloc0 (FRAME_SIZE);
  const guint frames = 90, fields = 50;     /* 4500 new names > 4096 */
  for (guint k = 0; k < frames; k++) {
    g_autofree gchar *prefix = g_strdup_printf ("peer%ux", k);
    fail_unless (bt_forger_publish_fields (forger, data, FRAME_SIZE,
            "bips-peer-names", prefix, fields,
            k == 0 ? "video/x-bips-never-seen-before" : NULL, &error), "%s",
        error);
    GstSample *sample = gst_app_sink_try_pull_sample (out,
        BT_WAIT_MS * GST_MSECOND);
    fail_unless (sample != NULL, "frame %u did not arrive", k);
    GstCustomMeta *custom = gst_buffer_get_custom_meta (gst_sample_get_buffer
        (sample), "bips-peer-names");
    fail_unless (custom != NULL, "frame %u lost its custom meta", k);
    const GstStructure *st = gst_custom_meta_get_structure (custom);
    if (k == 0) {
      fail_unless_equals_int (gst_structure_n_fields (st), fields);
      fail_if (gst_structure_has_field (st, "caps"),
          "a peer's caps were parsed");
    }
    gst_sample_unref (sample);
  }
  g_free (data);
  fail_unless (g_quark_try_string ("peer0x0") != 0);
  fail_unless (g_quark_try_string ("x-bips-never-seen-before") == 0);
  fail_unless (g_quark_try_string ("video/x-bips-never-seen-before") == 0);
  g_autofree gchar *last = g_strdup_printf ("peer%ux%u", frames - 1,
      fields - 1);
  fail_unless (g_quark_try_string (last) == 0,
      "names past the budget were learned");

  bt_forger_end_of_stream (forger);
  bt_expect_eos (consumer, BT_WAIT_MS);
  bt_stop (consumer);
  bt_forger_free (forger);
}
GST_END_TEST

static Suite *
metas_suite (void)
{
  Suite *s = suite_create ("bips-metas");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_regions_and_custom_metas_travel);
  tcase_add_test (tc, test_too_much_metadata_is_a_clear_error);
  tcase_add_test (tc, test_peer_custom_metas);
  tcase_add_test (tc, test_peer_names_are_bounded);
  return s;
}

GST_CHECK_MAIN (metas)
