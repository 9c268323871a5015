// SPDX-License-Identifier: LGPL-2.1-or-later
// Forked multi-process tests: integrity, mixed policies, dead processes, takeover.

#include "helpers.h"

#include <sys/stat.h>

#include <algorithm>
#include <memory>

namespace {

using namespace bips;
using namespace bips_test;
using namespace std::chrono_literals;

// Every test here uses a private ChannelDir: some leave dead producers behind
// and call clean_channels(), which must not see other tests' channels.

// These children hold frames on purpose (to pin slots): no hold limit.
std::unique_ptr<Consumer> child_attach(const std::string &name, Policy policy)
{
    ConsumerOptions o;
    o.policy = policy;
    o.max_held = kUnlimitedHeld;
    auto c = Consumer::attach(name, o, kLong);
    if (!c.ok()) {
        child_fail(0, "attach " + name, c);
        return nullptr;
    }
    return std::move(c).value();
}

// Size of frame k of the integrity streams: 1 .. slot size, varying.
constexpr uint64_t kStreamSlotSize = 4096;
uint64_t stream_frame_size(uint64_t k) { return 1 + (k * 7919) % kStreamSlotSize; }

// Publishes frames 0 .. count-1 of the integrity stream, then an
// end-of-stream marker: pattern bytes, pts = k, dts = k + 1, flags from k,
// and the FNV-1a checksum of the bytes as metadata.
void produce_stream(Producer &p, uint64_t count)
{
    for (uint64_t k = 0; k < count; ++k) {
        auto slot = p.acquire(kLong);
        ASSERT_TRUE(IsOk(slot)) << "acquire of frame " << k;
        const uint64_t size = stream_frame_size(k);
        fill_pattern(slot->data, size, k);
        const uint64_t sum = checksum(slot->data, size);
        FrameInfo info;
        info.size = size;
        info.pts = k;
        info.dts = k + 1;
        info.duration = 40;
        info.flags = uint32_t(k) & kFrameFlagUserMask;
        auto r = p.publish(*slot, info, std::as_bytes(std::span(&sum, 1)));
        ASSERT_TRUE(IsOk(r)) << "publish of frame " << k;
    }
    p.end_of_stream();
}

// Child body: reads `count` frames losslessly and checks the order, every
// byte, the checksum and the metadata of each, then the end of stream.
int read_stream_lossless(const std::string &name, uint64_t count)
{
    auto c = child_attach(name, Policy::Lossless);
    if (!c)
        return 10;
    uint64_t first_seq = 0;
    for (uint64_t k = 0; k < count; ++k) {
        auto f = c->next(kLong);
        if (!f.ok())
            return child_fail(11, "next at frame " + std::to_string(k), f);
        const Frame &fr = *f;
        if (k == 0)
            first_seq = fr.sequence();
        if (fr.info().pts != k || fr.sequence() != first_seq + k)
            return child_fail(12, "expected frame " + std::to_string(k) + ", got pts " +
                                      std::to_string(fr.info().pts) + " sequence " +
                                      std::to_string(fr.sequence()));
        const uint64_t size = stream_frame_size(k);
        if (fr.size() != size || fr.info().dts != k + 1 || fr.info().duration != 40 ||
            fr.info().flags != (uint32_t(k) & kFrameFlagUserMask) || fr.meta().size() != 8)
            return child_fail(14, "metadata of frame " + std::to_string(k));
        const uint64_t bad = check_pattern(fr.data(), size, k);
        if (bad != size)
            return child_fail(13, "frame " + std::to_string(k) + " differs at byte " +
                                      std::to_string(bad) + " of " + std::to_string(size));
        uint64_t sum = 0;
        std::memcpy(&sum, fr.meta().data(), sizeof sum);
        if (sum != checksum(fr.data(), size))
            return child_fail(13, "checksum of frame " + std::to_string(k));
    }
    auto end = c->next(kLong);
    if (end.ok() || end.code() != Errc::EndOfStream)
        return child_fail(15, "after the last frame, expected end-of-stream", end);
    if (c->received() != count || c->skipped() != 0)
        return child_fail(16, "received " + std::to_string(c->received()) + " skipped " +
                                  std::to_string(c->skipped()));
    return 0;
}

// 100,000 frames to a lossless consumer in another process: every byte of
// every frame, its metadata and the order arrive intact, then EOS.
TEST(Process, LosslessHundredThousandFramesIntact)
{
    constexpr uint64_t kFrames = 100000;
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("lossless");
    Child reader([&] { return read_stream_lossless(name, kFrames); });
    ASSERT_TRUE(reader.started());

    CREATE_PRODUCER(producer, name, small_options(8, kStreamSlotSize));
    ASSERT_TRUE(wait_until([&] { return producer->consumer_count() == 1; }))
        << "the consumer did not attach";
    ASSERT_NO_FATAL_FAILURE(produce_stream(*producer, kFrames));
    EXPECT_EQ(producer->published(), kFrames);
    auto end = reader.wait(120s);
    EXPECT_TRUE(exited_ok(end)) << end;
}

// What a latest consumer child saw, sent back through a pipe.
struct LatestReport {
    uint64_t frames = 0;    // frames next() returned
    uint64_t received = 0;  // Consumer::received()
    uint64_t skipped = 0;   // Consumer::skipped()
    uint64_t gaps = 0;      // frames missing between the ones it got
    uint64_t last_pts = 0;
    uint64_t ordered = 1;   // pts strictly increasing
    uint64_t intact = 1;    // every byte matched its pattern
};

// A lossless and a latest consumer on one channel: the lossless one gets
// every frame; the latest one gets an ordered subset that ends with the
// last frame, and received + skipped accounts for every frame.
TEST(Process, LosslessAndLatestOnOneChannel)
{
    constexpr uint64_t kFrames = 20000;
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("mixed");
    Pipe report_pipe;
    Child lossless([&] { return read_stream_lossless(name, kFrames); });
    Child latest([&] {
        auto c = child_attach(name, Policy::Latest);
        if (!c)
            return 10;
        LatestReport rep;
        int64_t prev = -1;
        for (;;) {
            auto f = c->next(kLong);
            if (!f.ok()) {
                if (f.code() == Errc::EndOfStream)
                    break;
                return child_fail(11, "latest next", f);
            }
            const int64_t pts = int64_t(f->info().pts);
            if (pts <= prev)
                rep.ordered = 0;
            else
                rep.gaps += uint64_t(pts - prev - 1);
            if (check_pattern(f->data(), f->size(), f->info().pts) != f->size())
                rep.intact = 0;
            prev = pts;
            rep.last_pts = f->info().pts;
            ++rep.frames;
            // Hold the frame a little, so the producer runs ahead of us.
            std::this_thread::sleep_for(100us);
        }
        rep.received = c->received();
        rep.skipped = c->skipped();
        return report_pipe.send(&rep, sizeof rep) ? 0 : 12;
    });
    ASSERT_TRUE(lossless.started());
    ASSERT_TRUE(latest.started());

    CREATE_PRODUCER(producer, name, small_options(8, kStreamSlotSize));
    ASSERT_TRUE(wait_until([&] { return producer->consumer_count() == 2; }))
        << "the consumers did not attach";
    auto consumers = producer->consumers();
    ASSERT_EQ(consumers.size(), 2u);
    EXPECT_NE(consumers[0].policy, consumers[1].policy);
    ASSERT_NO_FATAL_FAILURE(produce_stream(*producer, kFrames));

    LatestReport rep;
    ASSERT_TRUE(report_pipe.receive(&rep, sizeof rep, 120s)) << "no report from the latest consumer";
    auto end = lossless.wait(120s);
    EXPECT_TRUE(exited_ok(end)) << "lossless: " << end;
    end = latest.wait();
    EXPECT_TRUE(exited_ok(end)) << "latest: " << end;

    EXPECT_GE(rep.frames, 1u);
    EXPECT_LE(rep.frames, kFrames);
    EXPECT_TRUE(rep.ordered);
    EXPECT_TRUE(rep.intact);
    EXPECT_EQ(rep.last_pts, kFrames - 1) << "latest must end with the last frame";
    EXPECT_EQ(rep.received, rep.frames);
    EXPECT_EQ(rep.received + rep.skipped, kFrames);
    EXPECT_EQ(rep.skipped, rep.gaps);
}

// A consumer SIGKILLed while it holds frames: the producer gets the slots
// back (acquire succeeds again), and the entry disappears everywhere.
TEST(Process, KilledConsumersSlotsAreReclaimed)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("deadcons");
    Pipe up;
    Child reader([&] {
        auto c = child_attach(name, Policy::Lossless);
        if (!c)
            return 10;
        std::vector<Frame> held;
        for (int i = 0; i < 3; ++i) {
            auto f = c->next(kLong);
            if (!f.ok())
                return child_fail(11, "next", f);
            held.push_back(std::move(f).value());
        }
        up.send('H');
        std::this_thread::sleep_for(3 * kLong); // SIGKILLed here
        return 20;
    });
    ASSERT_TRUE(reader.started());

