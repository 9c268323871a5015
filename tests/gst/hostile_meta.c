/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bipssrc against a producer that lies in its per-frame metadata. */
#include "bipstest.h"
#include "forger.h"

#include <gst/video/video.h>

#include <string.h>

#define W 64
#define H 48
#define ROW (W * 4)
#define FRAME_SIZE (ROW * H)
#define SLOT_SIZE 16384
#define CAPS "video/x-raw,format=RGBA,width=64,height=48,framerate=30/1"
/* A padded layout that fits a slot: 64 bytes of padding per row. */
#define PAD_OFFSET 128
#define PAD_STRIDE (ROW + 64)
#define PAD_SIZE (PAD_OFFSET + PAD_STRIDE * H)

/* What reached the fakesink. */
typedef struct
{
  GMutex lock;
  GArray *values;               /* guint8: the value of each frame's pixels */
  guint mixed;                  /* frames whose pixels were not all equal */
  guint with_meta;              /* buffers that carried a GstVideoMeta */
  GPtrArray *drops;             /* bipssrc's "dropping frame" warnings */
} Seen;

static Seen seen;

static void
seen_init (void)
{
  g_mutex_init (&seen.lock);
  seen.values = g_array_new (FALSE, FALSE, sizeof (guint8));
  seen.drops = g_ptr_array_new_with_free_func (g_free);
  seen.mixed = 0;
  seen.with_meta = 0;
}

static void
seen_clear (void)
{
  g_array_unref (seen.values);
  g_ptr_array_unref (seen.drops);
  g_mutex_clear (&seen.lock);
}

/* fakesink's handoff: reads every visible pixel through GstVideoFrame (so
 * through the video meta, if any) and records their common value. */
static void
on_handoff (GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer data)
{
  (void) sink;
  (void) data;
  GstCaps *caps = gst_pad_get_current_caps (pad);
  GstVideoInfo info;
  GstVideoFrame frame;
  fail_unless (caps != NULL && gst_video_info_from_caps (&info, caps));
  gst_caps_unref (caps);
  fail_unless (gst_video_frame_map (&frame, &info, buf, GST_MAP_READ));
  const guint8 *p = GST_VIDEO_FRAME_PLANE_DATA (&frame, 0);
  const gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
  const gsize row = (gsize) GST_VIDEO_FRAME_WIDTH (&frame) *
      GST_VIDEO_FRAME_COMP_PSTRIDE (&frame, 0);
  guint8 value = p[0];
  gboolean uniform = TRUE;
  for (gint y = 0; y < GST_VIDEO_FRAME_HEIGHT (&frame); y++)
    for (gsize x = 0; x < row; x++)
      uniform = uniform && p[(gsize) y * stride + x] == value;
  gst_video_frame_unmap (&frame);

  g_mutex_lock (&seen.lock);
  g_array_append_val (seen.values, value);
  if (!uniform)
    seen.mixed++;
  if (gst_buffer_get_video_meta (buf) != NULL)
    seen.with_meta++;
  g_mutex_unlock (&seen.lock);
}

static void
capture_drops (GstDebugCategory *category, GstDebugLevel level,
    const gchar *file, const gchar *function, gint line, GObject *object,
    GstDebugMessage *message, gpointer data)
{
  (void) file;
  (void) function;
  (void) line;
  (void) object;
  (void) data;
  if (level != GST_LEVEL_WARNING
      || strcmp (gst_debug_category_get_name (category), "bipssrc") != 0)
    return;
  const gchar *text = gst_debug_message_get (message);
  if (text == NULL || !g_str_has_prefix (text, "dropping frame"))
    return;
  g_mutex_lock (&seen.lock);
  g_ptr_array_add (seen.drops, g_strdup (text));
  g_mutex_unlock (&seen.lock);
}

/* A frame of @size bytes: all @value, or with @rows_of, 0xee everywhere
 * but in the rows of plane 0 that @rows_of (a valid RGBA meta) describes. */
