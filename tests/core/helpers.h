// SPDX-License-Identifier: LGPL-2.1-or-later
// Shared helpers of the core tests: unique names, private shm folders,
// forked children, result assertions and a per-frame byte pattern.
#pragma once

#include <bips/bips.h>

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace bips {
// Lets gtest print error codes by name in EXPECT_EQ failures.
inline void PrintTo(Errc code, std::ostream *os) { *os << errc_name(code); }
inline void PrintTo(Policy policy, std::ostream *os) { *os << policy_name(policy); }
} // namespace bips

namespace bips_test {

using namespace std::chrono_literals;

// Generous bound for anything that should happen "soon": a bug fails the
// test after this instead of hanging it; nothing asserts on speed.
inline constexpr std::chrono::seconds kLong{20};

// A channel name no other test (in this or another process) uses.
inline std::string unique_name(std::string_view tag)
{
    static std::atomic<unsigned> counter{0};
    return "bt-" + std::string(tag) + "-" + std::to_string(getpid()) + "-" +
           std::to_string(counter.fetch_add(1));
}

// EXPECT_TRUE(IsOk(result)) prints the error code and message on failure.
template <typename R>
::testing::AssertionResult IsOk(const R &r)
{
    if (r.ok())
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "error " << bips::errc_name(r.code()) << ": " << r.error().message;
}

// EXPECT_TRUE(HasError(result, Errc::X)): fails on success, on another
// code, or on an empty message (every error must explain itself).
template <typename R>
::testing::AssertionResult HasError(const R &r, bips::Errc code)
{
    if (r.ok())
        return ::testing::AssertionFailure()
               << "succeeded, expected error " << bips::errc_name(code);
    if (r.code() != code)
        return ::testing::AssertionFailure()
               << "error " << bips::errc_name(r.code()) << " (" << r.error().message
               << "), expected " << bips::errc_name(code);
    if (r.error().message.empty())
        return ::testing::AssertionFailure()
               << "error " << bips::errc_name(code) << " has an empty message";
    return ::testing::AssertionSuccess();
}

// EXPECT_TRUE(ErrorMentions(result, text)): the result failed and its
// message contains `text` (the channel name, a size, a character).
template <typename R>
::testing::AssertionResult ErrorMentions(const R &r, std::string_view text)
{
    if (r.ok())
        return ::testing::AssertionFailure() << "succeeded, expected an error";
    if (r.error().message.find(text) == std::string::npos)
        return ::testing::AssertionFailure()
               << "the message should mention \"" << text << "\": " << r.error().message;
    return ::testing::AssertionSuccess();
}

// Polls `pred` every few milliseconds for up to `bound`.
inline bool wait_until(const std::function<bool()> &pred,
                       std::chrono::milliseconds bound = kLong)
{
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

// Names of the entries of a folder (no "." or "..").
inline std::vector<std::string> folder_entries(const std::string &path)
{
    std::vector<std::string> out;
    if (DIR *d = opendir(path.c_str())) {
        while (const dirent *e = readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != "..")
                out.push_back(n);
        }
        closedir(d);
    }
    return out;
}

// Points BIPS_DIR at `dir` for this process and the children it
// forks, and restores the previous value when the scope ends.
class ChannelDirOverride {
public:
    explicit ChannelDirOverride(const std::string &dir)
    {
        if (const char *old = getenv("BIPS_DIR"))
            old_ = old;
        setenv("BIPS_DIR", dir.c_str(), 1);
    }
    ~ChannelDirOverride()
    {
        if (old_)
            setenv("BIPS_DIR", old_->c_str(), 1);
        else
            unsetenv("BIPS_DIR");
    }
    ChannelDirOverride(const ChannelDirOverride &) = delete;
    ChannelDirOverride &operator=(const ChannelDirOverride &) = delete;

private:
    std::optional<std::string> old_;
};

// A private channel folder (a fresh directory under /dev/shm) used as
// BIPS_DIR. Tests that leave dead producers behind or call
// clean_channels() use one, so they never touch other tests' channels.
// Removes its files on destruction.
class ChannelDir {
public:
    ChannelDir() : path_(make_folder()), env_(path_) {}
    ~ChannelDir()
    {
        if (path_.empty())
            return;
        for (const auto &f : files())
            unlink((path_ + "/" + f).c_str());
        rmdir(path_.c_str());
    }
    ChannelDir(const ChannelDir &) = delete;
    ChannelDir &operator=(const ChannelDir &) = delete;