    CREATE_PRODUCER(producer, name, small_options(4, 4096));
    ASSERT_TRUE(wait_until([&] { return producer->consumer_count() == 1; }));
    for (uint64_t i = 0; i < 4; ++i)
        ASSERT_TRUE(IsOk(publish_pattern(*producer, i, 64)));
    ASSERT_TRUE(up.expect('H')) << "the consumer did not take 3 frames";

    // 3 slots held, 1 unread by a lossless consumer: nothing is free.
    EXPECT_TRUE(HasError(producer->acquire(0ns), Errc::WouldBlock));
    auto before = producer->consumers();
    ASSERT_EQ(before.size(), 1u);
    EXPECT_TRUE(before[0].alive);
    EXPECT_EQ(before[0].held, 3u);
    EXPECT_EQ(before[0].received, 3u);
    EXPECT_EQ(before[0].pid, reader.pid());
    EXPECT_EQ(before[0].policy, Policy::Lossless);

    reader.kill(SIGKILL);
    auto end = reader.wait();
    EXPECT_TRUE(was_killed(end)) << end;

    // acquire reclaims the dead consumer's slots while it waits.
    auto slot = producer->acquire(kLong);
    ASSERT_TRUE(IsOk(slot)) << "the dead consumer's slots were not reclaimed";
    producer->discard(*slot);
    EXPECT_EQ(producer->consumer_count(), 0u);
    EXPECT_TRUE(producer->consumers().empty());
    EXPECT_TRUE(producer->info().consumers.empty());
    auto seen = inspect_channel(name);
    ASSERT_TRUE(IsOk(seen));
    EXPECT_TRUE(seen->consumers.empty());

