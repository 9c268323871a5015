// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: BipsConsumer, a GObject over bips::Consumer.
#include "bips-private.h"

#include <atomic>
#include <mutex>
#include <utility>

/**
 * BipsConsumer:
 *
 * Reads one channel: a GObject over the core's bips::Consumer. Make one
 * with bips_consumer_new(), or with g_object_new() and the construct
 * properties followed by g_initable_init().
 *
 * Ownership: the caller owns the consumer; each #BipsFrame it returns is
 * owned by the caller too and stays valid after the consumer is closed or
 * finalized (a frame keeps the channel mapped until it is released).
 *
 * Thread-safety: every function may be called from any thread. next(),
 * reattach() and close() (and their poll variants) are serialised (one
 * waits for the other); bips_consumer_interrupt() wakes a blocked next()
 * or reattach(). Counters and the stream info are snapshots taken after
 * each next() or reattach(), so reading them never waits for a blocked
 * next().
 *
 * Bindings whose runtime must get control back often (Python handles
 * Ctrl-C only between calls) wait in short slices through
 * bips_consumer_poll_attach(), bips_consumer_poll_next() and
 * bips_consumer_poll_reattach(), which report their outcome in values
 * rather than a #GError.
 */

namespace {

struct ConsumerState {
    // Construct-only settings: written before g_initable_init(), read-only
    // afterwards.
    std::string name;
    BipsPolicy policy = BIPS_POLICY_LOSSLESS;
    gint64 timeout_ms = 0;
    guint64 spin_ns = 0;
    guint64 anticipate_ns = 0;
    guint max_held = 0; // 0: the core's default; G_MAXUINT: no limit

    // Lock order: read_mu, then state_mu.
    // read_mu serialises the calls that use the core's reading side (next,
    // reattach, init, close); it is held while next() blocks.
    std::mutex read_mu;
    // The BipsFrame the next frame will be handed out in, made before
    // next() waits (owned; guarded by read_mu; never seen outside).
    BipsFrame *spare_frame = nullptr;
    // state_mu guards `core` for interrupt() and the snapshot below; never
    // held while blocking. `core` changes only with both locks held.
    std::mutex state_mu;
    std::unique_ptr<bips::Consumer> core;
    bool closed = false;
    // Set by interrupt(), cleared by resume(), both under state_mu, like
    // the core's own flag: tells a poll whose wait ended in Timeout whether
    // it was interrupted (a failure) or ran out (nothing yet). Set before
    // the core is interrupted, so a wait that the interrupt ends sees it.
    std::atomic<bool> interrupted{false};
    bips::gobject::SharedInfo info; // stream info of the last frame
    guint64 info_generation = 0;
    guint64 epoch = 0;
    guint64 received = 0;
    guint64 skipped = 0;
    guint64 map_address = 0;
    guint64 map_size = 0;
    guint64 next_due_ns = 0; // CLOCK_MONOTONIC ns; 0: unknown
    // The layout of the last frame poll_next_into() filled and its id;
    // the id grows by one whenever the layout differs (each id names one
    // layout, even with several threads reading).
    bips::gobject::FrameLayoutKey last_layout;
    guint64 layout_id = 0;

    // Caller holds read_mu (the core is not being read by another thread)
    // and state_mu. `reattached`: the core moved to another producer, whose
    // generations may repeat the old one's numbers.
    void refresh_locked(bool reattached = false)
    {
        if (!core)
            return;
        if (reattached || !info || info_generation != core->stream_info_generation()) {
            info = std::make_shared<const std::string>(core->stream_info());
            info_generation = core->stream_info_generation();
        }
        epoch = core->epoch();
        received = core->received();
        skipped = core->skipped();
        const auto map = core->data_mapping();
        map_address = reinterpret_cast<guintptr>(map.data());
        map_size = map.size();
        next_due_ns = 0;
        if (const auto due = core->next_due()) {
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                due->time_since_epoch());
            next_due_ns = static_cast<guint64>(ns.count());
        }
    }
};

enum {
    PROP_0,
    PROP_NAME,
    PROP_POLICY,
    PROP_TIMEOUT_MS,
    PROP_SPIN_NS,
    PROP_ANTICIPATE_NS,
    PROP_MAX_HELD,
    PROP_EPOCH,
    PROP_RECEIVED,
    PROP_SKIPPED,
    PROP_STREAM_INFO,
    PROP_CLOSED,
    N_PROPERTIES
};

