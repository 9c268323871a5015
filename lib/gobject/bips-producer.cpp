// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: BipsProducer, a GObject over bips::Producer.
#include "bips-private.h"

#include <atomic>
#include <shared_mutex>

/**
 * BipsProducer:
 *
 * Creates and owns one channel: a GObject over the core's bips::Producer.
 * Make one with bips_producer_new(), or with g_object_new() and the
 * construct properties followed by g_initable_init().
 *
 * Ownership: the caller owns the producer. Each #BipsSlot it hands out holds
 * a reference on it, so the channel stays alive while any slot does. The
 * channel ends (consumers see the producer gone) when the producer is
 * finalized or bips_producer_close() succeeds.
 *
 * Thread-safety: every function may be called from any thread. acquire,
 * publish and discard are serialised by the core; a blocked acquire does
 * not stop publish or discard in other threads; bips_producer_close() and
 * bips_producer_interrupt() wake a blocked acquire. Bindings that must get
 * control back often wait in short slices through
 * bips_producer_poll_acquire(), which reports its outcome in values rather
 * than a #GError.
 */

namespace {

struct ProducerState {
    // Construct-only settings: written before g_initable_init(), read-only
    // afterwards.
    std::string name;
    // Defaults: the core's (ProducerOptions), also the properties'.
    guint slot_count = bips::ProducerOptions{}.slot_count;
    guint64 slot_size = 0;
    guint mode = bips::ProducerOptions{}.mode;
    guint max_consumers = bips::ProducerOptions{}.max_consumers;
    guint64 max_wait_ms = 2000; // 0: wait forever
    guint meta_size = bips::ProducerOptions{}.meta_capacity;

    // Shared by every call that uses `core`; exclusive while init() sets it
    // or close() destroys it. Never held by one call while it waits for
    // another lock.
    std::shared_mutex mu;
    std::unique_ptr<bips::Producer> core;
    bool closed = false;        // guarded by mu
    guint64 last_epoch = 0;     // guarded by mu: epoch and count kept at close
    guint64 last_published = 0; // guarded by mu

    // BipsSlot objects alive; close() refuses while any lives, because
    // bindings may still point into their memory.
    std::atomic<guint> live_slots{0};
};

enum {
    PROP_0,
    PROP_NAME,
    PROP_SLOT_COUNT,
    PROP_SLOT_SIZE,
    PROP_MODE,
    PROP_MAX_CONSUMERS,
    PROP_MAX_WAIT,
    PROP_META_SIZE,
    PROP_EPOCH,
    PROP_PUBLISHED,
    PROP_CONSUMER_COUNT,
    PROP_CLOSED,
    N_PROPERTIES
};

GParamSpec *properties[N_PROPERTIES];

// The max-wait property in the core's unit; a bound too large to express
// in nanoseconds is forever in practice.
std::chrono::nanoseconds max_wait_from_ms(guint64 ms)
{
    constexpr guint64 kMaxMs = static_cast<guint64>(G_MAXINT64) / 1000000;
    if (ms == 0 || ms > kMaxMs)
        return std::chrono::nanoseconds(0);
    return std::chrono::milliseconds(static_cast<gint64>(ms));
}

} // namespace

struct _BipsProducer {
    GObject parent_instance;
    ProducerState *state; // new in init, delete in finalize
};

static void bips_producer_initable_iface_init(GInitableIface *iface);

G_DEFINE_TYPE_WITH_CODE(BipsProducer, bips_producer, G_TYPE_OBJECT,
                        G_IMPLEMENT_INTERFACE(G_TYPE_INITABLE,
                                              bips_producer_initable_iface_init))