static guint8 *
make_frame (gsize size, guint8 value, const BtForgedVideoMeta *rows_of)
{
  guint8 *data = g_malloc (size);
  if (rows_of == NULL) {
    memset (data, value, size);
    return data;
  }
  memset (data, 0xee, size);
  for (guint y = 0; y < rows_of->height; y++) {
    gsize at = (gsize) rows_of->offset[0] + (gsize) y * rows_of->stride[0];
    fail_unless (at + ROW <= size);
    memset (data + at, value, ROW);
  }
  return data;
}

/* Publishes a frame of @size bytes filled with @value (only in the rows
 * of @meta if @by_rows) whose metadata is @meta. */
static void
publish (BtForger *forger, gsize size, guint8 value,
    const BtForgedVideoMeta *meta, gboolean by_rows)
{
  g_autofree gchar *error = NULL;
  g_autofree guint8 *data = make_frame (size, value, by_rows ? meta : NULL);
  fail_unless (bt_forger_publish (forger, data, size, meta, &error),
      "publishing frame %u: %s", value, error);
}

static void
publish_blob (BtForger *forger, gsize size, guint8 value, const guint8 *blob,
    gsize blob_size)
{
  g_autofree gchar *error = NULL;
  g_autofree guint8 *data = make_frame (size, value, NULL);
  fail_unless (bt_forger_publish_blob (forger, data, size, blob, blob_size,
          &error), "publishing frame %u: %s", value, error);
}

static BtForgedVideoMeta
rgba_meta (guint64 offset, gint32 stride)
{
  BtForgedVideoMeta m = { "RGBA", 0, W, H, 1, {offset}, {stride} };
  return m;
}

/* Starts `bipssrc ! videoconvert ! (a real conversion) ! fakesink` on
 * @channel with the handoff and log capture installed. */
static GstElement *
start_consumer (const gchar *channel, const gchar *convert_to)
{
  g_autofree gchar *desc = g_strdup_printf ("bipssrc name=src channel=%s "
      "timeout=%d policy=lossless ! videoconvert ! %s ! fakesink name=out "
      "sync=false signal-handoffs=true", channel, BT_WAIT_MS, convert_to);
  GstElement *consumer = bt_parse (desc);
  g_signal_connect (bt_by_name (consumer, "out"), "handoff",
      G_CALLBACK (on_handoff), NULL);
  bt_set_state (consumer, GST_STATE_PLAYING);
  return consumer;
}

static void
expect_drop (guint i, const gchar *needle)
{
  fail_unless (i < seen.drops->len, "only %u drop warnings", seen.drops->len);
  const gchar *text = g_ptr_array_index (seen.drops, i);
  fail_unless (strstr (text, needle) != NULL,
      "drop warning %u does not say '%s': %s", i, needle, text);
}

/* Proves: frames whose video meta does not fit them (a stride beyond all
 * reason, an offset past the end, the wrong plane count, a last row past
 * the end, strides shorter than a row or negative, offsets that overflow,
 * another format or a smaller size than the caps, an unknown format) and
 * frames without a usable meta that are smaller than their caps say are
 * dropped by bipssrc with a warning naming the problem, counted in stats
 * (rejected), and never reach videoconvert; the good frames around them
 * arrive with every pixel where their meta says, and a blob that is not
 * bipssink's is ignored when the frame holds the caps' layout. */