    // Every slot is free again.
    std::vector<WriteSlot> slots;
    for (int i = 0; i < 4; ++i) {
        auto s = producer->acquire(0ns);
        ASSERT_TRUE(IsOk(s)) << "slot " << i;
        slots.push_back(*s);
    }
    for (const auto &s : slots)
        producer->discard(s);
}

// reap_dead_consumers finds a killed consumer without any acquire.
TEST(Process, ReapDeadConsumersCountsTheDead)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("reap");
    Pipe up;
    Child reader([&] {
        auto c = child_attach(name, Policy::Latest);
        if (!c)
            return 10;
        up.send('A');
        std::this_thread::sleep_for(3 * kLong);
        return 20;
    });
    ASSERT_TRUE(reader.started());
    CREATE_PRODUCER(producer, name, small_options());
    ASSERT_TRUE(up.expect('A'));
    ASSERT_EQ(producer->consumer_count(), 1u);
    EXPECT_EQ(producer->reap_dead_consumers(), 0u) << "the consumer is alive";
    reader.kill(SIGKILL);
    EXPECT_TRUE(was_killed(reader.wait()));
    EXPECT_EQ(producer->reap_dead_consumers(), 1u);
    EXPECT_EQ(producer->consumer_count(), 0u);
}

// A producer SIGKILLed while a consumer waits in next(): the consumer
// gets ProducerGone (not a hang, not a Timeout), and keeps getting it.
TEST(Process, KilledProducerGivesProducerGone)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("deadprod");
    Pipe up, down;
    Child writer([&] {
        auto p = Producer::create(name, small_options());
        if (!p.ok())
            return child_fail(10, "create", p);
        up.send('C');
        if (!down.expect('G'))
            return 11;
        std::this_thread::sleep_for(100ms); // let the parent block in next()
        raise(SIGKILL);
        return 12;
    });
    ASSERT_TRUE(writer.started());
    ASSERT_TRUE(up.expect('C'));
    auto attached = Consumer::attach(name, {}, kLong);
    ASSERT_TRUE(IsOk(attached));
    auto consumer = std::move(attached).value();
    EXPECT_TRUE(consumer->info().producer_alive);

    down.send('G');
    EXPECT_TRUE(HasError(consumer->next(kLong), Errc::ProducerGone));
    EXPECT_TRUE(HasError(consumer->next(0ns), Errc::ProducerGone)) << "ProducerGone is sticky";
    EXPECT_TRUE(was_killed(writer.wait())) << "child status";

    auto seen = inspect_channel(name);
    ASSERT_TRUE(IsOk(seen));
    EXPECT_FALSE(seen->producer_alive);
    EXPECT_FALSE(seen->producer_closed);

    consumer.reset();
    auto removed = clean_channels();
    ASSERT_TRUE(IsOk(removed));
    EXPECT_NE(std::find(removed->begin(), removed->end(), name), removed->end());
    EXPECT_TRUE(HasError(inspect_channel(name), Errc::NotFound));
    EXPECT_TRUE(dir.files().empty());
}