static gboolean bips_producer_initable_init(GInitable *initable, GCancellable *,
                                            GError **error)
{
    BipsProducer *self = BIPS_PRODUCER(initable);
    ProducerState &s = *self->state;
    std::unique_lock lock(s.mu);
    if (s.core)
        return TRUE;
    if (s.closed) {
        bips::gobject::set_misuse(error, "producer of channel '" + s.name + "' was closed");
        return FALSE;
    }
    bips::ProducerOptions options;
    options.slot_count = s.slot_count;
    options.slot_size = s.slot_size;
    options.mode = s.mode;
    options.max_consumers = s.max_consumers;
    options.max_wait = max_wait_from_ms(s.max_wait_ms);
    options.meta_capacity = s.meta_size;
    auto r = bips::Producer::create(s.name, options);
    if (!r) {
        bips::gobject::set_error(error, r.error());
        return FALSE;
    }
    s.core = std::move(r.value());
    return TRUE;
}

static void bips_producer_initable_iface_init(GInitableIface *iface)
{
    iface->init = bips_producer_initable_init;
}

static void bips_producer_finalize(GObject *object)
{
    BipsProducer *self = BIPS_PRODUCER(object);
    // No slot is alive here (each holds a reference), so nothing points
    // into the channel any more.
    delete self->state;
    self->state = nullptr;
    G_OBJECT_CLASS(bips_producer_parent_class)->finalize(object);
}

