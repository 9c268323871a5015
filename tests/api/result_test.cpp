// SPDX-License-Identifier: LGPL-2.1-or-later
// Misusing a bips::Result never throws: reading the value of an error (or the
// error of a value) prints what went wrong to stderr and aborts. Linked
// against the public libbips only, as a user's program is.
#include <bips/bips.h>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

namespace {

using namespace std::chrono_literals;

bips::Result<std::string> busy()
{
    return bips::make_error(bips::Errc::Busy, "channel 'cam0' is owned by process 42");
}

// Whether this test program can be executed again, as a threadsafe death
// test does: the errno of execv() in a child, 0 when it worked. Under
// qemu-user (an aarch64 build run by qemu-aarch64 on x86-64 without
// binfmt_misc) the kernel refuses the aarch64 program with ENOEXEC.
int reexec_errno()
{
    const pid_t pid = fork();
    if (pid < 0)
        return 0; // let the death test itself report the trouble
    if (pid == 0) {
        const int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        char exe[] = "/proc/self/exe", list[] = "--gtest_list_tests", none[] = "--gtest_filter=-*";
        char *argv[] = {exe, list, none, nullptr};
        execv(exe, argv);
        _exit(errno == ENOEXEC ? 100 : 101);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 100 ? ENOEXEC : 0;
}

// What the abort message must say: the code's name and the message.
constexpr const char *kBusyMessage =
    "bips: Result holds an error, not a value: busy: channel 'cam0' is owned by process 42";

TEST(Result, ValueAccessorsOfASuccess)
{
    bips::Result<std::string> r(std::string("frame"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value(), "frame");
    EXPECT_EQ(*r, "frame");
    EXPECT_EQ(r->size(), 5u);
    const auto &c = r;
    EXPECT_EQ(c.value(), "frame");
    EXPECT_EQ(*c, "frame");
    EXPECT_EQ(c->size(), 5u);
    EXPECT_EQ(std::move(r).value(), "frame");

    auto e = busy();
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.code(), bips::Errc::Busy);
    EXPECT_EQ(e.error().message, "channel 'cam0' is owned by process 42");
    bips::Result<void> v = bips::make_error(bips::Errc::Timeout, "no frame within 1 s");
    EXPECT_EQ(v.code(), bips::Errc::Timeout);
}

TEST(ResultDeathTest, ValueOfAnErrorAbortsNamingTheError)
{
    auto r = busy();
    EXPECT_DEATH((void)r.value(), kBusyMessage);
    EXPECT_DEATH((void)*r, kBusyMessage);
    EXPECT_DEATH((void)r->size(), kBusyMessage);
    EXPECT_DEATH((void)std::as_const(r).value(), kBusyMessage);
    EXPECT_DEATH((void)*std::as_const(r), kBusyMessage);
    EXPECT_DEATH((void)std::as_const(r)->size(), kBusyMessage);
    EXPECT_DEATH((void)std::move(r).value(), kBusyMessage);
    // ... and says what to do instead.
    EXPECT_DEATH((void)r.value(), "check ok\\(\\)");
}

TEST(ResultDeathTest, ErrorOfASuccessAborts)
{
    bips::Result<int> r(7);
    EXPECT_DEATH((void)r.error(), "bips: Result holds a value, not an error");
    EXPECT_DEATH((void)r.code(), "bips: Result holds a value, not an error");
    bips::Result<void> v;
    EXPECT_DEATH((void)v.error(), "bips: Result holds a value, not an error");
    EXPECT_DEATH((void)v.code(), "bips: Result holds a value, not an error");
}

// The README's producer lines without their checks, on a channel that
// already has a producer: the message names the error, no exception.
TEST(ResultDeathTest, UncheckedCreateOnABusyChannel)
{
    if (reexec_errno() == ENOEXEC)
        GTEST_SKIP() << "qemu-user limitation: execv() of this aarch64 test program fails with "
                        "ENOEXEC (no binfmt_misc handler), and a threadsafe death test executes "
                        "the program again";
    GTEST_FLAG_SET(death_test_style, "threadsafe"); // a Producer runs a thread
    char dir[] = "/tmp/bips-result-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    setenv("BIPS_DIR", dir, 1);
    // A fixed name in a private folder: the threadsafe death test runs this
    // test again in a new process, which makes its own folder and producer.
    const std::string name = "cam0";

    bips::ProducerOptions opts;
    opts.slot_size = 4096;
    {
        auto first = bips::Producer::create(name, opts);
        ASSERT_TRUE(first.ok()) << first.error().message;
        EXPECT_DEATH(
            {
                auto producer = bips::Producer::create(name, opts);
                auto slot = (*producer)->acquire(100ms);
                (void)slot;
            },
            "bips: Result holds an error, not a value: busy: channel .cam0.");
    }
    unsetenv("BIPS_DIR");
    rmdir(dir);
}

} // namespace
