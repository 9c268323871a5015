// SPDX-License-Identifier: LGPL-2.1-or-later
// Channel names: permissions, listing and clean-up.

#include "helpers.h"

#include "layout.h"
#include "ring.h"

#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <memory>

namespace {

using namespace bips;
using namespace bips_test;
using namespace std::chrono_literals;

// ---------------------------------------------------------------- permissions

// Restores the process umask when the scope ends.
class UmaskScope {
public:
    explicit UmaskScope(mode_t mask) : old_(umask(mask)) {}
    ~UmaskScope() { umask(old_); }
    UmaskScope(const UmaskScope &) = delete;
    UmaskScope &operator=(const UmaskScope &) = delete;

private:
    mode_t old_;
};

mode_t file_mode(const std::string &path)
{
    struct stat st;
    if (stat(path.c_str(), &st) != 0)
        return 0;
    return st.st_mode & 07777;
}

// Channel sockets are owner-only by default, even with a permissive umask.
TEST(Channel, DefaultModeIsOwnerOnly)
{
    UmaskScope mask(0);
    const std::string name = unique_name("mode");
    {
        CREATE_PRODUCER(producer, name, small_options());
        EXPECT_EQ(file_mode(channel_path(name)), 0600u);
        EXPECT_EQ(producer->info().mode, 0600u);
    }
    struct stat st;
    EXPECT_NE(stat(channel_path(name).c_str(), &st), 0) << "the producer removes its socket";
}

// A requested mode is applied exactly, whatever the umask.
TEST(Channel, RequestedModeIsHonouredDespiteUmask)
{
    for (mode_t mask : {mode_t(022), mode_t(077)}) {
        UmaskScope scope(mask);
        const std::string name = unique_name("mode");
        ProducerOptions o = small_options();
        o.mode = 0644;
        CREATE_PRODUCER(producer, name, o);
        EXPECT_EQ(file_mode(channel_path(name)), 0644u) << "umask " << mask;
        auto seen = inspect_channel(name);
        ASSERT_TRUE(IsOk(seen));
        EXPECT_EQ(seen->mode, 0644u);
    }
}

// Another user cannot attach to or inspect an owner-only channel: a
// PermissionDenied error that says so (not a crash or a generic error).
TEST(Channel, OtherUserGetsPermissionDenied)
{
    if (geteuid() != 0)
        GTEST_SKIP() << "needs root to switch to another user";
    const std::string name = unique_name("perm");
    Pipe up, down;
    Child other([&] {
        if (!down.expect('C'))
            return 10;
        if (setgid(65534) != 0 || setuid(65534) != 0)
            return 77;
        auto c = Consumer::attach(name, {}, 2s);
        if (c.ok() || c.code() != Errc::PermissionDenied || c.error().message.empty())
            return child_fail(11, "attach as nobody", c);
        auto i = inspect_channel(name);
        if (i.ok() || i.code() != Errc::PermissionDenied)
            return child_fail(12, "inspect as nobody", i);
        return 0;
    });
    ASSERT_TRUE(other.started());
    CREATE_PRODUCER(producer, name, small_options());
    down.send('C');
    auto end = other.wait();
    if (end.exited && end.status == 77)
        GTEST_SKIP() << "cannot switch to uid 65534";
    EXPECT_TRUE(exited_ok(end)) << end;
}

// ---------------------------------------------------------------- inspect, list, clean

// inspect_channel and list_channels report live and dead channels;
// clean_channels removes the dead producer's channel and nothing else.
TEST(Channel, CleanRemovesOnlyDeadChannels)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string dead = unique_name("dead");
    const std::string live = unique_name("live");
    Pipe up;
    Child doomed([&] {
        ProducerOptions o = small_options(3, 8192);
        auto p = Producer::create(dead, o);
        if (!p.ok())
            return child_fail(10, "create", p);
        if (!publish_pattern(**p, 0, 10).ok())
            return 11;
        up.send('C');
        std::this_thread::sleep_for(3 * kLong);
        return 12;
    });
    ASSERT_TRUE(doomed.started());
    ASSERT_TRUE(up.expect('C'));
    doomed.kill(SIGKILL);
    EXPECT_TRUE(was_killed(doomed.wait()));

    ProducerOptions o = small_options(5, 4096);
    CREATE_PRODUCER(producer, live, o);
    EXPECT_TRUE(HasError(inspect_channel(unique_name("absent")), Errc::NotFound));

