// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: segment geometry, header validation and formatting.
#include "ring.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace bips::detail {

namespace {

constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

Error invalid(const char *what, uint64_t value, const char *range)
{
    char buf[256];
    std::snprintf(buf, sizeof(buf), "%s = %" PRIu64 " is out of range: use %s", what,
                  value, range);
    return make_error(Errc::InvalidArgument, buf);
}

uint64_t realtime_ns()
{
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

} // namespace

// The ranges the messages below name.
static_assert(kMinSlots == 2 && kMaxSlots == 1024 && kMaxConsumers == 256 &&
              kMaxMetaCapacity == 65536);

Result<Geometry> plan_geometry(const ProducerOptions &o, uint64_t page)
{
    if (o.slot_count < kMinSlots || o.slot_count > kMaxSlots)
        return invalid("slot count", o.slot_count, "2 to 1024 slots");
    if (o.slot_size == 0 || o.slot_size > kMaxSlotSize)
        return invalid("slot size", o.slot_size, "1 byte to 1 TiB");
    if (o.max_consumers == 0 || o.max_consumers > kMaxConsumers)
        return invalid("max consumers", o.max_consumers, "1 to 256");
    if (o.stream_info_capacity == 0 || o.stream_info_capacity > kMaxInfoCapacity)
        return invalid("stream info capacity", o.stream_info_capacity, "1 byte to 1 MiB");
    if (o.meta_capacity > kMaxMetaCapacity)
        return invalid("meta capacity", o.meta_capacity, "0 to 65536 bytes");
    if (o.mode > 0777)
        return invalid("mode", o.mode, "permission bits such as 0600 or 0660");
    if (page < kMinPageSize || page > kMaxPageSize || (page & (page - 1)) != 0)
        return invalid("page size", page, "a power of two from 4096 to 65536");

    Geometry g;
    g.slot_count = o.slot_count;
    g.max_consumers = o.max_consumers;
    g.slot_size = o.slot_size;
    g.page_size = uint32_t(page);
    g.slot_stride = align_up(o.slot_size, page);
    g.info_capacity = o.stream_info_capacity;
    g.meta_capacity = o.meta_capacity;
    g.info_stride = uint32_t(align_up(sizeof(InfoEntry) + o.stream_info_capacity, 64));
    g.bitmap_words = (o.slot_count + 63) / 64;
    g.desc_stride = uint32_t(align_up(sizeof(SlotDesc) + o.meta_capacity, 64));
    g.info_offset = sizeof(SegmentHeader);
    g.desc_offset = g.info_offset + uint64_t(kInfoEntries) * g.info_stride;
    g.pubring_offset = g.desc_offset + uint64_t(g.slot_count) * g.desc_stride;
    g.drops_offset = align_up(g.pubring_offset + 8u * g.slot_count, 64);
    g.data_offset = align_up(g.drops_offset + 4u * g.max_consumers, page);
    g.total_size = g.data_offset + uint64_t(g.slot_count) * g.slot_stride;
    return g;
}

Result<Geometry> validate_header(const void *segment, uint64_t len, uint64_t size,
                                 std::string_view name)
{
    const std::string ch = "channel '" + std::string(name) + "'";
    if (len < sizeof(SegmentHeader) || size < sizeof(SegmentHeader))
        return make_error(Errc::Corrupt, ch + ": segment is too small to hold a header (" +
                                             std::to_string(size) + " bytes)");
    // Copy the immutable part once: a writer cannot change it under us.
    SegmentHeader h;
    std::memcpy(static_cast<void *>(&h), segment, offsetof(SegmentHeader, write_seq));

    if (h.magic != kMagic)
        return make_error(Errc::Corrupt, ch + ": the producer's memory is not a bips segment "
                                              "(bad magic)");
    if (h.layout_version != kLayoutVersion)
        return make_error(Errc::Incompatible,
                          ch + ": made with segment layout version " +
                              std::to_string(h.layout_version) + ", this library reads version " +
                              std::to_string(kLayoutVersion) +
                              "; run producer and consumers with the same bips version");
    if (h.header_size != sizeof(SegmentHeader))
        return make_error(Errc::Corrupt, ch + ": header size " + std::to_string(h.header_size) +
                                             " does not match this layout");

    ProducerOptions o;
    o.slot_count = h.slot_count;
    o.slot_size = h.slot_size;
    o.max_consumers = h.max_consumers;
    o.stream_info_capacity = h.info_capacity;
    o.meta_capacity = h.meta_capacity;
    o.mode = 0;
    auto planned = plan_geometry(o, h.page_size);
    if (!planned)
        return make_error(Errc::Corrupt, ch + ": header holds an impossible geometry (" +
                                             planned.error().message + ")");
    const Geometry &g = planned.value();
    const bool consistent =
        g.slot_stride == h.slot_stride && g.info_stride == h.info_stride &&
        g.desc_stride == h.desc_stride && g.bitmap_words == h.bitmap_words &&
        g.info_offset == h.info_offset && g.desc_offset == h.desc_offset &&
        g.pubring_offset == h.pubring_offset && g.drops_offset == h.drops_offset &&
        g.data_offset == h.data_offset &&
        g.total_size == h.total_size;
    if (!consistent)
        return make_error(Errc::Corrupt, ch + ": header offsets and sizes are inconsistent");
    if (g.total_size > size)
        return make_error(Errc::Corrupt, ch + ": header says " + std::to_string(g.total_size) +
                                             " bytes but the segment has " + std::to_string(size));
    if (g.total_size > len)
        return make_error(Errc::Corrupt, ch + ": segment exceeds the mapping");
    return g;
}

void format_segment(const RingView &view, uint64_t epoch, uint32_t mode, int32_t pid)
{
    const Geometry &g = view.geometry();
    SegmentHeader *h = view.header();
    h->magic = kMagic;
    h->layout_version = kLayoutVersion;
    h->header_size = sizeof(SegmentHeader);
    h->total_size = g.total_size;
    h->data_offset = g.data_offset;
    h->slot_count = g.slot_count;
    h->max_consumers = g.max_consumers;
    h->slot_size = g.slot_size;
    h->slot_stride = g.slot_stride;
    h->info_capacity = g.info_capacity;
    h->meta_capacity = g.meta_capacity;
    h->info_stride = g.info_stride;
    h->desc_stride = g.desc_stride;
    h->bitmap_words = g.bitmap_words;
    h->page_size = g.page_size;
    h->info_offset = g.info_offset;
    h->desc_offset = g.desc_offset;
    h->pubring_offset = g.pubring_offset;
    h->drops_offset = g.drops_offset;
    h->epoch = epoch;
    h->producer_pid = pid;
    h->mode = mode;
    h->created_realtime_ns = realtime_ns();
    h->write_seq.store(0, std::memory_order_relaxed);
    h->info_gen.store(0, std::memory_order_relaxed);
    h->eos_marker.store(0, std::memory_order_relaxed);
    h->frame_futex.store(0, std::memory_order_relaxed);
    h->space_waiting.store(0, std::memory_order_relaxed);
    for (uint32_t k = 0; k < kInfoEntries; ++k) {
        view.info(k)->gen.store(0, std::memory_order_relaxed);
        view.info(k)->size.store(0, std::memory_order_relaxed);
    }
    for (uint32_t i = 0; i < g.max_consumers; ++i)
        view.drop_word(i)->store(0, std::memory_order_relaxed);
    for (uint32_t s = 0; s < g.slot_count; ++s) {
        view.desc(s)->seq.store(kSeqFree, std::memory_order_relaxed);
        view.pubring(s)->store(PubEntry::kEmpty, std::memory_order_relaxed);
    }
    // Published last: a process that sees Live sees everything above.
    h->producer_state.store(kProducerLive, std::memory_order_release);
}

} // namespace bips::detail
