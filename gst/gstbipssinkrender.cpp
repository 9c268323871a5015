// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: the streaming side of bipssink (allocation, render, publish).
#include "gstbipssinkstate.h"

#include "gstbipsmeta.h"
#include "gstbipspool.h"
#include "gstbipsutils.h"

#include <vector>

GST_DEBUG_CATEGORY_EXTERN(gst_bips_sink_debug);
#define GST_CAT_DEFAULT gst_bips_sink_debug

namespace gstbips {

namespace {

// A blocked render looks at the flushing flag at least this often.
constexpr auto kWaitSlice = std::chrono::milliseconds(100);

} // namespace

bool SinkState::propose_allocation(GstQuery *query)
{
    GstCaps *caps = nullptr;
    gboolean need_pool = FALSE;
    gst_query_parse_allocation(query, &caps, &need_pool);
    gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, nullptr);

    GstVideoInfo vinfo;
    GstStructure *st = caps ? gst_caps_get_structure(caps, 0) : nullptr;
    if (!need_pool || !st || !gst_structure_has_name(st, "video/x-raw") ||
        !gst_video_info_from_caps(&vinfo, caps))
        return true; // only raw video gets slots as buffers; the rest is copied

    GstBipsAllocator *allocator = nullptr;
    guint slots = 0;
    guint64 slot_size = 0;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        if (allocator_) {
            allocator = GST_BIPS_ALLOCATOR(gst_object_ref(allocator_));
            slots = slot_count_;
            slot_size = producer_->slot_size();
        }
    }
    if (!allocator)
        return true;

    const guint size = GST_VIDEO_INFO_SIZE(&vinfo);
    if (size <= slot_size) {
        // The allocator is deliberately not added as an allocation param:
        // a generic pool around it would recycle published slots.
        GstBufferPool *pool = gst_bips_pool_new(allocator);
        GstStructure *config = gst_buffer_pool_get_config(pool);
        gst_buffer_pool_config_set_params(config, caps, size, 0, slots - 1);
        gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
        if (gst_buffer_pool_set_config(pool, config))
            gst_query_add_allocation_pool(query, pool, size, 0, slots - 1);
        gst_object_unref(pool);
    }
    gst_object_unref(allocator);
    return true;
}

bips::FrameInfo SinkState::frame_info(GstBuffer *buffer)
{
    // Timestamps cross the channel as absolute clock times: running time of
    // our segment plus our base time. bipssrc subtracts its own base time.
    // On a pipeline clock other than the monotonic system clock the times
    // are moved onto CLOCK_MONOTONIC, the channel's time base.
    const GstSegment *segment = &sink_->segment;
    const GstClockTime base = gst_element_get_base_time(GST_ELEMENT(sink_));
    const int64_t to_monotonic = monotonic_offset(GST_ELEMENT(sink_));
    auto absolute = [&](GstClockTime t) -> uint64_t {
        if (!GST_CLOCK_TIME_IS_VALID(t) || segment->format != GST_FORMAT_TIME)
            return bips::kNoTime;
        GstClockTime rt = gst_segment_to_running_time(segment, GST_FORMAT_TIME, t);
        if (!GST_CLOCK_TIME_IS_VALID(rt))
            return bips::kNoTime;
        return shift_time(rt + base, to_monotonic, bips::kNoTime);
    };
    bips::FrameInfo fi;
    fi.size = gst_buffer_get_size(buffer);
    fi.pts = absolute(GST_BUFFER_PTS(buffer));
    fi.dts = absolute(GST_BUFFER_DTS(buffer));
    fi.duration = GST_BUFFER_DURATION_IS_VALID(buffer) ? GST_BUFFER_DURATION(buffer)
                                                      : bips::kNoTime;
    fi.flags = GST_BUFFER_FLAGS(buffer) & bips::kFrameFlagUserMask;
    return fi;
}

GstFlowReturn SinkState::wait_for_consumer(const std::shared_ptr<bips::Producer> &producer)
{
    bool logged = false;
    while (producer->consumer_count() == 0) {
        if (!logged) {
            GST_INFO_OBJECT(sink_, "waiting for a consumer on '%s'", producer->name().c_str());
            logged = true;
        }
        std::unique_lock<std::mutex> lock(mutex_);
        if (wake_.wait_for(lock, std::chrono::milliseconds(20), [this] { return flushing_; }))
            return GST_FLOW_FLUSHING;
    }
    return GST_FLOW_OK;
}

// Acquires a slot and copies `buffer` into it. On GST_FLOW_OK *out is a
// slot memory ready to publish (the caller unrefs it afterwards). The
// buffer fits a slot: render grew the channel or failed first (grow_for).
GstFlowReturn SinkState::copy_into_slot(GstBuffer *buffer, GstMemory **out)
{
    const gsize size = gst_buffer_get_size(buffer);
    for (;;) {
        GstBipsAcquire status;
        std::string error;
        GstMemory *mem =
            gst_bips_allocator_acquire_slot(allocator_, size, GstBipsSlotUser::Sink, kWaitSlice,
                                            &status, &error);
        switch (status) {
        case GstBipsAcquire::Ok: {
            GstMapInfo map;
            if (!gst_memory_map(mem, &map, GST_MAP_WRITE)) {
                gst_memory_unref(mem);
                GST_ELEMENT_ERROR(sink_, RESOURCE, WRITE, ("cannot map a slot for writing"),
                                  (nullptr));
                return GST_FLOW_ERROR;
            }
            gst_buffer_extract(buffer, 0, map.data, size);
            gst_memory_unmap(mem, &map);
            *out = mem;
            return GST_FLOW_OK;
        }
        case GstBipsAcquire::Timeout:
            // Lossless consumers hold every slot: backpressure. Keep
            // waiting unless we are told to stop.
            if (flushing())
                return GST_FLOW_FLUSHING;
            GST_LOG_OBJECT(sink_, "no free slot yet");
            continue;
        case GstBipsAcquire::Interrupted:
            return GST_FLOW_FLUSHING;
        case GstBipsAcquire::Retired:
        case GstBipsAcquire::TooBig:
        case GstBipsAcquire::Error:
            GST_ELEMENT_ERROR(sink_, RESOURCE, WRITE,
                              ("cannot get a slot of channel '%s': %s",
                               producer_->name().c_str(),
                               error.empty() ? "the channel is closed" : error.c_str()),
                              (nullptr));
            return GST_FLOW_ERROR;
        }
    }
}