GST_START_TEST (test_forged_video_meta)
{
  g_autofree gchar *channel = bt_channel_name ("forged");
  seen_init ();
  gst_debug_set_active (TRUE);
  gst_debug_set_threshold_for_name ("bipssrc", GST_LEVEL_WARNING);
  gst_debug_add_log_function (capture_drops, NULL, NULL);

  GstElement *consumer = start_consumer (channel, "video/x-raw,format=BGRA");
  g_autofree gchar *error = NULL;
  BtForger *forger = bt_forger_new (channel, SLOT_SIZE, CAPS, &error);
  fail_unless (forger != NULL, "cannot create the producer: %s", error);
  fail_unless (bt_forger_wait_consumers (forger, 1, BT_WAIT_MS),
      "bipssrc did not attach");

  BtForgedVideoMeta padded = rgba_meta (PAD_OFFSET, PAD_STRIDE);
  BtForgedVideoMeta plain = rgba_meta (0, ROW);
  BtForgedVideoMeta huge_stride = rgba_meta (0, G_MAXINT32);
  BtForgedVideoMeta offset_past_end = rgba_meta (G_GUINT64_CONSTANT (1) << 40,
      ROW);
  BtForgedVideoMeta two_planes = rgba_meta (0, ROW);
  two_planes.n_planes = 2;
  two_planes.stride[1] = ROW;
  BtForgedVideoMeta last_row_out = rgba_meta (PAD_OFFSET, ROW);
  BtForgedVideoMeta short_stride = rgba_meta (0, 100);
  BtForgedVideoMeta negative_stride = rgba_meta (FRAME_SIZE - ROW, -ROW);
  BtForgedVideoMeta overflow = rgba_meta (G_MAXUINT64 - 10, ROW);
  BtForgedVideoMeta other_format = { "I420", 0, W, H, 3,
    {0, W * H, W * H + W * H / 4}, {W, W / 2, W / 2}
  };
  BtForgedVideoMeta unknown_format = rgba_meta (0, ROW);
  unknown_format.format = "NOTAFORMAT";
  BtForgedVideoMeta narrow = rgba_meta (0, ROW);
  narrow.width = W / 2;
  static const guint8 foreign_blob[16] = { 'X', 'X', 'X', 'X', 1, 0, 0, 0 };

  publish (forger, PAD_SIZE, 10, &padded, TRUE);        /* good, padded */
  publish (forger, FRAME_SIZE, 11, &huge_stride, FALSE);
  publish (forger, FRAME_SIZE, 12, &offset_past_end, FALSE);
  publish (forger, FRAME_SIZE, 13, &two_planes, FALSE);
  publish (forger, FRAME_SIZE, 14, &last_row_out, FALSE);
  publish (forger, FRAME_SIZE, 15, &short_stride, FALSE);
  publish (forger, FRAME_SIZE, 16, &negative_stride, FALSE);
  publish (forger, FRAME_SIZE, 17, &overflow, FALSE);
  publish (forger, FRAME_SIZE, 18, &other_format, FALSE);
  publish (forger, FRAME_SIZE, 19, &unknown_format, FALSE);
  publish (forger, FRAME_SIZE, 20, &narrow, FALSE);
  publish (forger, FRAME_SIZE, 21, NULL, FALSE);       /* good, no meta */
  publish (forger, 1000, 22, NULL, FALSE);     /* too small for the caps */
  publish_blob (forger, FRAME_SIZE, 23, foreign_blob, sizeof foreign_blob);
  publish_blob (forger, 1000, 24, foreign_blob, sizeof foreign_blob);
  publish (forger, FRAME_SIZE, 25, &plain, FALSE);     /* good, plain meta */
  bt_forger_end_of_stream (forger);

  /* Up to EOS, keeping the warnings (bt_expect_eos drops them). */
  GstMessage *warning = NULL;
  for (;;) {
    GstMessage *msg = bt_pop_message (consumer, GST_MESSAGE_EOS |
        GST_MESSAGE_ERROR | GST_MESSAGE_WARNING, BT_WAIT_MS);
    fail_unless (msg != NULL, "no EOS within %d ms", BT_WAIT_MS);
    fail_if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR,
        "error message: %" GST_PTR_FORMAT, msg);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
      gst_message_unref (msg);
      break;
    }
    fail_unless (warning == NULL, "a second warning: %" GST_PTR_FORMAT, msg);
    warning = msg;
  }
  GstElement *src = bt_by_name (consumer, "src");
  fail_unless_equals_uint64 (bt_stat_u64 (src, "rejected"), 12);
  fail_unless_equals_uint64 (bt_stat_u64 (src, "received"), 4);

  g_mutex_lock (&seen.lock);
  static const guint8 want[] = { 10, 21, 23, 25 };
  fail_unless_equals_int (seen.values->len, G_N_ELEMENTS (want));
  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    fail_unless_equals_int (g_array_index (seen.values, guint8, i), want[i]);
  fail_unless_equals_int (seen.mixed, 0);
  fail_unless_equals_int (seen.drops->len, 12);
  expect_drop (0, "stride 2147483647");
  expect_drop (1, "offset 1099511627776");
  expect_drop (2, "2 planes for format RGBA, which has 1");
  expect_drop (3, "reaches past the end");
  expect_drop (4, "stride 100 is less than its row of 256 bytes");
  expect_drop (5, "stride -256");
  expect_drop (6, "offset 18446744073709551605");
  expect_drop (7, "format I420 on a stream of format RGBA");
  expect_drop (8, "unknown format 'NOTAFORMAT'");
  expect_drop (9, "32x48 on a stream of 64x48");
  expect_drop (10, "smaller than the 12288 bytes its caps describe");
  expect_drop (11, "unknown magic");
  g_mutex_unlock (&seen.lock);

  /* Applications hear of it once, on the bus. */
  fail_unless (warning != NULL, "no warning message on the bus");
  fail_unless (GST_MESSAGE_SRC (warning) == GST_OBJECT (src));
  g_autoptr (GError) err = NULL;
  g_autofree gchar *debug = NULL;
  gst_message_parse_warning (warning, &err, &debug);
  GST_INFO ("warning: %s (%s)", err->message, debug);
  fail_unless (strstr (err->message, channel) != NULL, "%s", err->message);
  fail_unless (debug != NULL && strstr (debug, "stride 2147483647") != NULL,
      "the warning's details do not name the first problem: %s", debug);
  gst_message_unref (warning);

  bt_stop (consumer);
  bt_forger_free (forger);
  gst_debug_remove_log_function (capture_drops);
  seen_clear ();
}
GST_END_TEST