    auto d = inspect_channel(dead);
    ASSERT_TRUE(IsOk(d));
    EXPECT_EQ(d->name, dead);
    EXPECT_FALSE(d->producer_alive) << "a dead producer's name is reported as dead";

    auto l = inspect_channel(live);
    ASSERT_TRUE(IsOk(l));
    EXPECT_TRUE(l->producer_alive);
    EXPECT_EQ(l->producer_pid, getpid());
    EXPECT_EQ(l->slot_count, 5u);
    EXPECT_EQ(l->max_consumers, o.max_consumers);
    EXPECT_GE(l->segment_bytes, 5u * 4096u);
    EXPECT_EQ(l->epoch, producer->epoch());

    auto listed = list_channels();
    ASSERT_TRUE(IsOk(listed));
    EXPECT_TRUE(listed->problems.empty()) << ::testing::PrintToString(listed->problems);
    std::vector<std::string> names;
    for (const auto &c : listed->channels)
        names.push_back(c.name);
    std::sort(names.begin(), names.end());
    std::vector<std::string> both{dead, live};
    std::sort(both.begin(), both.end());
    EXPECT_EQ(names, both);

    auto removed = clean_channels();
    ASSERT_TRUE(IsOk(removed));
    EXPECT_EQ(*removed, std::vector<std::string>{dead});
    EXPECT_TRUE(HasError(inspect_channel(dead), Errc::NotFound));
    auto still = inspect_channel(live);
    ASSERT_TRUE(IsOk(still));
    EXPECT_TRUE(still->producer_alive);
    EXPECT_EQ(dir.files().size(), 1u) << ::testing::PrintToString(dir.files());

    // Nothing dead is left: a second clean removes nothing.
    auto again = clean_channels();
    ASSERT_TRUE(IsOk(again));
    EXPECT_TRUE(again->empty());
}

// ---------------------------------------------------------------- producer API checks

// Producer::create refuses bad geometry with InvalidArgument.
TEST(Channel, CreateRejectsBadOptions)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    ProducerOptions o = small_options();
    o.slot_size = 0;
    EXPECT_TRUE(HasError(Producer::create(unique_name("opt"), o), Errc::InvalidArgument));
    o = small_options(1);
    EXPECT_TRUE(HasError(Producer::create(unique_name("opt"), o), Errc::InvalidArgument));
    o = small_options();
    o.max_consumers = 0;
    EXPECT_TRUE(HasError(Producer::create(unique_name("opt"), o), Errc::InvalidArgument));
    EXPECT_TRUE(dir.files().empty());
}

// publish() refuses what is not an acquired slot or does not fit it.
TEST(Channel, PublishRefusesBadSlotsAndSizes)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    ProducerOptions o = small_options(4, 4096);
    CREATE_PRODUCER(producer, unique_name("pub"), o);
    auto slot = producer->acquire(kLong);
    ASSERT_TRUE(IsOk(slot));
    EXPECT_GE(slot->capacity, 4096u);
    EXPECT_EQ(slot->data, producer->slot_data(slot->index));

    FrameInfo info;
    info.size = slot->capacity + 1;
    EXPECT_TRUE(HasError(producer->publish(*slot, info), Errc::InvalidArgument)) << "too large";
    std::vector<std::byte> meta(o.meta_capacity + 1);
    info.size = 10;
    EXPECT_TRUE(HasError(producer->publish(*slot, info, meta), Errc::InvalidArgument))
        << "meta too large";
    EXPECT_TRUE(IsOk(producer->publish(*slot, info))) << "the slot is still ours";
    EXPECT_TRUE(HasError(producer->publish(*slot, info), Errc::InvalidArgument))
        << "a second publish of one handle";
    WriteSlot bogus;
    EXPECT_TRUE(HasError(producer->publish(bogus, info), Errc::InvalidArgument));
    producer->discard(bogus); // ignored
    EXPECT_EQ(producer->published(), 1u);
}

} // namespace

