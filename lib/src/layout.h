// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the shared-memory layout of a channel segment (data only, no logic).
//
// Every struct here lives in memory shared by processes that do not trust
// each other: standard layout, offsets instead of pointers, lock-free
// atomics only. This file is the one place that declares cross-process
// atomics; ring.cpp is the one place that operates on them.
//
// Segment, all offsets from the start of the file:
//
//   SegmentHeader                      (geometry, epoch, counters, futexes)
//   InfoEntry     x kInfoEntries       (stream info ring, seqlocked)
//   ConsumerEntry x max_consumers      (each followed by its held bitmap)
//   SlotDesc      x slot_count         (each followed by meta_capacity bytes)
//   pub ring      x slot_count u64     (sequence -> slot index)
//   -- page boundary: control_size --
//   slot data     x slot_count         (slot_stride bytes each, page aligned)
//
// Byte ranges of the file are also used as kernel (OFD) locks, independent
// of the content: byte 0 is held by the live producer, byte 1 + i by the
// consumer owning entry i. The kernel drops them when a process dies, in
// any PID namespace.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace bips::detail {

inline constexpr uint64_t kMagic = 0x314e484353504942ull; // "BIPSCHN1"
inline constexpr uint32_t kLayoutVersion = 1;
inline constexpr uint32_t kInfoEntries = 4;
inline constexpr uint64_t kPageSize = 4096;

inline constexpr uint32_t kMinSlots = 2;
inline constexpr uint32_t kMaxSlots = 1024;
inline constexpr uint32_t kMaxConsumers = 256;
inline constexpr uint32_t kMaxInfoCapacity = 1u << 20;
inline constexpr uint32_t kMaxMetaCapacity = 64u << 10;
inline constexpr uint64_t kMaxSlotSize = 1ull << 40;

// SlotDesc::seq values that are not publication sequence numbers.
inline constexpr uint64_t kSeqFree = ~0ull;
inline constexpr uint64_t kSeqWriting = ~0ull - 1;

// Pub ring entries pack (sequence << 16) | slot index.
inline constexpr uint64_t kPubSlotBits = 16;
inline constexpr uint64_t kPubEmpty = ~0ull;

// EOS marker packs (sequence << 16) | (count & 0xffff); 0 = none yet.
inline constexpr uint64_t kEosCountBits = 16;

// Lock bytes of the segment file.
inline constexpr uint64_t kProducerLockByte = 0;
inline constexpr uint64_t consumer_lock_byte(uint32_t entry) { return 1 + entry; }

enum ProducerState : uint32_t {
    kProducerLive = 1,
    kProducerClosed = 2, // exited cleanly; nothing more will be published
};

enum ConsumerState : uint32_t {
    kConsumerFree = 0,
    kConsumerActive = 1,
    // The consumer went away but some of its frames are still alive: the
    // entry no longer holds the producer back, only its held bits count.
    kConsumerDetached = 2,
};

using AtomicU32 = std::atomic<uint32_t>;
using AtomicU64 = std::atomic<uint64_t>;
static_assert(AtomicU32::is_always_lock_free);
static_assert(AtomicU64::is_always_lock_free);
static_assert(sizeof(AtomicU32) == 4 && sizeof(AtomicU64) == 8);

struct alignas(64) SegmentHeader {
    // -- Written once by the creating producer before the segment gets its
    //    name; readers copy and validate them, never trust them.
    uint64_t magic;
    uint32_t layout_version;
    uint32_t header_size;
    uint64_t total_size;
    uint64_t control_size;  // page-aligned start of slot data
    uint32_t slot_count;
    uint32_t max_consumers;
    uint64_t slot_size;     // usable bytes of a slot
    uint64_t slot_stride;   // slot_size rounded up to a page
    uint32_t info_capacity;
    uint32_t meta_capacity;
    uint32_t info_stride;
    uint32_t consumer_stride;
    uint32_t desc_stride;
    uint32_t bitmap_words;  // 64-bit words of each consumer's held bitmap
    uint64_t info_offset;
    uint64_t consumer_offset;
    uint64_t desc_offset;
    uint64_t pubring_offset;
    uint64_t epoch;
    int32_t producer_pid;
    uint32_t mode;
    uint64_t created_realtime_ns;
    uint8_t reserved0[256 - 136];

    // -- Producer-written state.
    alignas(64) AtomicU64 write_seq;   // frames published; next sequence
    AtomicU64 info_gen;                // generation of the current info
    AtomicU64 eos_marker;              // see kEosCountBits
    AtomicU32 producer_state;          // ProducerState
    uint32_t reserved1;

    // -- Futex words. Consumers sleep on frame_futex, the producer on
    //    space_futex; the *_waiters counts let wakers skip the syscall.
    alignas(64) AtomicU32 frame_futex;
    AtomicU32 frame_waiters;
    alignas(64) AtomicU32 space_futex;
    AtomicU32 space_waiters;
    alignas(64) uint8_t reserved2[64];
};
static_assert(std::is_standard_layout_v<SegmentHeader>);
static_assert(offsetof(SegmentHeader, reserved0) == 136);
static_assert(offsetof(SegmentHeader, write_seq) == 256);
static_assert(sizeof(SegmentHeader) == 512);

// One stream info generation. Seqlocked: gen is 0 while being written.
struct alignas(64) InfoEntry {
    AtomicU64 gen;
    AtomicU32 size;
    uint32_t reserved;
    uint8_t pad[48];
    // followed by info_capacity bytes
};
static_assert(sizeof(InfoEntry) == 64);

struct alignas(64) ConsumerEntry {
    AtomicU32 state;       // ConsumerState, owned by the lock holder
    AtomicU32 policy;      // Policy; a detaching consumer turns Latest
    int32_t pid;
    uint32_t reserved;
    uint64_t attached_realtime_ns;
    uint8_t pad0[40];
    alignas(64) AtomicU64 cursor;   // next sequence this consumer reads
    AtomicU64 received;
    AtomicU64 skipped;
    uint8_t pad1[40];
    // followed by bitmap_words AtomicU64: bit i set = holds slot i
};
static_assert(std::is_standard_layout_v<ConsumerEntry>);
static_assert(sizeof(ConsumerEntry) == 128);
static_assert(offsetof(ConsumerEntry, cursor) == 64);

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

} // namespace bips::detail
