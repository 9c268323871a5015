// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: futex-based Signaler implementation.
#include "signaler.h"

#include <cerrno>
#include <climits>
#include <ctime>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace bips::detail {

namespace {

// The futex word must be a plain 32-bit int in memory.
static_assert(sizeof(AtomicU32) == sizeof(uint32_t));

long futex(AtomicU32 *word, int op, uint32_t val, const timespec *timeout)
{
    return syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), op, val, timeout,
                   nullptr, 0);
}

} // namespace

uint32_t Signaler::prepare() const
{
    waiters_->fetch_add(1, std::memory_order_seq_cst);
    return word_->load(std::memory_order_seq_cst);
}

void Signaler::wait(uint32_t token, int64_t rel_ns) const
{
    if (rel_ns <= 0)
        return;
    timespec ts;
    ts.tv_sec = rel_ns / 1000000000;
    ts.tv_nsec = rel_ns % 1000000000;
    // EAGAIN (the word changed), EINTR and ETIMEDOUT all mean "re-check".
    futex(word_, FUTEX_WAIT, token, &ts);
}

void Signaler::finish() const
{
    waiters_->fetch_sub(1, std::memory_order_seq_cst);
}

void Signaler::notify() const
{
    if (waiters_->load(std::memory_order_seq_cst) == 0)
        return;
    notify_always();
}

void Signaler::notify_always() const
{
    word_->fetch_add(1, std::memory_order_seq_cst);
    futex(word_, FUTEX_WAKE, INT_MAX, nullptr);
}

} // namespace bips::detail
