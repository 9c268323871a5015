// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: bipssrc, which reads frames of a shared-memory channel without copying.

/**
 * SECTION:element-bipssrc
 * @title: bipssrc
 * @see_also: bipssink
 *
 * Reads the frames that a bipssink (or any bips producer) publishes on the
 * channel named by #GstBipsSrc:channel. Each buffer wraps the frame's slot
 * in shared memory, read-only and without a copy; the slot goes back to the
 * producer when the last reference to the buffer's memory is dropped. The
 * caps come from the channel, so no caps filter is needed, and a caps
 * change of the producer is pushed downstream before the first frame that
 * has them.
 *
 * bipssrc is a live source. Timestamps are the producer's absolute times
 * (on CLOCK_MONOTONIC, whatever clock the producer ran) mapped to this
 * pipeline's clock and running time. It reports the producer pipeline's
 * latency (at least one frame, from the caps framerate), so a sink that
 * syncs renders each frame just after it was published. A frame stamped
 * shortly before this pipeline started (within that latency and one frame)
 * gets running time 0; one stamped long before (a backlog, a producer
 * behind the clock) moves the stream so that it lands where a frame
 * published now belongs, and later frames by the same amount, so their
 * spacing is kept.
 *
 * With #GstBipsSrc:policy lossless every frame arrives and the producer
 * waits for this consumer when it does not read (backpressure, for at most
 * the producer's max-wait). With latest the producer never waits for it,
 * frames that came too fast are skipped and counted.
 *
 * Each buffer keeps its slot from the producer while it is alive. A
 * downstream that keeps buffers (filesink in its default buffer mode, an
 * encoder, a queue, an aggregator, a sink's last sample) would thus pin
 * every slot and stall the producer; so at most #GstBipsSrc:max-held of
 * them stay alive at once (by default max(1, (slots - 2) / 3), which lets
 * three consumers keep their share without the producer waiting), and any
 * frame beyond that is pushed as a copy from a buffer pool, with the same
 * timestamps, flags and metas, its slot given back at once. Copies are
 * counted in #GstBipsSrc:stats (copied).
 *
 * If no producer exists yet, bipssrc waits for one (#GstBipsSrc:timeout);
 * when the producer exits or dies it waits for the next one and carries on
 * (#GstBipsSrc:reconnect). A bipssrc that holds its producer back (a
 * lossless one that fell behind, or one whose buffers downstream keeps)
 * longer than the producer allows (bipssink's max-wait) is dropped by it;
 * it then attaches again the same way, with a warning, and the frames in
 * between are lost (buffers of it that downstream still holds stay mapped,
 * but the producer may write new frames into them): a GAP event spanning
 * the lost time and a DISCONT flag on the next buffer tell downstream.
 * EOS of the producer ends the stream.
 *
 * bipssrc finds the channel as the unix socket bips-<name> in /dev/shm, or
 * in $BIPS_DIR when that is set (the producer must use the same folder);
 * the frames come over that socket as shared memory mapped read-only.
 *
 * Nothing the producer writes is trusted. A frame whose GstVideoMeta does
 * not fit it (a plane count other than the format's, a stride shorter than
 * a row, a plane reaching past the end of the frame, a format or size other
 * than the caps'), or which, without such a meta, is smaller than its caps
 * say, is dropped with a warning and counted in #GstBipsSrc:stats
 * (rejected), so that downstream never reads outside a frame. A video meta
 * of a tiled, palettized or bit-packed format is not attached at all.
 *
 * ## Example launch lines (pipelines/consumer.sh, pipelines/consumer-headless.sh)
 * |[
 * gst-launch-1.0 bipssrc channel=cam0 ! videoconvert ! autovideosink
 * ]|
 * |[
 * gst-launch-1.0 -v bipssrc channel=cam0 policy=latest ! fakesink sync=false
 * ]|
 */

#include "gstbipssrc.h"

#include "gstbipssrcstate.h"
#include "gstbipsutils.h"

