// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: CLOCK_MONOTONIC helpers and percentiles of latency samples.
#pragma once

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <vector>

namespace bips::tool {

// CLOCK_MONOTONIC is one clock for every process of the machine, so a stamp
// taken in the producer can be subtracted from one taken in a consumer.
inline uint64_t monotonic_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Sleeps until the absolute CLOCK_MONOTONIC time `ns`; returns at once when
// it has passed.
inline void sleep_until_ns(uint64_t ns)
{
    timespec ts;
    ts.tv_sec = static_cast<time_t>(ns / 1000000000u);
    ts.tv_nsec = static_cast<long>(ns % 1000000000u);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

// The p-th percentile (0..100, nearest rank) of `sorted`, which must be
// sorted ascending; 0 when it is empty.
inline uint64_t percentile(const std::vector<uint64_t> &sorted, double p)
{
    if (sorted.empty())
        return 0;
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return sorted[rank - 1];
}

} // namespace bips::tool
