// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: BipsFrame, one published frame held by a consumer.
#include "bips-private.h"

#include <atomic>
#include <mutex>

/**
 * BipsFrame:
 *
 * A read-only view of one frame that a #BipsConsumer returned. The frame's
 * bytes stay in the channel's shared memory: bips_frame_get_data_address()
 * and bips_frame_get_size() describe them, so bindings can wrap them without
 * a copy (the Python package builds a NumPy array over them).
 *
 * Ownership: while the frame is held, its slot is not reused by the
 * producer and the channel stays mapped in this process, even if the
 * consumer is closed or the producer exits. bips_frame_release() gives the
 * slot back; finalizing the object does the same. After release the data
 * address and size are 0 and bips_frame_get_data_region() fails, while the
 * metadata (timestamps, sequence, stream info) stays readable.
 *
 * Thread-safety: every function may be called from any thread; release and
 * the data accessors are serialised by a per-frame lock.
 */

namespace {

// C++ state of a BipsFrame: new in bips_frame_init(), deleted in finalize.
// Where a frame is in its one fill: Empty -> Claimed (a poll_next_into()
// waits to fill it) -> Filled, or back to Empty when no frame came.
enum class Fill : int { Empty, Claimed, Filled };

struct FrameState {
    std::mutex mu;      // guards `frame` (release and fill vs. data accessors)
    bips::Frame frame;  // invalid until filled and once released
    // Changed under `mu`; Filled is stored (release) after the fields
    // below, so a reader that loads Filled (acquire) may read them.
    std::atomic<Fill> fill{Fill::Empty};
    // Written by the fill, before the frame is handed to anyone (or, for
    // bips_consumer_poll_next_into(), while its caller waits for it);
    // immutable afterwards (no lock needed).
    bips::FrameInfo info{};
    guint64 sequence = 0;
    guint slot = 0;
    guint64 epoch = 0;
    guint64 info_generation = 0;
    bips::gobject::SharedInfo stream_info;
    GBytes *meta = nullptr; // owned; NULL when the frame has no metadata
    // `meta` decoded on first use (decode_meta()); immutable afterwards.
    std::once_flag decode_once;
    bips::FrameMeta decoded;
    std::string meta_problem; // why `meta` could not be decoded, or empty
};

// The frame's metadata, decoded once; any thread. Nothing to decode, and
// nothing decided for later, until the frame is filled.
const FrameState &decode_meta(FrameState &s)
{
    if (s.fill.load(std::memory_order_acquire) != Fill::Filled)
        return s;
    std::call_once(s.decode_once, [&s] {
        if (!s.meta)
            return;
        gsize n = 0;
        const auto *p = static_cast<const std::byte *>(g_bytes_get_data(s.meta, &n));
        auto m = bips::decode_frame_meta(std::span<const std::byte>(p, n));
        if (m)
            s.decoded = std::move(*m);
        else
            s.meta_problem = m.error().message;
    });
    return s;
}

} // namespace

struct _BipsFrame {
    GObject parent_instance;
    FrameState *state;
};

G_DEFINE_TYPE(BipsFrame, bips_frame, G_TYPE_OBJECT)

static void bips_frame_finalize(GObject *object)
{
    BipsFrame *self = BIPS_FRAME(object);
    if (self->state->meta)
        g_bytes_unref(self->state->meta);
    delete self->state; // ~Frame() gives the slot back if still held
    self->state = nullptr;
    G_OBJECT_CLASS(bips_frame_parent_class)->finalize(object);
}

static void bips_frame_class_init(BipsFrameClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = bips_frame_finalize;
}

static void bips_frame_init(BipsFrame *self)
{
    self->state = new FrameState();
}

/**
 * bips_frame_new:
 *
 * An empty frame for bips_consumer_poll_next_into(), which fills it with
 * the next frame: a binding makes it (and its wrapper) before it waits, so
 * the wake-up does not pay for them. Until filled it holds nothing: it
 * reads as released, with sequence 0 and no timestamps. A frame is filled
 * at most once.
 *
 * Returns: (transfer full): the empty frame
 */
BipsFrame *bips_frame_new(void)
{
    return static_cast<BipsFrame *>(g_object_new(BIPS_TYPE_FRAME, nullptr));
}