static void bips_producer_set_property(GObject *object, guint prop_id, const GValue *value,
                                       GParamSpec *pspec)
{
    ProducerState &s = *BIPS_PRODUCER(object)->state;
    // Construct-only: set before anyone else can see the object.
    switch (prop_id) {
    case PROP_NAME: {
        const gchar *name = g_value_get_string(value);
        s.name = name ? name : "";
        break;
    }
    case PROP_SLOT_COUNT:
        s.slot_count = g_value_get_uint(value);
        break;
    case PROP_SLOT_SIZE:
        s.slot_size = g_value_get_uint64(value);
        break;
    case PROP_MODE:
        s.mode = g_value_get_uint(value);
        break;
    case PROP_MAX_CONSUMERS:
        s.max_consumers = g_value_get_uint(value);
        break;
    case PROP_MAX_WAIT:
        s.max_wait_ms = g_value_get_uint64(value);
        break;
    case PROP_META_SIZE:
        s.meta_size = g_value_get_uint(value);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
}

static void bips_producer_get_property(GObject *object, guint prop_id, GValue *value,
                                       GParamSpec *pspec)
{
    BipsProducer *self = BIPS_PRODUCER(object);
    ProducerState &s = *self->state;
    switch (prop_id) {
    case PROP_NAME:
        g_value_set_string(value, s.name.c_str());
        break;
    case PROP_SLOT_COUNT:
        g_value_set_uint(value, s.slot_count);
        break;
    case PROP_SLOT_SIZE:
        g_value_set_uint64(value, s.slot_size);
        break;
    case PROP_MODE:
        g_value_set_uint(value, s.mode);
        break;
    case PROP_MAX_CONSUMERS:
        g_value_set_uint(value, s.max_consumers);
        break;
    case PROP_MAX_WAIT:
        g_value_set_uint64(value, s.max_wait_ms);
        break;
    case PROP_META_SIZE:
        g_value_set_uint(value, s.meta_size);
        break;
    case PROP_EPOCH:
        g_value_set_uint64(value, bips_producer_get_epoch(self));
        break;
    case PROP_PUBLISHED:
        g_value_set_uint64(value, bips_producer_get_published(self));
        break;
    case PROP_CONSUMER_COUNT:
        g_value_set_uint(value, bips_producer_get_consumer_count(self));
        break;
    case PROP_CLOSED:
        g_value_set_boolean(value, bips_producer_is_closed(self));
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
}

static void bips_producer_class_init(BipsProducerClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    object_class->finalize = bips_producer_finalize;
    object_class->set_property = bips_producer_set_property;
    object_class->get_property = bips_producer_get_property;

    const auto construct = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                                    G_PARAM_STATIC_STRINGS);
    const auto readable = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

    /**
     * BipsProducer:name:
     *
     * The channel name (1 to 200 characters from [A-Za-z0-9._-]).
     */
    properties[PROP_NAME] = g_param_spec_string("name", "Name", "Channel name", nullptr,
                                                construct);
    /**
     * BipsProducer:slot-count:
     *
     * How many slots the channel has (2 to 1024).
     */
    const bips::ProducerOptions defaults;
    properties[PROP_SLOT_COUNT] =
        g_param_spec_uint("slot-count", "Slot count", "Number of slots", bips::kMinSlotCount,
                          bips::kMaxSlotCount, defaults.slot_count, construct);
    /**
     * BipsProducer:slot-size:
     *
     * Bytes per slot; required (greater than 0).
     */
    properties[PROP_SLOT_SIZE] = g_param_spec_uint64("slot-size", "Slot size",
                                                     "Bytes per slot", 0, G_MAXUINT64, 0,
                                                     construct);
    /**
     * BipsProducer:mode:
     *
     * Permission bits of the channel's socket (default 0600: this user
     * only). Only users allowed to connect to it can attach as consumers.
     */
    properties[PROP_MODE] = g_param_spec_uint("mode", "Mode",
                                              "Permission bits of the channel socket", 0, 0777,
                                              0600, construct);
    /**
     * BipsProducer:max-consumers:
     *
     * How many consumers may attach at once (1 to 256).
     */
    properties[PROP_MAX_CONSUMERS] =
        g_param_spec_uint("max-consumers", "Max consumers", "Consumer entries of the channel",
                          1, bips::kMaxConsumerCount, defaults.max_consumers, construct);
    /**
     * BipsProducer:max-wait:
     *
     * Milliseconds the producer may wait for the consumers that hold it
     * back (lossless consumers behind, slots held) before it drops the one
     * that holds it back most; that consumer's next fails with
     * %BIPS_ERROR_PRODUCER_GONE, naming the reason, and it may reattach.
     * 0 waits forever (strict lossless). Default 2000.
     */
    properties[PROP_MAX_WAIT] = g_param_spec_uint64(
        "max-wait", "Max wait",
        "Milliseconds to wait for consumers that hold the producer back before dropping the "
        "worst one; 0 = wait forever",
        0, G_MAXUINT64, 2000, construct);
    /**
     * BipsProducer:meta-size:
     *
     * Bytes of metadata each frame may carry (0 to 65536): what
     * bips_producer_publish_with_metas() sends. Default 16384, as bipssink.
     */
    properties[PROP_META_SIZE] = g_param_spec_uint(
        "meta-size", "Metadata size", "Bytes of metadata each frame may carry", 0,
        bips::kMaxMetaCapacity, defaults.meta_capacity, construct);
    /**
     * BipsProducer:epoch:
     *
     * The channel's producer epoch: the producer's creation time in
     * microseconds, so a producer that takes a channel over has a greater
     * one.
     */
    properties[PROP_EPOCH] = g_param_spec_uint64("epoch", "Epoch", "Producer epoch", 0,
                                                 G_MAXUINT64, 0, readable);
    /**
     * BipsProducer:published:
     *
     * Frames published in this epoch.
     */
    properties[PROP_PUBLISHED] = g_param_spec_uint64("published", "Published",
                                                     "Frames published", 0, G_MAXUINT64, 0,
                                                     readable);
    /**
     * BipsProducer:consumer-count:
     *
     * Consumers attached now.
     */
    properties[PROP_CONSUMER_COUNT] = g_param_spec_uint(
        "consumer-count", "Consumer count", "Consumers attached now", 0, G_MAXUINT, 0, readable);
    /**
     * BipsProducer:closed:
     *
     * Whether bips_producer_close() ended the channel.
     */
    properties[PROP_CLOSED] = g_param_spec_boolean("closed", "Closed", "The channel was closed",
                                                   FALSE, readable);
    g_object_class_install_properties(object_class, N_PROPERTIES, properties);
}

static void bips_producer_init(BipsProducer *self)
{
    self->state = new ProducerState();
}

namespace {

// The misuse error of a producer that is closed or was never initialised.
// Caller holds s.mu and has found s.core unset.
bips::Error not_open(const ProducerState &s)
{
    return bips::make_error(bips::Errc::InvalidArgument,
                            s.closed ? "producer of channel '" + s.name + "' was closed"
                                     : std::string("producer was not initialised; use "
                                                   "bips_producer_new()"));
}

// Fails with a misuse error unless the producer is initialised and open.
// Caller holds s.mu (shared or exclusive).
bool check_open(const ProducerState &s, GError **error)
{
    if (s.core)
        return true;
    bips::gobject::set_error(error, not_open(s));
    return false;
}

// The body of acquire() and poll_acquire(): a new slot, or the error.
bips::Result<BipsSlot *> acquire_slot(BipsProducer *self, gint64 timeout_ms)
{
    ProducerState &s = *self->state;
    std::shared_lock lock(s.mu);
    if (!s.core)
        return not_open(s);
    auto r = s.core->acquire(bips::gobject::timeout_from_ms(timeout_ms));
    if (!r)
        return r.error();
    s.live_slots.fetch_add(1, std::memory_order_acq_rel);
    return bips_slot_new_internal(self, r.value());
}

} // namespace

/**
 * bips_producer_new:
 * @channel: the channel name (1 to 200 characters from [A-Za-z0-9._-])
 * @slot_count: number of slots, 2 to 1024
 * @slot_size: bytes per slot (the largest frame), greater than 0
 * @mode: permission bits of the channel's socket, e.g. 0600
 * @error: return location for a #BIPS_ERROR error
 *
 * Creates channel @channel: its socket (see bips_channel_path()) and its
 * shared memory, all reserved now, so too little memory fails here
 * (%BIPS_ERROR_NO_SPACE, naming the sizes) rather than later. If the
 * channel's previous producer died, this one takes the channel over under a
 * new, greater epoch. The other options (#BipsProducer:max-consumers,
 * #BipsProducer:max-wait) keep their defaults; set them with
 * g_object_new() and g_initable_init(). Fails with %BIPS_ERROR_BUSY while a live
 * producer owns the name, %BIPS_ERROR_INVALID_NAME for a bad name,
 * %BIPS_ERROR_INVALID_ARGUMENT for bad sizes.
 *
 * Returns: (transfer full) (nullable): the producer, or %NULL with @error set
 */
BipsProducer *bips_producer_new(const gchar *channel, guint slot_count, guint64 slot_size,
                                guint mode, GError **error)
{
    g_return_val_if_fail(channel != nullptr, nullptr);
    return static_cast<BipsProducer *>(g_initable_new(BIPS_TYPE_PRODUCER, nullptr, error,
                                                      "name", channel, "slot-count",
                                                      slot_count, "slot-size", slot_size,
                                                      "mode", mode, nullptr));
}

/**
 * bips_producer_acquire:
 * @self: a #BipsProducer
 * @timeout_ms: how long to wait for a free slot; 0 never blocks, negative
 *   waits forever
 * @error: return location for a #BIPS_ERROR error
 *
 * Takes a free slot to write a frame into. Waits while lossless consumers
 * hold every slot (reclaiming the slots of consumers that died meanwhile);
 * once it has waited longer than #BipsProducer:max-wait, it drops the
 * consumer that holds it back most and takes the slot that frees.
 * Fails with %BIPS_ERROR_WOULD_BLOCK (timeout 0, nothing free),
 * %BIPS_ERROR_TIMEOUT, or %BIPS_ERROR_BUSY after bips_producer_interrupt().
 *
 * Returns: (transfer full) (nullable): the slot, to be published or
 *   discarded; %NULL with @error set on failure
 */
BipsSlot *bips_producer_acquire(BipsProducer *self, gint64 timeout_ms, GError **error)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), nullptr);
    auto r = acquire_slot(self, timeout_ms);
    if (!r) {
        bips::gobject::set_error(error, r.error());
        return nullptr;
    }
    return r.value();
}

