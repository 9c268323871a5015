// SPDX-License-Identifier: LGPL-2.1-or-later
// The ring protocol and segment layout on plain in-process byte arenas.

#include "helpers.h"

#include "layout.h"
#include "ring.h"

#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <set>

namespace bips::detail {
// Lets gtest print poll outcomes by name.
inline void PrintTo(RingReader::Poll p, std::ostream *os)
{
    static const char *const names[] = {"Frame", "Empty", "EndOfStream", "Closed", "Dropped"};
    *os << names[static_cast<int>(p)];
}
} // namespace bips::detail

namespace {

using namespace bips;
using namespace bips::detail;
using bips_test::HasError;
using bips_test::IsOk;
using Poll = RingReader::Poll;

// Zeroed, page-aligned heap memory of an exact size (so ASan sees overruns).
struct AlignedBuffer {
    explicit AlignedBuffer(uint64_t size, uint64_t align = kMinPageSize)
        : size(size),
          mem(static_cast<std::byte *>(std::aligned_alloc(align, (size + align - 1) / align * align)))
    {
        std::memset(mem, 0, size);
    }
    ~AlignedBuffer() { std::free(mem); }
    AlignedBuffer(const AlignedBuffer &) = delete;
    AlignedBuffer &operator=(const AlignedBuffer &) = delete;

    uint64_t size;
    std::byte *mem;
};

ProducerOptions arena_options(uint32_t slots = 4)
{
    ProducerOptions o;
    o.slot_count = slots;
    o.slot_size = 256;
    o.max_consumers = 4;
    o.stream_info_capacity = 256;
    o.meta_capacity = 32;
    return o;
}

// One formatted segment in a byte arena, a doorbell, a writer and up to
// four readers, each with its own state arena (as each consumer has its
// own memfd).
class RingArena : public ::testing::Test {
protected:
    void make(const ProducerOptions &o = arena_options())
    {
        auto g = plan_geometry(o, kMinPageSize);
        ASSERT_TRUE(IsOk(g));
        geometry = *g;
        arena = std::make_unique<AlignedBuffer>(geometry.total_size);
        bell = std::make_unique<AlignedBuffer>(sizeof(Doorbell), 64);
        for (auto &s : states)
            s = std::make_unique<AlignedBuffer>(geometry.consumer_state_size(), 64);
        view = RingView(arena->mem, geometry);
        format_segment(view, 7, 0600, getpid());
        writer = std::make_unique<RingWriter>(view, reinterpret_cast<Doorbell *>(bell->mem));
        writer->set_consumers(joined);
    }

    ConsumerShared *state(uint32_t entry) const
    {
        return reinterpret_cast<ConsumerShared *>(states[entry]->mem);
    }

    // What the producer's service does when a consumer joins: the reader
    // fills its state, the producer starts honouring it, the reader starts.
    RingReader &join(uint32_t entry, Policy policy)
    {
        readers[entry] = RingReader(view, state(entry), reinterpret_cast<Doorbell *>(bell->mem));
        readers[entry].init(policy, getpid());
        joined[entry] = state(entry);
        writer->forget_consumer(entry);
        readers[entry].join(entry, writer->published(), uint32_t(writer->eos_count()));
        return readers[entry];
    }

    // What the producer does when a consumer dies: it stops honouring it.
    void drop(uint32_t entry) { joined[entry] = nullptr; }

    // Acquires a slot, writes `tag` into its first 8 bytes and publishes it
    // with pts = tag. Returns the slot (UINT32_MAX if none was free).
    uint32_t publish(uint64_t tag)
    {
        auto slot = writer->try_acquire();
        if (!slot)
            return UINT32_MAX;
        std::memcpy(view.slot_data(*slot), &tag, sizeof tag);
        FrameInfo info;
        info.size = sizeof tag;
        info.pts = tag;
        writer->publish(*slot, info, {});
        return *slot;
    }

    // The tag stored in a slot by publish().
    uint64_t tag_of(uint32_t slot) const
    {
        uint64_t tag = 0;
        std::memcpy(&tag, view.slot_data(slot), sizeof tag);
        return tag;
    }

    // Polls one reader; on Frame, `frame` holds the copy.
    Poll poll(RingReader &r)
    {
        std::string why;
        const uint64_t corrupt = r.corrupt();
        Poll p = r.try_next(frame, &why);
        if (r.corrupt() != corrupt)
            ADD_FAILURE() << "reader found a corrupt frame: " << why;
        return p;
    }