GParamSpec *properties[N_PROPERTIES];

} // namespace

struct _BipsConsumer {
    GObject parent_instance;
    ConsumerState *state; // new in init, delete in finalize
};

static void bips_consumer_initable_iface_init(GInitableIface *iface);

G_DEFINE_TYPE_WITH_CODE(BipsConsumer, bips_consumer, G_TYPE_OBJECT,
                        G_IMPLEMENT_INTERFACE(G_TYPE_INITABLE,
                                              bips_consumer_initable_iface_init))

namespace {

// Attaches to the channel unless attached already, waiting up to
// `timeout_ms` for a live producer. Any thread (serialised by read_mu).
bips::Result<void> attach_core(ConsumerState &s, gint64 timeout_ms)
{
    std::lock_guard read_lock(s.read_mu);
    if (s.core)
        return {};
    if (s.closed)
        return bips::make_error(bips::Errc::InvalidArgument,
                                "consumer of channel '" + s.name + "' was closed");
    bips::ConsumerOptions options;
    options.policy = static_cast<bips::Policy>(s.policy);
    options.spin = std::chrono::nanoseconds(
        std::min<guint64>(s.spin_ns, static_cast<guint64>(G_MAXINT64)));
    options.anticipate = std::chrono::nanoseconds(
        std::min<guint64>(s.anticipate_ns, static_cast<guint64>(G_MAXINT64)));
    options.max_held = s.max_held == G_MAXUINT ? bips::kUnlimitedHeld : s.max_held;
    auto r = bips::Consumer::attach(s.name, options, bips::gobject::timeout_from_ms(timeout_ms));
    if (!r)
        return r.error();
    std::lock_guard state_lock(s.state_mu);
    s.core = std::move(r.value());
    s.refresh_locked();
    return {};
}

} // namespace

static gboolean bips_consumer_initable_init(GInitable *initable, GCancellable *,
                                            GError **error)
{
    ConsumerState &s = *BIPS_CONSUMER(initable)->state;
    auto r = attach_core(s, s.timeout_ms);
    if (!r) {
        bips::gobject::set_error(error, r.error());
        return FALSE;
    }
    return TRUE;
}

static void bips_consumer_initable_iface_init(GInitableIface *iface)
{
    iface->init = bips_consumer_initable_init;
}

static void bips_consumer_finalize(GObject *object)
{
    BipsConsumer *self = BIPS_CONSUMER(object);
    // Frames handed out keep their own reference to the mapping.
    g_clear_object(&self->state->spare_frame);
    delete self->state;
    self->state = nullptr;
    G_OBJECT_CLASS(bips_consumer_parent_class)->finalize(object);
}

