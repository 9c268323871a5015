// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: one benchmark phase across a producer and consumer processes.
#pragma once

#include <bips/channel.h>
#include <bips/result.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace bips::tool {

// How much of each frame the processes touch. Header: 64 bytes (the
// transport's own cost, independent of the slot size). Full: the producer
// fills the whole frame and each consumer reads all of it.
enum class Touch { Header, Full };

// One row of the table: a channel geometry and its consumers.
struct BenchConfig {
    uint64_t slot_size = 64;
    uint32_t slots = 8;
    std::vector<Policy> consumers{Policy::Lossless};
    uint64_t frames = 0;         // per throughput repetition
    uint64_t latency_frames = 0; // in the paced phase
    double rate_hz = 1000;       // pace of the latency phase
    std::chrono::nanoseconds spin{0};
    std::chrono::nanoseconds anticipate{0};
    Touch touch = Touch::Header;
};

// Bytes every frame carries for verification; the smallest slot size.
inline constexpr uint64_t kBenchHeaderSize = 64;

// What one consumer measured in one phase.
struct ConsumerResult {
    Policy policy = Policy::Lossless;
    uint64_t received = 0;
    uint64_t skipped = 0;
    uint64_t elapsed_ns = 0; // from the producer's start to end-of-stream
    double frames_per_s() const
    {
        return elapsed_ns ? static_cast<double>(received) * 1e9 / static_cast<double>(elapsed_ns)
                          : 0.0;
    }
};

struct PhaseResult {
    uint64_t published = 0;
    uint64_t producer_elapsed_ns = 0;
    std::vector<ConsumerResult> consumers; // in BenchConfig::consumers order
    std::vector<uint64_t> latencies_ns;    // paced phase only, all consumers
};

// Runs one phase on a fresh channel `channel`: forks the producer, waits
// until it has created the channel, forks the consumers, and waits (bounded)
// for all of them. `paced` selects the latency phase (latency_frames at
// rate_hz, pts stamped) over the throughput phase (frames, flat out). On
// return no child is left running and the channel is gone. Errors carry the
// failing process's own message.
Result<PhaseResult> run_phase(const BenchConfig &config, bool paced, const std::string &channel);

} // namespace bips::tool