// A consumer that polls with short timeouts (a source element looping so
// it can be interrupted) still learns, within a bounded time, that its
// producer died, instead of getting Timeout forever.
TEST(Process, ShortTimeoutPollingSeesProducerGone)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("poll");
    Pipe up;
    Child writer([&] {
        auto p = Producer::create(name, small_options());
        if (!p.ok())
            return child_fail(10, "create", p);
        up.send('C');
        std::this_thread::sleep_for(3 * kLong); // SIGKILLed here
        return 20;
    });
    ASSERT_TRUE(writer.started());
    ASSERT_TRUE(up.expect('C'));
    auto attached = Consumer::attach(name, {}, kLong);
    ASSERT_TRUE(IsOk(attached));
    auto consumer = std::move(attached).value();
    writer.kill(SIGKILL);
    EXPECT_TRUE(was_killed(writer.wait()));

    const auto deadline = std::chrono::steady_clock::now() + 10s;
    auto r = consumer->next(10ms);
    while (!r.ok() && r.code() == Errc::Timeout && std::chrono::steady_clock::now() < deadline)
        r = consumer->next(10ms);
    EXPECT_TRUE(HasError(r, Errc::ProducerGone));
}

// A producer restarted on the name of a dead one takes the channel over:
// epoch + 1, still one file for the name; the consumer's reattach() gets
// the new frames, and a frame it kept from the old epoch is intact.
TEST(Process, RestartedProducerTakesOver)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("takeover");
    constexpr uint64_t kSize = 5000;
    Pipe up, down;
    Child first([&] {
        auto p = Producer::create(name, small_options(4, 8192));
        if (!p.ok())
            return child_fail(10, "create", p);
        up.send('C');
        if (!down.expect('A'))
            return 11;
        for (uint64_t i = 0; i < 3; ++i)
            if (auto r = publish_pattern(**p, i, kSize); !r.ok())
                return child_fail(12, "publish", r);
        up.send('P');
        if (!down.expect('K'))
            return 13;
        raise(SIGKILL);
        return 14;
    });
    ASSERT_TRUE(first.started());
    ASSERT_TRUE(up.expect('C'));
    auto attached = Consumer::attach(name, keeps_frames(), kLong);
    ASSERT_TRUE(IsOk(attached));
    auto consumer = std::move(attached).value();
    const uint64_t old_epoch = consumer->epoch();
    down.send('A');
    ASSERT_TRUE(up.expect('P'));

    Frame kept;
    for (uint64_t i = 0; i < 3; ++i) {
        auto f = consumer->next(kLong);
        ASSERT_TRUE(IsOk(f)) << "frame " << i;
        EXPECT_EQ(f->info().pts, i);
        EXPECT_EQ(check_pattern(f->data(), f->size(), i), kSize);
        if (i == 1)
            kept = std::move(f).value();
    }
    down.send('K');
    EXPECT_TRUE(HasError(consumer->next(kLong), Errc::ProducerGone));
    EXPECT_TRUE(was_killed(first.wait()));

    auto created = Producer::create(name, small_options(4, 8192));
    ASSERT_TRUE(IsOk(created)) << "the dead producer's channel must be taken over";
    auto producer = std::move(created).value();
    EXPECT_GT(producer->epoch(), old_epoch);
    auto files = dir.files();
    EXPECT_EQ(std::count_if(files.begin(), files.end(),
                            [&](const std::string &f) { return f.find(name) != std::string::npos; }),
              1)
        << "names for the channel: " << ::testing::PrintToString(files);

    ASSERT_TRUE(IsOk(consumer->reattach(kLong)));
    EXPECT_EQ(consumer->epoch(), producer->epoch());
    ASSERT_TRUE(IsOk(publish_pattern(*producer, 100, 3000)));
    auto f = consumer->next(kLong);
    ASSERT_TRUE(IsOk(f));
    EXPECT_EQ(f->info().pts, 100u);
    EXPECT_EQ(check_pattern(f->data(), f->size(), 100), 3000u);

    ASSERT_TRUE(kept.valid());
    EXPECT_EQ(check_pattern(kept.data(), kept.size(), 1), kSize)
        << "a frame of the old epoch changed under the new producer";
    auto seen = inspect_channel(name);
    ASSERT_TRUE(IsOk(seen));
    EXPECT_EQ(seen->epoch, producer->epoch());
    EXPECT_TRUE(seen->producer_alive);
}

