// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: the C++ state of bipssink (producer, allocator, counters, monitor).
//
// GstBipsSink (gstbipssink.cpp) is GObject boilerplate; it owns one
// SinkState (new in _init, delete in finalize) and forwards its virtual
// methods here. Lifecycle, caps and the consumer monitor are in
// gstbipssinkstate.cpp; allocation and render in gstbipssinkrender.cpp.
//
// Threads: the streaming thread calls set_caps, render, propose_allocation
// (from upstream's thread, but serialised with the stream) and
// end_of_stream; the application thread calls start/stop (state changes)
// and reads properties; any thread may call unlock/unlock_stop; a monitor
// thread, alive from start() to stop(), polls the consumer table.
#pragma once

#include "gstbipsallocator.h"

#include <bips/bips.h>

#include <gst/base/gstbasesink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace gstbips {

// Why 8 slots: the producer needs two (the one it fills and the newest
// frame), and each consumer pins two in ordinary pipelines (the buffer
// going down and the one its sink keeps as last sample); bipssrc's default
// hold limit, bips::default_max_held(8) = 2, keeps three such consumers
// zero-copy without ever holding the producer back. Costs 8 frames of
// shared memory (95.0 MiB for 4K NV12, 253.2 MiB for 4K RGBA, with the
// channel's header; MiB = 2^20 bytes, as in the core's messages).
inline constexpr guint kDefaultSlots = bips::ProducerOptions{}.slot_count;
static_assert(kDefaultSlots == 8, "the reasoning above is for 8 slots");
inline constexpr guint kDefaultPerms = 0600;
// max-wait, in milliseconds: the core's default bound (ProducerOptions),
// and the largest value that still fits its nanosecond clock.
inline constexpr guint64 kDefaultMaxWaitMs =
    std::chrono::duration_cast<std::chrono::milliseconds>(bips::ProducerOptions{}.max_wait)
        .count();
inline constexpr guint64 kMaxWaitLimitMs = G_MAXINT64 / 1000000;
// max-consumers: the core's default and range (ProducerOptions::max_consumers).
inline constexpr guint kDefaultMaxConsumers = bips::ProducerOptions{}.max_consumers;
inline constexpr guint kMaxConsumersLimit = bips::kMaxConsumerCount;

// Bytes of metadata each frame may carry (video layout, regions of
// interest, custom metas): room for a few hundred detections.
inline constexpr guint kDefaultMetaSize = bips::ProducerOptions{}.meta_capacity;
inline constexpr guint kMaxMetaSize = bips::kMaxMetaCapacity;

// Properties. Guarded by GST_OBJECT_LOCK of the element.
struct SinkSettings {
    std::string channel;
    guint slots = kDefaultSlots;
    guint64 slot_size = 0; // 0: derived from the caps, grown as buffers need
    guint meta_size = kDefaultMetaSize;
    guint perms = kDefaultPerms;
    guint64 max_wait_ms = kDefaultMaxWaitMs; // 0: wait forever
    guint max_consumers = kDefaultMaxConsumers;
    bool allow_copy = true;
    bool wait_for_consumer = false;
};

class SinkState {
public:
    explicit SinkState(GstBaseSink *sink);
    ~SinkState();
    SinkState(const SinkState &) = delete;
    SinkState &operator=(const SinkState &) = delete;

    SinkSettings settings; // guarded by GST_OBJECT_LOCK(sink_)

    bool start();
    void stop();
    bool set_caps(GstCaps *caps);
    bool propose_allocation(GstQuery *query);
    GstFlowReturn render(GstBuffer *buffer);
    void end_of_stream();
    void unlock();
    void unlock_stop();

    guint consumers();
    GstStructure *stats();

private:
    SinkSettings snapshot_settings();
    bool create_producer(const std::string &stream_info, guint64 frame_size);
    bool recreate_producer(const std::string &stream_info, guint64 frame_size);
    bool grow_for(gsize size);
    void drop_producer();
    bool flushing();
    GstFlowReturn wait_for_consumer(const std::shared_ptr<bips::Producer> &producer);
    GstFlowReturn copy_into_slot(GstBuffer *buffer, GstMemory **out);
    bips::FrameInfo frame_info(GstBuffer *buffer);
    void monitor_loop();
    void poll_consumers();
    void forget_consumers();

    GstBaseSink *sink_; // the owning element; not a reference

    // Guards producer_, allocator_, flushing_, monitor_stop_, slot_count_
    // and channel_generation_. The streaming thread is the only writer of producer_
    // and allocator_ (set_caps/render/stop run serialised with it), so it
    // may read them without the lock; every other thread reads them under
    // it. Never held across a wait inside the core or a signal emission.
    // Taken before GST_OBJECT_LOCK when both are needed.
    std::mutex mutex_;
    std::condition_variable wake_; // flushing_ or monitor_stop_ changed
    std::shared_ptr<bips::Producer> producer_;
    GstBipsAllocator *allocator_ = nullptr; // owned ref; wraps producer_
    bool flushing_ = false;
    bool monitor_stop_ = false;
    guint slot_count_ = 0;
    guint64 channel_generation_ = 0; // bumped by every create_producer()

    std::thread monitor_;
    // Monitor-thread only (and stop() after joining it): the consumers
    // reported so far, as (entry index, pid), and the channel generation
    // they belong to.
    std::set<std::pair<uint32_t, int32_t>> known_;
    guint64 known_generation_ = 0;

    // Streaming thread only: the caps of the channel, as its stream info,
    // and whether the warning about metadata that cannot travel was given.
    std::string stream_info_;
    bool meta_warned_ = false;

    std::atomic<guint64> published_{0};
    std::atomic<guint64> zero_copy_{0};
    std::atomic<guint64> copied_{0};
    std::atomic<guint64> grown_{0}; // channels recreated for bigger buffers
};

} // namespace gstbips

// Implemented in gstbipssink.cpp: emit the element's consumer signals and
// notify::consumers. Called from the monitor thread without locks held.
void gst_bips_sink_emit_consumer_added(GstBaseSink *sink, guint index);
void gst_bips_sink_emit_consumer_removed(GstBaseSink *sink, guint index);
void gst_bips_sink_notify_consumers(GstBaseSink *sink);
