// SPDX-License-Identifier: LGPL-2.1-or-later
// Races between slot reuse and readers, with real threads on a real channel.
#include "helpers.h"

#include <atomic>
#include <cstring>
#include <thread>

namespace {

using namespace bips;
using namespace bips_test;
using namespace std::chrono_literals;

constexpr uint64_t kSlotBytes = 4096;

// Fills a whole slot with a word derived from the sequence number.
void fill(std::byte *data, uint64_t seq)
{
    for (uint64_t off = 0; off < kSlotBytes; off += 8)
        std::memcpy(data + off, &seq, 8);
}

// True if every word of the slot still holds `seq`.
bool intact(const std::byte *data, uint64_t seq)
{
    for (uint64_t off = 0; off < kSlotBytes; off += 8) {
        uint64_t v;
        std::memcpy(&v, data + off, 8);
        if (v != seq)
            return false;
    }
    return true;
}

// With only two slots and a producer publishing flat out, a `latest` reader
// keeps grabbing the newest frame, which is exactly the slot the producer
// wants next. The hold-then-check protocol must never let the producer write
// into a frame while the reader holds it: every held frame stays intact,
// re-checked after a pause.
TEST(Stress, LatestReaderNeverSeesItsFrameOverwritten)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("race");
    ProducerOptions o;
    o.slot_count = 2;
    o.slot_size = kSlotBytes;
    auto created = Producer::create(name, o);
    ASSERT_TRUE(created.ok()) << created.error().message;
    auto producer = std::move(created).value();

    auto attached = Consumer::attach(name, {Policy::Latest, 0ns}, 5s);
    ASSERT_TRUE(attached.ok()) << attached.error().message;
    auto consumer = std::move(attached).value();

    std::atomic<bool> stop{false};
    std::atomic<uint64_t> published{0};
    std::thread writer([&] {
        for (uint64_t seq = 0; !stop.load(); ++seq) {
            auto slot = producer->acquire(1s);
            if (!slot.ok())
                continue; // the reader holds one slot at most: never both
            fill(slot->data, seq);
            FrameInfo info;
            info.size = kSlotBytes;
            info.pts = seq;
            if (producer->publish(*slot, info).ok())
                published.fetch_add(1);
        }
        producer->end_of_stream();
    });

    uint64_t checked = 0, damaged = 0;
    const auto until = std::chrono::steady_clock::now() + 2s;
    while (std::chrono::steady_clock::now() < until) {
        auto frame = consumer->next(1s);
        if (!frame.ok())
            continue;
        const uint64_t seq = frame->info().pts;
        if (!intact(frame->data(), seq))
            ++damaged;
        std::this_thread::yield(); // let the producer try to take the slot
        if (!intact(frame->data(), seq))
            ++damaged;
        ++checked;
    }
    stop.store(true);
    writer.join();
    EXPECT_GT(checked, 100u);
    EXPECT_GT(published.load(), checked);
    EXPECT_EQ(damaged, 0u) << "a held frame was overwritten";
}

// Two lossless readers in threads and a producer: every frame reaches both,
// in order, intact, however the threads interleave.
TEST(Stress, TwoLosslessReadersGetEveryFrameIntact)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("two");
    ProducerOptions o;
    o.slot_count = 3;
    o.slot_size = kSlotBytes;
    auto created = Producer::create(name, o);
    ASSERT_TRUE(created.ok()) << created.error().message;
    auto producer = std::move(created).value();
    constexpr uint64_t kFrames = 20000;

    auto reader = [&](uint64_t *bad, uint64_t *got) {
        auto c = Consumer::attach(name, {}, 5s);
        if (!c.ok()) {
            *bad = UINT64_MAX;
            return;
        }
        for (;;) {
            auto f = c.value()->next(10s);
            if (!f.ok())
                break; // EndOfStream (or a bounded timeout on a bug)
            if (f->info().pts != *got || !intact(f->data(), *got))
                ++*bad;
            ++*got;
        }
    };
    uint64_t bad[2] = {0, 0}, got[2] = {0, 0};
    std::thread r0(reader, &bad[0], &got[0]);
    std::thread r1(reader, &bad[1], &got[1]);
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (producer->consumer_count() < 2 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(producer->consumer_count(), 2u);
    for (uint64_t seq = 0; seq < kFrames; ++seq) {
        auto slot = producer->acquire(10s);
        ASSERT_TRUE(slot.ok()) << slot.error().message;
        fill(slot->data, seq);
        FrameInfo info;
        info.size = kSlotBytes;
        info.pts = seq;
        ASSERT_TRUE(producer->publish(*slot, info).ok());
    }
    producer->end_of_stream();
    r0.join();
    r1.join();
    for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(got[i], kFrames) << "reader " << i;
        EXPECT_EQ(bad[i], 0u) << "reader " << i;
    }
}

} // namespace

// A consumer that anticipates paced frames (wakes before each is due and
// busy-waits) still gets every frame of an irregularly paced stream, in
// order, and still honours its timeout when the stream stops.
TEST(Stress, AnticipatingConsumerGetsEveryPacedFrame)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("ahead");
    ProducerOptions o;
    o.slot_count = 4;
    o.slot_size = kSlotBytes;
    auto created = Producer::create(name, o);
    ASSERT_TRUE(created.ok()) << created.error().message;
    auto producer = std::move(created).value();
    ConsumerOptions co;
    co.anticipate = 2ms;
    auto attached = Consumer::attach(name, co, 5s);
    ASSERT_TRUE(attached.ok()) << attached.error().message;
    auto consumer = std::move(attached).value();

    constexpr uint64_t kFrames = 40;
    std::thread writer([&] {
        for (uint64_t seq = 0; seq < kFrames; ++seq) {
            // 5 ms apart, every fourth gap 15 ms: the estimate is often wrong.
            std::this_thread::sleep_for(seq % 4 == 3 ? 15ms : 5ms);
            auto slot = producer->acquire(5s);
            if (!slot.ok())
                return;
            fill(slot->data, seq);
            FrameInfo info;
            info.size = kSlotBytes;
            info.pts = seq;
            (void)producer->publish(*slot, info);
        }
    });
    uint64_t got = 0;
    for (; got < kFrames; ++got) {
        auto f = consumer->next(5s);
        ASSERT_TRUE(f.ok()) << f.error().message;
        EXPECT_EQ(f->info().pts, got);
        EXPECT_TRUE(intact(f->data(), got));
    }
    writer.join();
    auto more = consumer->next(50ms);
    ASSERT_FALSE(more.ok());
    EXPECT_EQ(more.code(), Errc::Timeout);
}