// While a lossless consumer holds the producer back, inspect_channel tells
// who: the consumer's held slots, its last release, how long the producer
// has waited on it, and the producer's own waiting figures; PIDs in the
// caller's namespace are its own.
TEST(Channel, InspectShowsWhoHoldsTheProducerBack)
{
    const std::string name = unique_name("waits");
    ProducerOptions o = small_options(2);
    o.max_wait = 0ns; // wait as long as the consumer holds on
    CREATE_PRODUCER(producer, name, o);
    auto attached = Consumer::attach(name, {}, kLong);
    ASSERT_TRUE(IsOk(attached));
    auto consumer = std::move(attached).value();
    ASSERT_TRUE(IsOk(publish_pattern(*producer, 0, 64)));
    ASSERT_TRUE(IsOk(publish_pattern(*producer, 1, 64)));
    auto held = consumer->next(kLong);
    ASSERT_TRUE(IsOk(held));

    // Frame 0 is held, frame 1 unread: the next acquire waits for us.
    Result<WriteSlot> acquired = make_error(Errc::Timeout, "not yet");
    std::thread writer([&] { acquired = producer->acquire(kLong); });
    std::optional<ChannelInfo> seen;
    for (auto until = std::chrono::steady_clock::now() + kLong;
         std::chrono::steady_clock::now() < until;) {
        auto i = inspect_channel(name);
        ASSERT_TRUE(IsOk(i));
        if (i->producer_waiting_ns > 0) {
            seen = std::move(i.value());
            break;
        }
        std::this_thread::sleep_for(1ms);
    }
    held = make_error(Errc::Timeout, "released"); // gives the frame back
    writer.join();
    ASSERT_TRUE(IsOk(acquired));
    producer->discard(*acquired);

    ASSERT_TRUE(seen.has_value()) << "the producer never showed as waiting";
    EXPECT_EQ(seen->producer_local_pid, getpid());
    EXPECT_FALSE(seen->producer_other_pid_namespace);
    ASSERT_EQ(seen->consumers.size(), 1u);
    const ConsumerInfo &c = seen->consumers[0];
    EXPECT_EQ(c.pid, getpid());
    EXPECT_EQ(c.local_pid, getpid()) << "the kernel's view of the consumer's process";
    EXPECT_FALSE(c.other_pid_namespace);
    EXPECT_EQ(c.held, 1u);
    EXPECT_EQ(seen->published - c.cursor, 1u) << "it has not read frame 1";
    EXPECT_GT(c.blocking_ns, 0u) << "the producer waits on the slot it holds";
    EXPECT_GT(seen->producer_waited_ns, 0u);

    auto after = inspect_channel(name);
    ASSERT_TRUE(IsOk(after));
    EXPECT_EQ(after->producer_waiting_ns, 0u) << "the wait is over";
    EXPECT_GE(after->producer_waited_ns, seen->producer_waiting_ns);
    ASSERT_EQ(after->consumers.size(), 1u);
    EXPECT_EQ(after->consumers[0].blocking_ns, 0u);
    EXPECT_EQ(after->consumers[0].held, 0u);
}

// A program that keeps frames cannot take every slot: past max_held,
// next() refuses with TooManyHeld (nothing is taken) until it releases one.
TEST(Channel, HoldLimitRefusesOneFrameTooMany)
{
    EXPECT_EQ(default_max_held(2), 1u);
    EXPECT_EQ(default_max_held(6), 1u);
    EXPECT_EQ(default_max_held(8), 2u);
    EXPECT_EQ(default_max_held(1024), 340u);

    const std::string name = unique_name("held");
    CREATE_PRODUCER(producer, name, small_options(8));
    auto by_default = Consumer::attach(name, {}, kLong);
    ConsumerOptions unlimited;
    unlimited.max_held = kUnlimitedHeld;
    auto keeps_all = Consumer::attach(name, unlimited, kLong);
    ASSERT_TRUE(IsOk(by_default));
    ASSERT_TRUE(IsOk(keeps_all));
    for (uint64_t i = 0; i < 4; ++i)
        ASSERT_TRUE(IsOk(publish_pattern(*producer, i, 64)));

    std::vector<Frame> kept;
    for (int i = 0; i < 2; ++i) {
        auto f = by_default.value()->next(kLong);
        ASSERT_TRUE(IsOk(f));
        kept.push_back(std::move(f).value());
    }
    auto refused = by_default.value()->next(kLong);
    ASSERT_TRUE(HasError(refused, Errc::TooManyHeld));
    EXPECT_NE(refused.error().message.find("already holds 2 frames"), std::string::npos)
        << refused.error().message;
    kept.front().release();
    auto third = by_default.value()->next(kLong);
    ASSERT_TRUE(IsOk(third));
    EXPECT_EQ(third->sequence(), 2u) << "the refusal took nothing";

    // On a small ring a program still gets 2: enough to keep the previous
    // frame while reading the next (`frame = next()` in a loop).
    const std::string small = unique_name("held-small");
    CREATE_PRODUCER(small_producer, small, small_options(4));
    auto reader = Consumer::attach(small, {}, kLong);
    ASSERT_TRUE(IsOk(reader));
    for (uint64_t i = 0; i < 3; ++i)
        ASSERT_TRUE(IsOk(publish_pattern(*small_producer, i, 64)));
    Frame previous;
    for (uint64_t i = 0; i < 3; ++i) {
        auto f = reader.value()->next(kLong);
        ASSERT_TRUE(IsOk(f)) << "frame " << i;
        previous = std::move(f).value();
    }

    std::vector<Frame> all;
    for (int i = 0; i < 4; ++i) {
        auto f = keeps_all.value()->next(kLong);
        ASSERT_TRUE(IsOk(f)) << "frame " << i;
        all.push_back(std::move(f).value());
    }
}

