/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bipssink -> bipssrc between two pipelines of one process. */
#include "bipstest.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>

#include <string.h>

#define N_FRAMES 30
#define VIDEO_CAPS \
  "video/x-raw,format=RGBA,width=320,height=240,framerate=30/1"

/* What the tests remember of one received frame. */
typedef struct
{
  gchar *sha1;
  gchar *visible;               /* raw video: SHA-1 of the visible rows */
  guint32 index;                /* first 4 bytes (appsrc producers) */
  GstClockTime pts, dts, duration;
  GstBufferFlags flags;
  GstCaps *caps;
} Frame;

static void
frame_clear (gpointer p)
{
  Frame *f = p;
  g_free (f->sha1);
  g_free (f->visible);
  gst_caps_unref (f->caps);
}

typedef void (*SampleCheck) (GstSample *sample, guint n, gpointer data);

/* SHA-1 of the visible pixels of each plane, row by row, read through
 * GstVideoFrame (so through the GstVideoMeta if there is one): padding,
 * whose content nobody defines, is left out. NULL for non-video caps. */
static gchar *
visible_digest (GstBuffer *buf, GstCaps *caps)
{
  GstVideoInfo info;
  GstVideoFrame frame;
  if (!gst_video_info_from_caps (&info, caps))
    return NULL;
  fail_unless (gst_video_frame_map (&frame, &info, buf, GST_MAP_READ),
      "cannot map a frame with caps %" GST_PTR_FORMAT, caps);
  GChecksum *sum = g_checksum_new (G_CHECKSUM_SHA1);
  for (guint plane = 0; plane < GST_VIDEO_FRAME_N_PLANES (&frame); plane++) {
    gint comp[GST_VIDEO_MAX_COMPONENTS];
    gst_video_format_info_component (frame.info.finfo, plane, comp);
    gsize row_bytes = (gsize) GST_VIDEO_FRAME_COMP_WIDTH (&frame, comp[0]) *
        GST_VIDEO_FRAME_COMP_PSTRIDE (&frame, comp[0]);
    const guint8 *data = GST_VIDEO_FRAME_PLANE_DATA (&frame, plane);
    gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, plane);
    for (gint row = 0; row < GST_VIDEO_FRAME_COMP_HEIGHT (&frame, comp[0]);
        row++)
      g_checksum_update (sum, data + (gsize) row * stride, row_bytes);
  }
  gst_video_frame_unmap (&frame);
  gchar *hex = g_strdup (g_checksum_get_string (sum));
  g_checksum_free (sum);
  return hex;
}

/* Pulls every sample of @pipeline's appsink "out" up to EOS, calling
 * @check while the sample is held, and returns the frames. Each sample is
 * released before the next pull so no slot stays pinned. */
static GArray *
consume_all (GstElement *pipeline, SampleCheck check, gpointer data)
{
  GstAppSink *sink = GST_APP_SINK (bt_by_name (pipeline, "out"));
  GArray *frames = g_array_new (FALSE, TRUE, sizeof (Frame));
  g_array_set_clear_func (frames, frame_clear);

  for (;;) {
    GstSample *sample = gst_app_sink_try_pull_sample (sink,
        BT_WAIT_MS * GST_MSECOND);
    if (sample == NULL) {
      if (gst_app_sink_is_eos (sink))
        break;
      GstMessage *msg = bt_pop_message (pipeline, GST_MESSAGE_ERROR, 0);
      if (msg != NULL) {
        g_autoptr (GError) err = NULL;
        gst_message_parse_error (msg, &err, NULL);
        fail ("consumer error after %u frames: %s", frames->len,
            err->message);
      }
      fail ("no frame and no EOS within %d ms after %u frames", BT_WAIT_MS,
          frames->len);
    }
    GstBuffer *buf = gst_sample_get_buffer (sample);
    Frame f = { 0 };
    GstMapInfo map;
    fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
    f.sha1 = g_compute_checksum_for_data (G_CHECKSUM_SHA1, map.data, map.size);
    if (map.size >= 4)
      f.index = GST_READ_UINT32_LE (map.data);
    gst_buffer_unmap (buf, &map);
    f.pts = GST_BUFFER_PTS (buf);
    f.dts = GST_BUFFER_DTS (buf);
    f.duration = GST_BUFFER_DURATION (buf);
    f.flags = GST_BUFFER_FLAGS (buf);
    f.caps = gst_caps_ref (gst_sample_get_caps (sample));
    f.visible = visible_digest (buf, f.caps);
    if (check)
      check (sample, frames->len, data);
    g_array_append_val (frames, f);
    gst_sample_unref (sample);
  }
  bt_expect_eos (pipeline, BT_WAIT_MS);
  return frames;
}

