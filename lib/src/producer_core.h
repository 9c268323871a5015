// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the producer's process-local state, shared by producer.cpp (the
// application's threads) and service.cpp (the thread that serves the
// channel socket).
//
// Ownership and threads:
// - seg/bell memory, the writer and `joined` are guarded by `mu`; the
//   writer reads consumer states only through `joined`, so a consumer that
//   is dropped (its pointer cleared under `mu`) is never read again.
// - `links` (sockets, pidfds, mappings) belong to the service thread alone;
//   other threads ask it for work through `requests` (under `mu`) and `wake`.
#pragma once

#include "fd.h"
#include "rendezvous.h"
#include "ring.h"

#include <bips/producer.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bips::detail {

using Clock = std::chrono::steady_clock;

// One connection to the producer socket.
struct Link {
    enum class Phase { Greeting, Welcomed, Joined };
    UniqueFd sock;
    UniqueFd pidfd;  // the consumer's process, when it sent one
    Mapping state;   // its ConsumerShared, read-only
    Phase phase = Phase::Greeting;
    uint32_t index = UINT32_MAX; // entry in `joined` once Joined
    Clock::time_point deadline;  // for the handshake
    int fork_token = -1;
    bool left = false; // said Leave: gone on purpose, not dead
};

class ProducerImpl {
public:
    std::string name;
    std::string path;
    ProducerOptions options;
    uint64_t epoch = 0;

    UniqueFd seg_fd;    // read-write, sealed against resizing and new writers
    UniqueFd seg_ro;    // read-only description handed to peers
    UniqueFd bell_fd;
    UniqueFd pidfd;     // this process, for consumers to watch
    Mapping seg_map;
    Mapping bell_map;
    RingView view;
    NamedSocket sock;
    int sock_fork_token = -1;
    int exit_token = -1;

    std::mutex mu; // see above; never held while sleeping
    RingWriter writer;
    std::vector<const ConsumerShared *> joined;     // by entry; nullptr = free
    std::vector<std::string> evictions;             // by entry: reason to drop it
    // Who a joined entry is, from the kernel and from its Join (mu).
    struct Peer {
        int32_t pid_here = 0; // SO_PEERCRED pid in our namespace (0 = not visible)
        uint64_t pid_ns = 0;  // the PID namespace it says it runs in
    };
    std::vector<Peer> peers;                        // by entry
    uint64_t pid_ns = 0;                            // ours (pid_namespace_id)
    std::atomic<uint32_t> consumer_total{0};
    std::atomic<uint64_t> evicted_total{0};
    std::atomic<uint64_t> eviction_frames{0}; // unread by consumers when evicted
    std::deque<std::string> eviction_reports; // for take_eviction_reports (mu)

    std::atomic<bool> interrupted{false};
    Clock::time_point blocked_since{}; // first failed acquire of a wait (mu)
    bool waiting = false;              // an acquire sleeps for space now (mu)
    Clock::time_point waiting_since{}; // when that wait began (mu)
    std::atomic<uint64_t> waited_ns{0}; // all waits for space, in total

    // Service thread.
    UniqueFd wake;  // eventfd
    std::atomic<bool> stopping{false};
    std::atomic<uint64_t> cycles{0};
    std::atomic<uint64_t> dropped{0};
    std::atomic<uint32_t> dead_unreported{0}; // consumers that died, for reap_dead_consumers
    std::thread service;
    std::vector<std::unique_ptr<Link>> links; // service thread only

    // Wakes the service thread.
    void poke();
    // Producer thread, holding mu: stops honouring the consumer that holds
    // the producer back the most and asks the service thread to drop it.
    // False when no consumer holds anything.
    bool evict_worst(const std::string &why);
    // Every joined consumer that has not detached, as seen from this
    // process (holding mu).
    std::vector<ConsumerInfo> consumer_infos() const;
    // The producer-wide waiting figures of a ChannelInfo (holding mu).
    void fill_wait_figures(ChannelInfo &out) const;
};

// Starts / stops the service thread of `p`.
void start_service(ProducerImpl &p);
void stop_service(ProducerImpl &p);

} // namespace bips::detail
