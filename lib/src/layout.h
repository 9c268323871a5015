// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the shared-memory layout of a channel (data only, no logic).
//
// A channel lives in three kinds of memfd, each handed over a unix-domain
// socket (see rendezvous.h and service.h), never named in a file system:
//
//   producer segment   written by the producer only; consumers get a
//                      read-only descriptor of it, sealed against writes
//                      through new mappings and against any size change.
//       SegmentHeader                   (geometry, epoch, counters, futex)
//       InfoEntry x kInfoEntries        (stream info ring, seqlocked)
//       SlotDesc  x slot_count          (each followed by meta_capacity bytes)
//       pub ring  x slot_count u64      (sequence -> slot index)
//       drop word x max_consumers u32   (bumped when the producer drops an entry)
//       -- page boundary: data_offset --
//       slot data x slot_count          (slot_stride bytes each, page aligned)
//
//   consumer state     one per consumer, written by that consumer only; the
//                      producer maps it read-only and treats every field as
//                      hostile input. ConsumerShared then its held bitmap.
//
//   doorbell           one page every consumer may write: only the futex
//                      word that wakes a producer waiting for space. Its
//                      value means nothing; a peer writing garbage there
//                      causes at worst a spurious wake-up.
//
// Every struct here is standard layout, holds offsets and never pointers,
// and uses lock-free atomics only. This file declares the cross-process
// words; ring.cpp is the one module that reads and writes them (signaler.cpp
// waits and wakes on them). Each field says who writes it and how.
#pragma once

#include <bips/producer.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace bips::detail {

inline constexpr uint64_t kMagic = 0x324e484353504942ull;         // "BIPSCHN2"
inline constexpr uint64_t kConsumerMagic = 0x324e4f4353504942ull; // "BIPSCON2"
inline constexpr uint32_t kLayoutVersion = 2;
inline constexpr uint32_t kInfoEntries = 4;

// The public limits (<bips/producer.h>), under the names used here.
inline constexpr uint32_t kMinSlots = kMinSlotCount;
inline constexpr uint32_t kMaxSlots = kMaxSlotCount;
inline constexpr uint32_t kMaxConsumers = kMaxConsumerCount;
inline constexpr uint32_t kMaxInfoCapacity = 1u << 20;
inline constexpr uint64_t kMaxSlotSize = 1ull << 40;
// Pages from 4 KiB to 64 KiB (arm64 kernels use 4, 16 or 64 KiB).
inline constexpr uint64_t kMinPageSize = 4096;
inline constexpr uint64_t kMaxPageSize = 65536;

// SlotDesc::seq values that are not publication sequence numbers.
inline constexpr uint64_t kSeqFree = ~0ull;
inline constexpr uint64_t kSeqWriting = ~0ull - 1;

// A pub ring entry: which slot holds sequence `seq` (48 bits of it). A small
// value type instead of raw masks at every use.
struct PubEntry {
    static constexpr uint64_t kSlotBits = 16;
    static constexpr uint64_t kSeqMask = (1ull << (64 - kSlotBits)) - 1;
    static constexpr uint64_t kEmpty = ~0ull;
    uint64_t raw = kEmpty;

    static PubEntry make(uint64_t seq, uint32_t slot)
    {
        return {((seq & kSeqMask) << kSlotBits) | slot};
    }
    bool names(uint64_t seq) const { return raw != kEmpty && (raw >> kSlotBits) == (seq & kSeqMask); }
    uint32_t slot() const { return uint32_t(raw & ((1ull << kSlotBits) - 1)); }
};
static_assert(kMaxSlots <= (1u << PubEntry::kSlotBits));

// The end-of-stream marker: the sequence at which the count-th end of
// stream happened. 0 = none yet.
struct EosMarker {
    static constexpr uint64_t kCountBits = 16;
    uint64_t raw = 0;

    static EosMarker make(uint64_t seq, uint64_t count)
    {
        return {((seq & PubEntry::kSeqMask) << kCountBits) | (count & 0xffff)};
    }
    uint64_t count() const { return raw & 0xffff; }
    uint64_t seq() const { return raw >> kCountBits; }
};

enum ProducerState : uint32_t {
    kProducerLive = 1,
    kProducerClosed = 2, // exited cleanly; nothing more will be published
};

enum ConsumerState : uint32_t {
    kConsumerActive = 1,
    // The Consumer object went away but some of its frames are still alive:
    // the producer ignores its cursor and honours only its held bits.
    kConsumerDetached = 2,
};

using AtomicU32 = std::atomic<uint32_t>;
using AtomicU64 = std::atomic<uint64_t>;
static_assert(AtomicU32::is_always_lock_free);
static_assert(AtomicU64::is_always_lock_free);
static_assert(sizeof(AtomicU32) == 4 && sizeof(AtomicU64) == 8);