static GArray *
reference_run (const gchar *pattern, const gchar *caps)
{
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc num-buffers=%d "
      "pattern=%s ! %s ! appsink name=out sync=false", N_FRAMES, pattern,
      caps);
  GstElement *p = bt_parse (desc);
  bt_set_state (p, GST_STATE_PLAYING);
  GArray *frames = consume_all (p, NULL, NULL);
  bt_set_state (p, GST_STATE_NULL);
  gst_object_unref (p);
  fail_unless_equals_int (frames->len, N_FRAMES);
  return frames;
}

static GstElement *
start_consumer (const gchar *channel, const gchar *extra)
{
  g_autofree gchar *desc = g_strdup_printf ("bipssrc name=src channel=%s "
      "timeout=%d %s ! appsink name=out sync=false", channel, BT_WAIT_MS,
      extra ? extra : "policy=lossless");
  GstElement *p = bt_parse (desc);
  bt_set_state (p, GST_STATE_PLAYING);
  return p;
}

/* A videotestsrc producer run with a consumer attached from the start;
 * returns the consumer's frames and, if asked, both base times. */
typedef struct
{
  GArray *frames;
  GstClockTime producer_base, consumer_base;
  gboolean same_clock;
  guint64 published, zero_copy, copied;
} VideoRun;

static VideoRun
video_run_with (const gchar *pattern, const gchar *caps, SampleCheck check,
    const gchar *channel, const gchar *consumer_props)
{
  VideoRun run = { 0 };
  GstElement *consumer = start_consumer (channel, consumer_props);
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc num-buffers=%d "
      "pattern=%s ! %s ! bipssink name=sink channel=%s "
      "wait-for-consumer=true sync=false", N_FRAMES, pattern, caps, channel);
  GstElement *producer = bt_parse (desc);
  bt_set_state (producer, GST_STATE_PLAYING);

  run.frames = consume_all (consumer, check, (gpointer) channel);
  bt_expect_eos (producer, BT_WAIT_MS);

  GstElement *sink = bt_by_name (producer, "sink");
  run.published = bt_stat_u64 (sink, "published");
  run.zero_copy = bt_stat_u64 (sink, "zero-copy");
  run.copied = bt_stat_u64 (sink, "copied");
  run.producer_base = gst_element_get_base_time (producer);
  run.consumer_base = gst_element_get_base_time (consumer);
  GstClock *pc = gst_element_get_clock (producer);
  GstClock *cc = gst_element_get_clock (consumer);
  run.same_clock = pc != NULL && pc == cc;
  gst_clear_object (&pc);
  gst_clear_object (&cc);

  bt_stop (producer);
  bt_stop (consumer);
  bt_remove_channel (channel);
  return run;
}

static VideoRun
video_run (const gchar *pattern, const gchar *caps, SampleCheck check,
    const gchar *channel)
{
  return video_run_with (pattern, caps, check, channel, NULL);
}

/* Proves: every videotestsrc frame arrives byte-identical, in order, with
 * the producer's caps, then EOS; videotestsrc wrote straight into the
 * proposed pool, so nothing was copied. */
GST_START_TEST (test_frames_identical)
{
  g_autofree gchar *channel = bt_channel_name ("identical");
  GArray *ref = reference_run ("ball", VIDEO_CAPS);
  VideoRun run = video_run ("ball", VIDEO_CAPS, NULL, channel);

  fail_unless_equals_int (run.frames->len, N_FRAMES);
  for (guint i = 0; i < N_FRAMES; i++) {
    Frame *want = &g_array_index (ref, Frame, i);
    Frame *got = &g_array_index (run.frames, Frame, i);
    fail_unless_equals_string (got->sha1, want->sha1);
    fail_unless (gst_caps_is_equal (got->caps, want->caps),
        "frame %u caps %" GST_PTR_FORMAT " != %" GST_PTR_FORMAT, i,
        got->caps, want->caps);
  }
  fail_unless_equals_uint64 (run.published, N_FRAMES);
  fail_unless_equals_uint64 (run.zero_copy + run.copied, N_FRAMES);
  fail_unless_equals_uint64 (run.zero_copy, N_FRAMES);
  g_array_unref (ref);
  g_array_unref (run.frames);
}
GST_END_TEST