    Geometry geometry;
    std::unique_ptr<AlignedBuffer> arena;
    std::unique_ptr<AlignedBuffer> bell;
    std::unique_ptr<AlignedBuffer> states[4];
    const ConsumerShared *joined[4] = {};
    RingView view;
    std::unique_ptr<RingWriter> writer;
    RingReader readers[4];
    FrameCopy frame;
};

// ---------------------------------------------------------------- geometry

// The planned layout is what layout.h describes: ordered, aligned regions,
// page-aligned slot data that fits slot_size, and a total that adds up.
TEST(RingGeometry, PlanIsOrderedAlignedAndComplete)
{
    for (uint64_t page : {4096ull, 16384ull, 65536ull}) {
        SCOPED_TRACE("page size " + std::to_string(page));
        auto g = plan_geometry(arena_options(5), page);
        ASSERT_TRUE(IsOk(g));
        EXPECT_EQ(g->page_size, page);
        EXPECT_EQ(g->slot_count, 5u);
        EXPECT_EQ(g->max_consumers, 4u);
        EXPECT_EQ(g->slot_size, 256u);
        EXPECT_GE(g->slot_stride, g->slot_size);
        EXPECT_EQ(g->slot_stride % page, 0u);
        EXPECT_GE(g->info_capacity, 256u);
        EXPECT_GE(g->meta_capacity, 32u);
        EXPECT_GE(g->info_offset, sizeof(SegmentHeader));
        EXPECT_GE(g->info_stride, sizeof(InfoEntry) + 256);
        EXPECT_GE(g->desc_offset, g->info_offset + uint64_t(kInfoEntries) * g->info_stride);
        EXPECT_GE(uint64_t(g->bitmap_words) * 64, g->slot_count);
        EXPECT_GE(g->consumer_state_size(), sizeof(ConsumerShared) + 8 * g->bitmap_words);
        EXPECT_GE(g->desc_stride, sizeof(SlotDesc) + 32);
        EXPECT_GE(g->pubring_offset, g->desc_offset + uint64_t(g->slot_count) * g->desc_stride);
        EXPECT_GE(g->data_offset, g->pubring_offset + 8 * g->slot_count);
        for (uint64_t off : {g->info_offset, g->desc_offset, g->pubring_offset})
            EXPECT_EQ(off % 64, 0u) << "offset " << off;
        for (uint64_t stride : {uint64_t(g->info_stride), uint64_t(g->desc_stride)})
            EXPECT_EQ(stride % 64, 0u) << "stride " << stride;
        // Every slot starts on a page of this size, so a consumer on a
        // kernel with these pages maps and touches whole pages only.
        EXPECT_EQ(g->data_offset % page, 0u);
        for (uint32_t s = 0; s < g->slot_count; ++s)
            EXPECT_EQ((g->data_offset + s * g->slot_stride) % page, 0u) << "slot " << s;
        EXPECT_EQ(g->total_size, g->data_offset + g->slot_count * g->slot_stride);
        EXPECT_EQ(g->total_size % page, 0u);
    }
    EXPECT_TRUE(HasError(plan_geometry(arena_options(5), 8192 + 4096), Errc::InvalidArgument))
        << "not a power of two";
    EXPECT_TRUE(HasError(plan_geometry(arena_options(5), 1u << 20), Errc::InvalidArgument))
        << "beyond 64 KiB";
}

// Each out-of-range option is refused with InvalidArgument and a message.
TEST(RingGeometry, PlanRejectsBadOptions)
{
    struct Case {
        const char *what;
        void (*change)(ProducerOptions &);
    };
    const Case cases[] = {
        {"0 slots", [](ProducerOptions &o) { o.slot_count = 0; }},
        {"1 slot", [](ProducerOptions &o) { o.slot_count = 1; }},
        {"1025 slots", [](ProducerOptions &o) { o.slot_count = kMaxSlots + 1; }},
        {"slot_size 0", [](ProducerOptions &o) { o.slot_size = 0; }},
        {"slot_size too large", [](ProducerOptions &o) { o.slot_size = kMaxSlotSize + 1; }},
        {"0 consumers", [](ProducerOptions &o) { o.max_consumers = 0; }},
        {"257 consumers", [](ProducerOptions &o) { o.max_consumers = kMaxConsumers + 1; }},
        {"info capacity", [](ProducerOptions &o) { o.stream_info_capacity = kMaxInfoCapacity + 1; }},
        {"meta capacity", [](ProducerOptions &o) { o.meta_capacity = kMaxMetaCapacity + 1; }},
    };
    for (const auto &c : cases) {
        ProducerOptions o = arena_options();
        c.change(o);
        EXPECT_TRUE(HasError(plan_geometry(o, kMinPageSize), Errc::InvalidArgument)) << c.what;
    }
    // The limits themselves are fine.
    ProducerOptions o = arena_options(kMinSlots);
    o.max_consumers = kMaxConsumers;
    EXPECT_TRUE(IsOk(plan_geometry(o, kMinPageSize)));
    o.slot_count = kMaxSlots;
    EXPECT_TRUE(IsOk(plan_geometry(o, kMinPageSize)));
}

// ---------------------------------------------------------------- frames

// A lossless reader gets every frame in publication order with all of its
// metadata and bytes intact.
TEST_F(RingArena, PublishedFramesArriveInOrderWithMetadata)
{
    ASSERT_NO_FATAL_FAILURE(make());
    RingReader &r = join(0, Policy::Lossless);
    EXPECT_EQ(poll(r), Poll::Empty);

    for (uint64_t i = 0; i < 3; ++i) {
        auto slot = writer->try_acquire();
        ASSERT_TRUE(slot.has_value());
        EXPECT_TRUE(writer->owns(*slot));
        bips_test::fill_pattern(view.slot_data(*slot), 100 + i, i);
        FrameInfo info;
        info.size = 100 + i;
        info.pts = 1000 + i;
        info.dts = 2000 + i;
        info.duration = 33 + i;
        info.flags = 0x1230 + uint32_t(i);
        const std::byte meta[] = {std::byte(0xde), std::byte(0xad), std::byte(i)};
        writer->publish(*slot, info, meta);
        EXPECT_FALSE(writer->owns(*slot));
    }
    EXPECT_EQ(writer->published(), 3u);

    uint64_t first_seq = 0;
    for (uint64_t i = 0; i < 3; ++i) {
        ASSERT_EQ(poll(r), Poll::Frame) << "frame " << i;
        if (i == 0)
            first_seq = frame.seq;
        EXPECT_EQ(frame.seq, first_seq + i);
        EXPECT_EQ(frame.info.size, 100 + i);
        EXPECT_EQ(frame.info.pts, 1000 + i);
        EXPECT_EQ(frame.info.dts, 2000 + i);
        EXPECT_EQ(frame.info.duration, 33 + i);
        EXPECT_EQ(frame.info.flags, 0x1230 + i);
        ASSERT_EQ(frame.meta.size(), 3u);
        EXPECT_EQ(frame.meta[0], std::byte(0xde));
        EXPECT_EQ(frame.meta[1], std::byte(0xad));
        EXPECT_EQ(frame.meta[2], std::byte(i));
        EXPECT_EQ(bips_test::check_pattern(view.slot_data(frame.slot), 100 + i, i), 100 + i)
            << "bytes of frame " << i;
        r.release(frame.slot);
    }
    EXPECT_EQ(poll(r), Poll::Empty);
    EXPECT_EQ(r.received(), 3u);
    EXPECT_EQ(r.skipped(), 0u);
}

// A reader starts at the next frame after join: earlier ones are not
// delivered to it.
TEST_F(RingArena, ReaderStartsAtTheNextFrameAfterJoin)
{
    ASSERT_NO_FATAL_FAILURE(make());
    for (uint64_t i = 0; i < 3; ++i)
        ASSERT_NE(publish(i), UINT32_MAX);
    RingReader &r = join(0, Policy::Lossless);
    EXPECT_EQ(poll(r), Poll::Empty);
    ASSERT_NE(publish(3), UINT32_MAX);
    ASSERT_EQ(poll(r), Poll::Frame);
    EXPECT_EQ(frame.info.pts, 3u);
    EXPECT_EQ(poll(r), Poll::Empty);
}

// With no reader, the producer recycles slots forever (oldest first).
TEST_F(RingArena, WithoutReadersTheProducerNeverBlocks)
{
    ASSERT_NO_FATAL_FAILURE(make());
    for (uint64_t i = 0; i < 100; ++i)
        ASSERT_NE(publish(i), UINT32_MAX) << "frame " << i;
}

// ---------------------------------------------------------------- backpressure

// A lossless reader with slot_count unread frames stops the producer; one
// read + release gives exactly one slot back.
TEST_F(RingArena, LosslessReaderAppliesBackpressure)
{
    ASSERT_NO_FATAL_FAILURE(make());
    RingReader &r = join(0, Policy::Lossless);
    for (uint64_t i = 0; i < 4; ++i)
        ASSERT_NE(publish(i), UINT32_MAX) << "frame " << i;
    EXPECT_FALSE(writer->try_acquire().has_value()) << "4 unread frames, 4 slots";

    ASSERT_EQ(poll(r), Poll::Frame);
    EXPECT_EQ(frame.info.pts, 0u);
    const uint32_t read_slot = frame.slot;
    EXPECT_FALSE(writer->try_acquire().has_value()) << "frame 0 is read but still held";
    r.release(read_slot);

    auto slot = writer->try_acquire();
    ASSERT_TRUE(slot.has_value());
    EXPECT_EQ(*slot, read_slot);
    writer->discard(*slot);

    // The unread frames are still delivered, in order, intact.
    for (uint64_t i = 1; i < 4; ++i) {
        ASSERT_EQ(poll(r), Poll::Frame);
        EXPECT_EQ(frame.info.pts, i);
        EXPECT_EQ(tag_of(frame.slot), i);
        r.release(frame.slot);
    }
}

// Two lossless readers: the producer waits for the slower one.
TEST_F(RingArena, ProducerWaitsForTheSlowestLosslessReader)
{
    ASSERT_NO_FATAL_FAILURE(make());
    RingReader &fast = join(0, Policy::Lossless);
    RingReader &slow = join(1, Policy::Lossless);
    for (uint64_t i = 0; i < 4; ++i)
        ASSERT_NE(publish(i), UINT32_MAX);
    for (uint64_t i = 0; i < 4; ++i) {
        ASSERT_EQ(poll(fast), Poll::Frame);
        fast.release(frame.slot);
    }
    EXPECT_FALSE(writer->try_acquire().has_value()) << "the slow reader has read nothing";
    ASSERT_EQ(poll(slow), Poll::Frame);
    EXPECT_EQ(frame.info.pts, 0u);
    slow.release(frame.slot);
    EXPECT_TRUE(writer->try_acquire().has_value());
}

// ---------------------------------------------------------------- latest

// A latest reader never slows the producer, jumps to the newest frame and
// counts every frame it did not get.
TEST_F(RingArena, LatestSkipsToNewestAndCountsSkips)
{
    ASSERT_NO_FATAL_FAILURE(make());
    RingReader &r = join(0, Policy::Latest);
    for (uint64_t i = 0; i < 10; ++i)
        ASSERT_NE(publish(i), UINT32_MAX) << "a latest reader must not block frame " << i;

    ASSERT_EQ(poll(r), Poll::Frame);
    EXPECT_EQ(frame.info.pts, 9u);
    EXPECT_EQ(tag_of(frame.slot), 9u);
    r.release(frame.slot);
    EXPECT_EQ(poll(r), Poll::Empty);
    EXPECT_EQ(r.received(), 1u);
    EXPECT_EQ(r.skipped(), 9u);

    ASSERT_NE(publish(10), UINT32_MAX);
    ASSERT_EQ(poll(r), Poll::Frame);
    EXPECT_EQ(frame.info.pts, 10u);
    r.release(frame.slot);
    EXPECT_EQ(r.received(), 2u);
    EXPECT_EQ(r.skipped(), 9u);
}

// A slot a reader holds is never handed to the producer, however many
// frames follow; its bytes stay intact; it is reused after release.
TEST_F(RingArena, HeldSlotIsNeverHandedOut)
{
    ASSERT_NO_FATAL_FAILURE(make());
    RingReader &r = join(0, Policy::Latest);
    ASSERT_NE(publish(42), UINT32_MAX);
    ASSERT_EQ(poll(r), Poll::Frame);
    const uint32_t held = frame.slot;

    for (uint64_t i = 0; i < 50; ++i) {
        uint32_t slot = publish(100 + i);
        ASSERT_NE(slot, UINT32_MAX) << "frame " << i;
        EXPECT_NE(slot, held) << "frame " << i << " got the held slot";
    }
    EXPECT_EQ(tag_of(held), 42u);

    r.release(held);
    // Taking every slot at once now includes the released one.
    bool reused = false;
    while (auto slot = writer->try_acquire())
        reused = reused || *slot == held;
    EXPECT_TRUE(reused) << "a released slot must come back";
}

// With nobody behind, the producer reuses its most recent slots rather than
// cycling through all of them (a small, cache-hot working set), but never
// the newest frame while another slot is free.
TEST_F(RingArena, ProducerKeepsItsWorkingSetSmall)
{
    ASSERT_NO_FATAL_FAILURE(make());
    std::set<uint32_t> used;
    uint32_t previous = UINT32_MAX;
    for (uint64_t i = 0; i < 40; ++i) {
        const uint32_t slot = publish(i);
        ASSERT_NE(slot, UINT32_MAX);
        EXPECT_NE(slot, previous) << "frame " << i << " overwrote the newest frame";
        used.insert(slot);
        previous = slot;
    }
    EXPECT_EQ(used.size(), 2u);
}

// Every slot can be owned by the producer at once; then none is free.
// discard() returns a slot unpublished.
TEST_F(RingArena, DiscardReturnsTheSlot)
{
    ASSERT_NO_FATAL_FAILURE(make());
    RingReader &r = join(0, Policy::Lossless);
    std::set<uint32_t> slots;
    for (int i = 0; i < 4; ++i) {
        auto s = writer->try_acquire();
        ASSERT_TRUE(s.has_value());
        EXPECT_TRUE(writer->owns(*s));
        slots.insert(*s);
    }
    EXPECT_EQ(slots.size(), 4u) << "acquire handed out a slot twice";
    EXPECT_FALSE(writer->try_acquire().has_value());

    const uint32_t back = *slots.begin();
    writer->discard(back);
    EXPECT_FALSE(writer->owns(back));
    auto s = writer->try_acquire();
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(*s, back);
    // Nothing was published: the reader sees nothing.
    EXPECT_EQ(poll(r), Poll::Empty);
    EXPECT_EQ(writer->published(), 0u);
}

// ---------------------------------------------------------------- dead readers

// Dropping a dead reader frees its held slots and its backpressure at once.
TEST_F(RingArena, DroppingAConsumerFreesADeadReadersSlots)
{
    ASSERT_NO_FATAL_FAILURE(make());
    RingReader &dead = join(2, Policy::Lossless);
    for (uint64_t i = 0; i < 4; ++i)
        ASSERT_NE(publish(i), UINT32_MAX);
    ASSERT_EQ(poll(dead), Poll::Frame); // held, never released
    ASSERT_EQ(poll(dead), Poll::Frame);
    EXPECT_FALSE(writer->try_acquire().has_value());
    EXPECT_GT(writer->pressure(state(2)), 0u);

    drop(2);
    std::set<uint32_t> slots;
    for (int i = 0; i < 4; ++i) {
        auto s = writer->try_acquire();
        ASSERT_TRUE(s.has_value()) << "slot " << i << " not reclaimed";
        slots.insert(*s);
    }
    EXPECT_EQ(slots.size(), 4u);
}

// ---------------------------------------------------------------- forged producer data

// Forged producer data: frames are validated as they are read. A descriptor
// claiming more bytes or metadata than a slot holds, or a pub ring entry
// naming a slot that does not exist, is skipped and counted as corrupt,
// never returned and never retried, and its slot is not kept held; a pub
// ring entry naming a slot that holds another frame is skipped (not
// corrupt). The reader goes on with the next good frame.
TEST_F(RingArena, ForgedFramesAreSkippedCountedAndNeverReturned)
{
    ASSERT_NO_FATAL_FAILURE(make());
    RingReader &lossless = join(0, Policy::Lossless);
    RingReader &latest = join(1, Policy::Latest);
    RingReader *const readers[] = {&lossless, &latest};
    std::string why;

    // Polls until the reader has nothing (bounded), releasing every frame;
    // returns their tags. Every frame returned must be a good one.
    auto drain = [&](RingReader &r) {
        std::vector<uint64_t> tags;
        for (int i = 0; i < 64; ++i) {
            const Poll p = r.try_next(frame, &why);
            if (p != Poll::Frame) {
                EXPECT_EQ(p, Poll::Empty);
                return tags;
            }
            EXPECT_LE(frame.info.size, geometry.slot_size);
            EXPECT_LE(frame.meta.size(), geometry.meta_capacity);
            EXPECT_LT(frame.slot, geometry.slot_count);
            EXPECT_EQ(tag_of(frame.slot), frame.info.pts) << "a frame under another's sequence";
            tags.push_back(frame.info.pts);
            r.release(frame.slot);
        }
        ADD_FAILURE() << "the reader returned frames forever";
        return tags;
    };
    using Tags = std::vector<uint64_t>;

    struct Forgery {
        const char *what;
        bool corrupt; // counted as corrupt (else merely skipped)
        // Forges frame `seq` in `slot`; `other` holds another, good frame.
        std::function<void(const RingView &, const Geometry &, uint64_t seq, uint32_t slot,
                           uint32_t other)>
            apply;
    };
    const Forgery forgeries[] = {
        {"size one byte beyond the slot", true,
         [](const RingView &v, const Geometry &g, uint64_t, uint32_t slot, uint32_t) {
             v.desc(slot)->size = g.slot_size + 1;
         }},
        {"size 2^64 - 1", true,
         [](const RingView &v, const Geometry &, uint64_t, uint32_t slot, uint32_t) {
             v.desc(slot)->size = ~0ull;
         }},
        {"metadata beyond its capacity", true,
         [](const RingView &v, const Geometry &g, uint64_t, uint32_t slot, uint32_t) {
             v.desc(slot)->meta_size = g.meta_capacity + 1;
         }},
        {"pub ring names slot slot_count", true,
         [](const RingView &v, const Geometry &g, uint64_t seq, uint32_t, uint32_t) {
             v.pubring(seq)->store(PubEntry::make(seq, g.slot_count).raw);
         }},
        {"pub ring names slot 65535", true,
         [](const RingView &v, const Geometry &, uint64_t seq, uint32_t, uint32_t) {
             v.pubring(seq)->store(PubEntry::make(seq, 0xffff).raw);
         }},
        {"pub ring names the slot of another frame", false,
         [](const RingView &v, const Geometry &, uint64_t seq, uint32_t, uint32_t other) {
             v.pubring(seq)->store(PubEntry::make(seq, other).raw);
         }},
    };

    uint64_t tag = 0;
    uint32_t good_slot = publish(tag);
    ASSERT_NE(good_slot, UINT32_MAX);
    EXPECT_EQ(drain(lossless), Tags{tag});
    EXPECT_EQ(drain(latest), Tags{tag});
    uint64_t corrupt[2] = {0, 0}, skipped[2] = {0, 0};

    for (const Forgery &f : forgeries) {
        SCOPED_TRACE(f.what);
        // A forged frame followed by a good one, both unread: the lossless
        // reader validates the forged one and skips it; the latest reader
        // goes straight to the good one.
        uint64_t seq = writer->published();
        uint32_t slot = publish(++tag);
        ASSERT_NE(slot, UINT32_MAX);
        f.apply(view, geometry, seq, slot, good_slot);
        good_slot = publish(++tag);
        ASSERT_NE(good_slot, UINT32_MAX);
        EXPECT_EQ(drain(lossless), Tags{tag});
        EXPECT_EQ(drain(latest), Tags{tag});
        corrupt[0] += f.corrupt;
        skipped[0] += 1;
        skipped[1] += 1;
        EXPECT_EQ(lossless.corrupt(), corrupt[0]) << why;
        EXPECT_EQ(latest.corrupt(), corrupt[1]);

        // A forged frame that is the newest: both readers validate it and
        // skip it, and polling again does not retry it.
        seq = writer->published();
        slot = publish(++tag);
        ASSERT_NE(slot, UINT32_MAX);
        f.apply(view, geometry, seq, slot, good_slot);
        EXPECT_EQ(drain(lossless), Tags{});
        EXPECT_EQ(drain(latest), Tags{});
        for (int k : {0, 1}) {
            corrupt[k] += f.corrupt;
            skipped[k] += 1;
            EXPECT_EQ(readers[k]->corrupt(), corrupt[k]) << "reader " << k;
            EXPECT_EQ(readers[k]->skipped(), skipped[k]) << "reader " << k;
            EXPECT_EQ(drain(*readers[k]), Tags{}) << "reader " << k;
            EXPECT_EQ(readers[k]->corrupt(), corrupt[k]) << "reader " << k << " retried it";
            // Nothing stays held: a forged frame cannot pin a slot.
            EXPECT_EQ(read_consumer(state(uint32_t(k)), geometry).held, 0u) << "reader " << k;
        }

        // The next good frame arrives.
        good_slot = publish(++tag);
        ASSERT_NE(good_slot, UINT32_MAX);
        EXPECT_EQ(drain(lossless), Tags{tag});
        EXPECT_EQ(drain(latest), Tags{tag});
    }
    EXPECT_EQ(lossless.received(), 2 * std::size(forgeries) + 1);
    EXPECT_EQ(latest.received(), 2 * std::size(forgeries) + 1);
}

// A forged write_seq that jumps far ahead and comes back: the readers find
// nothing to return (bounded: no walk over 2^62 sequences), the producer is
// not held back by their cursors beyond what it published, and once
// write_seq is back the readers resynchronise and get the frames published
// from then on, in order.
TEST_F(RingArena, ForgedWriteSeqJumpIsSurvived)
{
    ASSERT_NO_FATAL_FAILURE(make());
    RingReader &lossless = join(0, Policy::Lossless);
    RingReader &latest = join(1, Policy::Latest);
    std::string why;
    auto drain = [&](RingReader &r) {
        std::vector<uint64_t> tags;
        for (int i = 0; i < 64; ++i) {
            const Poll p = r.try_next(frame, &why);
            if (p != Poll::Frame) {
                EXPECT_EQ(p, Poll::Empty);
                return tags;
            }
            EXPECT_EQ(tag_of(frame.slot), frame.info.pts);
            tags.push_back(frame.info.pts);
            r.release(frame.slot);
        }
        ADD_FAILURE() << "the reader returned frames forever";
        return tags;
    };
    using Tags = std::vector<uint64_t>;
    SegmentHeader *h = view.header();

    uint64_t tag = 0;
    for (int i = 0; i < 3; ++i)
        ASSERT_NE(publish(++tag), UINT32_MAX);
    EXPECT_EQ(drain(lossless), (Tags{1, 2, 3}));
    EXPECT_EQ(drain(latest), Tags{3});

    for (uint64_t jump : {uint64_t(3), uint64_t(1000), uint64_t(1) << 62, ~uint64_t(0)}) {
        SCOPED_TRACE("write_seq + " + std::to_string(jump));
        const uint64_t real = writer->published();
        const uint64_t forged = jump == ~uint64_t(0) ? jump : real + jump;
        h->write_seq.store(forged);
        EXPECT_EQ(drain(lossless), Tags{}) << "nothing was published there";
        EXPECT_EQ(drain(latest), Tags{});
        EXPECT_EQ(lossless.corrupt(), 0u);
        // The producer is not held back by a cursor beyond what it
        // published (it reads cursors clamped to its own count).
        auto slot = writer->try_acquire();
        ASSERT_TRUE(slot.has_value()) << "a forged write_seq blocks the producer";
        writer->discard(*slot);

        // write_seq back where it was: the readers resynchronise.
        h->write_seq.store(real);
        EXPECT_EQ(drain(lossless), Tags{});
        EXPECT_EQ(drain(latest), Tags{});
        EXPECT_EQ(state(0)->cursor.load(), real);
        EXPECT_EQ(state(1)->cursor.load(), real);
        ASSERT_NE(publish(++tag), UINT32_MAX);
        ASSERT_NE(publish(++tag), UINT32_MAX);
        EXPECT_EQ(drain(lossless), (Tags{tag - 1, tag}));
        EXPECT_EQ(drain(latest), Tags{tag});
    }

    // Back through the next publication instead (the producer never
    // looked at the forged value): at most that one frame is lost, and the
    // frames after it arrive.
    h->write_seq.store(1ull << 62);
    EXPECT_EQ(drain(lossless), Tags{});
    EXPECT_EQ(drain(latest), Tags{});
    ASSERT_NE(publish(++tag), UINT32_MAX);
    const Tags first = drain(lossless);
    EXPECT_TRUE(first.empty() || first == Tags{tag}) << ::testing::PrintToString(first);
    const Tags first_latest = drain(latest);
    EXPECT_TRUE(first_latest.empty() || first_latest == Tags{tag});
    ASSERT_NE(publish(++tag), UINT32_MAX);
    ASSERT_NE(publish(++tag), UINT32_MAX);
    EXPECT_EQ(drain(lossless), (Tags{tag - 1, tag}));
    EXPECT_EQ(drain(latest), Tags{tag});
    std::cout << "forged write_seq: a lossless reader "
              << (first.empty() ? "lost" : "kept")
              << " the first frame published after write_seq came back\n";
    EXPECT_EQ(read_consumer(state(0), geometry).held, 0u);
    EXPECT_EQ(read_consumer(state(1), geometry).held, 0u);
}

// ---------------------------------------------------------------- stream info

// Each frame carries the generation of the stream info current when it was
// published, and read_stream_info returns that info (until overwritten).
TEST_F(RingArena, FramesCarryTheirStreamInfoGeneration)
{
    ASSERT_NO_FATAL_FAILURE(make());
    RingReader &r = join(0, Policy::Lossless);

    writer->set_stream_info("video/x-raw,format=NV12,width=64,height=48");
    uint64_t gen_a = 0;
    auto cur = read_stream_info(view, 0, &gen_a);
    ASSERT_TRUE(cur.has_value());
    EXPECT_EQ(*cur, "video/x-raw,format=NV12,width=64,height=48");
    ASSERT_NE(publish(1), UINT32_MAX);

    writer->set_stream_info("video/x-raw,format=RGBA,width=32,height=32");
    uint64_t gen_b = 0;
    cur = read_stream_info(view, 0, &gen_b);
    ASSERT_TRUE(cur.has_value());
    EXPECT_EQ(*cur, "video/x-raw,format=RGBA,width=32,height=32");
    EXPECT_GT(gen_b, gen_a);
    ASSERT_NE(publish(2), UINT32_MAX);

    // The first frame is read after the change but keeps the old generation.
    ASSERT_EQ(poll(r), Poll::Frame);
    EXPECT_EQ(frame.info_gen, gen_a);
    r.release(frame.slot);
    ASSERT_EQ(poll(r), Poll::Frame);
    EXPECT_EQ(frame.info_gen, gen_b);
    r.release(frame.slot);

    uint64_t got = 0;
    auto a = read_stream_info(view, gen_a, &got);
    ASSERT_TRUE(a.has_value()) << "the previous generation is still in the info ring";
    EXPECT_EQ(*a, "video/x-raw,format=NV12,width=64,height=48");
    EXPECT_EQ(got, gen_a);

    // After kInfoEntries more generations, gen_a is gone: nullopt, not
    // another generation's text.
    for (uint32_t i = 0; i < kInfoEntries; ++i)
        writer->set_stream_info("caps-" + std::to_string(i));
    EXPECT_FALSE(read_stream_info(view, gen_a, &got).has_value());
    cur = read_stream_info(view, 0, &got);
    ASSERT_TRUE(cur.has_value());
    EXPECT_EQ(*cur, "caps-" + std::to_string(kInfoEntries - 1));
}

// ---------------------------------------------------------------- EOS, close

// The end-of-stream marker comes after the frames published before it and
// before the ones published after it, once.
TEST_F(RingArena, EndOfStreamIsOrderedWithFrames)
{
    ASSERT_NO_FATAL_FAILURE(make());
    RingReader &r = join(0, Policy::Lossless);
    ASSERT_NE(publish(0), UINT32_MAX);
    ASSERT_NE(publish(1), UINT32_MAX);
    writer->end_of_stream();
    ASSERT_NE(publish(2), UINT32_MAX);

    for (uint64_t i = 0; i < 2; ++i) {
        ASSERT_EQ(poll(r), Poll::Frame);
        EXPECT_EQ(frame.info.pts, i);
        r.release(frame.slot);
    }
    EXPECT_EQ(poll(r), Poll::EndOfStream);
    ASSERT_EQ(poll(r), Poll::Frame);
    EXPECT_EQ(frame.info.pts, 2u);
    r.release(frame.slot);
    EXPECT_EQ(poll(r), Poll::Empty);

    ChannelInfo info;
    read_counters(view, info);
    EXPECT_EQ(info.end_of_streams, 1u);
    EXPECT_EQ(info.published, 3u);
}

// A marker published after the producer accepted a consumer but before the
// consumer got to start (the producer does not wait for that) is still
// the consumer's to report; one published before acceptance is not.
TEST_F(RingArena, EndOfStreamBeforeTheReaderStartsIsReported)
{
    ASSERT_NO_FATAL_FAILURE(make());
    writer->end_of_stream(); // before acceptance: not ours
    RingReader &r = readers[0];
    r = RingReader(view, state(0), reinterpret_cast<Doorbell *>(bell->mem));
    r.init(Policy::Lossless, getpid());
    joined[0] = state(0);
    const uint64_t start = writer->published();
    const auto eos_before = uint32_t(writer->eos_count());
    ASSERT_NE(publish(0), UINT32_MAX);
    writer->end_of_stream(); // accepted, not started yet
    r.join(0, start, eos_before);

    ASSERT_EQ(poll(r), Poll::Frame);
    EXPECT_EQ(frame.info.pts, 0u);
    r.release(frame.slot);
    EXPECT_EQ(poll(r), Poll::EndOfStream);
    EXPECT_EQ(poll(r), Poll::Empty);
}

// After close the reader drains what was published, then sees Closed (and
// keeps seeing it).
TEST_F(RingArena, CloseGivesClosedAfterDraining)
{
    ASSERT_NO_FATAL_FAILURE(make());
    RingReader &r = join(0, Policy::Lossless);
    ASSERT_NE(publish(0), UINT32_MAX);
    ASSERT_NE(publish(1), UINT32_MAX);
    writer->close();
    for (uint64_t i = 0; i < 2; ++i) {
        ASSERT_EQ(poll(r), Poll::Frame);
        EXPECT_EQ(frame.info.pts, i);
        r.release(frame.slot);
    }
    EXPECT_EQ(poll(r), Poll::Closed);
    EXPECT_EQ(poll(r), Poll::Closed);
}

// ---------------------------------------------------------------- validate_header

// Copies the formatted control region into an exactly-sized aligned buffer
// (so an out-of-bounds read is an ASan error), lets `corrupt` change the
// copied header, and validates it against a file of `file_size` bytes.
class HeaderCheck : public RingArena {
protected:
    Result<Geometry> check(void (*corrupt)(SegmentHeader &), uint64_t file_size = 0)
    {
        AlignedBuffer copy(geometry.total_size);
        std::memcpy(copy.mem, arena->mem, geometry.total_size);
        SegmentHeader h;
        std::memcpy(static_cast<void *>(&h), copy.mem, sizeof h);
        if (corrupt)
            corrupt(h);
        std::memcpy(copy.mem, static_cast<const void *>(&h), sizeof h);
        return validate_header(copy.mem, geometry.total_size,
                               file_size ? file_size : geometry.total_size, "hdr-test");
    }
};

// A freshly formatted header validates and yields the planned geometry.
TEST_F(HeaderCheck, FormattedHeaderValidates)
{
    ASSERT_NO_FATAL_FAILURE(make());
    const SegmentHeader *h = view.header();
    EXPECT_EQ(h->magic, kMagic);
    EXPECT_EQ(h->layout_version, kLayoutVersion);
    EXPECT_EQ(h->epoch, 7u);
    EXPECT_EQ(h->mode, 0600u);
    EXPECT_EQ(h->total_size, geometry.total_size);

    auto g = check(nullptr);
    ASSERT_TRUE(IsOk(g));
    EXPECT_EQ(g->slot_count, geometry.slot_count);
    EXPECT_EQ(g->max_consumers, geometry.max_consumers);
    EXPECT_EQ(g->slot_size, geometry.slot_size);
    EXPECT_EQ(g->slot_stride, geometry.slot_stride);
    EXPECT_EQ(g->info_offset, geometry.info_offset);
    EXPECT_EQ(g->desc_offset, geometry.desc_offset);
    EXPECT_EQ(g->pubring_offset, geometry.pubring_offset);
    EXPECT_EQ(g->data_offset, geometry.data_offset);
    EXPECT_EQ(g->total_size, geometry.total_size);
}

TEST_F(HeaderCheck, WrongMagicIsCorrupt)
{
    ASSERT_NO_FATAL_FAILURE(make());
    auto g = check([](SegmentHeader &h) { h.magic = 0x6b6e756a6b6e756aull; });
    EXPECT_TRUE(HasError(g, Errc::Corrupt));
    EXPECT_TRUE(bips_test::ErrorMentions(g, "hdr-test")) << "the message should name the channel";
}

TEST_F(HeaderCheck, OtherLayoutVersionIsIncompatible)
{
    ASSERT_NO_FATAL_FAILURE(make());
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.layout_version = kLayoutVersion + 1; }),
                         Errc::Incompatible));
}

