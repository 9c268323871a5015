// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: bipssink, which publishes buffers on a shared-memory channel.

/**
 * SECTION:element-bipssink
 * @title: bipssink
 * @see_also: bipssrc
 *
 * Publishes every buffer it receives as one frame of the bips channel named
 * by #GstBipsSink:channel, which any number of bipssrc elements (or other
 * bips consumers) in other processes read without a copy. The channel is a
 * unix socket bips-<name> in /dev/shm, or in $BIPS_DIR when that is set;
 * the frames live in anonymous shared memory (a memfd) that consumers get
 * over the socket and map read-only, so no file holds them and nothing is
 * left behind when the producer goes. The caps travel with the stream, so
 * consumers need none.
 *
 * The channel is created when the caps are known; its slot size is derived
 * from raw video caps unless #GstBipsSink:slot-size is set. For raw video the
 * element proposes a buffer pool whose buffers are the channel's slots, so
 * an upstream that uses it (videotestsrc, videoconvert, ...) renders straight
 * into shared memory and the frame is published without a copy, provided
 * bipssink holds the only reference to it (a published slot may be
 * rewritten for a later frame, so an element that keeps a reference, such
 * as tee or videorate, gets a copy). Any other buffer is copied into a free
 * slot (#GstBipsSink:allow-copy). The #GstBipsSink:stats property counts
 * both. last-sample is disabled by default for the same reason.
 *
 * Consumers with the lossless policy slow the sink down when they fall
 * behind (render waits for a free slot, and returns promptly on flushing or
 * a state change); consumers with the latest policy never do. Without
 * consumers the sink keeps running and frames are overwritten. A consumer
 * holds the sink back for at most #GstBipsSink:max-wait: past it the sink
 * drops the consumer that holds it back most, which loses the frames it
 * had not read yet and attaches again (bipssrc does so by itself); the
 * slots that consumer still held are written again. With
 * max-wait=0 the sink waits for its lossless consumers however long it
 * takes. At most #GstBipsSink:max-consumers consumers attach at once; one
 * more gets an error that names the property.
 *
 * Timestamps are published as absolute times on CLOCK_MONOTONIC (converted
 * from the pipeline's clock when it runs another one); EOS is published too,
 * so consumers end their streams.
 *
 * ## Example launch lines (pipelines/producer.sh, pipelines/producer-camera.sh)
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! video/x-raw,format=RGBA,width=1280,height=720,framerate=30/1 ! bipssink channel=cam0
 * ]|
 * |[
 * gst-launch-1.0 -e v4l2src device=/dev/video0 ! videoconvert ! bipssink channel=cam0 slots=8
 * ]|
 */

#include "gstbipssink.h"

#include "gstbipssinkstate.h"
#include "gstbipsutils.h"

GST_DEBUG_CATEGORY(gst_bips_sink_debug);
#define GST_CAT_DEFAULT gst_bips_sink_debug

using gstbips::ObjectLocker;
using gstbips::SinkState;

struct _GstBipsSink {
    GstBaseSink parent;
    SinkState *state; // new in _init, delete in finalize
};

enum {
    PROP_0,
    PROP_CHANNEL,
    PROP_SLOTS,
    PROP_SLOT_SIZE,
    PROP_META_SIZE,
    PROP_PERMS,
    PROP_MAX_WAIT,
    PROP_MAX_CONSUMERS,
    PROP_ALLOW_COPY,
    PROP_WAIT_FOR_CONSUMER,
    PROP_CONSUMERS,
    PROP_STATS,
    N_PROPERTIES
};

enum { SIGNAL_CONSUMER_ADDED, SIGNAL_CONSUMER_REMOVED, N_SIGNALS };

static GParamSpec *properties[N_PROPERTIES];
static guint signals[N_SIGNALS];

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

G_DEFINE_TYPE(GstBipsSink, gst_bips_sink, GST_TYPE_BASE_SINK)
GST_ELEMENT_REGISTER_DEFINE(bipssink, "bipssink", GST_RANK_NONE, GST_TYPE_BIPS_SINK)

static SinkState *state_of(gpointer sink) { return GST_BIPS_SINK(sink)->state; }

void gst_bips_sink_emit_consumer_added(GstBaseSink *sink, guint index)
{
    GST_INFO_OBJECT(sink, "consumer %u attached", index);
    g_signal_emit(sink, signals[SIGNAL_CONSUMER_ADDED], 0, index);
}