/**
 * bips_producer_poll_acquire:
 * @self: a #BipsProducer
 * @timeout_ms: how long to wait for a free slot; 0 never blocks, negative
 *   waits forever
 * @out_code: (out) (optional): 0, or the #BipsError code of a failure
 * @out_message: (out) (optional) (nullable) (transfer full): %NULL with a
 *   slot; else the text of the failure, or of the timeout when no slot
 *   came free in time. Free it with g_free().
 *
 * bips_producer_acquire() with its outcome in values, never a #GError,
 * for language bindings that wait in short slices (see
 * bips_consumer_poll_next()). A positive wait that runs out returns %NULL
 * with @out_code 0; #BipsProducer:max-wait counts the whole time the
 * producer has been held back, over any number of such calls. Failures are
 * those of bips_producer_acquire() (%BIPS_ERROR_WOULD_BLOCK for a
 * @timeout_ms of 0, %BIPS_ERROR_BUSY once interrupted). Any thread.
 *
 * Returns: (transfer full) (nullable): the slot, to be published or
 *   discarded; or %NULL
 */
BipsSlot *bips_producer_poll_acquire(BipsProducer *self, gint64 timeout_ms, gint *out_code,
                                     gchar **out_message)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), nullptr);
    auto r = acquire_slot(self, timeout_ms);
    if (!r) {
        bips::gobject::poll_failed(out_code, out_message, r.error(),
                                   r.code() == bips::Errc::Timeout);
        return nullptr;
    }
    bips::gobject::poll_succeeded(out_code, out_message);
    return r.value();
}

