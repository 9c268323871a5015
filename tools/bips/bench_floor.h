// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: the latency floor of the machine (a bare futex wake-up).
#pragma once

#include <bips/result.h>

#include <cstdint>
#include <vector>

namespace bips::tool {

// Measures what any blocking hand-over between two processes costs here: a
// forked child sleeps on a futex in anonymous shared memory, the parent
// stamps CLOCK_MONOTONIC, bumps the word and wakes it, `frames` times at
// `rate_hz`. Returns the sorted wake-up latencies in nanoseconds. This is
// the peer that bips' own latency is compared with in the same run.
Result<std::vector<uint64_t>> measure_futex_floor(double rate_hz, uint64_t frames);

} // namespace bips::tool