    bool ok() const { return !path_.empty(); }
    const std::string &path() const { return path_; }

    // Names of the entries of the folder.
    std::vector<std::string> files() const { return folder_entries(path_); }

private:
    static std::string make_folder()
    {
        char tmpl[] = "/dev/shm/test-bips-XXXXXX";
        return mkdtemp(tmpl) != nullptr ? tmpl : "";
    }

    std::string path_;
    ChannelDirOverride env_;
};

// A pipe used to hand single bytes between a parent and a forked child.
class Pipe {
public:
    Pipe()
    {
        int fds[2];
        if (pipe(fds) == 0) {
            r_ = fds[0];
            w_ = fds[1];
        }
    }
    ~Pipe()
    {
        if (r_ >= 0)
            close(r_);
        if (w_ >= 0)
            close(w_);
    }
    Pipe(const Pipe &) = delete;
    Pipe &operator=(const Pipe &) = delete;

    bool send(const void *data, size_t len) const
    {
        return write(w_, data, len) == static_cast<ssize_t>(len);
    }
    bool send(char c) const { return send(&c, 1); }

    // Reads exactly `len` bytes, waiting up to `bound` in all.
    bool receive(void *data, size_t len,
                 std::chrono::milliseconds bound = kLong) const
    {
        const auto deadline = std::chrono::steady_clock::now() + bound;
        auto *p = static_cast<char *>(data);
        while (len > 0) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                return false;
            pollfd pfd{r_, POLLIN, 0};
            int n = poll(&pfd, 1, static_cast<int>(left.count()));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return false;
            ssize_t got = read(r_, p, len);
            if (got <= 0)
                return false;
            p += got;
            len -= static_cast<size_t>(got);
        }
        return true;
    }
    // Waits for one byte and checks it is `expected`.
    bool expect(char expected, std::chrono::milliseconds bound = kLong) const
    {
        char c = 0;
        return receive(&c, 1, bound) && c == expected;
    }

private:
    int r_ = -1;
    int w_ = -1;
};

// How a child ended.
struct ChildEnd {
    bool exited = false;   // normal exit with `status`
    bool signaled = false; // killed by signal `status`
    bool hung = false;     // still running after the bound (then killed)
    int status = -1;
};

inline std::ostream &operator<<(std::ostream &os, const ChildEnd &e)
{
    if (e.hung)
        return os << "child still running after the bound (killed)";
    if (e.signaled)
        return os << "child killed by signal " << e.status;
    if (e.exited)
        return os << "child exited with " << e.status;
    return os << "child not reaped";
}

// A forked child running `body`; its exit status is body's return value.
// The child never returns into gtest (it leaves with _exit, skipping the
// parent's destructors and atexit handlers). Fork before creating library
// objects in the parent, so the child inherits no producer or consumer.
// A child not reaped by wait() is SIGKILLed and reaped on destruction, so
// a failed assertion in the parent leaves no process behind.
class Child {
public:
    explicit Child(const std::function<int()> &body)
    {
        fflush(nullptr);
        pid_ = fork();
        if (pid_ == 0) {
            int code = body();
            fflush(nullptr);
            _exit(code);
        }
    }
    ~Child()
    {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    Child(const Child &) = delete;
    Child &operator=(const Child &) = delete;

    bool started() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }
    void kill(int sig) const { ::kill(pid_, sig); }

    // Reaps the child, waiting up to `bound`; a hung child is SIGKILLed.
    ChildEnd wait(std::chrono::milliseconds bound = kLong)
    {
        ChildEnd end;
        if (pid_ <= 0 || reaped_)
            return end;
        int st = 0;
        const auto deadline = std::chrono::steady_clock::now() + bound;
        for (;;) {
            pid_t r = waitpid(pid_, &st, WNOHANG);
            if (r == pid_)
                break;
            if (r < 0 && errno != EINTR)
                return end;
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(pid_, SIGKILL);
                waitpid(pid_, &st, 0);
                reaped_ = true;
                end.hung = true;
                return end;
            }
            std::this_thread::sleep_for(2ms);
        }
        reaped_ = true;
        if (WIFEXITED(st)) {
            end.exited = true;
            end.status = WEXITSTATUS(st);
        } else if (WIFSIGNALED(st)) {
            end.signaled = true;
            end.status = WTERMSIG(st);
        }
        return end;
    }

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
};