static void bips_consumer_set_property(GObject *object, guint prop_id, const GValue *value,
                                       GParamSpec *pspec)
{
    ConsumerState &s = *BIPS_CONSUMER(object)->state;
    // Construct-only: set before anyone else can see the object.
    switch (prop_id) {
    case PROP_NAME: {
        const gchar *name = g_value_get_string(value);
        s.name = name ? name : "";
        break;
    }
    case PROP_POLICY:
        s.policy = static_cast<BipsPolicy>(g_value_get_enum(value));
        break;
    case PROP_TIMEOUT_MS:
        s.timeout_ms = g_value_get_int64(value);
        break;
    case PROP_SPIN_NS:
        s.spin_ns = g_value_get_uint64(value);
        break;
    case PROP_ANTICIPATE_NS:
        s.anticipate_ns = g_value_get_uint64(value);
        break;
    case PROP_MAX_HELD:
        s.max_held = g_value_get_uint(value);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
}

static void bips_consumer_get_property(GObject *object, guint prop_id, GValue *value,
                                       GParamSpec *pspec)
{
    BipsConsumer *self = BIPS_CONSUMER(object);
    ConsumerState &s = *self->state;
    switch (prop_id) {
    case PROP_NAME:
        g_value_set_string(value, s.name.c_str());
        break;
    case PROP_POLICY:
        g_value_set_enum(value, s.policy);
        break;
    case PROP_TIMEOUT_MS:
        g_value_set_int64(value, s.timeout_ms);
        break;
    case PROP_SPIN_NS:
        g_value_set_uint64(value, s.spin_ns);
        break;
    case PROP_ANTICIPATE_NS:
        g_value_set_uint64(value, s.anticipate_ns);
        break;
    case PROP_MAX_HELD:
        g_value_set_uint(value, s.max_held);
        break;
    case PROP_EPOCH:
        g_value_set_uint64(value, bips_consumer_get_epoch(self));
        break;
    case PROP_RECEIVED:
        g_value_set_uint64(value, bips_consumer_get_received(self));
        break;
    case PROP_SKIPPED:
        g_value_set_uint64(value, bips_consumer_get_skipped(self));
        break;
    case PROP_STREAM_INFO:
        g_value_take_string(value, bips_consumer_dup_stream_info(self));
        break;
    case PROP_CLOSED:
        g_value_set_boolean(value, bips_consumer_is_closed(self));
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
}

static void bips_consumer_class_init(BipsConsumerClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    object_class->finalize = bips_consumer_finalize;
    object_class->set_property = bips_consumer_set_property;
    object_class->get_property = bips_consumer_get_property;

    const auto construct = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                                    G_PARAM_STATIC_STRINGS);
    const auto readable = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

    /**
     * BipsConsumer:name:
     *
     * The channel name.
     */
    properties[PROP_NAME] = g_param_spec_string("name", "Name", "Channel name", nullptr,
                                                construct);
    /**
     * BipsConsumer:policy:
     *
     * How this consumer reads (see #BipsPolicy).
     */
    properties[PROP_POLICY] = g_param_spec_enum("policy", "Policy", "Reading policy",
                                                BIPS_TYPE_POLICY, BIPS_POLICY_LOSSLESS,
                                                construct);
    /**
     * BipsConsumer:timeout-ms:
     *
     * How long g_initable_init() waits for a live producer, in
     * milliseconds; negative waits forever, 0 tries once.
     */
    properties[PROP_TIMEOUT_MS] =
        g_param_spec_int64("timeout-ms", "Attach timeout", "Wait for a producer (ms)",
                           G_MININT64, G_MAXINT64, 0, construct);
    /**
     * BipsConsumer:spin-ns:
     *
     * Busy-wait this many nanoseconds for a frame before sleeping: trades
     * CPU for wake-up latency. 0 sleeps at once.
     */
    properties[PROP_SPIN_NS] = g_param_spec_uint64("spin-ns", "Spin", "Busy-wait before sleeping",
                                                   0, G_MAXUINT64, 0, construct);
    /**
     * BipsConsumer:anticipate-ns:
     *
     * For paced streams: wake this many nanoseconds before the next frame
     * is due (judging by recent frame intervals) and busy-wait for it, so
     * the reader is not asleep when it arrives. Costs up to about twice
     * this much CPU time per frame. 0 disables it.
     */
    properties[PROP_ANTICIPATE_NS] =
        g_param_spec_uint64("anticipate-ns", "Anticipate", "Wake before the next frame is due",
                            0, G_MAXUINT64, 0, construct);
    /**
     * BipsConsumer:max-held:
     *
     * How many frames this consumer may hold at once (frames not yet
     * released, including those a NumPy view keeps alive). Each keeps its
     * slot from the producer; past the limit the next read fails with
     * %BIPS_ERROR_TOO_MANY_HELD and takes nothing. 0 takes the default,
     * (slots - 2) / 3 and at least 2 (so that a program may keep the
     * previous frame while it reads the next); %G_MAXUINT removes the limit.
     */
    properties[PROP_MAX_HELD] =
        g_param_spec_uint("max-held", "Max held", "Frames this consumer may hold at once",
                          0, G_MAXUINT, 0, construct);
    /**
     * BipsConsumer:epoch:
     *
     * The epoch of the producer this consumer is attached to.
     */
    properties[PROP_EPOCH] = g_param_spec_uint64("epoch", "Epoch", "Producer epoch", 0,
                                                 G_MAXUINT64, 0, readable);
    /**
     * BipsConsumer:received:
     *
     * Frames returned by next(), over all epochs.
     */
    properties[PROP_RECEIVED] = g_param_spec_uint64("received", "Received", "Frames received",
                                                    0, G_MAXUINT64, 0, readable);
    /**
     * BipsConsumer:skipped:
     *
     * Frames this consumer skipped, over all epochs: frames a latest
     * consumer passed over, and frames that failed validation.
     */
    properties[PROP_SKIPPED] = g_param_spec_uint64("skipped", "Skipped", "Frames skipped", 0,
                                                   G_MAXUINT64, 0, readable);
    /**
     * BipsConsumer:stream-info:
     *
     * The stream info of the last frame next() returned (before the first
     * frame: the channel's current stream info).
     */
    properties[PROP_STREAM_INFO] = g_param_spec_string("stream-info", "Stream info",
                                                       "Stream info (caps)", nullptr, readable);
    /**
     * BipsConsumer:closed:
     *
     * Whether bips_consumer_close() was called.
     */
    properties[PROP_CLOSED] = g_param_spec_boolean("closed", "Closed", "The consumer was closed",
                                                   FALSE, readable);
    g_object_class_install_properties(object_class, N_PROPERTIES, properties);
}

static void bips_consumer_init(BipsConsumer *self)
{
    self->state = new ConsumerState();
}

namespace {

// The misuse error of a consumer that is closed or was never attached.
// Caller holds read_mu and has found s.core unset.
bips::Error not_open(const ConsumerState &s)
{
    return bips::make_error(bips::Errc::InvalidArgument,
                            s.closed ? "consumer of channel '" + s.name + "' was closed"
                                     : std::string("consumer was not initialised; use "
                                                   "bips_consumer_new()"));
}

// The body of next(), poll_next() and poll_next_into(): the next frame in
// `into` (an empty frame of the caller's, which keeps its reference) or,
// without one, in a new frame (a new reference); or the error.
bips::Result<BipsFrame *> next_frame(ConsumerState &s, gint64 timeout_ms,
                                     BipsFrame *into = nullptr)
{
    std::lock_guard read_lock(s.read_mu);
    if (!s.core)
        return not_open(s);
    // Made before the wait, so that the wake-up does not pay for it.
    if (!into && !s.spare_frame)
        s.spare_frame = bips_frame_new();
    auto r = s.core->next(bips::gobject::timeout_from_ms(timeout_ms));
    bips::gobject::SharedInfo info;
    guint64 epoch;
    {
        std::lock_guard state_lock(s.state_mu);
        s.refresh_locked();
        info = s.info;
        epoch = s.epoch;
    }
    if (!r)
        return r.error();
    BipsFrame *frame = into ? into : std::exchange(s.spare_frame, nullptr);
    bips_frame_fill_internal(frame, std::move(r.value()), std::move(info), epoch);
    return frame;
}

// The body of reattach() and poll_reattach().
bips::Result<void> reattach_core(ConsumerState &s, gint64 timeout_ms)
{
    std::lock_guard read_lock(s.read_mu);
    if (!s.core)
        return not_open(s);
    auto r = s.core->reattach(bips::gobject::timeout_from_ms(timeout_ms));
    {
        std::lock_guard state_lock(s.state_mu);
        s.refresh_locked(true);
    }
    return r;
}

// Whether a failed next() or reattach() only ran out of time (a poll's
// "nothing yet") rather than being interrupted or failing.
bool ran_out(const ConsumerState &s, const bips::Error &e)
{
    return e.code == bips::Errc::Timeout && !s.interrupted.load(std::memory_order_seq_cst);
}

} // namespace

/**
 * bips_consumer_new:
 * @channel: the channel name
 * @policy: how to read (see #BipsPolicy)
 * @timeout_ms: how long to wait for a live producer; negative waits
 *   forever, 0 tries once
 * @error: return location for a #BIPS_ERROR error
 *
 * Attaches to channel @channel. Fails with %BIPS_ERROR_INVALID_NAME for a
 * bad name, %BIPS_ERROR_TIMEOUT when no producer came in time,
 * %BIPS_ERROR_PERMISSION_DENIED, %BIPS_ERROR_TOO_MANY_CONSUMERS,
 * %BIPS_ERROR_CORRUPT or %BIPS_ERROR_INCOMPATIBLE.
 *
 * Returns: (transfer full) (nullable): the consumer, or %NULL with @error set
 */
BipsConsumer *bips_consumer_new(const gchar *channel, BipsPolicy policy, gint64 timeout_ms,
                                GError **error)
{
    g_return_val_if_fail(channel != nullptr, nullptr);
    return static_cast<BipsConsumer *>(g_initable_new(BIPS_TYPE_CONSUMER, nullptr, error,
                                                      "name", channel, "policy", policy,
                                                      "timeout-ms", timeout_ms, nullptr));
}

/**
 * bips_consumer_poll_attach:
 * @self: a #BipsConsumer made with g_object_new() and not initialised yet
 * @timeout_ms: how long to wait for a live producer; negative waits
 *   forever, 0 tries once
 * @out_code: (out) (optional): 0, or the #BipsError code of a failure
 * @out_message: (out) (optional) (nullable) (transfer full): %NULL once
 *   attached; else the text of the failure, or of the timeout when no
 *   producer came in time. Free it with g_free().
 *
 * g_initable_init() with its outcome in values, for bindings that wait in
 * short slices (see bips_consumer_poll_next()): attaches to the channel
 * named by #BipsConsumer:name, waiting up to @timeout_ms rather than
 * #BipsConsumer:timeout-ms. Once it returns %TRUE the consumer is
 * initialised (g_initable_init() then succeeds at once). A wait that runs
 * out returns %FALSE with @out_code 0; failures are those of
 * bips_consumer_new(). Any thread.
 *
 * Returns: %TRUE once attached (also if it was already)
 */
gboolean bips_consumer_poll_attach(BipsConsumer *self, gint64 timeout_ms, gint *out_code,
                                   gchar **out_message)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), FALSE);
    auto r = attach_core(*self->state, timeout_ms);
    if (!r) {
        bips::gobject::poll_failed(out_code, out_message, r.error(),
                                   r.code() == bips::Errc::Timeout);
        return FALSE;
    }
    bips::gobject::poll_succeeded(out_code, out_message);
    return TRUE;
}

