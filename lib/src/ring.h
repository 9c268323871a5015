// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the ring protocol over a mapped segment, independent of files.
//
// RingWriter (one per segment, the producer) and RingReader (one per
// consumer entry) operate on memory they are given: a real shared mapping
// or, in tests, a plain byte arena. Liveness (who is dead) is decided by the
// caller; the ring only offers reclaim_consumer().
//
// Slot life cycle: FREE -> WRITING (producer owns it) -> PUBLISHED(seq) ->
// WRITING again once no lossless consumer still has to read it and no
// consumer holds it. Holding is recorded in each consumer's bitmap; the
// producer and a consumer racing for the same slot resolve it Dekker-style
// (each stores, then loads the other's word, all sequentially consistent),
// so at least one of them backs off.
#pragma once

#include "layout.h"
#include "signaler.h"

#include <bips/channel.h>
#include <bips/producer.h>

#include <optional>
#include <span>
#include <string>

namespace bips::detail {

// Validated geometry of a segment, kept in process-local memory.
struct Geometry {
    uint32_t slot_count = 0;
    uint32_t max_consumers = 0;
    uint64_t slot_size = 0;
    uint64_t slot_stride = 0;
    uint32_t info_capacity = 0;
    uint32_t meta_capacity = 0;
    uint32_t info_stride = 0;
    uint32_t consumer_stride = 0;
    uint32_t desc_stride = 0;
    uint32_t bitmap_words = 0;
    uint64_t info_offset = 0;
    uint64_t consumer_offset = 0;
    uint64_t desc_offset = 0;
    uint64_t pubring_offset = 0;
    uint64_t control_size = 0;
    uint64_t total_size = 0;
};

// Computes the geometry for producer options (InvalidArgument on bad ones).
Result<Geometry> plan_geometry(const ProducerOptions &options);

// Checks a header read from `size` bytes of control memory of a file of
// `file_size` bytes and returns its geometry (Corrupt / Incompatible).
// `header` is copied first, so a concurrent writer cannot change it midway.
Result<Geometry> validate_header(const void *control, uint64_t control_len,
                                 uint64_t file_size, std::string_view name);

// Process-local pointers into one mapping. control covers
// [0, control_size), data covers the slot data (may be a separate mapping).
class RingView {
public:
    RingView() = default;
    RingView(std::byte *control, std::byte *data, const Geometry &g)
        : control_(control), data_(data), g_(g) {}

    const Geometry &geometry() const { return g_; }
    SegmentHeader *header() const { return reinterpret_cast<SegmentHeader *>(control_); }
    InfoEntry *info(uint32_t k) const
    {
        return reinterpret_cast<InfoEntry *>(control_ + g_.info_offset +
                                             uint64_t(k) * g_.info_stride);
    }
    std::byte *info_data(uint32_t k) const
    {
        return reinterpret_cast<std::byte *>(info(k)) + sizeof(InfoEntry);
    }
    ConsumerEntry *consumer(uint32_t i) const
    {
        return reinterpret_cast<ConsumerEntry *>(control_ + g_.consumer_offset +
                                                 uint64_t(i) * g_.consumer_stride);
    }
    AtomicU64 *held(uint32_t i) const
    {
        return reinterpret_cast<AtomicU64 *>(reinterpret_cast<std::byte *>(consumer(i)) +
                                             sizeof(ConsumerEntry));
    }
    SlotDesc *desc(uint32_t slot) const
    {
        return reinterpret_cast<SlotDesc *>(control_ + g_.desc_offset +
                                            uint64_t(slot) * g_.desc_stride);
    }
    std::byte *meta(uint32_t slot) const
    {
        return reinterpret_cast<std::byte *>(desc(slot)) + sizeof(SlotDesc);
    }
    AtomicU64 *pubring(uint64_t seq) const
    {
        return reinterpret_cast<AtomicU64 *>(control_ + g_.pubring_offset) +
               (seq % g_.slot_count);
    }
    std::byte *slot_data(uint32_t slot) const
    {
        return data_ + uint64_t(slot) * g_.slot_stride;
    }
    std::byte *control() const { return control_; }
    // Consumers sleep on frames(); the producer sleeps on space().
    Signaler frames() const
    {
        return Signaler(&header()->frame_futex, &header()->frame_waiters);
    }
    Signaler space() const
    {
        return Signaler(&header()->space_futex, &header()->space_waiters);
    }
    std::byte *data() const { return data_; }

private:
    std::byte *control_ = nullptr;
    std::byte *data_ = nullptr;
    Geometry g_;
};

// Writes a fresh header and empty tables into `view` (which must be zeroed).
void format_segment(const RingView &view, uint64_t epoch, uint32_t mode, int32_t pid);

// Reads the stream info of generation `gen` (0 = current). Returns nullopt
// when that generation was overwritten meanwhile.
std::optional<std::string> read_stream_info(const RingView &view, uint64_t gen,
                                            uint64_t *gen_out);

// Fills the counters of a ChannelInfo from the segment (no liveness).
void read_counters(const RingView &view, ChannelInfo &out);

// Producer side. Not thread-safe: the caller serialises (ProducerImpl holds
// a mutex). The wake-up helpers are safe from any thread.
class RingWriter {
public:
    explicit RingWriter(const RingView &view);