/* Proves: planar and padded layouts (odd sizes, whose rows videotestsrc
 * pads to 4 bytes in the proposed pool) arrive with every visible pixel
 * identical, zero-copy. */
GST_START_TEST (test_formats_and_odd_sizes)
{
  static const gchar *const formats[] = {
    "video/x-raw,format=I420,width=322,height=242,framerate=30/1",
    "video/x-raw,format=NV12,width=320,height=240,framerate=30/1",
    "video/x-raw,format=GRAY8,width=321,height=241,framerate=30/1",
    "video/x-raw,format=YUY2,width=322,height=240,framerate=30/1",
    "video/x-raw,format=RGB,width=161,height=121,framerate=30/1",
  };
  for (guint k = 0; k < G_N_ELEMENTS (formats); k++) {
    g_autofree gchar *channel = bt_channel_name ("formats");
    GArray *ref = reference_run ("ball", formats[k]);
    VideoRun run = video_run ("ball", formats[k], NULL, channel);
    fail_unless_equals_int (run.frames->len, N_FRAMES);
    for (guint i = 0; i < N_FRAMES; i++) {
      Frame *want = &g_array_index (ref, Frame, i);
      Frame *got = &g_array_index (run.frames, Frame, i);
      fail_unless (gst_caps_is_equal (got->caps, want->caps),
          "%s frame %u caps %" GST_PTR_FORMAT, formats[k], i, got->caps);
      fail_unless (g_strcmp0 (got->visible, want->visible) == 0,
          "%s: frame %u pixels differ", formats[k], i);
    }
    fail_unless_equals_uint64 (run.zero_copy, N_FRAMES);
    g_array_unref (ref);
    g_array_unref (run.frames);
  }
}
GST_END_TEST

/* Proves: PTS cross as absolute clock times: the consumer's PTS is the
 * producer's running time shifted by the difference of the base times,
 * so they are monotonic with spacing == duration. */
GST_START_TEST (test_timestamps_mapped)
{
  g_autofree gchar *channel = bt_channel_name ("timestamps");
  GArray *ref = reference_run ("smpte", VIDEO_CAPS);
  VideoRun run = video_run ("smpte", VIDEO_CAPS, NULL, channel);

  fail_unless_equals_int (run.frames->len, N_FRAMES);
  for (guint i = 0; i < N_FRAMES; i++) {
    Frame *want = &g_array_index (ref, Frame, i);
    Frame *got = &g_array_index (run.frames, Frame, i);
    fail_unless (GST_CLOCK_TIME_IS_VALID (got->pts), "frame %u has no PTS", i);
    fail_unless_equals_clocktime (got->duration, want->duration);
    if (i > 0) {
      Frame *prev = &g_array_index (run.frames, Frame, i - 1);
      fail_unless (got->pts > prev->pts, "PTS not increasing at frame %u", i);
      fail_unless_equals_clocktime (got->pts - prev->pts, prev->duration);
    }
    if (run.same_clock) {
      GstClockTime expected =
          want->pts + run.producer_base - run.consumer_base;
      fail_unless_equals_clocktime (got->pts, expected);
    }
  }
  fail_unless (run.same_clock, "pipelines ran on different clocks");
  g_array_unref (ref);
  g_array_unref (run.frames);
}
GST_END_TEST

/* Proves: a consumer that starts after the producer stamped its first
 * frame (the producer waits for it) still gets a PTS on every frame, the
 * first no earlier than its own start and the rest spaced by duration. */
