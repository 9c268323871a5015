// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: forked helper processes that report to the parent via pipes.
#pragma once

#include <bips/result.h>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace bips::tool {

// What a child says on its pipe. Each message is a 4-byte kind, a 4-byte
// length and the payload; the payload layouts belong to the command.
enum class MsgKind : uint32_t {
    Ready = 1,   // set-up done (payload: command-defined)
    Stats = 2,   // final counters (payload: a command-defined struct)
    Samples = 3, // latency samples in nanoseconds (payload: uint64_t[])
    Error = 4,   // what went wrong, as text for people
};

struct Message {
    MsgKind kind;
    std::string payload;
};

// Writes one whole message to `fd`, retrying short writes. Called in the
// child; false when the parent is gone.
bool send_message(int fd, MsgKind kind, const void *data, std::size_t size);

template <typename T>
bool send_struct(int fd, MsgKind kind, const T &value)
{
    static_assert(std::is_trivially_copyable_v<T>);
    return send_message(fd, kind, &value, sizeof(value));
}

inline bool send_error(int fd, std::string_view text)
{
    return send_message(fd, MsgKind::Error, text.data(), text.size());
}

// Copies a message payload into a struct; false if the size does not match.
template <typename T>
bool read_struct(const Message &msg, T &out)
{
    static_assert(std::is_trivially_copyable_v<T>);
    if (msg.payload.size() != sizeof(T))
        return false;
    std::memcpy(&out, msg.payload.data(), sizeof(T));
    return true;
}

// One forked child as the parent sees it.
struct Child {
    std::string role; // "producer", "consumer 1": used in messages
    pid_t pid = -1;
    int fd = -1;         // read end of the child's pipe; -1 once closed
    std::string pending; // bytes read but not yet a whole message
    std::vector<Message> messages;
    bool reaped = false;
    bool killed = false; // the Supervisor sent it SIGKILL
    int status = 0;      // from waitpid, valid once reaped

    // The first message of `kind`, or nullptr.
    const Message *find(MsgKind kind) const;
    // True once it sent an Error, or ended by a signal or a non-zero status
    // on its own (not killed by the Supervisor).
    bool failed() const;
    // The child's Error text, or a description of how it ended abnormally
    // (signal, non-zero exit, killed because it did not finish); empty when
    // it exited 0 without an error.
    std::string failure() const;
};

// Installs a SIGINT/SIGTERM handler in the parent that makes every wait
// return early, so children are killed and channels removed on Ctrl-C.
void install_interrupt_handler();
bool interrupted();

// Owns the children of one run. Every child still running when the
// Supervisor is destroyed is killed (SIGKILL) and reaped: no child outlives
// the run that forked it, whatever path the parent takes out.
class Supervisor {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr auto kFailureGrace = std::chrono::seconds(2);

    Supervisor() = default;
    Supervisor(const Supervisor &) = delete;
    Supervisor &operator=(const Supervisor &) = delete;
    ~Supervisor();

    // Forks a child that runs `body(write_fd)` and exits with its return
    // value through _exit() (no destructors or atexit handlers of the
    // parent's objects run in the child). The returned reference stays
    // valid until the Supervisor is destroyed.
    Result<Child *> spawn(std::string role, const std::function<int(int)> &body);

    // Reads messages until `child` has sent one of `kind` or ended, or until
    // `deadline`. True when the message arrived.
    bool wait_for(Child &child, MsgKind kind, Clock::time_point deadline);

    // Reads messages and reaps until every child has ended and closed its
    // pipe. At `deadline` (or on Ctrl-C) kills the rest and returns false.
    // Once a child has failed the run is lost: the others get kFailureGrace
    // to end (and report what they saw) before they are killed.
    bool wait_all(Clock::time_point deadline);

    // Sends SIGKILL to every child still running and reaps it.
    void kill_all();

    std::vector<Child *> children();

private:
    // One poll() round over the open pipes, at most until `deadline`, then
    // a non-blocking reap.
    void pump(Clock::time_point deadline);
    void reap(bool block);

    std::vector<std::unique_ptr<Child>> children_;
};

// Makes sure a run's channel does not outlive it: on destruction, if the
// socket of `name` (bips::channel_path) still exists (its producer was
// killed or crashed, so its destructor never removed it), runs
// bips::clean_channels(), which removes it because nobody listens on it
// any more, and reports the channel as left behind if it is still there.
// Declare it before the Supervisor so that the children are dead by the
// time it runs.
class ChannelSweeper {
public:
    explicit ChannelSweeper(std::string name) : name_(std::move(name)) {}
    ChannelSweeper(const ChannelSweeper &) = delete;
    ChannelSweeper &operator=(const ChannelSweeper &) = delete;
    ~ChannelSweeper();

private:
    std::string name_;
};

} // namespace bips::tool