// A Frame keeps its bytes after its producer exited (and removed the
// segment's name) and after its Consumer was destroyed.
TEST(Process, FrameOutlivesProducerAndConsumer)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("outlive");
    constexpr uint64_t kSize = 65536;
    Pipe up, down;
    Child writer([&] {
        auto p = Producer::create(name, small_options(2, kSize));
        if (!p.ok())
            return child_fail(10, "create", p);
        up.send('C');
        if (!down.expect('A'))
            return 11;
        if (auto r = publish_pattern(**p, 7, kSize); !r.ok())
            return child_fail(12, "publish", r);
        if (!down.expect('X'))
            return 13;
        p->reset(); // a clean exit: the destructor closes and unlinks
        return 0;
    });
    ASSERT_TRUE(writer.started());
    ASSERT_TRUE(up.expect('C'));
    auto attached = Consumer::attach(name, keeps_frames(), kLong);
    ASSERT_TRUE(IsOk(attached));
    auto consumer = std::move(attached).value();
    down.send('A');
    auto next = consumer->next(kLong);
    ASSERT_TRUE(IsOk(next));
    Frame frame = std::move(next).value();

    down.send('X');
    auto end = writer.wait();
    EXPECT_TRUE(exited_ok(end)) << end;
    struct stat st;
    EXPECT_NE(stat(channel_path(name).c_str(), &st), 0) << "the producer removes its socket";
    EXPECT_TRUE(HasError(consumer->next(kLong), Errc::ProducerGone));

    consumer.reset();
    ASSERT_TRUE(frame.valid());
    EXPECT_EQ(frame.size(), kSize);
    EXPECT_EQ(check_pattern(frame.data(), kSize, 7), kSize);
    frame.release();
    frame.release(); // idempotent
    EXPECT_TRUE(dir.files().empty());
}

// A second producer on a name a live producer (another process) owns gets
// Busy, naming the channel, and leaves the live channel untouched.
TEST(Process, SecondLiveProducerIsBusy)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("busy");
    Pipe up, down;
    Child owner([&] {
        auto p = Producer::create(name, small_options());
        if (!p.ok())
            return child_fail(10, "create", p);
        up.send('C');
        if (!down.expect('P'))
            return 11;
        if (auto r = publish_pattern(**p, 5, 100); !r.ok())
            return child_fail(12, "publish", r);
        if (!down.expect('X'))
            return 13;
        return 0;
    });
    ASSERT_TRUE(owner.started());
    ASSERT_TRUE(up.expect('C'));

    auto second = Producer::create(name, small_options());
    EXPECT_TRUE(HasError(second, Errc::Busy));
    EXPECT_TRUE(ErrorMentions(second, name)) << "the message should name the channel";

    auto seen = inspect_channel(name);
    ASSERT_TRUE(IsOk(seen));
    EXPECT_TRUE(seen->producer_alive);
    EXPECT_EQ(seen->producer_pid, owner.pid());
    auto attached = Consumer::attach(name, {}, kLong);
    ASSERT_TRUE(IsOk(attached)) << "the live channel must still work";
    auto consumer = std::move(attached).value();
    down.send('P');
    auto f = consumer->next(kLong);
    ASSERT_TRUE(IsOk(f));
    EXPECT_EQ(f->info().pts, 5u);
    f = Frame();
    consumer.reset();
    down.send('X');
    EXPECT_TRUE(exited_ok(owner.wait()));
    EXPECT_TRUE(dir.files().empty());
}