/**
 * bips_consumer_next:
 * @self: a #BipsConsumer
 * @timeout_ms: how long to wait for a frame; 0 does not wait, negative
 *   waits forever
 * @error: return location for a #BIPS_ERROR error
 *
 * The next frame for this consumer's policy. The frame's bytes are not
 * copied: the returned #BipsFrame points into the channel's shared memory
 * and holds its slot until released.
 *
 * Errors: %BIPS_ERROR_TIMEOUT (nothing in time, or interrupted);
 * %BIPS_ERROR_END_OF_STREAM (once per marker, in order with frames);
 * %BIPS_ERROR_PRODUCER_GONE (the producer exited or died and every frame
 * it published for this consumer was read, or it dropped this consumer for
 * holding it back longer than its #BipsProducer:max-wait; the message says
 * which: call bips_consumer_reattach()); %BIPS_ERROR_INVALID_ARGUMENT once
 * closed. A frame that fails validation is skipped and counted in
 * #BipsConsumer:skipped, never returned.
 *
 * Returns: (transfer full) (nullable): the frame, or %NULL with @error set
 */
BipsFrame *bips_consumer_next(BipsConsumer *self, gint64 timeout_ms, GError **error)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), nullptr);
    auto r = next_frame(*self->state, timeout_ms);
    if (!r) {
        bips::gobject::set_error(error, r.error());
        return nullptr;
    }
    return r.value();
}