GST_START_TEST (test_timestamps_late_consumer)
{
  g_autofree gchar *channel = bt_channel_name ("late-ts");
  g_autofree gchar *desc = g_strdup_printf ("videotestsrc num-buffers=%d "
      "pattern=smpte ! %s ! bipssink name=sink channel=%s "
      "wait-for-consumer=true sync=false", N_FRAMES, VIDEO_CAPS, channel);
  GstElement *producer = bt_parse (desc);
  bt_set_state (producer, GST_STATE_PLAYING);
  /* Its base time is fixed once it is PLAYING; frame 0 is then stamped
   * and waits for a consumer. */
  fail_unless_equals_int (gst_element_get_state (producer, NULL, NULL,
          BT_WAIT_MS * GST_MSECOND), GST_STATE_CHANGE_SUCCESS);
  g_usleep (100 * 1000);
  GstElement *consumer = start_consumer (channel, NULL);
  GArray *frames = consume_all (consumer, NULL, NULL);
  bt_expect_eos (producer, BT_WAIT_MS);

  fail_unless_equals_int (frames->len, N_FRAMES);
  for (guint i = 0; i < N_FRAMES; i++) {
    Frame *got = &g_array_index (frames, Frame, i);
    fail_unless (GST_CLOCK_TIME_IS_VALID (got->pts), "frame %u has no PTS", i);
    if (i > 0) {
      Frame *prev = &g_array_index (frames, Frame, i - 1);
      fail_unless_equals_clocktime (got->pts - prev->pts, prev->duration);
    }
  }
  /* Frame 0 was stamped 100 ms before the consumer's base time; without
   * the shift it would map before zero. */
  GstClockTime first = g_array_index (frames, Frame, 0).pts;
  GstClockTime gap = gst_element_get_base_time (consumer) -
      gst_element_get_base_time (producer);
  fail_unless (gap >= 100 * GST_MSECOND, "consumer base only %"
      GST_TIME_FORMAT " after the producer's", GST_TIME_ARGS (gap));
  fail_unless (first < 10 * GST_SECOND, "first PTS %" GST_TIME_FORMAT
      " is not a running time", GST_TIME_ARGS (first));
  g_array_unref (frames);
  bt_stop (producer);
  bt_stop (consumer);
  bt_remove_channel (channel);
}
GST_END_TEST

static void
check_readonly_slot (GstSample *sample, guint n, gpointer data)
{
  const gchar *channel = data;
  GstBuffer *buf = gst_sample_get_buffer (sample);
  gchar perms[5];
  GstMapInfo map;

  if (n >= 5)
    return;
  fail_unless_equals_int (gst_buffer_n_memory (buf), 1);
  GstMemory *mem = gst_buffer_peek_memory (buf, 0);
  fail_unless (gst_memory_is_type (mem, "bips"), "frame %u memory is %s", n,
      mem->allocator ? mem->allocator->mem_type : "(none)");
  fail_unless (GST_MEMORY_IS_READONLY (mem), "frame %u memory is writable", n);
  fail_if (gst_memory_map (mem, &map, GST_MAP_WRITE),
      "frame %u memory maps for writing", n);
  fail_unless (gst_memory_map (mem, &map, GST_MAP_READ));
  BtMemfdId id;
  fail_unless (bt_find_channel_mapping (map.data, channel, &id, perms),
      "frame %u data %p is not in a mapping of /memfd:bips-%s (a copy?)", n,
      map.data, channel);
  fail_unless (perms[1] == '-' && perms[3] == 's',
      "consumer mapping is %s, expected read-only shared", perms);
  gst_memory_unmap (mem, &map);
}

/* Proves: bipssrc hands out the slot itself: one "bips" memory, read-only,
 * whose bytes lie in a read-only shared mapping of the channel's memfd. */
GST_START_TEST (test_consumer_memory_is_slot)
{
  g_autofree gchar *channel = bt_channel_name ("readonly");
  /* appsink queues every frame until it is pulled: no hold limit here, so
   * that the first frames are surely slots, not copies. */
  VideoRun run = video_run_with ("ball", VIDEO_CAPS, check_readonly_slot,
      channel, "policy=lossless max-held=1000");
  fail_unless_equals_int (run.frames->len, N_FRAMES);
  g_array_unref (run.frames);
}
GST_END_TEST

/* An appsrc producer whose buffers the tests build by hand. */
static GstElement *
start_appsrc_producer (const gchar *channel, const gchar *sink_props)
{
  g_autofree gchar *desc = g_strdup_printf ("appsrc name=in format=time ! "
      "bipssink name=sink channel=%s sync=false %s", channel,
      sink_props ? sink_props : "wait-for-consumer=true");
  GstElement *p = bt_parse (desc);
  bt_set_state (p, GST_STATE_PLAYING);
  return p;
}

/* A frame of @size bytes: index in the first 4 bytes, then a pattern. */
static GstBuffer *
indexed_buffer (guint index, gsize size)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, size, NULL);
  GstMapInfo map;
  fail_unless (gst_buffer_map (buf, &map, GST_MAP_WRITE));
  for (gsize i = 0; i < size; i++)
    map.data[i] = bt_pattern_byte (index, (guint) (i / 1024), (guint) i);
  GST_WRITE_UINT32_LE (map.data, index);
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = index * GST_SECOND / 30;
  GST_BUFFER_DURATION (buf) = GST_SECOND / 30;
  return buf;
}

