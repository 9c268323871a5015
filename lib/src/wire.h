// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the messages exchanged on a channel's socket (SOCK_SEQPACKET).
//
//   consumer -> producer   Hello{role}
//   producer -> consumer   Welcome{epoch}   + [segment (read-only), doorbell, producer pidfd?]
//                       or Refused{errc, text}
//   consumer -> producer   Join{policy, pid, pid_ns} + [consumer state memfd, consumer pidfd?]
//   producer -> consumer   Joined{entry, first sequence, end-of-streams before}
//                       or Refused{errc, text}
//   producer -> consumer   Notice{text}     just before it drops the consumer
//   consumer -> producer   Leave{}          before it closes (not a death)
//
// An inspecting peer (`bips info`) sends Hello{role = inspect} and gets
// Welcome{epoch, pid_ns} + [segment] followed by a ProducerRecord and the
// consumer records, then the producer closes the connection. Every message is validated by its receiver: magic,
// version, type and length; text is clamped and terminated.
#pragma once

#include "fd.h"

#include <bips/channel.h>
#include <bips/result.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace bips::detail {

inline constexpr uint64_t kWireMagic = 0x3145524957535042ull; // "BPSWIRE1"
inline constexpr uint32_t kWireVersion = 1;
inline constexpr size_t kMaxFds = 4;

enum class MsgType : uint32_t { Hello = 1, Welcome, Join, Joined, Refused, Notice, Leave };
enum class Role : uint32_t { Consumer = 1, Inspect = 2 };

struct Message {
    uint64_t magic = kWireMagic;
    uint32_t version = kWireVersion;
    MsgType type = MsgType::Hello;
    uint64_t value = 0; // Welcome: epoch; Joined: the first sequence for us
    uint32_t arg0 = 0;  // Hello: role; Join: policy; Joined: entry; Refused: errc;
                        // Welcome (inspect): record count
    int32_t arg1 = 0;   // Join: pid; Joined: end-of-stream markers before it
    uint64_t pid_ns = 0; // Join, Welcome: the sender's PID namespace (pid_namespace_id)
    char text[472] = {};

    void set_text(std::string_view s);
    std::string get_text() const;
};
static_assert(sizeof(Message) == 512);

// One consumer as the producer reports it to an inspecting peer.
// `pid` is what the consumer says of itself (its own PID namespace);
// `peer_pid` is its socket's SO_PEERCRED pid in the producer's namespace
// (0 when the consumer is not visible there); `pid_ns` is what it said its
// namespace is. Times are nanoseconds, 0 = never / not waiting.
struct ConsumerRecord {
    uint32_t index;
    uint32_t policy;
    int32_t pid;
    uint32_t held;
    uint64_t received;
    uint64_t skipped;
    uint64_t cursor;
    uint32_t detached;
    int32_t peer_pid;
    uint64_t pid_ns;
    uint64_t release_age_ns;  // since its last release (its own clock word)
    uint64_t blocking_ns;     // how long the producer has waited on it now
};
static_assert(sizeof(ConsumerRecord) == 72);

// The producer-wide figures an inspecting peer gets before the consumer
// records (see ChannelInfo).
struct ProducerRecord {
    uint64_t waiting_ns;
    uint64_t waited_ns;
    uint64_t evictions;
    uint64_t eviction_frames;
};
static_assert(sizeof(ProducerRecord) == 32);

// Sends `msg` (and `extra` bytes after it) with up to kMaxFds descriptors.
// Never blocks for long: the socket is non-blocking and a full peer is an
// error (a peer that does not read does not get to stall us).
Result<void> send_message(int sock, const Message &msg, std::span<const int> fds = {},
                          std::span<const std::byte> extra = {});

struct Received {
    Message msg;
    std::vector<UniqueFd> fds;
    std::vector<std::byte> extra;
};

// Waits up to `timeout` for one message, validates its header and takes
// ownership of the descriptors that came with it. Errors: Timeout,
// ProducerGone (the peer closed), Corrupt (not a bips message).
Result<Received> receive_message(int sock, std::chrono::milliseconds timeout,
                                 size_t max_extra = 0);

// The process's own pidfd (a liveness handle that works across PID
// namespaces and is not inherited by meaning: a forked child is another
// process). Invalid when the kernel lacks pidfd_open.
UniqueFd own_pidfd();

// An identifier of the calling process's PID namespace (the inode of
// /proc/self/ns/pid); 0 when it cannot be read.
uint64_t pid_namespace_id();

// The pid of the process at the other end of connected unix socket `sock`
// in the caller's PID namespace (SO_PEERCRED); 0 when it is not visible
// from here or cannot be read.
int32_t peer_pid(int sock);

// True when `fd` polls readable or hung up right now (a pidfd of an exited
// process, or a socket whose peer closed or sent something).
bool polls_ready(int fd);

} // namespace bips::detail