// ---------------------------------------------------------------- frame timing

// next_due() is the consumer's one estimate of the next frame's arrival:
// unknown until two frames came, then the last arrival plus the smoothed
// interval; reattach() forgets it, and a consumer without anticipate never
// keeps one.
TEST(Channel, NextDueFollowsThePaceUntilReattach)
{
    const std::string name = unique_name("due");
    auto producer_created = Producer::create(name, small_options(4));
    ASSERT_TRUE(IsOk(producer_created));
    auto producer = std::move(producer_created).value();
    ConsumerOptions anticipating;
    anticipating.anticipate = 1ms;
    auto timed = Consumer::attach(name, anticipating, kLong);
    auto untimed = Consumer::attach(name, {}, kLong);
    ASSERT_TRUE(IsOk(timed));
    ASSERT_TRUE(IsOk(untimed));
    auto &consumer = *timed.value();
    EXPECT_FALSE(consumer.next_due()) << "no frame yet";

    // One thread publishes then reads, so each arrival lies between the
    // clock readings around next(), and arrivals are at least kPace apart.
    constexpr auto kPace = 20ms;
    for (uint64_t i = 0; i < 6; ++i) {
        if (i > 0)
            std::this_thread::sleep_for(kPace);
        ASSERT_TRUE(IsOk(publish_pattern(*producer, i, 64)));
        const auto before = std::chrono::steady_clock::now();
        auto f = consumer.next(kLong);
        const auto after = std::chrono::steady_clock::now();
        ASSERT_TRUE(IsOk(f)) << "frame " << i;
        ASSERT_TRUE(IsOk(untimed.value()->next(kLong))) << "frame " << i;
        EXPECT_FALSE(untimed.value()->next_due()) << "without anticipate, frame " << i;
        const auto due = consumer.next_due();
        if (i == 0) {
            EXPECT_FALSE(due) << "one arrival gives no interval";
            continue;
        }
        ASSERT_TRUE(due) << "frame " << i;
        EXPECT_GE(*due, before + kPace) << "frame " << i;
        // Generous: a loaded machine oversleeps, which lengthens the interval.
        EXPECT_LE(*due, after + 10 * kPace) << "frame " << i;
    }

    // A new producer on the name may keep another pace.
    producer.reset();
    EXPECT_TRUE(HasError(consumer.next(kLong), Errc::ProducerGone));
    EXPECT_TRUE(consumer.next_due()) << "the pace is kept until reattach()";
    auto again = Producer::create(name, small_options(4));
    ASSERT_TRUE(IsOk(again));
    ASSERT_TRUE(IsOk(consumer.reattach(kLong)));
    EXPECT_FALSE(consumer.next_due()) << "reattach() forgets the old producer's pace";
    ASSERT_TRUE(IsOk(publish_pattern(*again.value(), 0, 64)));
    ASSERT_TRUE(IsOk(consumer.next(kLong)));
    EXPECT_FALSE(consumer.next_due()) << "one frame of the new producer gives no interval";
    std::this_thread::sleep_for(kPace);
    ASSERT_TRUE(IsOk(publish_pattern(*again.value(), 1, 64)));
    ASSERT_TRUE(IsOk(consumer.next(kLong)));
    EXPECT_TRUE(consumer.next_due());
}