/**
 * bips_consumer_poll_next:
 * @self: a #BipsConsumer
 * @timeout_ms: how long to wait for a frame; 0 does not wait, negative
 *   waits forever
 * @out_code: (out) (optional): 0, or the #BipsError code of a failure
 * @out_message: (out) (optional) (nullable) (transfer full): %NULL with a
 *   frame; else the text of the failure, or of the timeout when nothing
 *   came in time. Free it with g_free().
 *
 * bips_consumer_next() for language bindings that wait in short slices:
 * the outcome comes back in values, never as a #GError, and a wait that
 * runs out is not a failure. Python, for one, cannot turn a #GError into
 * an exception while a signal such as Ctrl-C is pending, and handles
 * signals only between calls; so the bips package waits in calls of at
 * most 100 ms and raises its own exceptions from @out_code.
 *
 * Outcomes: a frame (@out_code 0, @out_message %NULL); nothing in time
 * (%NULL, @out_code 0, @out_message the timeout's text); or a failure
 * (%NULL, @out_code and @out_message as bips_consumer_next() reports
 * them; an interrupted wait is %BIPS_ERROR_TIMEOUT). Any thread, like
 * bips_consumer_next().
 *
 * Returns: (transfer full) (nullable): the frame, or %NULL
 */
BipsFrame *bips_consumer_poll_next(BipsConsumer *self, gint64 timeout_ms, gint *out_code,
                                   gchar **out_message)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), nullptr);
    ConsumerState &s = *self->state;
    auto r = next_frame(s, timeout_ms);
    if (!r) {
        bips::gobject::poll_failed(out_code, out_message, r.error(), ran_out(s, r.error()));
        return nullptr;
    }
    bips::gobject::poll_succeeded(out_code, out_message);
    return r.value();
}