// Sizes larger than the segment (or than the mapping) are refused.
TEST_F(HeaderCheck, SizesBeyondTheFileAreCorrupt)
{
    ASSERT_NO_FATAL_FAILURE(make());
    EXPECT_TRUE(HasError(check(nullptr, geometry.total_size - kMinPageSize), Errc::Corrupt))
        << "file shorter than total_size";
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.total_size = 1ull << 62; }),
                         Errc::Corrupt));
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.slot_count = 1u << 30; }),
                         Errc::Corrupt));
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.slot_count = 0; }), Errc::Corrupt));
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.max_consumers = 100000; }),
                         Errc::Corrupt));
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.slot_size = h.slot_stride + 1; }),
                         Errc::Corrupt));
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.data_offset += kMinPageSize; }),
                         Errc::Corrupt));
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.pubring_offset = h.data_offset; }),
                         Errc::Corrupt));
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.meta_capacity = 1u << 31; }),
                         Errc::Corrupt));
}

// Regions that overlap or are misaligned are refused.
TEST_F(HeaderCheck, OverlappingOrUnalignedOffsetsAreCorrupt)
{
    ASSERT_NO_FATAL_FAILURE(make());
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.desc_offset = h.info_offset; }),
                         Errc::Corrupt));
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.info_offset = 0; }), Errc::Corrupt))
        << "info over the header";
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.desc_offset += 8; }), Errc::Corrupt));
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.pubring_offset = h.desc_offset; }),
                         Errc::Corrupt));
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.data_offset -= 8; }), Errc::Corrupt))
        << "slot data not page aligned";
    EXPECT_TRUE(HasError(check([](SegmentHeader &h) { h.slot_stride = 64; }), Errc::Corrupt))
        << "slot stride below a page";
}

// A control buffer too short to hold a header is refused without reading
// past it.
TEST(RingHeader, ShortControlIsCorrupt)
{
    AlignedBuffer tiny(64, 64);
    auto g = validate_header(tiny.mem, tiny.size, tiny.size, "tiny");
    EXPECT_TRUE(HasError(g, Errc::Corrupt));
}

} // namespace