static void
push_sample (GstElement *producer, GstBuffer *buf, GstCaps *caps)
{
  GstSample *sample = gst_sample_new (buf, caps, NULL, NULL);
  fail_unless_equals_int (gst_app_src_push_sample (GST_APP_SRC (bt_by_name
              (producer, "in")), sample), GST_FLOW_OK);
  gst_sample_unref (sample);
  gst_buffer_unref (buf);
}

static void
end_stream (GstElement *producer)
{
  gst_app_src_end_of_stream (GST_APP_SRC (bt_by_name (producer, "in")));
}

#define META_W 64
#define META_H 16
#define META_STRIDE (META_W * 4 + 64)
#define META_OFFSET 128
#define META_SIZE (META_OFFSET + META_STRIDE * META_H)
#define META_FRAMES 6

static void
check_padded_frame (GstSample *sample, guint n, gpointer data)
{
  GstBuffer *buf = gst_sample_get_buffer (sample);
  GstVideoMeta *meta = gst_buffer_get_video_meta (buf);
  GstVideoInfo info;
  GstVideoFrame frame;
  (void) data;

  fail_unless (meta != NULL, "frame %u lost its GstVideoMeta", n);
  fail_unless_equals_int (meta->format, GST_VIDEO_FORMAT_RGBA);
  fail_unless_equals_int (meta->width, META_W);
  fail_unless_equals_int (meta->height, META_H);
  fail_unless_equals_int (meta->n_planes, 1);
  fail_unless_equals_int (meta->stride[0], META_STRIDE);
  fail_unless_equals_uint64 (meta->offset[0], META_OFFSET);

  fail_unless (gst_video_info_from_caps (&info, gst_sample_get_caps (sample)));
  fail_unless (gst_video_frame_map (&frame, &info, buf, GST_MAP_READ));
  fail_unless_equals_int (GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0),
      META_STRIDE);
  for (guint row = 0; row < META_H; row++) {
    const guint8 *line = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame,
        0) + row * META_STRIDE;
    for (guint col = 0; col < META_W * 4; col++)
      fail_unless (line[col] == bt_pattern_byte (n, row, col),
          "frame %u row %u byte %u differs", n, row, col);
  }
  gst_video_frame_unmap (&frame);
}

/* Proves: GstVideoMeta with a padded stride and a plane offset survives the
 * channel (with the pixel rows where the meta says), and so do DTS,
 * duration and buffer flags. */
GST_START_TEST (test_video_meta_and_flags)
{
  g_autofree gchar *channel = bt_channel_name ("meta");
  GstElement *consumer = start_consumer (channel, NULL);
  GstElement *producer = start_appsrc_producer (channel,
      "wait-for-consumer=true slot-size=65536");
  GstCaps *caps = gst_caps_new_simple ("video/x-raw",
      "format", G_TYPE_STRING, "RGBA", "width", G_TYPE_INT, META_W,
      "height", G_TYPE_INT, META_H, "framerate", GST_TYPE_FRACTION, 30, 1,
      NULL);
  gsize offsets[GST_VIDEO_MAX_PLANES] = { META_OFFSET };
  gint strides[GST_VIDEO_MAX_PLANES] = { META_STRIDE };

  for (guint i = 0; i < META_FRAMES; i++) {
    GstBuffer *buf = gst_buffer_new_allocate (NULL, META_SIZE, NULL);
    GstMapInfo map;
    fail_unless (gst_buffer_map (buf, &map, GST_MAP_WRITE));
    memset (map.data, 0xee, map.size);
    for (guint row = 0; row < META_H; row++)
      for (guint col = 0; col < META_W * 4; col++)
        map.data[META_OFFSET + row * META_STRIDE + col] =
            bt_pattern_byte (i, row, col);
    gst_buffer_unmap (buf, &map);
    gst_buffer_add_video_meta_full (buf, GST_VIDEO_FRAME_FLAG_NONE,
        GST_VIDEO_FORMAT_RGBA, META_W, META_H, 1, offsets, strides);
    GST_BUFFER_PTS (buf) = 100 * GST_MSECOND + i * GST_SECOND / 30;
    GST_BUFFER_DTS (buf) = GST_BUFFER_PTS (buf) - 10 * GST_MSECOND;
    GST_BUFFER_DURATION (buf) = GST_SECOND / 30;
    if (i % 2)
      GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
    if (i % 3 == 0)
      GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DROPPABLE);
    push_sample (producer, buf, caps);
  }
  end_stream (producer);

  GArray *frames = consume_all (consumer, check_padded_frame, NULL);
  fail_unless_equals_int (frames->len, META_FRAMES);
  for (guint i = 0; i < META_FRAMES; i++) {
    Frame *f = &g_array_index (frames, Frame, i);
    fail_unless (GST_CLOCK_TIME_IS_VALID (f->dts), "frame %u lost DTS", i);
    fail_unless_equals_int64 ((gint64) f->pts - (gint64) f->dts,
        10 * GST_MSECOND);
    fail_unless_equals_clocktime (f->duration, GST_SECOND / 30);
    fail_unless_equals_int ((f->flags & GST_BUFFER_FLAG_DELTA_UNIT) != 0,
        i % 2 == 1);
    fail_unless_equals_int ((f->flags & GST_BUFFER_FLAG_DROPPABLE) != 0,
        i % 3 == 0);
  }
  bt_expect_eos (producer, BT_WAIT_MS);
  g_array_unref (frames);
  gst_caps_unref (caps);
  bt_stop (producer);
  bt_stop (consumer);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: a caps change mid-stream (320x240 -> 640x480, larger than the
 * slots sized from the first caps) reaches the consumer exactly at the
 * first frame of the new size, with every frame intact. */