GST_DEBUG_CATEGORY(gst_bips_src_debug);
#define GST_CAT_DEFAULT gst_bips_src_debug

using gstbips::ObjectLocker;
using gstbips::SrcState;

struct _GstBipsSrc {
    GstPushSrc parent;
    SrcState *state; // new in _init, delete in finalize
};

enum {
    PROP_0,
    PROP_CHANNEL,
    PROP_POLICY,
    PROP_TIMEOUT,
    PROP_RECONNECT,
    PROP_ANTICIPATE,
    PROP_MAX_HELD,
    PROP_STATS,
    N_PROPERTIES
};

static GParamSpec *properties[N_PROPERTIES];

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

GType gst_bips_policy_get_type(void)
{
    static gsize type = 0;
    static const GEnumValue values[] = {
        {GST_BIPS_POLICY_LOSSLESS, "Every frame, in order; the producer waits for this consumer",
         "lossless"},
        {GST_BIPS_POLICY_LATEST, "The newest frame; never slows the producer, skips frames",
         "latest"},
        {0, nullptr, nullptr},
    };
    if (g_once_init_enter(&type)) {
        GType t = g_enum_register_static("GstBipsPolicy", values);
        g_once_init_leave(&type, t);
    }
    return type;
}

G_DEFINE_TYPE(GstBipsSrc, gst_bips_src, GST_TYPE_PUSH_SRC)
GST_ELEMENT_REGISTER_DEFINE(bipssrc, "bipssrc", GST_RANK_NONE, GST_TYPE_BIPS_SRC)

static SrcState *state_of(gpointer src) { return GST_BIPS_SRC(src)->state; }

static bips::Policy to_policy(gint value)
{
    return value == GST_BIPS_POLICY_LATEST ? bips::Policy::Latest : bips::Policy::Lossless;
}