/**
 * bips_producer_publish:
 * @self: a #BipsProducer
 * @slot: a pending slot acquired from @self
 * @size: bytes of the slot that hold the frame (at most its capacity)
 * @pts: presentation time, or %BIPS_TIME_NONE (the convention of bips is
 *   absolute CLOCK_MONOTONIC nanoseconds, like GStreamer's system clock)
 * @dts: decoding time, or %BIPS_TIME_NONE
 * @duration: duration, or %BIPS_TIME_NONE
 * @flags: frame flags; only %BIPS_FRAME_FLAG_USER_MASK bits are the
 *   application's
 * @error: return location for a #BIPS_ERROR error
 *
 * Publishes @slot's first @size bytes to every consumer. Afterwards the
 * slot memory belongs to the channel: do not write to it again. Fails with
 * %BIPS_ERROR_INVALID_ARGUMENT if @slot is not pending (already published
 * or discarded), belongs to another producer, or @size is too large; the
 * slot stays pending after a failed publish of a too-large size.
 *
 * Returns: %TRUE on success
 */
// Publishes `slot` with `meta` (an encoded blob, may be empty); see
// bips_producer_publish().
static gboolean publish_slot(BipsProducer *self, BipsSlot *slot, const bips::FrameInfo &info,
                             std::span<const std::byte> meta, GError **error)
{
    ProducerState &s = *self->state;
    std::shared_lock lock(s.mu);
    if (!check_open(s, error))
        return FALSE;
    bips::WriteSlot ws;
    if (!bips_slot_begin_use(slot, self, &ws)) {
        bips::gobject::set_misuse(error, "slot " + std::to_string(bips_slot_get_index(slot)) +
                                             " of channel '" + s.name +
                                             "' is not pending: it was already published or "
                                             "discarded, or belongs to another producer");
        return FALSE;
    }
    auto r = s.core->publish(ws, info, meta);
    bips_slot_end_use(slot, r.ok());
    if (!r) {
        bips::gobject::set_error(error, r.error());
        return FALSE;
    }
    return TRUE;
}