    // A free slot: the most recent publication nobody needs other than the
    // newest frame (cache-hot), else a never-used slot, else the newest
    // frame. nullopt when every slot is owned, unread or held.
    std::optional<uint32_t> try_acquire();
    void publish(uint32_t slot, const FrameInfo &info, std::span<const std::byte> meta);
    void discard(uint32_t slot);
    bool owns(uint32_t slot) const;
    void set_stream_info(std::string_view info);
    void end_of_stream();
    // Marks the channel closed and wakes everyone.
    void close();
    // Frees entry i and everything it held. The caller has proven that the
    // consumer is dead (its kernel lock could be taken).
    void reclaim_consumer(uint32_t i);

    uint64_t published() const { return next_seq_; }
    const RingView &view() const { return view_; }

private:
    RingView view_;
    uint64_t next_seq_ = 0;
    uint64_t eos_count_ = 0;
    std::basic_string<uint64_t> owned_;   // process-local bitmap of WRITING slots
    std::basic_string<uint64_t> scratch_; // union of held bitmaps, per call
};

// A frame as copied out of its descriptor, validated.
struct FrameCopy {
    uint32_t slot = 0;
    uint64_t seq = 0;
    FrameInfo info;
    uint64_t info_gen = 0;
    std::basic_string<std::byte> meta;
};

// Consumer side of one entry. try_next/join/leave from one thread;
// release() from any thread.
class RingReader {
public:
    enum class Poll { Frame, Empty, EndOfStream, Closed, Corrupt };

    RingReader() = default;
    RingReader(const RingView &view, uint32_t entry);

    // Initialises the (already locked) entry and starts at the next frame.
    void join(Policy policy, int32_t pid);
    // Clears the entry. Held slots are dropped too: call only when no Frame
    // of this entry is still alive, else use detach().
    void leave();
    // The consumer goes away while frames are still held: stop constraining
    // the producer and leave the consumer list, but keep the held bits
    // until the frames are released.
    void detach();

    Poll try_next(FrameCopy &out, std::string *why);
    void release(uint32_t slot);

    uint64_t received() const;
    uint64_t skipped() const;
    const RingView &view() const { return view_; }
    uint32_t entry() const { return entry_; }

private:
    // Sets the cursor after `seq`, counting `skipped` frames.
    void move_past(uint64_t seq, uint64_t skipped);

    RingView view_;
    uint32_t entry_ = 0;
    Policy policy_ = Policy::Lossless;
    uint64_t cursor_ = 0;
    uint64_t eos_seen_ = 0;
};

} // namespace bips::detail
