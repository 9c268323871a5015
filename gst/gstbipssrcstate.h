// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: the C++ state of bipssrc (consumer, caps tracking, counters).
//
// GstBipsSrc (gstbipssrc.cpp) is GObject boilerplate; it owns one SrcState
// (new in _init, delete in finalize) and forwards its virtual methods here.
// Lifecycle, attach and queries are in gstbipssrcstate.cpp; turning frames
// into buffers in gstbipssrcstream.cpp.
//
// Threads: the streaming thread calls negotiate and create, and it alone
// uses the Consumer for next()/reattach(); start/stop run on state changes
// while no streaming thread runs; unlock/unlock_stop, queries and property
// reads come from any thread.
#pragma once

#include "gstbipsallocator.h"

#include <bips/bips.h>

#include <gst/base/gstbasesrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace gstbips {

// A blocked wait (attach, next frame, reattach) looks at the flushing flag
// at least this often, even if the core's interrupt() were missed.
inline constexpr std::chrono::milliseconds kSrcWaitSlice{100};

// Stream info that is empty (a producer that sets none) still needs caps.
inline constexpr const char *kUnknownCaps = "application/octet-stream";

// Parses stream info into caps (empty info: kUnknownCaps); nullptr if it
// is not a caps string.
GstCaps *parse_stream_info(const std::string &info);

// Properties. Guarded by GST_OBJECT_LOCK of the element.
struct SrcSettings {
    std::string channel;
    bips::Policy policy = bips::Policy::Lossless;
    gint64 timeout_ms = -1; // -1 waits forever
    bool reconnect = true;
    guint anticipate_us = 0; // ConsumerOptions::anticipate; 0 = off
    guint max_held = 0;      // 0 = bips::default_max_held(slots); mirrored in SrcState
};

class SrcState {
public:
    explicit SrcState(GstBaseSrc *src);
    ~SrcState();
    SrcState(const SrcState &) = delete;
    SrcState &operator=(const SrcState &) = delete;

    SrcSettings settings; // guarded by GST_OBJECT_LOCK(src_)

    bool start();
    void stop();
    bool negotiate();
    GstCaps *get_caps(GstCaps *filter);
    void latency(GstClockTime *min, GstClockTime *max);
    GstFlowReturn create(GstBuffer **buffer);
    void unlock();
    void unlock_stop();
    GstStructure *stats();
    // Posts stats() as an element message (GstBipsSrcStats), once per run:
    // as the EOS event leaves the source pad (from the thread that pushes
    // it), or in stop() when the run ended without EOS. Any thread.
    void post_stats();
    // The max-held property changed (any thread; GST_OBJECT_LOCK held).
    void set_max_held(guint max_held) { max_held_.store(max_held, std::memory_order_relaxed); }

private:
    SrcSettings snapshot_settings();
    bool flushing();
    void reset_deadline();
    bool deadline_passed() const;
    std::chrono::nanoseconds slice() const;
    void install(std::unique_ptr<bips::Consumer> consumer);
    bool attach_failed(const bips::Error &error, const std::string &channel);
    GstFlowReturn ensure_attached();
    GstFlowReturn reattach(const std::string &why);
    GstFlowReturn next_frame(bips::Frame *frame);
    GstFlowReturn update_caps(uint64_t generation);
    bool set_caps(GstCaps *caps, const std::string &channel);
    void record_caps(GstCaps *caps);
    void record_info(const std::string &info);
    void note_producer_latency(GstClockTime latency);
    GstBuffer *make_buffer(bips::Frame &&frame);
    GstBuffer *limit_held(GstBuffer *buffer);
    GstBuffer *copy_out(GstBuffer *buffer);
    bool ensure_copy_pool(gsize size);
    void drop_copy_pool();
    void push_gap(GstBuffer *next);
    void new_attachment();
    void reject_frame(uint64_t seq, const std::string &why);
    void note_layout(GstCaps *caps);
    GstClockTime running_time_now(GstClockTime base) const;

    GstBaseSrc *src_; // the owning element; not a reference

    // Guards consumer_ (its existence: unlock interrupts it from another
    // thread), flushing_ and allocator_ (the pointer: stats() reads it from
    // any thread). The streaming thread calls next()/reattach() on
    // consumer_ without the lock: only start/stop replace it, and they
    // never run at the same time as the streaming thread. Likewise it reads
    // allocator_ without the lock, since only it (and start/stop) replace it.
    std::mutex mutex_;
    std::unique_ptr<bips::Consumer> consumer_;
    bool flushing_ = false;

    // Owned ref, start() to stop(); a new one for each attachment, so that
    // it counts the frames alive of the current attachment only (the
    // producer no longer keeps slots for an attachment that ended).
    GstBipsAllocator *allocator_ = nullptr;

    // Streaming thread only (and start/stop).
    std::optional<std::chrono::steady_clock::time_point> deadline_; // of the current wait
    uint64_t last_generation_ = 0;
    std::string last_info_; // stream info of the caps pushed downstream
    bool caps_pushed_ = false;
    bool discont_ = true;
    uint64_t last_skipped_ = 0;
    // skipped_ counts across attachments: what earlier attachments skipped,
    // plus the frames lost when the producer dropped this consumer (the
    // sequence numbers between the last frame before and the first after).
    uint64_t skipped_before_ = 0;
    uint64_t last_seq_ = 0;       // sequence of the last frame taken
    bool have_last_seq_ = false;
    bool count_lost_ = false;     // the next frame tells how many were lost
    GstClockTime ts_offset_ = 0; // added to frame times; see make_buffer
    GstVideoInfo layout_{};      // of the raw video caps pushed downstream
    bool have_layout_ = false;   // layout_ is valid (caps are raw video)
    bool reject_reported_ = false; // a rejected frame was posted on the bus
    bool held_warned_ = false;     // copy-out was reported for this attachment
    // Where copied-out frames go (see copy_out): plain memory recycled
    // through a pool, sized for copy_pool_size_ bytes; null until needed.
    GstBufferPool *copy_pool_ = nullptr;
    gsize copy_pool_size_ = 0;
    GstClockTime last_end_ = GST_CLOCK_TIME_NONE; // PTS + duration of the last buffer
    bool gap_pending_ = false; // frames were lost: push a GAP before the next buffer

    // Guarded by GST_OBJECT_LOCK(src_): read by queries from any thread.
    GstCaps *caps_ = nullptr; // the channel's caps, once known
    gint fps_n_ = 0;
    gint fps_d_ = 1;
    guint slot_count_ = 0;
    bips::Policy policy_ = bips::Policy::Lossless; // of the attached consumer
    GstClockTime producer_latency_ = 0; // largest the frames announced

    std::atomic<guint64> received_{0};
    std::atomic<guint64> skipped_{0};
    std::atomic<guint64> rejected_{0}; // frames dropped by make_buffer
    std::atomic<guint64> reconnects_{0};
    std::atomic<guint64> copied_{0}; // frames pushed as a copy (limit_held)
    // Whether this run's final stats were posted (post_stats(): once per
    // start()).
    std::atomic<bool> stats_posted_{false};
    std::atomic<guint> max_held_{0}; // the max-held property; 0 = auto
    std::atomic<guint> auto_max_held_{1}; // bips::default_max_held() of the attachment
    std::atomic<guint64> epoch_{0};
};

} // namespace gstbips
