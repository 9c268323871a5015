// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: futex wait and wake.
#include "signaler.h"

#include <climits>
#include <ctime>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace bips::detail {

// The futex word must be a plain 32-bit int in memory.
static_assert(sizeof(AtomicU32) == sizeof(uint32_t));

void futex_wait(const AtomicU32 *word, uint32_t token, int64_t rel_ns)
{
    if (rel_ns <= 0)
        return;
    timespec ts;
    ts.tv_sec = rel_ns / 1000000000;
    ts.tv_nsec = rel_ns % 1000000000;
    syscall(SYS_futex, reinterpret_cast<const uint32_t *>(word), FUTEX_WAIT, token, &ts,
            nullptr, 0);
}

void futex_wake(const AtomicU32 *word)
{
    syscall(SYS_futex, reinterpret_cast<const uint32_t *>(word), FUTEX_WAKE, INT_MAX, nullptr,
            nullptr, 0);
}

} // namespace bips::detail