static bips::FrameInfo frame_info(guint64 size, guint64 pts, guint64 dts, guint64 duration,
                                  guint32 flags)
{
    bips::FrameInfo info;
    info.size = size;
    info.pts = pts;
    info.dts = dts;
    info.duration = duration;
    info.flags = flags;
    return info;
}

gboolean bips_producer_publish(BipsProducer *self, BipsSlot *slot, guint64 size, guint64 pts,
                               guint64 dts, guint64 duration, guint32 flags, GError **error)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), FALSE);
    g_return_val_if_fail(BIPS_IS_SLOT(slot), FALSE);
    return publish_slot(self, slot, frame_info(size, pts, dts, duration, flags), {}, error);
}

/**
 * bips_producer_publish_with_metas:
 * @self: a #BipsProducer
 * @slot: a pending slot acquired from @self
 * @size: bytes of the slot that hold the frame (at most its capacity)
 * @pts: presentation time, or %BIPS_TIME_NONE
 * @dts: decoding time, or %BIPS_TIME_NONE
 * @duration: duration, or %BIPS_TIME_NONE
 * @flags: frame flags (see bips_producer_publish())
 * @metas: (nullable): a vardict (`a{sv}`) of what the frame carries, in
 *   the forms of bips_frame_get_metas(): `offset`, `offset-end`, `regions`
 *   and `custom` (field values `b`, `i`, `u`, `x`, `t`, `d` or `s`); a
 *   floating reference is sunk
 * @error: return location for a #BIPS_ERROR error
 *
 * bips_producer_publish() with metadata, which consumers read with
 * bips_frame_get_metas() and bipssrc attaches as
 * GstVideoRegionOfInterestMeta and GstCustomMeta. Fails with
 * %BIPS_ERROR_INVALID_ARGUMENT, the slot staying pending, for a key or
 * value it cannot carry, an invalid name, or metadata larger than
 * #BipsProducer:meta-size (the message gives the sizes).
 *
 * Returns: %TRUE on success
 */
gboolean bips_producer_publish_with_metas(BipsProducer *self, BipsSlot *slot, guint64 size,
                                          guint64 pts, guint64 dts, guint64 duration,
                                          guint32 flags, GVariant *metas, GError **error)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), FALSE);
    g_return_val_if_fail(BIPS_IS_SLOT(slot), FALSE);
    g_return_val_if_fail(!metas || g_variant_is_of_type(metas, G_VARIANT_TYPE_VARDICT), FALSE);
    bips::FrameMeta m;
    std::string why;
    if (metas) {
        g_variant_ref_sink(metas);
        const bool ok = bips::gobject::metas_from_variant(metas, &m, &why);
        g_variant_unref(metas);
        if (!ok) {
            bips::gobject::set_misuse(error, why);
            return FALSE;
        }
    }
    auto blob = bips::encode_frame_meta(m, self->state->meta_size);
    if (!blob) {
        bips::gobject::set_error(error, blob.error());
        return FALSE;
    }
    return publish_slot(self, slot, frame_info(size, pts, dts, duration, flags), *blob, error);
}

/**
 * bips_producer_discard:
 * @self: a #BipsProducer
 * @slot: a slot acquired from @self
 *
 * Gives @slot back unpublished. Finalizing a pending slot does the same.
 *
 * Returns: %TRUE if the slot was pending and is now discarded; %FALSE if it
 *   was already published or discarded, or is not @self's
 */
gboolean bips_producer_discard(BipsProducer *self, BipsSlot *slot)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), FALSE);
    g_return_val_if_fail(BIPS_IS_SLOT(slot), FALSE);
    ProducerState &s = *self->state;
    std::shared_lock lock(s.mu);
    bips::WriteSlot ws;
    if (!s.core || !bips_slot_begin_use(slot, self, &ws))
        return FALSE;
    s.core->discard(ws);
    bips_slot_end_use(slot, TRUE);
    return TRUE;
}

