// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: the streaming side of bipssrc (frames to buffers, caps changes).
#include "gstbipssrcstate.h"

#include "gstbipsmeta.h"
#include "gstbipsutils.h"

#include <gst/video/video.h>

#include <algorithm>
#include <vector>

GST_DEBUG_CATEGORY_EXTERN(gst_bips_src_debug);
#define GST_CAT_DEFAULT gst_bips_src_debug

namespace gstbips {

namespace {

// Buffer flags that must not be restored: GstMiniObject's own flags (the
// low 4 bits) and TAG_MEMORY, which describes the producer's buffer.
constexpr guint kRestoredFlagsMask =
    0xffffu & ~(guint(GST_MINI_OBJECT_FLAG_LAST) - 1) & ~guint(GST_BUFFER_FLAG_TAG_MEMORY);

// Alignment mask of copied-out frames: 64 bytes, enough for any SIMD.
constexpr gsize kCopyAlign = 63;

} // namespace

GstFlowReturn SrcState::next_frame(bips::Frame *frame)
{
    for (;;) {
        auto r = consumer_->next(kSrcWaitSlice);
        if (r) {
            *frame = std::move(r.value());
            return GST_FLOW_OK;
        }
        switch (r.code()) {
        case bips::Errc::Timeout:
            if (flushing())
                return GST_FLOW_FLUSHING;
            continue;
        case bips::Errc::EndOfStream:
            GST_INFO_OBJECT(src_, "end of stream on '%s'", consumer_->name().c_str());
            return GST_FLOW_EOS; // the final stats go out with the EOS event (post_stats)
        case bips::Errc::ProducerGone: {
            GstFlowReturn ret = reattach(r.error().message);
            if (ret != GST_FLOW_OK)
                return ret;
            continue;
        }
        default:
            GST_ELEMENT_ERROR(src_, RESOURCE, READ, ("%s", r.error().message.c_str()),
                              ("bips error %s on channel '%s'", bips::errc_name(r.code()),
                               consumer_->name().c_str()));
            return GST_FLOW_ERROR;
        }
    }
}

// Pushes new caps before a frame published under other stream info.
GstFlowReturn SrcState::update_caps(uint64_t generation)
{
    if (caps_pushed_ && generation == last_generation_)
        return GST_FLOW_OK;
    last_generation_ = generation;
    const std::string info = consumer_->stream_info(); // that of this frame
    if (caps_pushed_ && info == last_info_)
        return GST_FLOW_OK;

    GstCaps *caps = parse_stream_info(info);
    if (!caps || !gst_caps_is_fixed(caps)) {
        GST_ELEMENT_ERROR(src_, STREAM, FORMAT,
                          ("the stream info of channel '%s' is not a fixed GStreamer caps "
                           "string; the producer must publish caps (bipssink does)",
                           consumer_->name().c_str()),
                          ("stream info '%s'", info.c_str()));
        gst_clear_caps(&caps);
        return GST_FLOW_ERROR;
    }
    GST_DEBUG_OBJECT(src_, "caps of stream info generation %" G_GUINT64_FORMAT ": %"
                     GST_PTR_FORMAT, generation, static_cast<gpointer>(caps));
    record_caps(gst_caps_ref(caps));
    const bool ok = set_caps(caps, consumer_->name());
    gst_caps_unref(caps);
    if (!ok)
        return GST_FLOW_NOT_NEGOTIATED;
    caps_pushed_ = true;
    last_info_ = info;
    drop_copy_pool(); // the next copy gets a pool sized for the new frames
    return GST_FLOW_OK;
}

// A frame announced the producer pipeline's latency: if it exceeds what we
// report, report more and ask the pipeline to redistribute latency.
void SrcState::note_producer_latency(GstClockTime latency)
{
    if (!GST_CLOCK_TIME_IS_VALID(latency))
        return;
    {
        ObjectLocker lock(src_);
        if (latency <= producer_latency_)
            return;
        producer_latency_ = latency;
    }
    GST_INFO_OBJECT(src_, "producer latency %" GST_TIME_FORMAT, GST_TIME_ARGS(latency));
    gst_element_post_message(GST_ELEMENT(src_), gst_message_new_latency(GST_OBJECT(src_)));
}

// The running time of this pipeline now, or 0 without a clock.
GstClockTime SrcState::running_time_now(GstClockTime base) const
{
    GstClock *clock = gst_element_get_clock(GST_ELEMENT(src_));
    if (clock == nullptr)
        return 0;
    const GstClockTime now = gst_clock_get_time(clock);
    gst_object_unref(clock);
    return GST_CLOCK_TIME_IS_VALID(now) && now > base ? now - base : 0;
}

GstBuffer *SrcState::make_buffer(bips::Frame &&frame)
{
    const bips::FrameInfo fi = frame.info();
    const uint64_t seq = frame.sequence();
    const std::vector<std::byte> meta(frame.meta().begin(), frame.meta().end());

    GstBuffer *buffer = gst_buffer_new();
    gst_buffer_append_memory(buffer, gst_bips_allocator_wrap_frame(allocator_, std::move(frame)));

    // Absolute clock times back to our running time: both pipelines run on
    // the monotonic system clock, so (time - base time) is our running time,
    // and the latency we report (the producer's plus ours) makes a sink
    // render each frame just after it was published.
    // - A frame stamped shortly before this pipeline started (within that
    //   latency and one frame: the newest frame when we attach, the first
    //   ones of a lossless reader) lands at running time 0 on its own; the
    //   stream is not shifted, or every later frame would be late by that
    //   much and a latest reader would skip every other frame.
    // - A frame stamped long before (a lossless backlog, a producer running
    //   behind the clock) shifts the stream by ts_offset_ so that it lands
    //   where a frame published now belongs (now minus our latency), and
    //   the frames after it keep the producer's spacing. Every attach
    //   resets the shift.
    // The channel's times are CLOCK_MONOTONIC; a pipeline on another clock
    // gets them on its own clock first.
    const int64_t from_monotonic = -monotonic_offset(GST_ELEMENT(src_));
    const uint64_t pts = shift_time(fi.pts, from_monotonic, bips::kNoTime);
    const uint64_t dts = shift_time(fi.dts, from_monotonic, bips::kNoTime);
    const GstClockTime base = gst_element_get_base_time(GST_ELEMENT(src_));
    const uint64_t anchor = pts != bips::kNoTime ? pts : dts;
    if (anchor != bips::kNoTime && GST_CLOCK_TIME_IS_VALID(base) && anchor + ts_offset_ < base) {
        GstClockTime min_latency = 0, max_latency = 0;
        latency(&min_latency, &max_latency);
        const GstClockTime frame_time =
            fi.duration != bips::kNoTime && fi.duration > 0 ? fi.duration : 100 * GST_MSECOND;
        if (base - (anchor + ts_offset_) > min_latency + frame_time) {
            const GstClockTime now = running_time_now(base);
            const GstClockTime target = now > min_latency ? now - min_latency : 0;
            ts_offset_ = base + target - anchor;
            GST_DEBUG_OBJECT(src_, "frame stamped long before this pipeline started; times "
                             "shifted by %" GST_TIME_FORMAT, GST_TIME_ARGS(ts_offset_));
        }
    }
    auto running = [this, base](uint64_t t) -> GstClockTime {
        if (t == bips::kNoTime || !GST_CLOCK_TIME_IS_VALID(base))
            return GST_CLOCK_TIME_NONE;
        return t + ts_offset_ > base ? t + ts_offset_ - base : 0;
    };
    GST_BUFFER_PTS(buffer) = running(pts);
    GST_BUFFER_DTS(buffer) = running(dts);
    GST_BUFFER_DURATION(buffer) = fi.duration == bips::kNoTime ? GST_CLOCK_TIME_NONE : fi.duration;
    GST_BUFFER_FLAG_SET(buffer, fi.flags & kRestoredFlagsMask);
    if (discont_) {
        GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
        discont_ = false;
    }

    // gst_buffer_append_memory tags the memory as changed; that flag is
    // for buffer pools, and this buffer never goes back to one.
    GST_BUFFER_FLAG_UNSET(buffer, GST_BUFFER_FLAG_TAG_MEMORY);

    // Nothing the producer wrote is trusted: a frame whose layout would
    // make downstream read outside it is dropped here (see apply_meta).
    std::string why;
    FrameExtras extras;
    const FrameVerdict verdict =
        apply_meta(buffer, meta, have_layout_ ? &layout_ : nullptr, &extras, &why);
    if (verdict == FrameVerdict::Reject) {
        gst_buffer_unref(buffer); // gives the slot back
        reject_frame(seq, why);
        return nullptr;
    }
    if (!why.empty())
        GST_WARNING_OBJECT(src_, "frame %" G_GUINT64_FORMAT ": ignoring part of its "
                           "metadata: %s", seq, why.c_str());
    note_producer_latency(extras.producer_latency);
    return buffer;
}

// Keeps this element from holding more than max-held slots: `buffer` (a
// frame made by make_buffer) goes out as it is while the frames alive,
// itself included, stay within the limit, else as a copy whose slot is
// given back at once. Takes `buffer`, returns what to push.
GstBuffer *SrcState::limit_held(GstBuffer *buffer)
{
    const guint alive = gst_bips_allocator_frames_alive(allocator_);
    guint limit = max_held_.load(std::memory_order_relaxed);
    if (limit == 0)
        limit = auto_max_held_.load(std::memory_order_relaxed);
    if (G_LIKELY(alive <= limit))
        return buffer;

    if (!held_warned_) {
        held_warned_ = true;
        GST_WARNING_OBJECT(src_, "downstream keeps %u of the buffers of channel '%s' alive "
                           "(filesink buffer-mode? an encoder, queue or aggregator?); frames "
                           "are now copied out so the producer is not held back; set "
                           "max-held (now %u) to change the limit",
                           alive - 1, consumer_->name().c_str(), limit);
    }
    GstBuffer *copy = copy_out(buffer);
    if (!copy)
        return buffer; // could not copy (warned): better held than lost
    gst_buffer_unref(buffer); // gives the slot back
    copied_++;
    return copy;
}

// A copy of `buffer` (not taken) in memory of copy_pool_: the bytes, then
// timestamps, flags and metas (GstVideoMeta's offsets and strides stay
// right, the bytes being where they were). nullptr if that fails.
GstBuffer *SrcState::copy_out(GstBuffer *buffer)
{
    const gsize size = gst_buffer_get_size(buffer);
    GstBuffer *copy = nullptr;
    if (size == 0) {
        copy = gst_buffer_new();
    } else {
        if (!ensure_copy_pool(size))
            return nullptr;
        if (size < copy_pool_size_ / 4) {
            // Far smaller than the pool's buffers (a stream of varying
            // sizes): its own allocation, so that the memory downstream
            // keeps stays within 4 times the bytes it keeps.
            GstAllocationParams params;
            gst_allocation_params_init(&params);
            params.align = kCopyAlign;
            copy = gst_buffer_new_allocate(nullptr, size, &params);
        } else if (gst_buffer_pool_acquire_buffer(copy_pool_, &copy, nullptr) == GST_FLOW_OK) {
            gst_buffer_set_size(copy, static_cast<gssize>(size));
        }
        if (!copy) {
            GST_WARNING_OBJECT(src_, "no memory to copy a frame of %" G_GSIZE_FORMAT
                               " bytes into; pushing it as it is", size);
            return nullptr;
        }
        GstMapInfo out;
        if (!gst_buffer_map(copy, &out, GST_MAP_WRITE)) {
            gst_buffer_unref(copy);
            return nullptr;
        }
        gst_buffer_extract(buffer, 0, out.data, size);
        gst_buffer_unmap(copy, &out);
    }
    gst_buffer_copy_into(copy, buffer,
                         static_cast<GstBufferCopyFlags>(GST_BUFFER_COPY_FLAGS |
                                                         GST_BUFFER_COPY_TIMESTAMPS),
                         0, static_cast<gsize>(-1));
    // GST_BUFFER_COPY_META would leave out metas tagged "memory" (such as
    // GstVideoMeta) because the memories are not copied; here the bytes
    // are, at the same offsets, so every meta still holds: copy them all.
    GstMetaTransformCopy whole = {FALSE, 0, static_cast<gsize>(-1)};
    gpointer iter = nullptr;
    while (GstMeta *meta = gst_buffer_iterate_meta(buffer, &iter)) {
        if (meta->info->transform_func)
            meta->info->transform_func(copy, meta, buffer, _gst_meta_transform_copy, &whole);
    }
    return copy;
}

// A pool whose buffers hold at least `size` bytes. Raw video and audio
// have one size per caps and get it exactly; a stream of varying sizes
// grows the pool by half at least each time, so it is rebuilt only a few
// times. Buffers are plain memory aligned to kCopyAlign; the pool has no
// upper bound, since downstream keeps as many as it likes, and recycles
// them once released.
bool SrcState::ensure_copy_pool(gsize size)
{
    if (copy_pool_ && size <= copy_pool_size_)
        return true;
    const gsize grown = copy_pool_size_ + copy_pool_size_ / 2; // 0 without a pool
    drop_copy_pool();
    if (size > G_MAXUINT) { // a pool's buffer size is a guint
        GST_WARNING_OBJECT(src_, "frame of %" G_GSIZE_FORMAT " bytes too big for a copy pool",
                           size);
        return false;
    }
    const gsize want = std::min<gsize>(std::max(size, grown), G_MAXUINT);
    GstBufferPool *pool = gst_buffer_pool_new();
    GstStructure *config = gst_buffer_pool_get_config(pool);
    GstCaps *caps = gst_pad_get_current_caps(GST_BASE_SRC_PAD(src_));
    gst_buffer_pool_config_set_params(config, caps, static_cast<guint>(want), 0, 0);
    if (caps)
        gst_caps_unref(caps);
    GstAllocationParams params;
    gst_allocation_params_init(&params);
    params.align = kCopyAlign;
    gst_buffer_pool_config_set_allocator(config, nullptr, &params);
    if (!gst_buffer_pool_set_config(pool, config) || !gst_buffer_pool_set_active(pool, TRUE)) {
        GST_WARNING_OBJECT(src_, "cannot set up a copy pool of %" G_GSIZE_FORMAT "-byte buffers",
                           want);
        gst_object_unref(pool);
        return false;
    }
    GST_DEBUG_OBJECT(src_, "copy pool of %" G_GSIZE_FORMAT "-byte buffers", want);
    copy_pool_ = pool;
    copy_pool_size_ = want;
    return true;
}

// Buffers of the pool that are still downstream keep it alive; they are
// freed instead of recycled once it is inactive.
void SrcState::drop_copy_pool()
{
    if (!copy_pool_)
        return;
    gst_buffer_pool_set_active(copy_pool_, FALSE);
    gst_object_unref(copy_pool_);
    copy_pool_ = nullptr;
    copy_pool_size_ = 0;
}

// Frames were lost (the producer dropped this consumer): tells downstream
// that from the end of the last buffer up to `next` there is no data.
// `next` carries DISCONT already.
void SrcState::push_gap(GstBuffer *next)
{
    gap_pending_ = false;
    const GstClockTime pts = GST_BUFFER_PTS(next);
    if (!GST_CLOCK_TIME_IS_VALID(last_end_) || !GST_CLOCK_TIME_IS_VALID(pts) || pts <= last_end_)
        return;
    GST_DEBUG_OBJECT(src_, "gap of %" GST_TIME_FORMAT " at %" GST_TIME_FORMAT,
                     GST_TIME_ARGS(pts - last_end_), GST_TIME_ARGS(last_end_));
    gst_pad_push_event(GST_BASE_SRC_PAD(src_), gst_event_new_gap(last_end_, pts - last_end_));
}

// Counts and reports a frame that make_buffer dropped.
void SrcState::reject_frame(uint64_t seq, const std::string &why)
{
    rejected_++;
    discont_ = true; // downstream misses a frame
    GST_WARNING_OBJECT(src_, "dropping frame %" G_GUINT64_FORMAT " of channel '%s': %s", seq,
                       consumer_->name().c_str(), why.c_str());
    if (reject_reported_)
        return;
    reject_reported_ = true;
    // Once per attachment on the bus, so that applications (and gst-launch)
    // learn that the producer sends broken frames.
    GST_ELEMENT_WARNING(src_, STREAM, FORMAT,
                        ("the producer of channel '%s' publishes frames whose metadata does "
                         "not fit them; they are dropped and counted in stats (rejected)",
                         consumer_->name().c_str()),
                        ("frame %" G_GUINT64_FORMAT ": %s", seq, why.c_str()));
}

// The layout downstream will assume for frames without a video meta: that
// of raw video caps. Called whenever caps go downstream.
void SrcState::note_layout(GstCaps *caps)
{
    GstStructure *st = gst_caps_is_empty(caps) ? nullptr : gst_caps_get_structure(caps, 0);
    have_layout_ = st && gst_structure_has_name(st, "video/x-raw") &&
                   gst_video_info_from_caps(&layout_, caps);
}

GstFlowReturn SrcState::create(GstBuffer **buffer)
{
    GstFlowReturn ret = ensure_attached();
    if (ret != GST_FLOW_OK)
        return ret;

    for (;;) {
        bips::Frame frame;
        ret = next_frame(&frame);
        if (ret != GST_FLOW_OK)
            return ret;

        const uint64_t skipped = consumer_->skipped();
        if (skipped != last_skipped_) {
            discont_ = true; // a latest reader jumped over frames
            last_skipped_ = skipped;
        }
        if (count_lost_ && frame.sequence() > last_seq_ + 1)
            skipped_before_ += frame.sequence() - last_seq_ - 1;
        count_lost_ = false;
        last_seq_ = frame.sequence();
        have_last_seq_ = true;
        skipped_ = skipped_before_ + skipped;

        ret = update_caps(frame.stream_info_generation());
        if (ret != GST_FLOW_OK)
            return ret; // `frame` is released here
        if (GstBuffer *out = make_buffer(std::move(frame))) {
            out = limit_held(out);
            if (gap_pending_)
                push_gap(out);
            if (GST_BUFFER_PTS_IS_VALID(out))
                last_end_ = GST_BUFFER_PTS(out) +
                            (GST_BUFFER_DURATION_IS_VALID(out) ? GST_BUFFER_DURATION(out) : 0);
            received_++;
            *buffer = out;
            return GST_FLOW_OK;
        }
        // Rejected (counted and reported): on to the next frame.
    }
}

} // namespace gstbips