static void gst_bips_src_set_property(GObject *object, guint prop_id, const GValue *value,
                                      GParamSpec *pspec)
{
    auto *self = GST_BIPS_SRC(object);
    gstbips::SrcSettings &s = self->state->settings;
    ObjectLocker lock(self);
    // channel, policy and anticipate take effect at the next start: refuse
    // them above READY (GST_PARAM_MUTABLE_READY).
    if ((prop_id == PROP_CHANNEL || prop_id == PROP_POLICY || prop_id == PROP_ANTICIPATE) &&
        GST_STATE(self) > GST_STATE_READY) {
        GST_WARNING_OBJECT(self, "property '%s' can only be changed in the NULL or READY state",
                           pspec->name);
        return;
    }
    switch (prop_id) {
    case PROP_CHANNEL: {
        const gchar *str = g_value_get_string(value);
        s.channel = str ? str : "";
        break;
    }
    case PROP_POLICY:
        s.policy = to_policy(g_value_get_enum(value));
        break;
    case PROP_TIMEOUT:
        s.timeout_ms = g_value_get_int64(value);
        break;
    case PROP_RECONNECT:
        s.reconnect = g_value_get_boolean(value);
        break;
    case PROP_ANTICIPATE:
        s.anticipate_us = g_value_get_uint(value);
        break;
    case PROP_MAX_HELD:
        s.max_held = g_value_get_uint(value);
        self->state->set_max_held(s.max_held);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
}

static void gst_bips_src_get_property(GObject *object, guint prop_id, GValue *value,
                                      GParamSpec *pspec)
{
    auto *self = GST_BIPS_SRC(object);
    if (prop_id == PROP_STATS) {
        g_value_take_boxed(value, self->state->stats()); // takes the object lock itself
        return;
    }
    const gstbips::SrcSettings &s = self->state->settings;
    ObjectLocker lock(self);
    switch (prop_id) {
    case PROP_CHANNEL:
        g_value_set_string(value, s.channel.empty() ? nullptr : s.channel.c_str());
        break;
    case PROP_POLICY:
        g_value_set_enum(value, s.policy == bips::Policy::Latest ? GST_BIPS_POLICY_LATEST
                                                                : GST_BIPS_POLICY_LOSSLESS);
        break;
    case PROP_TIMEOUT:
        g_value_set_int64(value, s.timeout_ms);
        break;
    case PROP_RECONNECT:
        g_value_set_boolean(value, s.reconnect);
        break;
    case PROP_ANTICIPATE:
        g_value_set_uint(value, s.anticipate_us);
        break;
    case PROP_MAX_HELD:
        g_value_set_uint(value, s.max_held);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
}

static gboolean gst_bips_src_start(GstBaseSrc *src) { return state_of(src)->start(); }

static gboolean gst_bips_src_stop(GstBaseSrc *src)
{
    state_of(src)->stop();
    return TRUE;
}

static GstCaps *gst_bips_src_get_caps(GstBaseSrc *src, GstCaps *filter)
{
    return state_of(src)->get_caps(filter);
}

static gboolean gst_bips_src_negotiate(GstBaseSrc *src) { return state_of(src)->negotiate(); }

static gboolean gst_bips_src_query(GstBaseSrc *src, GstQuery *query)
{
    if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
        GstClockTime min, max;
        state_of(src)->latency(&min, &max);
        GST_DEBUG_OBJECT(src, "latency: min %" GST_TIME_FORMAT " max %" GST_TIME_FORMAT,
                         GST_TIME_ARGS(min), GST_TIME_ARGS(max));
        gst_query_set_latency(query, TRUE, min, max);
        return TRUE;
    }
    return GST_BASE_SRC_CLASS(gst_bips_src_parent_class)->query(src, query);
}

static GstFlowReturn gst_bips_src_create(GstPushSrc *src, GstBuffer **buffer)
{
    return state_of(src)->create(buffer);
}

static gboolean gst_bips_src_unlock(GstBaseSrc *src)
{
    state_of(src)->unlock();
    return TRUE;
}

static gboolean gst_bips_src_unlock_stop(GstBaseSrc *src)
{
    state_of(src)->unlock_stop();
    return TRUE;
}

static void gst_bips_src_finalize(GObject *object)
{
    auto *self = GST_BIPS_SRC(object);
    delete self->state;
    self->state = nullptr;
    G_OBJECT_CLASS(gst_bips_src_parent_class)->finalize(object);
}

// The final counters go on the bus as an element message (GstBipsSrcStats,
// printed by gst-launch-1.0 -m) as the EOS event leaves the source pad,
// before the pipeline can post EOS. Every end of the stream passes here,
// whoever ends it: the producer (create returns EOS), basesrc's num-buffers
// limit (which ends the stream without calling create), or an EOS sent to
// the element. A run that ends otherwise posts them in stop(). The probe belongs to the pad, which the element owns, so
// `user_data` (the element) outlives it.
static GstPadProbeReturn gst_bips_src_eos_probe(GstPad *, GstPadProbeInfo *info,
                                                gpointer user_data)
{
    if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_EOS)
        state_of(user_data)->post_stats();
    return GST_PAD_PROBE_OK;
}

static void gst_bips_src_init(GstBipsSrc *self)
{
    self->state = new SrcState(GST_BASE_SRC(self));
    gst_pad_add_probe(GST_BASE_SRC_PAD(self), GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                      gst_bips_src_eos_probe, self, nullptr);
    gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
    gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
    gst_base_src_set_do_timestamp(GST_BASE_SRC(self), FALSE);
}

