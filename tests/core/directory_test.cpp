// SPDX-License-Identifier: LGPL-2.1-or-later
// The channel directory is hostile ground: FIFOs, symbolic links, folders,
// other users' files and planted temporary names under channel names give
// clear errors and never a hang; `clean` never removes a live channel, even
// while producers take dead channels over.

#include "helpers.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <fstream>
#include <thread>

namespace {

using namespace bips;
using namespace bips_test;
using namespace std::chrono_literals;

// Everything a user can do with a name must fail promptly with `code` and
// a message that names what is there.
void expect_refused_everywhere(const std::string &name, Errc code, std::string_view what)
{
    const auto start = std::chrono::steady_clock::now();
    auto created = Producer::create(name, small_options());
    EXPECT_TRUE(HasError(created, code));
    EXPECT_TRUE(ErrorMentions(created, what));
    auto attached = Consumer::attach(name, {}, 300ms);
    EXPECT_TRUE(HasError(attached, code));
    EXPECT_TRUE(ErrorMentions(attached, what));
    auto seen = inspect_channel(name);
    EXPECT_TRUE(HasError(seen, code));
    auto listed = list_channels();
    ASSERT_TRUE(IsOk(listed));
    EXPECT_TRUE(std::any_of(listed->problems.begin(), listed->problems.end(),
                            [&](const std::string &p) {
                                return p.rfind(name, 0) == 0 && p.find(what) != std::string::npos;
                            }))
        << ::testing::PrintToString(listed->problems);
    auto removed = clean_channels();
    ASSERT_TRUE(IsOk(removed));
    EXPECT_TRUE(removed->empty()) << "clean removes only dead bips sockets";
    EXPECT_LT(std::chrono::steady_clock::now() - start, kLong) << "nothing may hang";
}

TEST(Directory, FifoUnderAChannelNameIsReportedNotOpened)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("fifo");
    ASSERT_EQ(mkfifo(channel_path(name).c_str(), 0644), 0);
    expect_refused_everywhere(name, Errc::Corrupt, "a FIFO owned by uid");
}

TEST(Directory, SymlinkUnderAChannelNameIsNotFollowed)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string target = unique_name("target");
    CREATE_PRODUCER(live, target, small_options());
    const std::string name = unique_name("link");
    ASSERT_EQ(symlink(channel_path(target).c_str(), channel_path(name).c_str()), 0);
    expect_refused_everywhere(name, Errc::Corrupt, "a symbolic link");
    auto still = inspect_channel(target);
    ASSERT_TRUE(IsOk(still));
    EXPECT_TRUE(still->producer_alive);
}

TEST(Directory, FolderAndFileUnderAChannelName)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string folder = unique_name("dir");
    ASSERT_EQ(mkdir(channel_path(folder).c_str(), 0755), 0);
    expect_refused_everywhere(folder, Errc::Corrupt, "a directory");
    rmdir(channel_path(folder).c_str());

    const std::string file = unique_name("file");
    std::ofstream(channel_path(file)) << "not a channel";
    expect_refused_everywhere(file, Errc::Corrupt, "a regular file");
}

// A file another user planted under the name: the error says whose it is.
TEST(Directory, AnotherUsersFileNamesItsOwner)
{
    if (geteuid() != 0)
        GTEST_SKIP() << "needs root to create a file owned by another user";
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("squat");
    std::ofstream(channel_path(name)) << "mine";
    ASSERT_EQ(chown(channel_path(name).c_str(), 65534, 65534), 0);
    expect_refused_everywhere(name, Errc::Corrupt, "owned by uid 65534");
}

// A listening stream socket of some other program under the name.
TEST(Directory, ForeignSocketIsNotMistakenForAProducer)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("foreign");
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = channel_path(name);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(bind(s, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(listen(s, 4), 0);
    auto created = Producer::create(name, small_options());
    EXPECT_TRUE(HasError(created, Errc::Corrupt));
    EXPECT_TRUE(ErrorMentions(created, "socket of another kind"));
    auto attached = Consumer::attach(name, {}, 300ms);
    EXPECT_TRUE(HasError(attached, Errc::Corrupt));
    close(s);
}

// Temporary names planted in advance (the old predictable pattern and a
// pile of random-looking ones) do not stop a producer.
TEST(Directory, PlantedTemporaryNamesDoNotBlockProducers)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    for (int pid = getpid() - 2; pid <= getpid() + 2; ++pid)
        for (int n = 0; n < 64; ++n)
            std::ofstream(dir.path() + "/.bips-tmp-" + std::to_string(pid) + "-" +
                          std::to_string(n))
                << "x";
    for (int n = 0; n < 64; ++n)
        symlink("/nonexistent", (dir.path() + "/.bips-tmp-" + std::to_string(n)).c_str());
    for (int i = 0; i < 4; ++i) {
        auto created = Producer::create(unique_name("planted"), small_options());
        EXPECT_TRUE(IsOk(created));
    }
    auto removed = clean_channels();
    ASSERT_TRUE(IsOk(removed));
    EXPECT_TRUE(removed->empty()) << "planted regular files and links are not ours to remove";
}

// `clean` racing producers that take dead channels over: it removes dead
// names, and never the live one.
TEST(Directory, CleanRacingTakeoverNeverRemovesALiveChannel)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("race");
    constexpr int kRounds = 40;
    int live_lost = 0, takeovers = 0;
    for (int round = 0; round < kRounds; ++round) {
        // A producer that dies and leaves its name behind.
        Pipe up;
        Child doomed([&] {
            auto p = Producer::create(name, small_options());
            if (!p.ok())
                return child_fail(10, "create", p);
            up.send('C');
            std::this_thread::sleep_for(3 * kLong);
            return 11;
        });
        ASSERT_TRUE(doomed.started());
        ASSERT_TRUE(up.expect('C'));
        doomed.kill(SIGKILL);
        ASSERT_TRUE(was_killed(doomed.wait()));

        std::atomic<bool> go{false};
        std::thread cleaner([&] {
            while (!go.load())
                std::this_thread::yield();
            for (int i = 0; i < 20; ++i)
                (void)clean_channels();
        });
        go.store(true);
        auto created = Producer::create(name, small_options());
        cleaner.join();
        if (!created.ok())
            ADD_FAILURE() << "round " << round << ": " << created.error().message;
        if (created.ok()) {
            ++takeovers;
            auto seen = inspect_channel(name);
            if (!seen.ok() || !seen->producer_alive)
                ++live_lost;
        }
    }
    EXPECT_EQ(live_lost, 0) << "clean removed a live channel";
    EXPECT_EQ(takeovers, kRounds) << "every takeover of a dead name succeeds";
}

} // namespace