struct alignas(64) SegmentHeader {
    // -- Written once by the producer before any consumer gets the segment
    //    (the descriptor hand-over orders it); readers copy and validate.
    uint64_t magic;
    uint32_t layout_version;
    uint32_t header_size;
    uint64_t total_size;
    uint64_t data_offset;   // page-aligned start of slot data
    uint32_t slot_count;
    uint32_t max_consumers;
    uint64_t slot_size;     // usable bytes of a slot
    uint64_t slot_stride;   // slot_size rounded up to page_size
    uint32_t info_capacity;
    uint32_t meta_capacity;
    uint32_t info_stride;
    uint32_t desc_stride;
    uint32_t bitmap_words;  // 64-bit words of a consumer's held bitmap
    uint32_t page_size;     // the producer's page size; offsets align to it
    uint64_t info_offset;
    uint64_t desc_offset;
    uint64_t pubring_offset;
    uint64_t epoch;
    int32_t producer_pid;   // informational, in the producer's namespace
    uint32_t mode;
    uint64_t created_realtime_ns;
    uint64_t drops_offset;
    uint8_t reserved0[256 - 136];

    // -- Producer-written counters: write_seq with seq_cst (pairs with the
    //    consumers' waiting flags), the others with release.
    alignas(64) AtomicU64 write_seq;   // frames published; next sequence
    AtomicU64 info_gen;                // generation of the current info
    AtomicU64 eos_marker;              // EosMarker
    AtomicU32 producer_state;          // ProducerState
    uint32_t reserved1;

    // -- Futex words. Consumers sleep on frame_futex (the producer bumps it,
    //    seq_cst, when it wakes them). The producer sleeps on the doorbell
    //    and sets space_waiting (seq_cst) first, so consumers that free
    //    space know whether to ring.
    alignas(64) AtomicU32 frame_futex;
    // On a line of its own: consumers read it at every frame they free,
    // while frame_futex changes at every publish that wakes someone.
    alignas(64) AtomicU32 space_waiting;
};
static_assert(std::is_standard_layout_v<SegmentHeader>);
static_assert(offsetof(SegmentHeader, reserved0) == 136);
static_assert(offsetof(SegmentHeader, write_seq) == 256);
static_assert(sizeof(SegmentHeader) == 448);

// One stream info generation. Seqlocked by the producer: gen is 0 while the
// entry is being written (store with acq_rel exchange), its number once done
// (release). Readers copy with acquire loads and re-check gen.
struct alignas(64) InfoEntry {
    AtomicU64 gen;
    AtomicU32 size;
    uint32_t reserved;
    uint8_t pad[48];
    // followed by info_capacity bytes, read and written as AtomicU64 words
};
static_assert(sizeof(InfoEntry) == 64);

// Written by the producer. seq is the publication protocol word (seq_cst);
// the other fields are written before seq is stored (release) and copied by
// readers before they validate them.
struct alignas(64) SlotDesc {
    AtomicU64 seq;          // kSeqFree, kSeqWriting or the publication seq
    uint64_t size;
    uint64_t pts;
    uint64_t dts;
    uint64_t duration;
    uint64_t info_gen;
    uint32_t flags;
    uint32_t meta_size;
    uint8_t pad[8];
    // followed by meta_capacity bytes
};
static_assert(std::is_standard_layout_v<SlotDesc>);
static_assert(sizeof(SlotDesc) == 64);

// A consumer's own state, in its own memfd. Written only by that consumer;
// the producer reads it (never trusting it) to know what the consumer still
// needs, and `bips info` shows the counters.
struct alignas(64) ConsumerShared {
    uint64_t magic;            // kConsumerMagic, written before hand-over
    uint32_t bitmap_words;     // words of held bitmap that follow
    int32_t pid;               // informational, consumer's namespace
    uint64_t attached_realtime_ns;
    AtomicU32 state;           // ConsumerState (release)
    AtomicU32 policy;          // Policy (release)
    uint8_t pad0[32];
    alignas(64) AtomicU64 cursor;   // next sequence it reads (seq_cst)
    AtomicU64 received;             // relaxed counters
    AtomicU64 skipped;
    AtomicU64 released_ns;          // CLOCK_MONOTONIC_COARSE of its last
                                    // release (relaxed), for display only
    uint8_t pad1[32];
    // Read by the producer at every publish: on a line of its own, so the
    // counters above, written at every frame, do not bounce it.
    alignas(64) AtomicU32 waiting;  // while it sleeps on frame_futex: a number
                                    // new at each sleep, else 0 (seq_cst); the
                                    // producer wakes each number once
    uint8_t pad2[60];
    // followed by bitmap_words AtomicU64: bit i set = holds slot i (seq_cst)
};
static_assert(std::is_standard_layout_v<ConsumerShared>);
static_assert(sizeof(ConsumerShared) == 192);
static_assert(offsetof(ConsumerShared, cursor) == 64);
static_assert(offsetof(ConsumerShared, waiting) == 128);

// Drop words (one AtomicU32 per consumer entry, in the producer segment):
// the producer bumps an entry's word (seq_cst) when it drops that consumer
// for holding it back; the consumer compares it with the value it saw when
// it joined before returning any frame, so it never returns a frame
// published after it was dropped (its holds no longer protect anything).

// The shared doorbell page.
struct alignas(64) Doorbell {
    AtomicU32 space_futex; // bumped by whoever frees space, then FUTEX_WAKE
    uint8_t pad[60];
};
static_assert(sizeof(Doorbell) == 64);

} // namespace bips::detail