GST_START_TEST (test_caps_change)
{
  g_autofree gchar *channel = bt_channel_name ("capschange");
  GstElement *consumer = start_consumer (channel, NULL);
  GstElement *producer = start_appsrc_producer (channel, NULL);
  GstCaps *small = gst_caps_from_string (VIDEO_CAPS);
  GstCaps *large = gst_caps_from_string
      ("video/x-raw,format=RGBA,width=640,height=480,framerate=30/1");
  const guint n = 8, switch_at = 4;
  gchar *sha[8];

  for (guint i = 0; i < n; i++) {
    gsize size = i < switch_at ? 320 * 240 * 4 : 640 * 480 * 4;
    GstBuffer *buf = indexed_buffer (i, size);
    GstMapInfo map;
    fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
    sha[i] = g_compute_checksum_for_data (G_CHECKSUM_SHA1, map.data,
        map.size);
    gst_buffer_unmap (buf, &map);
    push_sample (producer, buf, i < switch_at ? small : large);
  }
  end_stream (producer);

  GArray *frames = consume_all (consumer, NULL, NULL);
  fail_unless_equals_int (frames->len, n);
  for (guint i = 0; i < n; i++) {
    Frame *f = &g_array_index (frames, Frame, i);
    GstCaps *want = i < switch_at ? small : large;
    fail_unless_equals_int (f->index, i);
    fail_unless (gst_caps_is_subset (f->caps, want),
        "frame %u has caps %" GST_PTR_FORMAT ", expected %" GST_PTR_FORMAT,
        i, f->caps, want);
    fail_unless_equals_string (f->sha1, sha[i]);
  }
  bt_expect_eos (producer, BT_WAIT_MS);
  for (guint i = 0; i < n; i++)
    g_free (sha[i]);
  g_array_unref (frames);
  gst_caps_unref (small);
  gst_caps_unref (large);
  bt_stop (producer);
  bt_stop (consumer);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Pushes buffers of @sizes (indexed_buffer) with @caps, then EOS; fills
 * @sha with the SHA-1 of each (the caller frees them). */
static void
push_indexed (GstElement *producer, const gsize *sizes, guint n, GstCaps *caps,
    gchar **sha)
{
  for (guint i = 0; i < n; i++) {
    GstBuffer *buf = indexed_buffer (i, sizes[i]);
    GstMapInfo map;
    fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
    sha[i] = g_compute_checksum_for_data (G_CHECKSUM_SHA1, map.data,
        map.size);
    gst_buffer_unmap (buf, &map);
    push_sample (producer, buf, caps);
  }
  end_stream (producer);
}

/* Proves: caps are ANY: a non-video stream with an explicit slot-size
 * crosses with its caps and every frame's own size and bytes. */
GST_START_TEST (test_non_video_caps)
{
  g_autofree gchar *channel = bt_channel_name ("nonvideo");
  static const gsize sizes[] = { 4, 100, 1000, 4096, 8000, 17 };
  GstElement *consumer = start_consumer (channel, NULL);
  GstElement *producer = start_appsrc_producer (channel,
      "wait-for-consumer=true slot-size=8192");
  GstCaps *caps = gst_caps_from_string ("application/x-bips-test,answer=42");
  gchar *sha[G_N_ELEMENTS (sizes)];

  push_indexed (producer, sizes, G_N_ELEMENTS (sizes), caps, sha);

  GArray *frames = consume_all (consumer, NULL, NULL);
  fail_unless_equals_int (frames->len, G_N_ELEMENTS (sizes));
  for (guint i = 0; i < frames->len; i++) {
    Frame *f = &g_array_index (frames, Frame, i);
    fail_unless (gst_caps_is_equal (f->caps, caps), "caps %" GST_PTR_FORMAT,
        f->caps);
    fail_unless_equals_string (f->sha1, sha[i]);
    g_free (sha[i]);
  }
  bt_expect_eos (producer, BT_WAIT_MS);
  g_array_unref (frames);
  gst_caps_unref (caps);
  bt_stop (producer);
  bt_stop (consumer);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: without slot-size any caps work and a buffer bigger than the
 * slots never ends the stream: the channel grows (counted in `grown`) and
 * the lossless consumer follows, losing nothing. JPEG-like and raw audio
 * caps, buffers of 1 KiB, then 100 KiB, then 3 MiB, then 1 KiB again. */
static void
check_growth (const gchar *caps_text)
{
  g_autofree gchar *channel = bt_channel_name ("grow");
  static const gsize sizes[] = { 1024, 1024, 100 * 1024, 100 * 1024,
    100 * 1024, 3 << 20, 3 << 20, 3 << 20, 1024, 1024
  };
  GstElement *consumer = start_consumer (channel, NULL);
  GstElement *producer = start_appsrc_producer (channel,
      "wait-for-consumer=true");
  GstCaps *caps = gst_caps_from_string (caps_text);
  gchar *sha[G_N_ELEMENTS (sizes)];

  push_indexed (producer, sizes, G_N_ELEMENTS (sizes), caps, sha);

  GArray *frames = consume_all (consumer, NULL, NULL);
  bt_expect_eos (producer, BT_WAIT_MS);
  GstElement *sink = bt_by_name (producer, "sink");
  g_print ("%s: %u of %u buffers byte-exact after growing %" G_GUINT64_FORMAT
      " times to %" G_GUINT64_FORMAT "-byte slots\n", caps_text, frames->len,
      (guint) G_N_ELEMENTS (sizes), bt_stat_u64 (sink, "grown"),
      bt_stat_u64 (sink, "slot-size"));
  fail_unless_equals_int (frames->len, G_N_ELEMENTS (sizes));
  for (guint i = 0; i < frames->len; i++) {
    Frame *f = &g_array_index (frames, Frame, i);
    fail_unless_equals_string (f->sha1, sha[i]);
    g_free (sha[i]);
  }
  fail_unless (bt_stat_u64 (sink, "grown") >= 2, "the channel never grew");
  fail_unless (bt_stat_u64 (sink, "slot-size") >= (3 << 20));
  g_array_unref (frames);
  gst_caps_unref (caps);
  bt_stop (producer);
  bt_stop (consumer);
  bt_remove_channel (channel);
}

GST_START_TEST (test_buffers_grow_the_channel)
{
  check_growth ("image/jpeg,width=64,height=64,framerate=30/1");
  check_growth ("audio/x-raw,format=S16LE,rate=8000,channels=1,"
      "layout=interleaved");
}
GST_END_TEST

/* Proves: buffer offsets travel with every stream: raw audio's sample
 * counts arrive as audiotestsrc set them (they arrived as -1 before). */
GST_START_TEST (test_offsets_travel)
{
  g_autofree gchar *channel = bt_channel_name ("offsets");
  GstElement *consumer = start_consumer (channel, NULL);
  g_autofree gchar *desc = g_strdup_printf ("audiotestsrc num-buffers=10 "
      "samplesperbuffer=480 ! audio/x-raw,format=S16LE,rate=48000,channels=1 "
      "! bipssink channel=%s wait-for-consumer=true sync=false", channel);
  GstElement *producer = bt_start (desc);
  GstAppSink *out = GST_APP_SINK (bt_by_name (consumer, "out"));
  for (guint i = 0; i < 10; i++) {
    GstSample *sample = gst_app_sink_try_pull_sample (out,
        BT_WAIT_MS * GST_MSECOND);
    fail_unless (sample != NULL, "no buffer %u", i);
    GstBuffer *buf = gst_sample_get_buffer (sample);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (buf), i * 480);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET_END (buf), (i + 1) * 480);
    gst_sample_unref (sample);
  }
  bt_expect_eos (producer, BT_WAIT_MS);
  bt_stop (producer);
  bt_stop (consumer);
  bt_remove_channel (channel);
}
GST_END_TEST