void bips_producer_forget_slot(BipsProducer *self, const bips::WriteSlot &slot,
                               gboolean pending)
{
    ProducerState &s = *self->state;
    {
        std::shared_lock lock(s.mu);
        // close() refuses while this slot is counted, so core is set.
        if (pending && s.core)
            s.core->discard(slot);
    }
    s.live_slots.fetch_sub(1, std::memory_order_acq_rel);
}

/**
 * bips_producer_set_stream_info:
 * @self: a #BipsProducer
 * @info: the stream info: for video, GStreamer caps such as
 *   "video/x-raw,format=RGBA,width=640,height=480,framerate=30/1"
 * @error: return location for a #BIPS_ERROR error
 *
 * Replaces the stream info; frames published after this call carry it, and
 * consumers (bipssrc, the Python package) read the format from it.
 *
 * Returns: %TRUE on success; %FALSE with %BIPS_ERROR_INVALID_ARGUMENT if
 *   @info is longer than the channel's capacity
 */
gboolean bips_producer_set_stream_info(BipsProducer *self, const gchar *info, GError **error)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), FALSE);
    g_return_val_if_fail(info != nullptr, FALSE);
    ProducerState &s = *self->state;
    std::shared_lock lock(s.mu);
    if (!check_open(s, error))
        return FALSE;
    auto r = s.core->set_stream_info(info);
    if (!r) {
        bips::gobject::set_error(error, r.error());
        return FALSE;
    }
    return TRUE;
}

/**
 * bips_producer_end_of_stream:
 * @self: a #BipsProducer
 * @error: return location for a #BIPS_ERROR error
 *
 * Publishes an end-of-stream marker after the frames published so far;
 * each consumer's next() reports %BIPS_ERROR_END_OF_STREAM once, in order.
 *
 * Returns: %TRUE on success; %FALSE if the producer was closed
 */
gboolean bips_producer_end_of_stream(BipsProducer *self, GError **error)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), FALSE);
    ProducerState &s = *self->state;
    std::shared_lock lock(s.mu);
    if (!check_open(s, error))
        return FALSE;
    s.core->end_of_stream();
    return TRUE;
}

/**
 * bips_producer_interrupt:
 * @self: a #BipsProducer
 *
 * Makes a blocked bips_producer_acquire() fail with %BIPS_ERROR_BUSY
 * promptly, and every later one until bips_producer_resume().
 */
void bips_producer_interrupt(BipsProducer *self)
{
    g_return_if_fail(BIPS_IS_PRODUCER(self));
    ProducerState &s = *self->state;
    std::shared_lock lock(s.mu);
    if (s.core)
        s.core->interrupt();
}

/**
 * bips_producer_resume:
 * @self: a #BipsProducer
 *
 * Undoes bips_producer_interrupt().
 */
void bips_producer_resume(BipsProducer *self)
{
    g_return_if_fail(BIPS_IS_PRODUCER(self));
    ProducerState &s = *self->state;
    std::shared_lock lock(s.mu);
    if (s.core)
        s.core->resume();
}

/**
 * bips_producer_reap_dead_consumers:
 * @self: a #BipsProducer
 *
 * Consumers that die are dropped (their entries and held slots freed) by
 * the producer as soon as the kernel reports the death; this waits until
 * every death before the call has been handled.
 *
 * Returns: how many consumers died since the previous call
 */
guint bips_producer_reap_dead_consumers(BipsProducer *self)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), 0);
    ProducerState &s = *self->state;
    std::shared_lock lock(s.mu);
    return s.core ? s.core->reap_dead_consumers() : 0;
}

/**
 * bips_producer_close:
 * @self: a #BipsProducer
 * @error: return location for a #BIPS_ERROR error
 *
 * Ends the channel now rather than on finalize: wakes a blocked acquire,
 * marks the channel closed (consumers see %BIPS_ERROR_PRODUCER_GONE once
 * they have read what was published) and removes its name. Refused with
 * %BIPS_ERROR_BUSY while any #BipsSlot of this producer is still alive,
 * because its memory may still be in use. Closing twice is not an error.
 *
 * Returns: %TRUE if the producer is closed
 */