/* Proves: a video meta of a format whose layout is not checked (here the
 * palettized RGB8P) is left out rather than trusted: the frame goes on
 * without it when it holds the layout of its caps, and is dropped when it
 * is too small for them. */
GST_START_TEST (test_unchecked_format_left_out)
{
  g_autofree gchar *channel = bt_channel_name ("palette");
  seen_init ();
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB8P, 16, 16);
  const gsize size = GST_VIDEO_INFO_SIZE (&info);
  g_autofree gchar *caps = g_strdup ("video/x-raw,format=RGB8P,width=16,"
      "height=16,framerate=30/1");
  g_autofree gchar *desc = g_strdup_printf ("bipssrc name=src channel=%s "
      "timeout=%d policy=lossless ! fakesink name=out sync=false "
      "signal-handoffs=true", channel, BT_WAIT_MS);
  GstElement *consumer = bt_parse (desc);
  g_signal_connect (bt_by_name (consumer, "out"), "handoff",
      G_CALLBACK (on_handoff), NULL);
  bt_set_state (consumer, GST_STATE_PLAYING);
  g_autofree gchar *error = NULL;
  BtForger *forger = bt_forger_new (channel, SLOT_SIZE, caps, &error);
  fail_unless (forger != NULL, "cannot create the producer: %s", error);
  fail_unless (bt_forger_wait_consumers (forger, 1, BT_WAIT_MS),
      "bipssrc did not attach");

  BtForgedVideoMeta palette = { "RGB8P", 0, 16, 16, 2,
    {0, GST_VIDEO_INFO_PLANE_OFFSET (&info, 1)}, {1 << 20, 4}
  };
  publish (forger, size, 30, &palette, FALSE);
  publish (forger, size / 2, 31, &palette, FALSE);
  bt_forger_end_of_stream (forger);

  bt_expect_eos (consumer, BT_WAIT_MS);
  GstElement *src = bt_by_name (consumer, "src");
  fail_unless_equals_uint64 (bt_stat_u64 (src, "received"), 1);
  fail_unless_equals_uint64 (bt_stat_u64 (src, "rejected"), 1);
  g_mutex_lock (&seen.lock);
  fail_unless_equals_int (seen.values->len, 1);
  fail_unless_equals_int (g_array_index (seen.values, guint8, 0), 30);
  fail_unless_equals_int (seen.with_meta, 0);
  g_mutex_unlock (&seen.lock);

  bt_stop (consumer);
  bt_forger_free (forger);
  seen_clear ();
}
GST_END_TEST

static Suite *
hostile_meta_suite (void)
{
  Suite *s = suite_create ("bips-hostile-meta");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_forged_video_meta);
  tcase_add_test (tc, test_unchecked_format_left_out);
  return s;
}

GST_CHECK_MAIN (hostile_meta)
