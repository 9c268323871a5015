/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared helpers of the element tests: channel names, bounded waits, stats. */
#include "bipstest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

GstElement *
bt_make (const gchar *factory)
{
  GstElement *e = gst_element_factory_make (factory, NULL);
  fail_unless (e != NULL, "no element %s: is GST_PLUGIN_PATH_1_0 set and "
      "does the plugin load? (gst-inspect-1.0 %s)", factory, factory);
  return gst_object_ref_sink (e);
}

gchar *
bt_channel_name (const gchar *topic)
{
  static gint counter;
  return g_strdup_printf ("gsttest-%s-%d-%d", topic, (int) getpid (),
      g_atomic_int_add (&counter, 1));
}

gchar *
bt_channel_path (const gchar *channel)
{
  const gchar *dir = g_getenv ("BIPS_DIR");
  if (dir == NULL || dir[0] == '\0')
    dir = "/dev/shm";
  return g_strdup_printf ("%s/bips-%s", dir, channel);
}

gboolean
bt_channel_exists (const gchar *channel)
{
  g_autofree gchar *path = bt_channel_path (channel);
  struct stat st;
  return lstat (path, &st) == 0;
}

gboolean
bt_channel_is_socket (const gchar *channel)
{
  g_autofree gchar *path = bt_channel_path (channel);
  struct stat st;
  return lstat (path, &st) == 0 && S_ISSOCK (st.st_mode);
}

void
bt_remove_channel (const gchar *channel)
{
  g_autofree gchar *path = bt_channel_path (channel);
  if (unlink (path) != 0 && errno != ENOENT)
    GST_WARNING ("could not remove %s: %s", path, g_strerror (errno));
}

GstMessage *
bt_pop_message (GstElement *element, GstMessageType types, guint timeout_ms)
{
  g_autoptr (GstBus) bus = gst_element_get_bus (element);
  fail_unless (bus != NULL, "%s has no bus", GST_OBJECT_NAME (element));
  return gst_bus_timed_pop_filtered (bus, timeout_ms * GST_MSECOND, types);
}

static void
fail_on_error_message (GstMessage *msg, const gchar *waiting_for)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *debug = NULL;
  gst_message_parse_error (msg, &err, &debug);
  ck_abort_msg ("error from %s while waiting for %s: %s (%s)",
      GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), waiting_for, err->message,
      debug ? debug : "no debug info");
}

void
bt_expect_eos (GstElement *pipeline, guint timeout_ms)
{
  GstMessage *msg = bt_pop_message (pipeline,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR, timeout_ms);
  fail_unless (msg != NULL, "%s: no EOS within %u ms",
      GST_OBJECT_NAME (pipeline), timeout_ms);
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
    fail_on_error_message (msg, "EOS");
  gst_message_unref (msg);
}

GstMessage *
bt_expect_error (GstElement *pipeline, guint timeout_ms)
{
  GstMessage *msg = bt_pop_message (pipeline,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR, timeout_ms);
  fail_unless (msg != NULL, "%s: no error message within %u ms",
      GST_OBJECT_NAME (pipeline), timeout_ms);
  fail_unless (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR,
      "%s: expected an error, got EOS", GST_OBJECT_NAME (pipeline));
  return msg;
}

void
bt_set_state (GstElement *element, GstState state)
{
  GstStateChangeReturn ret = gst_element_set_state (element, state);
  fail_unless (ret != GST_STATE_CHANGE_FAILURE,
      "%s: state change to %s failed", GST_OBJECT_NAME (element),
      gst_element_state_get_name (state));
}

typedef struct
{
  GstElement *element;
  GstState state;
  GstStateChangeReturn ret;
  gint done;
} StateJob;

static gpointer
state_job_run (gpointer data)
{
  StateJob *job = data;
  job->ret = gst_element_set_state (job->element, job->state);
  g_atomic_int_set (&job->done, 1);
  return NULL;
}

void
bt_set_state_bounded (GstElement *element, GstState state)
{
  StateJob job = { element, state, GST_STATE_CHANGE_FAILURE, 0 };
  GThread *thread = g_thread_new ("bt-set-state", state_job_run, &job);
  gint64 end = g_get_monotonic_time () + BT_WAIT_MS * G_TIME_SPAN_MILLISECOND;
  while (!g_atomic_int_get (&job.done) && g_get_monotonic_time () < end)
    g_usleep (5000);
  fail_unless (g_atomic_int_get (&job.done), "%s: set_state(%s) still blocked "
      "after %d ms", GST_OBJECT_NAME (element),
      gst_element_state_get_name (state), BT_WAIT_MS);
  g_thread_join (thread);
  fail_unless (job.ret != GST_STATE_CHANGE_FAILURE,
      "%s: state change to %s failed", GST_OBJECT_NAME (element),
      gst_element_state_get_name (state));
}

GstElement *
bt_parse (const gchar *desc)
{
  g_autoptr (GError) err = NULL;
  GstElement *p = gst_parse_launch (desc, &err);
  fail_unless (p != NULL && err == NULL, "cannot parse '%s': %s", desc,
      err ? err->message : "?");
  return p;
}