GstFlowReturn SinkState::render(GstBuffer *buffer)
{
    const SinkSettings s = snapshot_settings();
    if (!producer_) {
        // Buffers without caps (an upstream that sends none): a channel
        // can still be made when the slot size is given.
        if (!create_producer("", 0))
            return GST_FLOW_ERROR;
    }
    if (gst_buffer_get_size(buffer) > producer_->slot_size() && !grow_for(gst_buffer_get_size(buffer)))
        return GST_FLOW_ERROR;
    std::shared_ptr<bips::Producer> producer = producer_;

    if (s.wait_for_consumer) {
        GstFlowReturn ret = wait_for_consumer(producer);
        if (ret != GST_FLOW_OK)
            return ret;
    }

    const bips::FrameInfo info = frame_info(buffer);
    // The pipeline latency: with sync=true we publish that long after the
    // frame's time, and consumers add it to theirs.
    std::string left_out;
    auto meta = serialize_meta(buffer, gst_base_sink_get_latency(sink_),
                               producer->meta_capacity(), &left_out);
    if (!meta) {
        GST_ELEMENT_ERROR(sink_, STREAM, FAILED,
                          ("cannot publish a frame's metadata on channel '%s': %s",
                           producer->name().c_str(), meta.error().message.c_str()),
                          ("buffer %" GST_PTR_FORMAT, static_cast<gpointer>(buffer)));
        return GST_FLOW_ERROR;
    }
    if (!left_out.empty() && !meta_warned_) {
        meta_warned_ = true;
        GST_ELEMENT_WARNING(sink_, STREAM, FORMAT,
                            ("part of a frame's metadata cannot travel: %s", left_out.c_str()),
                            ("warned once per sink"));
    }

    // Zero-copy only when the buffer is exactly one unpublished slot of this
    // channel and we hold the only reference to both buffer and memory:
    // once published, the slot may be rewritten for a later frame, so
    // nobody else may still be able to read or write it (an upstream that
    // keeps a reference, like videorate or a decoder's reference frames,
    // gets a copy instead, and its slot is discarded when it lets go).
    GstMemory *first = gst_buffer_n_memory(buffer) == 1 ? gst_buffer_peek_memory(buffer, 0)
                                                        : nullptr;
    const bool ours = first && gst_bips_allocator_can_publish(allocator_, first);
    const bool sole = ours && GST_MINI_OBJECT_REFCOUNT_VALUE(buffer) == 1 &&
                      GST_MINI_OBJECT_REFCOUNT_VALUE(first) == 1;
    GstMemory *mem = nullptr;
    if (sole) {
        mem = gst_memory_ref(first);
    } else if (s.allow_copy) {
        if (ours)
            GST_LOG_OBJECT(sink_, "pool buffer still referenced elsewhere, copying it");
        GstFlowReturn ret = copy_into_slot(buffer, &mem);
        if (ret != GST_FLOW_OK)
            return ret;
    } else if (ours) {
        GST_ELEMENT_ERROR(sink_, STREAM, FAILED,
                          ("a buffer from bipssink's pool is still referenced by another element "
                           "(tee, videorate, a decoder...), so it cannot be published without a "
                           "copy; set allow-copy=true"),
                          ("buffer refcount %d, memory refcount %d",
                           GST_MINI_OBJECT_REFCOUNT_VALUE(buffer),
                           GST_MINI_OBJECT_REFCOUNT_VALUE(first)));
        return GST_FLOW_ERROR;
    } else {
        GST_ELEMENT_ERROR(sink_, STREAM, FAILED,
                          ("buffer is not from bipssink's pool and allow-copy is false; set "
                           "allow-copy=true or make upstream use the pool bipssink proposes"),
                          ("buffer %" GST_PTR_FORMAT " with %u memories",
                           static_cast<gpointer>(buffer), gst_buffer_n_memory(buffer)));
        return GST_FLOW_ERROR;
    }
    const bool zero_copy = sole;

    auto r = gst_bips_allocator_publish(allocator_, mem, info, *meta);
    gst_memory_unref(mem); // unpublished copy slot: discarded here
    if (!r) {
        GST_ELEMENT_ERROR(sink_, STREAM, FAILED,
                          ("cannot publish a frame on channel '%s': %s",
                           producer->name().c_str(), r.error().message.c_str()),
                          ("bips error %s", bips::errc_name(r.code())));
        return GST_FLOW_ERROR;
    }
    published_++;
    (zero_copy ? zero_copy_ : copied_)++;
    return GST_FLOW_OK;
}

} // namespace gstbips