bool bips_frame_claim_internal(BipsFrame *self)
{
    std::lock_guard lock(self->state->mu);
    if (self->state->fill.load(std::memory_order_relaxed) != Fill::Empty)
        return false;
    self->state->fill.store(Fill::Claimed, std::memory_order_relaxed);
    return true;
}

void bips_frame_unclaim_internal(BipsFrame *self)
{
    std::lock_guard lock(self->state->mu);
    if (self->state->fill.load(std::memory_order_relaxed) == Fill::Claimed)
        self->state->fill.store(Fill::Empty, std::memory_order_relaxed);
}

void bips_frame_fill_internal(BipsFrame *self, bips::Frame &&frame,
                              bips::gobject::SharedInfo info, guint64 epoch)
{
    FrameState &s = *self->state;
    std::lock_guard lock(s.mu);
    // Filled once: a second fill would give the first frame's slot back
    // under whoever reads it.
    g_return_if_fail(s.fill.load(std::memory_order_relaxed) != Fill::Filled);
    s.info = frame.info();
    s.sequence = frame.sequence();
    s.slot = frame.slot();
    s.epoch = epoch;
    s.info_generation = frame.stream_info_generation();
    s.stream_info = std::move(info);
    if (!frame.meta().empty())
        s.meta = g_bytes_new(frame.meta().data(), frame.meta().size());
    s.frame = std::move(frame);
    s.fill.store(Fill::Filled, std::memory_order_release);
}

/**
 * bips_frame_get_data_region:
 * @self: a #BipsFrame
 * @out_address: (out) (optional): where the frame's first byte is mapped in
 *   this process
 * @out_size: (out) (optional): how many bytes the frame holds
 * @error: return location for an error
 *
 * Where the frame's bytes are, in one call that fails cleanly once the
 * frame is released. The memory is mapped read-only: never write to it. It
 * stays valid until the frame is released or finalized.
 *
 * Returns: %TRUE on success; %FALSE with %BIPS_ERROR_INVALID_ARGUMENT if
 *   the frame was released
 */
gboolean bips_frame_get_data_region(BipsFrame *self, guint64 *out_address, guint64 *out_size,
                                    GError **error)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), FALSE);
    std::lock_guard lock(self->state->mu);
    const bips::Frame &f = self->state->frame;
    if (!f.valid()) {
        bips::gobject::set_misuse(
            error, self->state->fill.load(std::memory_order_relaxed) == Fill::Filled
                       ? "frame " + std::to_string(self->state->sequence) +
                             " was released; its data is gone"
                       : std::string("the frame is empty: bips_consumer_poll_next_into() "
                                     "fills it"));
        return FALSE;
    }
    if (out_address)
        *out_address = reinterpret_cast<guintptr>(f.data());
    if (out_size)
        *out_size = f.size();
    return TRUE;
}

/**
 * bips_frame_get_view:
 * @self: a #BipsFrame
 * @out_address: (out): where the frame's first byte is mapped in this process
 * @out_size: (out): how many bytes the frame holds
 * @out_stream_info: (out) (transfer none): the stream info the frame was
 *   published under (see bips_frame_get_stream_info())
 * @out_video_format: (out) (transfer none) (nullable): the format name of
 *   the frame's own video layout, or %NULL when its metadata has none (the
 *   stream info then describes the layout)
 * @out_video_width: (out): the video layout's width in pixels
 * @out_video_height: (out): the video layout's height in pixels
 * @out_video_planes: (out): how many planes the video layout has (1 to 4)
 * @out_video_offsets: (out caller-allocates) (array fixed-size=4): each
 *   plane's offset in bytes from the frame's start
 * @out_video_strides: (out caller-allocates) (array fixed-size=4): each
 *   plane's row stride in bytes
 * @out_meta_problem: (out) (transfer none) (nullable): why the frame's
 *   metadata could not be read (it is then ignored), or %NULL
 * @error: return location for an error
 *
 * Everything a binding needs to view the frame, in one call: where its
 * bytes are and how they are laid out. The video layout comes from the
 * producer and is only checked for its structure here: check it against
 * the frame's size before use. The strings live as long as @self.
 *
 * Returns: %TRUE on success; %FALSE with %BIPS_ERROR_INVALID_ARGUMENT if
 *   the frame was released
 */