gboolean bips_producer_close(BipsProducer *self, GError **error)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), FALSE);
    ProducerState &s = *self->state;
    const auto busy = [&](guint n) {
        g_set_error(error, BIPS_ERROR, BIPS_ERROR_BUSY,
                    "cannot close channel '%s': %u slot object(s) still alive; publish or "
                    "discard them and drop every reference first",
                    s.name.c_str(), n);
        return FALSE;
    };
    if (guint n = s.live_slots.load(std::memory_order_acquire); n > 0)
        return busy(n);
    {
        std::shared_lock lock(s.mu);
        if (s.core)
            s.core->interrupt(); // so a blocked acquire gives up its shared lock
    }
    std::unique_lock lock(s.mu);
    if (!s.core) {
        s.closed = true;
        return TRUE;
    }
    if (guint n = s.live_slots.load(std::memory_order_acquire); n > 0) {
        s.core->resume();
        return busy(n);
    }
    s.last_epoch = s.core->epoch();
    s.last_published = s.core->published();
    s.core.reset();
    s.closed = true;
    return TRUE;
}

/**
 * bips_producer_is_closed:
 * @self: a #BipsProducer
 *
 * Whether the producer was closed.
 *
 * Returns: %TRUE once bips_producer_close() succeeded
 */
gboolean bips_producer_is_closed(BipsProducer *self)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), TRUE);
    std::shared_lock lock(self->state->mu);
    return self->state->closed;
}

/**
 * bips_producer_get_name:
 * @self: a #BipsProducer
 *
 * The channel this producer owns.
 *
 * Returns: (transfer none): the channel name, owned by @self
 */
const gchar *bips_producer_get_name(BipsProducer *self)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), nullptr);
    return self->state->name.c_str();
}

/**
 * bips_producer_get_epoch:
 * @self: a #BipsProducer
 *
 * The channel's producer epoch.
 *
 * Returns: the channel's producer epoch (kept after close)
 */
guint64 bips_producer_get_epoch(BipsProducer *self)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), 0);
    ProducerState &s = *self->state;
    std::shared_lock lock(s.mu);
    return s.core ? s.core->epoch() : s.last_epoch;
}

/**
 * bips_producer_get_published:
 * @self: a #BipsProducer
 *
 * How many frames this producer published.
 *
 * Returns: frames published in this epoch (kept after close)
 */
guint64 bips_producer_get_published(BipsProducer *self)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), 0);
    ProducerState &s = *self->state;
    std::shared_lock lock(s.mu);
    return s.core ? s.core->published() : s.last_published;
}

/**
 * bips_producer_get_slot_count:
 * @self: a #BipsProducer
 *
 * The channel's slot count.
 *
 * Returns: the number of slots of the channel
 */
guint bips_producer_get_slot_count(BipsProducer *self)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), 0);
    return self->state->slot_count;
}

/**
 * bips_producer_get_slot_size:
 * @self: a #BipsProducer
 *
 * The channel's slot size.
 *
 * Returns: bytes per slot
 */
guint64 bips_producer_get_slot_size(BipsProducer *self)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), 0);
    ProducerState &s = *self->state;
    std::shared_lock lock(s.mu);
    return s.core ? s.core->slot_size() : s.slot_size;
}

/**
 * bips_producer_get_consumer_count:
 * @self: a #BipsProducer
 *
 * How many consumers are attached.
 *
 * Returns: consumers attached now (dead ones reaped first); 0 once closed
 */
guint bips_producer_get_consumer_count(BipsProducer *self)
{
    g_return_val_if_fail(BIPS_IS_PRODUCER(self), 0);
    ProducerState &s = *self->state;
    std::shared_lock lock(s.mu);
    return s.core ? s.core->consumer_count() : 0;
}