/**
 * bips_consumer_poll_next_into:
 * @self: a #BipsConsumer
 * @frame: an empty frame from bips_frame_new(), which receives the next
 *   frame
 * @timeout_ms: how long to wait for a frame; 0 does not wait, negative
 *   waits forever
 * @out_code: (out): 0, or the #BipsError code of a failure
 * @out_message: (out) (nullable) (transfer full): as for
 *   bips_consumer_poll_next()
 * @out_address: (out): where the frame's first byte is mapped (0 without
 *   a frame)
 * @out_size: (out): how many bytes the frame holds
 * @out_layout_id: (out): names the frame's layout: its stream info and its
 *   own video layout, as bips_frame_get_view() gives them (0 without a
 *   frame)
 *
 * bips_consumer_poll_next() into a frame the caller made beforehand, with
 * the frame's bytes and an id for its layout: for language bindings whose
 * calls cost more than the work they do (the Python package: each call
 * from Python through GObject-Introspection costs tens of microseconds
 * when the CPU caches are cold, as they are after a frame interval
 * asleep, and wrapping a new object costs as much again). Frames of this
 * consumer with the same layout id have the same layout, so a binding
 * calls bips_frame_get_view() only when the id changes, and keeps what it
 * built from the layout (array shapes, views prepared per slot) until
 * then.
 *
 * Outcomes as bips_consumer_poll_next(): %TRUE with @frame filled; or
 * %FALSE with @frame still empty, @out_code 0 and @out_message the
 * timeout's text when nothing came in time, or @out_code and @out_message
 * naming a failure, %BIPS_ERROR_INVALID_ARGUMENT for a @frame that was
 * already filled or that another call is filling (a frame is filled at
 * most once, so two threads can never get the same one). Until the call
 * returns, @frame's accessors must not be used by another thread.
 *
 * Returns: %TRUE when @frame now holds the next frame
 */
gboolean bips_consumer_poll_next_into(BipsConsumer *self, BipsFrame *frame, gint64 timeout_ms,
                                      gint *out_code, gchar **out_message,
                                      guint64 *out_address, guint64 *out_size,
                                      guint64 *out_layout_id)
{
    *out_address = *out_size = *out_layout_id = 0;
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), FALSE);
    g_return_val_if_fail(BIPS_IS_FRAME(frame), FALSE);
    ConsumerState &s = *self->state;
    if (!bips_frame_claim_internal(frame)) {
        bips::gobject::poll_failed(
            out_code, out_message,
            bips::Error{bips::Errc::InvalidArgument,
                        "bips_consumer_poll_next_into() needs an empty frame; this one holds a "
                        "frame already, or another call is filling it: make a new one with "
                        "bips_frame_new()"},
            false);
        return FALSE;
    }
    auto r = next_frame(s, timeout_ms, frame);
    if (!r) {
        bips_frame_unclaim_internal(frame);
        bips::gobject::poll_failed(out_code, out_message, r.error(), ran_out(s, r.error()));
        return FALSE;
    }
    bips::gobject::poll_succeeded(out_code, out_message);
    // Just filled and not yet returned: nobody else can have released it.
    bips_frame_get_data_region(frame, out_address, out_size, nullptr);
    bips::gobject::FrameLayoutKey key = bips_frame_layout_key_internal(frame);
    std::lock_guard state_lock(s.state_mu);
    if (s.layout_id == 0 || !(key == s.last_layout)) {
        s.last_layout = std::move(key);
        s.layout_id++;
    }
    *out_layout_id = s.layout_id;
    return TRUE;
}

/**
 * bips_consumer_reattach:
 * @self: a #BipsConsumer
 * @timeout_ms: how long to wait for a new producer; negative waits
 *   forever, 0 tries once
 * @error: return location for a #BIPS_ERROR error
 *
 * After %BIPS_ERROR_PRODUCER_GONE: waits for a live producer on the same
 * channel name and attaches to it: a new producer (a new, greater epoch),
 * or the same one if it only dropped this consumer. Frames of the old epoch stay
 * valid. Errors as bips_consumer_new().
 *
 * Returns: %TRUE once attached
 */
gboolean bips_consumer_reattach(BipsConsumer *self, gint64 timeout_ms, GError **error)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), FALSE);
    auto r = reattach_core(*self->state, timeout_ms);
    if (!r) {
        bips::gobject::set_error(error, r.error());
        return FALSE;
    }
    return TRUE;
}