/* Proves: on one channel a lossless consumer gets every frame while a
 * latest consumer whose downstream holds its buffers neither wedges the
 * producer nor gets everything; its `skipped` covers the gaps it saw. */
GST_START_TEST (test_two_policies)
{
  g_autofree gchar *channel = bt_channel_name ("policies");
  const guint n = 40;
  GstElement *lossless = start_consumer (channel, "policy=lossless");
  /* max-buffers=1 drop=false: its streaming thread blocks while the test
   * does not pull, holding frames. */
  g_autofree gchar *desc = g_strdup_printf ("bipssrc name=src channel=%s "
      "timeout=%d policy=latest ! appsink name=out sync=false max-buffers=1 "
      "drop=false", channel, BT_WAIT_MS);
  GstElement *latest = bt_parse (desc);
  bt_set_state (latest, GST_STATE_PLAYING);
  GstElement *producer = start_appsrc_producer (channel,
      "wait-for-consumer=true slots=4");
  GstElement *sink = bt_by_name (producer, "sink");
  GstCaps *caps = gst_caps_from_string (VIDEO_CAPS);

  /* The first frame creates the channel; wait for both readers after it. */
  push_sample (producer, indexed_buffer (0, 320 * 240 * 4), caps);
  guint consumers = bt_wait_uint_property (sink, "consumers", 2, BT_WAIT_MS);
  fail_unless_equals_int (consumers, 2);
  for (guint i = 1; i < n; i++)
    push_sample (producer, indexed_buffer (i, 320 * 240 * 4), caps);
  end_stream (producer);

  /* Frame 0 was published once one reader was there: the lossless one may
   * have attached just after it. Every later frame must be there. */
  GArray *all = consume_all (lossless, NULL, NULL);
  fail_unless (all->len == n || all->len == n - 1,
      "lossless consumer got %u of %u frames", all->len, n);
  for (guint i = 0; i < all->len; i++)
    fail_unless_equals_int (g_array_index (all, Frame, i).index,
        i + n - all->len);
  bt_expect_eos (producer, BT_WAIT_MS);
  GstElement *lsrc = bt_by_name (lossless, "src");
  fail_unless_equals_uint64 (bt_stat_u64 (lsrc, "received"), all->len);
  fail_unless_equals_uint64 (bt_stat_u64 (lsrc, "skipped"), 0);

  GArray *some = consume_all (latest, NULL, NULL);
  GstElement *src = bt_by_name (latest, "src");
  guint64 received = bt_stat_u64 (src, "received");
  guint64 skipped = bt_stat_u64 (src, "skipped");
  guint64 gaps = 0;
  GST_INFO ("latest consumer: %u frames, received %" G_GUINT64_FORMAT
      ", skipped %" G_GUINT64_FORMAT, some->len, received, skipped);
  fail_unless (some->len >= 1 && some->len < n,
      "latest consumer got %u of %u frames", some->len, n);
  fail_unless_equals_uint64 (received, some->len);
  for (guint i = 1; i < some->len; i++) {
    guint32 a = g_array_index (some, Frame, i - 1).index;
    guint32 b = g_array_index (some, Frame, i).index;
    fail_unless (b > a, "latest consumer went back from %u to %u", a, b);
    gaps += b - a - 1;
  }
  fail_unless (skipped >= gaps, "skipped %" G_GUINT64_FORMAT " < gaps %"
      G_GUINT64_FORMAT, skipped, gaps);
  fail_unless (received + skipped <= n, "received %" G_GUINT64_FORMAT
      " + skipped %" G_GUINT64_FORMAT " > %u published", received, skipped, n);

  g_array_unref (all);
  g_array_unref (some);
  gst_caps_unref (caps);
  bt_stop (producer);
  bt_stop (lossless);
  bt_stop (latest);
  bt_remove_channel (channel);
}
GST_END_TEST

static Suite *
pipelines_suite (void)
{
  Suite *s = suite_create ("bips-pipelines");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 150);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_frames_identical);
  tcase_add_test (tc, test_formats_and_odd_sizes);
  tcase_add_test (tc, test_timestamps_mapped);
  tcase_add_test (tc, test_timestamps_late_consumer);
  tcase_add_test (tc, test_consumer_memory_is_slot);
  tcase_add_test (tc, test_video_meta_and_flags);
  tcase_add_test (tc, test_caps_change);
  tcase_add_test (tc, test_non_video_caps);
  tcase_add_test (tc, test_offsets_travel);
  tcase_add_test (tc, test_buffers_grow_the_channel);
  tcase_add_test (tc, test_two_policies);
  return s;
}

GST_CHECK_MAIN (pipelines)