gboolean bips_frame_get_view(BipsFrame *self, guint64 *out_address, guint64 *out_size,
                             const gchar **out_stream_info, const gchar **out_video_format,
                             guint *out_video_width, guint *out_video_height,
                             guint *out_video_planes, guint64 *out_video_offsets,
                             gint *out_video_strides, const gchar **out_meta_problem,
                             GError **error)
{
    if (!bips_frame_get_data_region(self, out_address, out_size, error))
        return FALSE;
    const FrameState &s = decode_meta(*self->state);
    *out_stream_info = s.stream_info ? s.stream_info->c_str() : "";
    *out_meta_problem = s.meta_problem.empty() ? nullptr : s.meta_problem.c_str();
    const std::optional<bips::VideoLayoutMeta> &v = s.decoded.video;
    *out_video_format = v ? v->format.c_str() : nullptr;
    *out_video_width = v ? v->width : 0;
    *out_video_height = v ? v->height : 0;
    *out_video_planes = v ? v->n_planes : 0;
    for (guint i = 0; i < bips::VideoLayoutMeta::kMaxPlanes; i++) {
        out_video_offsets[i] = v ? v->offset[i] : 0;
        out_video_strides[i] = v ? v->stride[i] : 0;
    }
    return TRUE;
}

bips::gobject::FrameLayoutKey bips_frame_layout_key_internal(BipsFrame *frame)
{
    const FrameState &s = decode_meta(*frame->state);
    return {s.stream_info, s.decoded.video, !s.meta_problem.empty()};
}

/**
 * bips_frame_get_metas:
 * @self: a #BipsFrame
 * @error: return location for an error
 *
 * The frame's metadata as a vardict (`a{sv}`), with each key present only
 * when the frame carries it:
 *
 * - `video` `(suuuatai)`: its own video layout: format, flags, width,
 *   height, and each plane's offset and stride
 * - `offset`, `offset-end` `t`: the buffer's offsets (samples, frames or
 *   bytes)
 * - `producer-latency` `t`: the producer pipeline's latency in nanoseconds
 * - `regions` `a(suuuuiia(sa{sv}))`: regions of interest: type, x, y,
 *   width, height, id, parent id (-1: none), and parameter structures,
 *   each a name and its fields
 * - `custom` `a(sa{sv})`: custom metas: name and fields
 *
 * Field values are `b`, `i`, `u`, `x`, `t`, `d` or `s`; a GStreamer value
 * of another type (a fraction, a list) comes as its serialized text. The
 * list of what travels is docs/elements.md's.
 *
 * Returns: (transfer full): the metadata (an empty vardict when there is
 *   none); %NULL with %BIPS_ERROR_CORRUPT naming the problem when the
 *   producer's metadata cannot be read, or with
 *   %BIPS_ERROR_INVALID_ARGUMENT for an empty frame (bips_frame_new())
 */
GVariant *bips_frame_get_metas(BipsFrame *self, GError **error)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), nullptr);
    if (self->state->fill.load(std::memory_order_acquire) != Fill::Filled) {
        bips::gobject::set_misuse(error, "the frame is empty: bips_consumer_poll_next_into() "
                                         "fills it");
        return nullptr;
    }
    const FrameState &s = decode_meta(*self->state);
    if (!s.meta_problem.empty()) {
        bips::gobject::set_error(error, bips::Error{bips::Errc::Corrupt, s.meta_problem});
        return nullptr;
    }
    return g_variant_ref_sink(bips::gobject::metas_to_variant(s.decoded));
}

/**
 * bips_frame_get_data_address:
 * @self: a #BipsFrame
 *
 * The address of the frame's first byte in this process, for bindings that
 * wrap the memory without a copy. Read-only memory, valid until the frame
 * is released.
 *
 * Returns: the address, or 0 once the frame is released
 */
guint64 bips_frame_get_data_address(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), 0);
    std::lock_guard lock(self->state->mu);
    const bips::Frame &f = self->state->frame;
    return f.valid() ? reinterpret_cast<guintptr>(f.data()) : 0;
}

/**
 * bips_frame_get_size:
 * @self: a #BipsFrame
 *
 * The frame's size in bytes.
 *
 * Returns: the number of bytes the frame holds, or 0 once it is released
 */
guint64 bips_frame_get_size(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), 0);
    std::lock_guard lock(self->state->mu);
    const bips::Frame &f = self->state->frame;
    return f.valid() ? f.size() : 0;
}