void gst_bips_sink_emit_consumer_removed(GstBaseSink *sink, guint index)
{
    GST_INFO_OBJECT(sink, "consumer %u detached", index);
    g_signal_emit(sink, signals[SIGNAL_CONSUMER_REMOVED], 0, index);
}

void gst_bips_sink_notify_consumers(GstBaseSink *sink)
{
    g_object_notify_by_pspec(G_OBJECT(sink), properties[PROP_CONSUMERS]);
}

// Geometry properties shape the channel when it is created: refuse changes
// above READY (GST_PARAM_MUTABLE_READY). Caller holds the object lock.
static bool mutable_now(GstBipsSink *self, GParamSpec *pspec)
{
    if (GST_STATE(self) <= GST_STATE_READY)
        return true;
    GST_WARNING_OBJECT(self, "property '%s' can only be changed in the NULL or READY state",
                       pspec->name);
    return false;
}

static void gst_bips_sink_set_property(GObject *object, guint prop_id, const GValue *value,
                                       GParamSpec *pspec)
{
    auto *self = GST_BIPS_SINK(object);
    gstbips::SinkSettings &s = self->state->settings;
    ObjectLocker lock(self);
    switch (prop_id) {
    case PROP_CHANNEL:
        if (mutable_now(self, pspec)) {
            const gchar *str = g_value_get_string(value);
            s.channel = str ? str : "";
        }
        break;
    case PROP_SLOTS:
        if (mutable_now(self, pspec))
            s.slots = g_value_get_uint(value);
        break;
    case PROP_SLOT_SIZE:
        if (mutable_now(self, pspec))
            s.slot_size = g_value_get_uint64(value);
        break;
    case PROP_META_SIZE:
        if (mutable_now(self, pspec))
            s.meta_size = g_value_get_uint(value);
        break;
    case PROP_PERMS:
        if (mutable_now(self, pspec))
            s.perms = g_value_get_uint(value);
        break;
    case PROP_MAX_WAIT:
        if (mutable_now(self, pspec))
            s.max_wait_ms = g_value_get_uint64(value);
        break;
    case PROP_MAX_CONSUMERS:
        if (mutable_now(self, pspec))
            s.max_consumers = g_value_get_uint(value);
        break;
    case PROP_ALLOW_COPY:
        s.allow_copy = g_value_get_boolean(value);
        break;
    case PROP_WAIT_FOR_CONSUMER:
        s.wait_for_consumer = g_value_get_boolean(value);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
}

static void gst_bips_sink_get_property(GObject *object, guint prop_id, GValue *value,
                                       GParamSpec *pspec)
{
    auto *self = GST_BIPS_SINK(object);
    // Read-only properties query the state, which takes its own lock.
    switch (prop_id) {
    case PROP_CONSUMERS:
        g_value_set_uint(value, self->state->consumers());
        return;
    case PROP_STATS:
        g_value_take_boxed(value, self->state->stats());
        return;
    default:
        break;
    }
    const gstbips::SinkSettings &s = self->state->settings;
    ObjectLocker lock(self);
    switch (prop_id) {
    case PROP_CHANNEL:
        g_value_set_string(value, s.channel.empty() ? nullptr : s.channel.c_str());
        break;
    case PROP_SLOTS:
        g_value_set_uint(value, s.slots);
        break;
    case PROP_SLOT_SIZE:
        g_value_set_uint64(value, s.slot_size);
        break;
    case PROP_META_SIZE:
        g_value_set_uint(value, s.meta_size);
        break;
    case PROP_PERMS:
        g_value_set_uint(value, s.perms);
        break;
    case PROP_MAX_WAIT:
        g_value_set_uint64(value, s.max_wait_ms);
        break;
    case PROP_MAX_CONSUMERS:
        g_value_set_uint(value, s.max_consumers);
        break;
    case PROP_ALLOW_COPY:
        g_value_set_boolean(value, s.allow_copy);
        break;
    case PROP_WAIT_FOR_CONSUMER:
        g_value_set_boolean(value, s.wait_for_consumer);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
}

static gboolean gst_bips_sink_start(GstBaseSink *sink) { return state_of(sink)->start(); }

static gboolean gst_bips_sink_stop(GstBaseSink *sink)
{
    state_of(sink)->stop();
    return TRUE;
}

static gboolean gst_bips_sink_set_caps(GstBaseSink *sink, GstCaps *caps)
{
    GST_DEBUG_OBJECT(sink, "caps %" GST_PTR_FORMAT, static_cast<gpointer>(caps));
    return state_of(sink)->set_caps(caps);
}

static gboolean gst_bips_sink_propose_allocation(GstBaseSink *sink, GstQuery *query)
{
    return state_of(sink)->propose_allocation(query);
}

static GstFlowReturn gst_bips_sink_render(GstBaseSink *sink, GstBuffer *buffer)
{
    return state_of(sink)->render(buffer);
}

static gboolean gst_bips_sink_event(GstBaseSink *sink, GstEvent *event)
{
    if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
        // The final counters as an element message, so that even
        // `gst-launch-1.0 -m` users see them; taken before the marker goes
        // out, while the consumers are still attached.
        GstStructure *final_stats = state_of(sink)->stats();
        state_of(sink)->end_of_stream();
        gst_element_post_message(GST_ELEMENT(sink),
                                 gst_message_new_element(GST_OBJECT(sink), final_stats));
    }
    return GST_BASE_SINK_CLASS(gst_bips_sink_parent_class)->event(sink, event);
}

static gboolean gst_bips_sink_unlock(GstBaseSink *sink)
{
    state_of(sink)->unlock();
    return TRUE;
}

static gboolean gst_bips_sink_unlock_stop(GstBaseSink *sink)
{
    state_of(sink)->unlock_stop();
    return TRUE;
}

static void gst_bips_sink_finalize(GObject *object)
{
    auto *self = GST_BIPS_SINK(object);
    delete self->state;
    self->state = nullptr;
    G_OBJECT_CLASS(gst_bips_sink_parent_class)->finalize(object);
}

static void gst_bips_sink_init(GstBipsSink *self)
{
    self->state = new SinkState(GST_BASE_SINK(self));
    // A rendered buffer's slot belongs to the channel once published and
    // may be rewritten for a later frame: keeping it as last-sample would
    // show changing pixels and hold the old channel's mapping.
    gst_base_sink_set_last_sample_enabled(GST_BASE_SINK(self), FALSE);
}

static void gst_bips_sink_class_init(GstBipsSinkClass *klass)
{
    auto *gobject_class = G_OBJECT_CLASS(klass);
    auto *element_class = GST_ELEMENT_CLASS(klass);
    auto *basesink_class = GST_BASE_SINK_CLASS(klass);

    gobject_class->set_property = gst_bips_sink_set_property;
    gobject_class->get_property = gst_bips_sink_get_property;
    gobject_class->finalize = gst_bips_sink_finalize;

    const auto rw_ready = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                                   GST_PARAM_MUTABLE_READY);
    const auto rw_playing = static_cast<GParamFlags>(
        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
    const auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

    properties[PROP_CHANNEL] = g_param_spec_string(
        "channel", "Channel",
        "Name of the channel to publish on (required; letters, digits, '.', '_', '-'). "
        "Consumers find it as the unix socket bips-<name> in /dev/shm, or in $BIPS_DIR if "
        "set; the frames travel in shared memory handed over that socket, and the socket "
        "is removed when the sink stops",
        nullptr, rw_ready);
    properties[PROP_SLOTS] = g_param_spec_uint(
        "slots", "Slots",
        "Number of frame slots in the channel. The default 8 leaves the producer the 2 it "
        "needs and lets three consumers keep 2 each (bipssrc's default max-held) without "
        "holding it back; each slot costs one frame of memory (31.6 MiB for 4K RGBA)",
        bips::kMinSlotCount, bips::kMaxSlotCount, gstbips::kDefaultSlots, rw_ready);
    properties[PROP_SLOT_SIZE] = g_param_spec_uint64(
        "slot-size", "Slot size",
        "Bytes per slot; 0 = estimated from the caps, and the channel grows for bigger "
        "buffers. An explicit size is a hard limit: larger buffers are an error",
        0, G_MAXUINT64, 0, rw_ready);
    properties[PROP_META_SIZE] = g_param_spec_uint(
        "meta-size", "Metadata size",
        "Bytes of metadata each frame may carry: its video layout, offsets, regions of "
        "interest and custom metas (docs/elements.md lists what travels). A frame whose "
        "metadata does not fit is an error that gives its size",
        0, gstbips::kMaxMetaSize, gstbips::kDefaultMetaSize, rw_ready);
    properties[PROP_PERMS] = g_param_spec_uint(
        "perms", "Permissions",
        "Permission bits of the channel's socket, which decide who may attach (default "
        "0600 = 384: owner only; 0660 = 432 lets the group attach too)",
        0, 0777, gstbips::kDefaultPerms, rw_ready);
    properties[PROP_MAX_WAIT] = g_param_spec_uint64(
        "max-wait", "Maximum wait",
        "Milliseconds the sink may wait for the consumers that hold it back (lossless "
        "readers behind, slots still held) before it drops the one that holds it back most; "
        "that consumer loses its unread frames and attaches again (bipssrc does so by "
        "itself). 0 = wait forever (strictly lossless: a stuck consumer stalls the sink)",
        0, gstbips::kMaxWaitLimitMs, gstbips::kDefaultMaxWaitMs, rw_ready);
    properties[PROP_MAX_CONSUMERS] = g_param_spec_uint(
        "max-consumers", "Maximum consumers",
        "How many consumers may attach to the channel at once; one more is refused with an "
        "error (TooManyConsumers) until one of them leaves. Each place costs a few bytes of "
        "the channel's memory",
        1, gstbips::kMaxConsumersLimit, gstbips::kDefaultMaxConsumers, rw_ready);
    properties[PROP_ALLOW_COPY] = g_param_spec_boolean(
        "allow-copy", "Allow copy",
        "Copy buffers that are not slots of this channel into a slot (counted in stats as "
        "'copied'); if false such a buffer is an error",
        TRUE, rw_playing);
    properties[PROP_WAIT_FOR_CONSUMER] = g_param_spec_boolean(
        "wait-for-consumer", "Wait for consumer",
        "Hold each buffer until at least one consumer is attached (returns promptly on "
        "flushing or a state change) instead of publishing to nobody",
        FALSE, rw_playing);
    properties[PROP_CONSUMERS] = g_param_spec_uint(
        "consumers", "Consumers",
        "Number of consumers attached to the channel now (notifies on change, polled every 50 "
        "ms)",
        0, G_MAXUINT, 0, ro);
    properties[PROP_STATS] = g_param_spec_boxed(
        "stats", "Statistics",
        "Counters: published, zero-copy, copied (guint64 frames), consumers (guint), channel, "
        "epoch, slots, slot-size, grown (channels recreated for bigger buffers), waited-ns, waiting-ns (time spent waiting for consumers), "
        "evicted, evicted-frames (consumers dropped past max-wait, frames they had not read), "
        "and GstBaseSink's rendered, dropped, average-rate",
        GST_TYPE_STRUCTURE, ro);
    g_object_class_install_properties(gobject_class, N_PROPERTIES, properties);

    /**
     * GstBipsSink::consumer-added:
     * @sink: the bipssink
     * @index: the consumer's entry in the channel's consumer table
     *
     * A consumer attached to the channel. Emitted from the element's
     * monitor thread, within about 50 ms.
     */
    signals[SIGNAL_CONSUMER_ADDED] =
        g_signal_new("consumer-added", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, nullptr,
                     nullptr, nullptr, G_TYPE_NONE, 1, G_TYPE_UINT);
    /**
     * GstBipsSink::consumer-removed:
     * @sink: the bipssink
     * @index: the consumer's entry in the channel's consumer table
     *
     * A consumer detached or died (its slots are reclaimed), or the channel
     * was closed or recreated. Emitted from the monitor thread.
     */
    signals[SIGNAL_CONSUMER_REMOVED] =
        g_signal_new("consumer-removed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                     nullptr, nullptr, nullptr, G_TYPE_NONE, 1, G_TYPE_UINT);

    gst_element_class_add_static_pad_template(element_class, &sink_template);
    gst_element_class_set_static_metadata(
        element_class, "bips shared-memory sink", "Sink/Video",
        "Publishes buffers as frames of a named shared-memory channel that other processes "
        "read without copying",
        "bips developers");

    basesink_class->start = gst_bips_sink_start;
    basesink_class->stop = gst_bips_sink_stop;
    basesink_class->set_caps = gst_bips_sink_set_caps;
    basesink_class->propose_allocation = gst_bips_sink_propose_allocation;
    basesink_class->render = gst_bips_sink_render;
    basesink_class->event = gst_bips_sink_event;
    basesink_class->unlock = gst_bips_sink_unlock;
    basesink_class->unlock_stop = gst_bips_sink_unlock_stop;

    GST_DEBUG_CATEGORY_INIT(gst_bips_sink_debug, "bipssink", 0, "bips shared-memory sink");
}