GstElement *
bt_start (const gchar *desc)
{
  GstElement *p = bt_parse (desc);
  bt_set_state (p, GST_STATE_PLAYING);
  return p;
}

void
bt_stop (GstElement *pipeline)
{
  bt_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
}

GstElement *
bt_by_name (GstElement *pipeline, const gchar *name)
{
  GstElement *e = gst_bin_get_by_name (GST_BIN (pipeline), name);
  fail_unless (e != NULL, "no element '%s' in %s", name,
      GST_OBJECT_NAME (pipeline));
  gst_object_unref (e);         /* the pipeline keeps it alive */
  return e;
}

static GstStructure *
get_stats (GstElement *element)
{
  GstStructure *stats = NULL;
  g_object_get (element, "stats", &stats, NULL);
  fail_unless (stats != NULL, "%s: stats is NULL", GST_OBJECT_NAME (element));
  return stats;
}

guint64
bt_stat_u64 (GstElement *element, const gchar *field)
{
  g_autoptr (GstStructure) stats = get_stats (element);
  guint64 value = 0;
  fail_unless (gst_structure_get_uint64 (stats, field, &value),
      "%s: stats has no guint64 '%s': %" GST_PTR_FORMAT,
      GST_OBJECT_NAME (element), field, stats);
  return value;
}

guint
bt_stat_uint (GstElement *element, const gchar *field)
{
  g_autoptr (GstStructure) stats = get_stats (element);
  guint value = 0;
  fail_unless (gst_structure_get_uint (stats, field, &value),
      "%s: stats has no guint '%s': %" GST_PTR_FORMAT,
      GST_OBJECT_NAME (element), field, stats);
  return value;
}

guint
bt_wait_uint_property (GstElement *element, const gchar *name, guint value,
    guint timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  guint current = 0;
  for (;;) {
    g_object_get (element, name, &current, NULL);
    if (current == value || g_get_monotonic_time () > end)
      return current;
    g_usleep (10 * 1000);
  }
}

guint64
bt_wait_stat_at_least (GstElement *element, const gchar *field,
    guint64 value, guint timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  for (;;) {
    guint64 current = bt_stat_u64 (element, field);
    if (current >= value || g_get_monotonic_time () > end)
      return current;
    g_usleep (10 * 1000);
  }
}

static void
memfd_id_init (BtMemfdId *id, const gchar *channel)
{
  g_snprintf (id->path, sizeof id->path, "/memfd:bips-%s (deleted)", channel);
  id->ino = 0;
}

/* Calls @fn for each mapping of the memfd @id; stops when it returns TRUE. */
typedef gboolean (*MappingFn) (guintptr start, guintptr end,
    const gchar *perms, guint64 ino, gpointer data);

static void
for_each_mapping (const BtMemfdId *id, MappingFn fn, gpointer data)
{
  g_autofree gchar *maps = NULL;
  fail_unless (g_file_get_contents ("/proc/self/maps", &maps, NULL, NULL));

  g_auto (GStrv) lines = g_strsplit (maps, "\n", -1);
  for (gchar **line = lines; *line != NULL; line++) {
    unsigned long start = 0, end = 0, ino = 0;
    char perms[5] = { 0 };
    int path_at = -1;
    /* start-end perms offset dev inode, then spaces and the path */
    if (sscanf (*line, "%lx-%lx %4s %*s %*s %lu %n", &start, &end, perms,
            &ino, &path_at) != 4 || path_at < 0)
      continue;
    if (strcmp (*line + path_at, id->path) != 0)
      continue;
    if (id->ino != 0 && ino != id->ino)
      continue;
    if (fn ((guintptr) start, (guintptr) end, perms, ino, data))
      return;
  }
}

typedef struct
{
  guintptr p;
  gchar *perms;
  guint64 ino;
  gboolean found;
} FindData;

static gboolean
find_one (guintptr start, guintptr end, const gchar *perms, guint64 ino,
    gpointer data)
{
  FindData *fd = data;
  if (fd->p < start || fd->p >= end)
    return FALSE;
  g_strlcpy (fd->perms, perms, 5);
  fd->ino = ino;
  fd->found = TRUE;
  return TRUE;
}

gboolean
bt_find_channel_mapping (gconstpointer p, const gchar *channel, BtMemfdId *id,
    gchar perms[5])
{
  FindData fd = { (guintptr) p, perms, 0, FALSE };
  perms[0] = '\0';
  memfd_id_init (id, channel);
  for_each_mapping (id, find_one, &fd);
  id->ino = fd.found ? fd.ino : 0;
  return fd.found;
}

static gboolean
count_one (guintptr start, guintptr end, const gchar *perms, guint64 ino,
    gpointer data)
{
  (void) start;
  (void) end;
  (void) perms;
  (void) ino;
  (*(guint *) data)++;
  return FALSE;
}

guint
bt_count_mappings (const BtMemfdId *id)
{
  guint n = 0;
  for_each_mapping (id, count_one, &n);
  return n;
}