/**
 * bips_frame_get_pts:
 * @self: a #BipsFrame
 *
 * The presentation time the producer gave, in its units (bipssink and the
 * Python producer use absolute CLOCK_MONOTONIC nanoseconds).
 *
 * Returns: the pts, or %BIPS_TIME_NONE
 */
guint64 bips_frame_get_pts(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), BIPS_TIME_NONE);
    return self->state->info.pts;
}

/**
 * bips_frame_get_dts:
 * @self: a #BipsFrame
 *
 * The decoding time the producer gave.
 *
 * Returns: the decoding time, or %BIPS_TIME_NONE
 */
guint64 bips_frame_get_dts(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), BIPS_TIME_NONE);
    return self->state->info.dts;
}

/**
 * bips_frame_get_duration:
 * @self: a #BipsFrame
 *
 * The duration the producer gave.
 *
 * Returns: the duration, or %BIPS_TIME_NONE
 */
guint64 bips_frame_get_duration(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), BIPS_TIME_NONE);
    return self->state->info.duration;
}

/**
 * bips_frame_get_flags:
 * @self: a #BipsFrame
 *
 * The frame's flags; the bits in %BIPS_FRAME_FLAG_USER_MASK are the
 * producer's (bipssink puts GstBufferFlags there).
 *
 * Returns: the flags
 */
guint32 bips_frame_get_flags(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), 0);
    return self->state->info.flags;
}

/**
 * bips_frame_get_sequence:
 * @self: a #BipsFrame
 *
 * The frame's publication sequence number.
 *
 * Returns: the frame's publication sequence number within its epoch
 */
guint64 bips_frame_get_sequence(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), 0);
    return self->state->sequence;
}

/**
 * bips_frame_get_slot:
 * @self: a #BipsFrame
 *
 * The slot that holds the frame.
 *
 * Returns: the index of the channel slot that holds the frame
 */
guint bips_frame_get_slot(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), 0);
    return self->state->slot;
}

/**
 * bips_frame_get_epoch:
 * @self: a #BipsFrame
 *
 * The producer epoch the frame belongs to.
 *
 * Returns: the producer epoch the frame was published in
 */
guint64 bips_frame_get_epoch(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), 0);
    return self->state->epoch;
}

/**
 * bips_frame_get_stream_info:
 * @self: a #BipsFrame
 *
 * The stream info (for bipssink: the caps string) the frame was published
 * under. Stays readable after release.
 *
 * Returns: (transfer none): the stream info, owned by the frame; "" if the
 *   producer set none
 */
const gchar *bips_frame_get_stream_info(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), nullptr);
    const auto &info = self->state->stream_info;
    return info ? info->c_str() : "";
}

/**
 * bips_frame_get_stream_info_generation:
 * @self: a #BipsFrame
 *
 * The generation of the frame's stream info.
 *
 * Returns: the generation of the stream info the frame was published under
 */
guint64 bips_frame_get_stream_info_generation(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), 0);
    return self->state->info_generation;
}

/**
 * bips_frame_get_meta:
 * @self: a #BipsFrame
 *
 * The raw bytes of the metadata the producer published with the frame (a
 * small copy, not the frame data): bips' own format, which
 * bips_frame_get_metas() reads, or whatever bytes a C++ producer put there.
 *
 * Returns: (transfer full) (nullable): the metadata, or %NULL if there is
 *   none
 */
GBytes *bips_frame_get_meta(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), nullptr);
    return self->state->meta ? g_bytes_ref(self->state->meta) : nullptr;
}

/**
 * bips_frame_is_released:
 * @self: a #BipsFrame
 *
 * Whether the frame was released.
 *
 * Returns: %TRUE once bips_frame_release() was called
 */
gboolean bips_frame_is_released(BipsFrame *self)
{
    g_return_val_if_fail(BIPS_IS_FRAME(self), TRUE);
    std::lock_guard lock(self->state->mu);
    return !self->state->frame.valid();
}

/**
 * bips_frame_release:
 * @self: a #BipsFrame
 *
 * Gives the frame's slot back to the producer now rather than on finalize.
 * Idempotent. Afterwards the data address and size read as 0: any pointer
 * taken before must not be used any more.
 */
void bips_frame_release(BipsFrame *self)
{
    g_return_if_fail(BIPS_IS_FRAME(self));
    std::lock_guard lock(self->state->mu);
    self->state->frame.release();
}