/**
 * bips_consumer_poll_reattach:
 * @self: a #BipsConsumer
 * @timeout_ms: how long to wait for a producer; negative waits forever, 0
 *   tries once
 * @out_code: (out) (optional): 0, or the #BipsError code of a failure
 * @out_message: (out) (optional) (nullable) (transfer full): %NULL once
 *   attached; else the text of the failure, or of the timeout when no
 *   producer came in time. Free it with g_free().
 *
 * bips_consumer_reattach() with its outcome in values, for bindings that
 * wait in short slices (see bips_consumer_poll_next()). The first call
 * detaches from the old producer; later calls go on waiting for a new
 * one. A wait that runs out returns %FALSE with @out_code 0; an
 * interrupted one fails with %BIPS_ERROR_TIMEOUT.
 *
 * Returns: %TRUE once attached
 */
gboolean bips_consumer_poll_reattach(BipsConsumer *self, gint64 timeout_ms, gint *out_code,
                                     gchar **out_message)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), FALSE);
    ConsumerState &s = *self->state;
    auto r = reattach_core(s, timeout_ms);
    if (!r) {
        bips::gobject::poll_failed(out_code, out_message, r.error(), ran_out(s, r.error()));
        return FALSE;
    }
    bips::gobject::poll_succeeded(out_code, out_message);
    return TRUE;
}

/**
 * bips_consumer_interrupt:
 * @self: a #BipsConsumer
 *
 * Makes a blocked bips_consumer_next() or bips_consumer_reattach() fail
 * with %BIPS_ERROR_TIMEOUT promptly, and every later one until
 * bips_consumer_resume(). Any thread.
 */
void bips_consumer_interrupt(BipsConsumer *self)
{
    g_return_if_fail(BIPS_IS_CONSUMER(self));
    ConsumerState &s = *self->state;
    std::lock_guard state_lock(s.state_mu);
    if (s.core) {
        s.interrupted.store(true, std::memory_order_seq_cst);
        s.core->interrupt();
    }
}

/**
 * bips_consumer_resume:
 * @self: a #BipsConsumer
 *
 * Undoes bips_consumer_interrupt().
 */
void bips_consumer_resume(BipsConsumer *self)
{
    g_return_if_fail(BIPS_IS_CONSUMER(self));
    ConsumerState &s = *self->state;
    std::lock_guard state_lock(s.state_mu);
    s.interrupted.store(false, std::memory_order_seq_cst);
    if (s.core)
        s.core->resume();
}

/**
 * bips_consumer_close:
 * @self: a #BipsConsumer
 *
 * Detaches from the channel now rather than on finalize: interrupts a
 * blocked next(), then gives up this consumer's entry (a lossless consumer
 * stops holding the producer back). Frames already returned stay valid
 * until released. Later calls fail with %BIPS_ERROR_INVALID_ARGUMENT.
 * Idempotent.
 */
void bips_consumer_close(BipsConsumer *self)
{
    g_return_if_fail(BIPS_IS_CONSUMER(self));
    ConsumerState &s = *self->state;
    bips_consumer_interrupt(self);
    std::lock_guard read_lock(s.read_mu);
    std::unique_ptr<bips::Consumer> doomed;
    {
        std::lock_guard state_lock(s.state_mu);
        s.refresh_locked();
        doomed = std::move(s.core);
        s.closed = true;
        s.map_address = 0;
        s.map_size = 0;
        s.next_due_ns = 0;
    }
    // Destroyed outside state_mu (no lock is held while the core detaches
    // that interrupt() or a getter could wait for).
    doomed.reset();
}

/**
 * bips_consumer_is_closed:
 * @self: a #BipsConsumer
 *
 * Whether the consumer was closed.
 *
 * Returns: %TRUE once bips_consumer_close() was called
 */
gboolean bips_consumer_is_closed(BipsConsumer *self)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), TRUE);
    std::lock_guard state_lock(self->state->state_mu);
    return self->state->closed;
}

/**
 * bips_consumer_get_name:
 * @self: a #BipsConsumer
 *
 * The channel this consumer reads.
 *
 * Returns: (transfer none): the channel name, owned by @self
 */
const gchar *bips_consumer_get_name(BipsConsumer *self)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), nullptr);
    return self->state->name.c_str();
}