static void gst_bips_src_class_init(GstBipsSrcClass *klass)
{
    auto *gobject_class = G_OBJECT_CLASS(klass);
    auto *element_class = GST_ELEMENT_CLASS(klass);
    auto *basesrc_class = GST_BASE_SRC_CLASS(klass);
    auto *pushsrc_class = GST_PUSH_SRC_CLASS(klass);

    gobject_class->set_property = gst_bips_src_set_property;
    gobject_class->get_property = gst_bips_src_get_property;
    gobject_class->finalize = gst_bips_src_finalize;

    const auto rw_ready = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                   GST_PARAM_MUTABLE_READY);
    const auto rw_playing = static_cast<GParamFlags>(
        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);

    properties[PROP_CHANNEL] = g_param_spec_string(
        "channel", "Channel",
        "Name of the channel to read (required; the same name as the producer's bipssink; "
        "its socket is bips-<name> in /dev/shm, or in $BIPS_DIR if set)",
        nullptr, rw_ready);
    properties[PROP_POLICY] = g_param_spec_enum(
        "policy", "Policy",
        "lossless: every frame, the producer waits for this consumer (for at most its "
        "max-wait, then it drops this consumer, which attaches again); latest: the newest "
        "frame, never slows the producer, skipped frames are counted in stats",
        GST_TYPE_BIPS_POLICY, GST_BIPS_POLICY_LOSSLESS, rw_ready);
    properties[PROP_TIMEOUT] = g_param_spec_int64(
        "timeout", "Timeout",
        "Milliseconds to wait for a producer when starting and when reconnecting before "
        "posting an error; -1 = wait forever, 0 = do not wait",
        -1, G_MAXINT64, -1, rw_playing);
    properties[PROP_RECONNECT] = g_param_spec_boolean(
        "reconnect", "Reconnect",
        "When the producer exits or dies, or drops this consumer for holding it back, wait "
        "for a producer on the same channel and carry on (renegotiating if its caps differ) "
        "instead of posting an error",
        TRUE, rw_playing);
    properties[PROP_ANTICIPATE] = g_param_spec_uint(
        "anticipate", "Anticipate",
        "Microseconds before the next frame is due (judged from recent frame intervals) to "
        "wake and busy-wait for it, so the frame finds the reader awake and the producer "
        "needs no wake-up call; costs up to twice this much CPU time per frame; 0 = off",
        0, 1000000, 0, rw_ready);
    properties[PROP_MAX_HELD] = g_param_spec_uint(
        "max-held", "Maximum held slots",
        "How many of the producer's slots the buffers of this element may keep at once; a "
        "frame beyond that (downstream keeps buffers: filesink, encoders, queues, "
        "aggregators) is pushed as a copy and its slot given back at once, so the producer "
        "is never held back; 0 = automatic: max(1, (slots - 2) / 3), which lets three "
        "consumers hold their share without stalling the producer",
        0, G_MAXUINT, 0, rw_playing);
    properties[PROP_STATS] = g_param_spec_boxed(
        "stats", "Statistics",
        "Counters: received (frames pushed), skipped (frames a latest reader jumped over), "
        "rejected (frames dropped because their metadata does not fit them), reconnects, "
        "copied (frames pushed as a copy because of max-held) (guint64 frames / events), "
        "held (slots this element's buffers keep now), max-held (the limit in effect) "
        "(guint), epoch, channel, policy",
        GST_TYPE_STRUCTURE, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
    g_object_class_install_properties(gobject_class, N_PROPERTIES, properties);

    gst_element_class_add_static_pad_template(element_class, &src_template);
    gst_element_class_set_static_metadata(
        element_class, "bips shared-memory source", "Source/Video",
        "Reads frames of a named shared-memory channel without copying; caps come from the "
        "channel",
        "bips developers");

    basesrc_class->start = gst_bips_src_start;
    basesrc_class->stop = gst_bips_src_stop;
    basesrc_class->get_caps = gst_bips_src_get_caps;
    basesrc_class->negotiate = gst_bips_src_negotiate;
    basesrc_class->query = gst_bips_src_query;
    basesrc_class->unlock = gst_bips_src_unlock;
    basesrc_class->unlock_stop = gst_bips_src_unlock_stop;
    pushsrc_class->create = gst_bips_src_create;

    gst_type_mark_as_plugin_api(GST_TYPE_BIPS_POLICY, static_cast<GstPluginAPIFlags>(0));
    GST_DEBUG_CATEGORY_INIT(gst_bips_src_debug, "bipssrc", 0, "bips shared-memory source");
}