// Two Producer objects in one process compete like two processes: the
// second is Busy (the ownership lock is per open file, not per process).
TEST(Process, SecondProducerInTheSameProcessIsBusy)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("busy1");
    CREATE_PRODUCER(producer, name, small_options());
    EXPECT_TRUE(HasError(Producer::create(name, small_options()), Errc::Busy));
    auto attached = Consumer::attach(name, {}, kLong);
    ASSERT_TRUE(IsOk(attached));
    auto consumer = std::move(attached).value();
    ASSERT_TRUE(IsOk(publish_pattern(*producer, 9, 10)));
    auto f = consumer->next(kLong);
    ASSERT_TRUE(IsOk(f));
    EXPECT_EQ(f->info().pts, 9u);
}

// attach() with no producer returns Timeout once its (short) timeout is
// over, bounded, and creates nothing.
TEST(Process, AttachWithoutProducerTimesOut)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const auto start = std::chrono::steady_clock::now();
    auto c = Consumer::attach(unique_name("nobody"), {}, 300ms);
    EXPECT_TRUE(HasError(c, Errc::Timeout));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(kLong))
        << "attach did not respect its timeout";
    EXPECT_TRUE(dir.files().empty());
}

// attach() waits for a producer that appears during its timeout.
TEST(Process, AttachWaitsForALateProducer)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("late");
    Pipe down;
    Child writer([&] {
        std::this_thread::sleep_for(300ms);
        auto p = Producer::create(name, small_options());
        if (!p.ok())
            return child_fail(10, "create", p);
        return down.expect('X') ? 0 : 11;
    });
    ASSERT_TRUE(writer.started());
    auto c = Consumer::attach(name, {}, kLong);
    EXPECT_TRUE(IsOk(c));
    if (c.ok()) {
        EXPECT_EQ((*c)->name(), name);
        EXPECT_EQ((*c)->policy(), Policy::Lossless);
    }
    down.send('X');
    EXPECT_TRUE(exited_ok(writer.wait()));
}

// A producer stopped by SIGTERM, SIGHUP or SIGINT (left at their default
// action) dies of that signal and leaves no name behind; its consumer sees
// it go. With a handler of the application's own, bips leaves it alone.
TEST(Process, TerminatingSignalLeavesNothingBehind)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    for (int sig : {SIGTERM, SIGHUP, SIGINT}) {
        SCOPED_TRACE(strsignal(sig));
        const std::string name = unique_name("signal");
        Pipe up;
        Child writer([&] {
            signal(sig, SIG_DFL);
            auto p = Producer::create(name, small_options());
            if (!p.ok())
                return child_fail(10, "create", p);
            up.send('C');
            std::this_thread::sleep_for(3 * kLong);
            return 11;
        });
        ASSERT_TRUE(writer.started());
        ASSERT_TRUE(up.expect('C'));
        auto attached = Consumer::attach(name, {}, kLong);
        ASSERT_TRUE(IsOk(attached));
        writer.kill(sig);
        const ChildEnd end = writer.wait();
        EXPECT_TRUE(end.signaled && end.status == sig) << end;
        EXPECT_TRUE(dir.files().empty()) << ::testing::PrintToString(dir.files());
        EXPECT_TRUE(HasError((*attached)->next(kLong), Errc::ProducerGone));
    }
    // The application's own handler is kept: bips installs nothing then.
    const std::string name = unique_name("handled");
    Pipe up;
    Child writer([&] {
        signal(SIGTERM, [](int) { _exit(42); });
        auto p = Producer::create(name, small_options());
        if (!p.ok())
            return child_fail(10, "create", p);
        up.send('C');
        std::this_thread::sleep_for(3 * kLong);
        return 11;
    });
    ASSERT_TRUE(writer.started());
    ASSERT_TRUE(up.expect('C'));
    writer.kill(SIGTERM);
    const ChildEnd end = writer.wait();
    EXPECT_TRUE(end.exited && end.status == 42) << end;
}

} // namespace