/**
 * bips_consumer_get_policy:
 * @self: a #BipsConsumer
 *
 * The policy the consumer was made with.
 *
 * Returns: the consumer's reading policy
 */
BipsPolicy bips_consumer_get_policy(BipsConsumer *self)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), BIPS_POLICY_LOSSLESS);
    return self->state->policy;
}

/**
 * bips_consumer_dup_stream_info:
 * @self: a #BipsConsumer
 *
 * The stream info of the last frame next() returned; before the first
 * frame, the channel's stream info when the consumer attached.
 *
 * Returns: (transfer full): a copy of the stream info ("" if none); free it
 *   with g_free()
 */
gchar *bips_consumer_dup_stream_info(BipsConsumer *self)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), nullptr);
    std::lock_guard state_lock(self->state->state_mu);
    const auto &info = self->state->info;
    return g_strdup(info ? info->c_str() : "");
}

/**
 * bips_consumer_get_stream_info_generation:
 * @self: a #BipsConsumer
 *
 * The generation of the stream info snapshot.
 *
 * Returns: the generation of the stream info that
 *   bips_consumer_dup_stream_info() returns
 */
guint64 bips_consumer_get_stream_info_generation(BipsConsumer *self)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), 0);
    std::lock_guard state_lock(self->state->state_mu);
    return self->state->info_generation;
}

/**
 * bips_consumer_get_epoch:
 * @self: a #BipsConsumer
 *
 * The producer epoch of the current attachment (snapshot).
 *
 * Returns: the epoch of the producer this consumer is attached to
 */
guint64 bips_consumer_get_epoch(BipsConsumer *self)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), 0);
    std::lock_guard state_lock(self->state->state_mu);
    return self->state->epoch;
}

/**
 * bips_consumer_get_received:
 * @self: a #BipsConsumer
 *
 * How many frames next() returned (snapshot).
 *
 * Returns: frames returned by next(), over all epochs
 */
guint64 bips_consumer_get_received(BipsConsumer *self)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), 0);
    std::lock_guard state_lock(self->state->state_mu);
    return self->state->received;
}

/**
 * bips_consumer_get_skipped:
 * @self: a #BipsConsumer
 *
 * How many frames this consumer skipped (snapshot): frames a latest
 * consumer passed over, and frames that failed validation.
 *
 * Returns: frames this consumer skipped, over all epochs
 */
guint64 bips_consumer_get_skipped(BipsConsumer *self)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), 0);
    std::lock_guard state_lock(self->state->state_mu);
    return self->state->skipped;
}

/**
 * bips_consumer_get_next_due:
 * @self: a #BipsConsumer
 *
 * When the next frame is expected, for a consumer with
 * #BipsConsumer:anticipate-ns set: the arrival of the last frame next()
 * returned plus the smoothed interval between returned frames, the same
 * estimate the consumer wakes by. A snapshot taken after each next() or
 * reattach(), so it never waits for a blocked next(); any thread. The time
 * may lie in the past when a frame is late. Unknown (0) until two frames
 * of the current producer have arrived (reattach forgets the pace), once
 * closed, and always without #BipsConsumer:anticipate-ns.
 *
 * Returns: the time the next frame is due, in CLOCK_MONOTONIC nanoseconds
 *   (Python's time.monotonic_ns()), or 0 when unknown
 */
guint64 bips_consumer_get_next_due(BipsConsumer *self)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), 0);
    std::lock_guard state_lock(self->state->state_mu);
    return self->state->next_due_ns;
}

/**
 * bips_consumer_get_data_mapping:
 * @self: a #BipsConsumer
 * @out_address: (out) (optional): where the channel's frame data is mapped
 *   in this process
 * @out_size: (out) (optional): the size of that mapping in bytes
 *
 * The region of this process's address space that holds the channel's slot
 * data (read-only), to check that a frame's bytes lie in shared memory.
 *
 * Returns: %TRUE if attached; %FALSE (and 0, 0) once closed
 */
gboolean bips_consumer_get_data_mapping(BipsConsumer *self, guint64 *out_address,
                                        guint64 *out_size)
{
    g_return_val_if_fail(BIPS_IS_CONSUMER(self), FALSE);
    std::lock_guard state_lock(self->state->state_mu);
    if (out_address)
        *out_address = self->state->map_address;
    if (out_size)
        *out_size = self->state->map_size;
    return self->state->map_address != 0;
}
