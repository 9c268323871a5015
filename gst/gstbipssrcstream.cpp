// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: the streaming side of bipssrc (frames to buffers, caps changes).
#include "gstbipssrcstate.h"

#include "gstbipsmeta.h"
#include "gstbipsutils.h"

#include <vector>

GST_DEBUG_CATEGORY_EXTERN(gst_bips_src_debug);
#define GST_CAT_DEFAULT gst_bips_src_debug

namespace gstbips {

namespace {

// Buffer flags that must not be restored: GstMiniObject's own flags (the
// low 4 bits) and TAG_MEMORY, which describes the producer's buffer.
constexpr guint kRestoredFlagsMask =
    0xffffu & ~(guint(GST_MINI_OBJECT_FLAG_LAST) - 1) & ~guint(GST_BUFFER_FLAG_TAG_MEMORY);

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
            // The final counters as an element message (seen with gst-launch -m).
            gst_element_post_message(GST_ELEMENT(src_),
                                     gst_message_new_element(GST_OBJECT(src_), stats()));
            return GST_FLOW_EOS;
        case bips::Errc::ProducerGone: {
            GstFlowReturn ret = reattach();
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
    const bool ok = gst_base_src_set_caps(src_, caps);
    if (!ok)
        GST_ELEMENT_ERROR(src_, CORE, NEGOTIATION,
                          ("downstream does not accept the caps of channel '%s'; add "
                           "videoconvert or change the caps filter",
                           consumer_->name().c_str()),
                          ("caps %" GST_PTR_FORMAT, static_cast<gpointer>(caps)));
    gst_caps_unref(caps);
    if (!ok)
        return GST_FLOW_NOT_NEGOTIATED;
    caps_pushed_ = true;
    last_info_ = info;
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
    const std::vector<std::byte> meta(frame.meta().begin(), frame.meta().end());

    GstBuffer *buffer = gst_buffer_new();
    gst_buffer_append_memory(buffer, gst_bips_allocator_wrap_frame(allocator_, std::move(frame)));

    // Absolute clock times back to our running time: both pipelines run on
    // the monotonic system clock, so (time - base time) is our running time.
    // A frame stamped before this pipeline started (a lossless backlog, a
    // producer running behind the clock) would land before zero: ts_offset_
    // is then raised so that it lands at our current running time, and the
    // frames after it keep the producer's spacing. Every attach resets it.
    const GstClockTime base = gst_element_get_base_time(GST_ELEMENT(src_));
    const uint64_t anchor = fi.pts != bips::kNoTime ? fi.pts : fi.dts;
    if (anchor != bips::kNoTime && GST_CLOCK_TIME_IS_VALID(base) && anchor + ts_offset_ < base) {
        const GstClockTime now = running_time_now(base);
        ts_offset_ = base + now - anchor;
        GST_DEBUG_OBJECT(src_, "frame stamped before this pipeline started; times shifted by %"
                         GST_TIME_FORMAT, GST_TIME_ARGS(ts_offset_));
    }
    auto running = [this, base](uint64_t t) -> GstClockTime {
        if (t == bips::kNoTime || !GST_CLOCK_TIME_IS_VALID(base) || t + ts_offset_ < base)
            return GST_CLOCK_TIME_NONE;
        return t + ts_offset_ - base;
    };
    GST_BUFFER_PTS(buffer) = running(fi.pts);
    GST_BUFFER_DTS(buffer) = running(fi.dts);
    GST_BUFFER_DURATION(buffer) = fi.duration == bips::kNoTime ? GST_CLOCK_TIME_NONE : fi.duration;
    GST_BUFFER_FLAG_SET(buffer, fi.flags & kRestoredFlagsMask);
    if (discont_) {
        GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
        discont_ = false;
    }

    // gst_buffer_append_memory tags the memory as changed; that flag is
    // for buffer pools, and this buffer never goes back to one.
    GST_BUFFER_FLAG_UNSET(buffer, GST_BUFFER_FLAG_TAG_MEMORY);

    std::string why;
    FrameExtras extras;
    if (!apply_meta(buffer, meta, &extras, &why))
        GST_WARNING_OBJECT(src_, "ignoring the frame's metadata: %s", why.c_str());
    else
        note_producer_latency(extras.producer_latency);
    return buffer;
}

GstFlowReturn SrcState::create(GstBuffer **buffer)
{
    GstFlowReturn ret = ensure_attached();
    if (ret != GST_FLOW_OK)
        return ret;

    bips::Frame frame;
    ret = next_frame(&frame);
    if (ret != GST_FLOW_OK)
        return ret;

    received_++;
    const uint64_t skipped = consumer_->skipped();
    if (skipped != last_skipped_) {
        discont_ = true; // a latest reader jumped over frames
        last_skipped_ = skipped;
    }
    skipped_ = skipped;

    ret = update_caps(frame.stream_info_generation());
    if (ret != GST_FLOW_OK)
        return ret; // `frame` is released here
    *buffer = make_buffer(std::move(frame));
    return GST_FLOW_OK;
}

} // namespace gstbips
