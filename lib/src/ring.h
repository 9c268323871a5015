// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the ring protocol over mapped memory, independent of descriptors.
//
// RingWriter (the producer) and RingReader (one per consumer) operate on
// memory they are given: real shared mappings or, in tests, plain byte
// arenas. This is the one module that reads and writes the cross-process
// words declared in layout.h.
//
// Slot life cycle: FREE -> WRITING (producer owns it) -> PUBLISHED(seq) ->
// WRITING again once no lossless consumer still has to read it and no
// consumer holds it. Holding is recorded in each consumer's own bitmap; the
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
#include <vector>

namespace bips::detail {

// Validated geometry of a producer segment, kept in process-local memory.
struct Geometry {
    uint32_t slot_count = 0;
    uint32_t max_consumers = 0;
    uint64_t slot_size = 0;
    uint64_t slot_stride = 0;
    uint32_t info_capacity = 0;
    uint32_t meta_capacity = 0;
    uint32_t info_stride = 0;
    uint32_t desc_stride = 0;
    uint32_t bitmap_words = 0;
    uint32_t page_size = 0;
    uint64_t info_offset = 0;
    uint64_t desc_offset = 0;
    uint64_t pubring_offset = 0;
    uint64_t drops_offset = 0;
    uint64_t data_offset = 0;
    uint64_t total_size = 0;

    // Bytes of a consumer state memfd for this geometry.
    uint64_t consumer_state_size() const
    {
        return sizeof(ConsumerShared) + 8ull * bitmap_words;
    }
};

// Computes the geometry for producer options and a page size (a power of
// two from 4 to 64 KiB). InvalidArgument on bad options.
Result<Geometry> plan_geometry(const ProducerOptions &options, uint64_t page_size);

// Checks a header at the start of `len` mapped bytes of a segment of
// `size` bytes and returns its geometry (Corrupt / Incompatible). The
// header is copied first, so a concurrent writer cannot change it midway.
Result<Geometry> validate_header(const void *segment, uint64_t len, uint64_t size,
                                 std::string_view name);

// Process-local pointers into a producer segment.
class RingView {
public:
    RingView() = default;
    RingView(std::byte *base, const Geometry &g) : base_(base), g_(g) {}

    const Geometry &geometry() const { return g_; }
    SegmentHeader *header() const { return reinterpret_cast<SegmentHeader *>(base_); }
    InfoEntry *info(uint32_t k) const
    {
        return reinterpret_cast<InfoEntry *>(base_ + g_.info_offset + uint64_t(k) * g_.info_stride);
    }
    AtomicU64 *info_words(uint32_t k) const
    {
        return reinterpret_cast<AtomicU64 *>(reinterpret_cast<std::byte *>(info(k)) +
                                             sizeof(InfoEntry));
    }
    SlotDesc *desc(uint32_t slot) const
    {
        return reinterpret_cast<SlotDesc *>(base_ + g_.desc_offset + uint64_t(slot) * g_.desc_stride);
    }
    std::byte *meta(uint32_t slot) const
    {
        return reinterpret_cast<std::byte *>(desc(slot)) + sizeof(SlotDesc);
    }
    AtomicU64 *pubring(uint64_t seq) const
    {
        return reinterpret_cast<AtomicU64 *>(base_ + g_.pubring_offset) + (seq % g_.slot_count);
    }
    AtomicU32 *drop_word(uint32_t entry) const
    {
        return reinterpret_cast<AtomicU32 *>(base_ + g_.drops_offset) + entry;
    }
    std::byte *slot_data(uint32_t slot) const
    {
        return base_ + g_.data_offset + uint64_t(slot) * g_.slot_stride;
    }
    std::byte *base() const { return base_; }
    std::byte *data() const { return base_ + g_.data_offset; }

private:
    std::byte *base_ = nullptr;
    Geometry g_;
};

// Writes a fresh header and empty tables into `view` (which must be zeroed).
void format_segment(const RingView &view, uint64_t epoch, uint32_t mode, int32_t pid);

// Reads the stream info of generation `gen` (0 = current). Returns nullopt
// when that generation was overwritten meanwhile.
std::optional<std::string> read_stream_info(const RingView &view, uint64_t gen,
                                            uint64_t *gen_out);

// Fills the producer-side fields of a ChannelInfo from the segment.
void read_counters(const RingView &view, ChannelInfo &out);

// One consumer state as the producer sees it: untrusted, validated here.
struct ConsumerSnapshot {
    bool detached = false;
    Policy policy = Policy::Latest;
    int32_t pid = 0;
    uint64_t cursor = 0;
    uint64_t received = 0;
    uint64_t skipped = 0;
    uint32_t held = 0;
    uint64_t release_age_ns = 0; // since its last release (as it reports it)
};
ConsumerSnapshot read_consumer(const ConsumerShared *c, const Geometry &g);

// The ConsumerInfo of entry `index` as the consumer reports itself: its
// PID taken as a PID of the caller's namespace (the caller corrects
// local_pid and other_pid_namespace when it knows better), not blocking.
ConsumerInfo consumer_info(uint32_t index, const ConsumerSnapshot &s);

// True when `c` starts like a consumer state (its magic), as the consumer
// writes it before it hands the state over.
bool looks_like_consumer(const ConsumerShared *c);

// Frames published in this segment so far (any thread, any process).
uint64_t published_count(const RingView &view);

// Producer side. Not thread-safe: the caller serialises (ProducerImpl holds
// a mutex); the consumer list may change only under that serialisation.
class RingWriter {
public:
    RingWriter() = default;
    RingWriter(const RingView &view, Doorbell *bell);