// In a child: prints why it fails (to the test log) and returns `code`.
inline int child_fail(int code, const std::string &why)
{
    fprintf(stderr, "child %d: %s\n", int(getpid()), why.c_str());
    return code;
}

// The same for a failed Result.
template <typename R>
int child_fail(int code, const std::string &what, const R &r)
{
    if (r.ok())
        return child_fail(code, what + ": unexpected success");
    return child_fail(code, what + ": " + bips::errc_name(r.code()) + ": " + r.error().message);
}

inline bool exited_ok(const ChildEnd &e) { return e.exited && e.status == 0; }
inline bool was_killed(const ChildEnd &e) { return e.signaled && e.status == SIGKILL; }

// The byte pattern of frame `seq`: 64-bit words of a mixing function, so
// every byte depends on both the sequence and its position.
inline uint64_t pattern_word(uint64_t seq, uint64_t word)
{
    uint64_t x = seq * 0x9e3779b97f4a7c15ull + word + 1;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

inline void fill_pattern(std::byte *p, uint64_t len, uint64_t seq)
{
    for (uint64_t off = 0, w = 0; off < len; off += 8, ++w) {
        uint64_t v = pattern_word(seq, w);
        std::memcpy(p + off, &v, len - off < 8 ? len - off : 8);
    }
}

// Offset of the first byte that differs from the pattern, or len if none.
inline uint64_t check_pattern(const std::byte *p, uint64_t len, uint64_t seq)
{
    for (uint64_t off = 0, w = 0; off < len; off += 8, ++w) {
        uint64_t v = pattern_word(seq, w);
        uint64_t n = len - off < 8 ? len - off : 8;
        if (std::memcmp(p + off, &v, n) != 0) {
            for (uint64_t i = 0; i < n; ++i)
                if (p[off + i] != reinterpret_cast<const std::byte *>(&v)[i])
                    return off + i;
        }
    }
    return len;
}

// FNV-1a over a frame's bytes: the checksum a producer sends as metadata.
inline uint64_t checksum(const std::byte *p, uint64_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < len; ++i) {
        h ^= static_cast<uint8_t>(p[i]);
        h *= 0x100000001b3ull;
    }
    return h;
}

// Options of a consumer that holds frames on purpose (to pin slots, or to
// keep one while reading the next): no hold limit.
inline bips::ConsumerOptions keeps_frames(bips::Policy policy = bips::Policy::Lossless)
{
    bips::ConsumerOptions o;
    o.policy = policy;
    o.max_held = bips::kUnlimitedHeld;
    return o;
}

// Producer options for small test channels.
inline bips::ProducerOptions small_options(uint32_t slots = 4, uint64_t slot_size = 4096)
{
    bips::ProducerOptions o;
    o.slot_count = slots;
    o.slot_size = slot_size;
    o.max_consumers = 4;
    o.stream_info_capacity = 1024;
    o.meta_capacity = 64;
    return o;
}

// Declares `std::unique_ptr<Producer> var` for a new channel, or fails the
// test with the error.
#define CREATE_PRODUCER(var, name, options)                         \
    auto var##_created = bips::Producer::create((name), (options)); \
    ASSERT_TRUE(bips_test::IsOk(var##_created));                    \
    std::unique_ptr<bips::Producer> var = std::move(var##_created).value()

// Acquires a slot, fills it with the pattern of `seq` (size bytes) and
// publishes it with pts = seq. Returns the publish result.
inline bips::Result<void> publish_pattern(bips::Producer &p, uint64_t seq, uint64_t size,
                                          std::chrono::nanoseconds timeout = kLong)
{
    auto slot = p.acquire(timeout);
    if (!slot.ok())
        return slot.error();
    fill_pattern(slot->data, size, seq);
    bips::FrameInfo info;
    info.size = size;
    info.pts = seq;
    return p.publish(*slot, info);
}

} // namespace bips_test
