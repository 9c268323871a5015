// SPDX-License-Identifier: LGPL-2.1-or-later
// Channel name validation, segment paths and error/policy names.

#include "helpers.h"

#include <initializer_list>
#include <set>

namespace {

using namespace bips;
using bips_test::HasError;
using bips_test::IsOk;

// Checks that `name` is refused with InvalidName, that the message names
// the problem (contains one of `mentions`, if any are given) and that it
// holds no control bytes (a NUL or newline of the name is not echoed raw).
void expect_bad(std::string_view name, std::initializer_list<std::string_view> mentions,
                const char *what)
{
    auto r = validate_channel_name(name);
    ASSERT_TRUE(HasError(r, Errc::InvalidName)) << what;
    const std::string &msg = r.error().message;
    if (mentions.size() > 0) {
        bool named = false;
        for (auto m : mentions)
            named = named || msg.find(m) != std::string::npos;
        EXPECT_TRUE(named) << what << ": the message does not name the problem: " << msg;
    }
    for (char c : msg)
        EXPECT_GE(static_cast<unsigned char>(c), 0x20) << what << ": control byte in " << msg;
}

TEST(ChannelName, BadNamesAreRefusedWithAMessage)
{
    expect_bad("", {"empty"}, "empty");
    expect_bad(std::string(201, 'a'), {"201"}, "201 characters (the limit is 200)");
    expect_bad("cam/0", {"'/'", "\"/\""}, "slash");
    expect_bad("../etc", {"'.'", "'/'"}, "path traversal");
    expect_bad("cam 0", {"0x20", "' '", "space"}, "space");
    expect_bad(" cam", {"0x20", "' '", "space"}, "leading space");
    expect_bad(".hidden", {"'.'", "dot"}, "leading dot");
    expect_bad(".", {"'.'", "dot"}, "a lone dot");
    expect_bad("..", {"'.'", "dot"}, "dot dot");
    expect_bad(std::string_view("cam\0x", 5), {"0x00", "NUL", "\\0"}, "embedded NUL");
    expect_bad("cam\xc3\xa9", {"0xc3", "0xC3", "ASCII"}, "non-ASCII (UTF-8 e-acute)");
    expect_bad("cam\x7f", {"0x7f", "0x7F", "DEL"}, "DEL");
    expect_bad("cam\n", {"0x0a", "0x0A", "newline"}, "newline");
    expect_bad("cam*", {"'*'", "\"*\""}, "star");
    expect_bad("cam:0", {"':'", "\":\""}, "colon");
}

TEST(ChannelName, GoodNamesPass)
{
    for (std::string name : {"cam0", "a", "Z", "0", "-", "_", "cam.0", "a.b.c",
                             "front-left_cam.v2", "-starts-with-dash", "_x", "a..b",
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"})
        EXPECT_TRUE(IsOk(validate_channel_name(name))) << name;
    EXPECT_TRUE(IsOk(validate_channel_name(std::string(200, 'x')))) << "200 characters";
}

// The producer and the consumer refuse bad names before touching the file
// system (the consumer does not wait for its timeout first).
TEST(ChannelName, ProducerAndConsumerRefuseBadNames)
{
    ProducerOptions o = bips_test::small_options();
    for (std::string name : {std::string(), std::string("a/b"), std::string(".x"),
                             std::string(".."), std::string(201, 'n'), std::string("sp ace")}) {
        EXPECT_TRUE(HasError(Producer::create(name, o), Errc::InvalidName)) << '"' << name << '"';
        EXPECT_TRUE(HasError(Consumer::attach(name, {}, std::chrono::seconds(60)),
                             Errc::InvalidName))
            << '"' << name << '"';
        // inspect_channel documents no InvalidName, but must never read
        // outside the folder (".." is the folder's parent).
        EXPECT_FALSE(inspect_channel(name).ok()) << '"' << name << '"';
    }
}

// channel_path puts a channel in channel_directory(), which follows
// BIPS_DIR and defaults to /dev/shm.
TEST(ChannelName, ChannelPathFollowsChannelDirectory)
{
    {
        bips_test::ChannelDir dir;
        ASSERT_TRUE(dir.ok());
        EXPECT_EQ(channel_directory(), dir.path());
        std::string p = channel_path("cam0");
        EXPECT_EQ(p.rfind(dir.path() + "/", 0), 0u) << p;
        EXPECT_NE(p.find("cam0"), std::string::npos) << p;
        EXPECT_EQ(p.find('/', dir.path().size() + 1), std::string::npos)
            << "the socket is directly in the folder: " << p;
    }
    if (getenv("BIPS_DIR") == nullptr) {
        EXPECT_EQ(channel_directory(), "/dev/shm");
        EXPECT_EQ(channel_path("cam0").rfind("/dev/shm/", 0), 0u);
    }
}

// Every error code and policy has a distinct, non-empty name.
TEST(ChannelName, ErrorAndPolicyNames)
{
    std::set<std::string> seen;
    for (int c = int(Errc::InvalidArgument); c <= int(Errc::System); ++c) {
        const char *n = errc_name(Errc(c));
        ASSERT_NE(n, nullptr) << c;
        EXPECT_NE(std::string(n), "") << c;
        EXPECT_TRUE(seen.insert(n).second) << "duplicate name " << n;
    }
    EXPECT_STREQ(errc_name(Errc::NoSpace), "no-space");
    EXPECT_STRNE(policy_name(Policy::Lossless), policy_name(Policy::Latest));
}

} // namespace