    // The consumers to honour: read-only mappings of their states, any of
    // them nullptr. The span must stay valid until the next call.
    void set_consumers(std::span<const ConsumerShared *const> consumers) { consumers_ = consumers; }

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
    // How much consumer `c` holds the producer back: slots it holds, plus
    // slot_count when it is a lossless reader that has not read everything.
    uint32_t pressure(const ConsumerShared *c) const;
    // Tells the consumer of `entry` that it was dropped (see layout.h).
    void mark_dropped(uint32_t entry);

    // The producer's side of waiting for space (sleeps on the doorbell).
    uint32_t prepare_wait();
    void wait(uint32_t token, int64_t rel_ns);
    void finish_wait();
    // Wakes a producer sleeping for space (from any thread of this process).
    void wake_space();
    // Entry `entry` has a new consumer: it has not been woken yet.
    void forget_consumer(uint32_t entry);

    uint64_t published() const { return next_seq_; }
    // End-of-stream markers published so far.
    uint64_t eos_count() const { return eos_count_; }
    const RingView &view() const { return view_; }

private:
    bool held_by_anyone(uint32_t slot) const;

    RingView view_;
    Doorbell *bell_ = nullptr;
    std::span<const ConsumerShared *const> consumers_;
    uint64_t next_seq_ = 0;
    uint64_t eos_count_ = 0;
    std::vector<uint64_t> owned_;   // process-local bitmap of WRITING slots
    std::vector<uint64_t> scratch_; // union of held bitmaps, per call
    std::vector<uint32_t> woken_;   // by entry: the sleep it was woken from
};

// A frame as copied out of its descriptor, validated.
struct FrameCopy {
    uint32_t slot = 0;
    uint64_t seq = 0;
    FrameInfo info;
    uint64_t info_gen = 0;
    std::basic_string<std::byte> meta;
};

// Consumer side: the producer's segment (read-only), the consumer's own
// state (read-write) and the doorbell. try_next/join/leave from one
// thread; release() from any thread.
class RingReader {
public:
    // Dropped: the producer dropped this consumer (no frame is returned
    // after that).
    enum class Poll { Frame, Empty, EndOfStream, Closed, Dropped };

    RingReader() = default;
    RingReader(const RingView &view, ConsumerShared *own, Doorbell *bell);

    // Fills the own state before it is handed to the producer.
    void init(Policy policy, int32_t pid);
    // Starts at sequence `start` (what the producer had published when it
    // accepted us as entry `entry`; clamped to what is plausible), after
    // `eos_before` end-of-stream markers (those are not ours to report).
    void join(uint32_t entry, uint64_t start, uint32_t eos_before);
    // Drops every held slot (no Frame of this reader may still be alive).
    void leave();
    // The consumer goes away while frames are still held: stop
    // constraining the producer; only the held bits count until released.
    void detach();

    // The next frame for the policy. A frame whose descriptor fails
    // validation is skipped and counted in `corrupt` (and `why` says why),
    // never returned and never retried.
    Poll try_next(FrameCopy &out, std::string *why);
    void release(uint32_t slot);

    // The consumer's side of waiting for frames (its own waiting flag).
    uint32_t prepare_wait();
    void wait(uint32_t token, int64_t rel_ns);
    void finish_wait();
    // Wakes this process's sleeping readers of the same segment.
    void wake_frames();

    uint64_t received() const;
    uint64_t skipped() const;
    // Slots this reader holds now (Frames not yet released): its own
    // bitmap, so the count costs a load per 64 slots.
    uint32_t held() const;
    uint64_t corrupt() const { return corrupt_; }
    bool dropped() const;
    const RingView &view() const { return view_; }

private:
    void move_past(uint64_t seq, uint64_t skipped);
    void ring_doorbell();

    RingView view_;
    ConsumerShared *own_ = nullptr;
    Doorbell *bell_ = nullptr;
    Policy policy_ = Policy::Lossless;
    uint64_t cursor_ = 0;
    uint64_t eos_seen_ = 0;
    uint64_t corrupt_ = 0;
    uint32_t entry_ = UINT32_MAX;
    uint32_t drop_gen_ = 0;
    uint32_t sleep_ = 0;   // number of the current sleep (waiting word)
};

} // namespace bips::detail
