// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: cross-process wake-ups on futex words inside the segment.
//
// Uses the shared futex operations (not FUTEX_*_PRIVATE, which is what
// std::atomic::wait uses and which does not cross processes). A waiter
// announces itself in a waiter count so that a notifier with nobody waiting
// makes no system call. Every wait is bounded by its timeout.
#pragma once

#include "layout.h"

namespace bips::detail {

class Signaler {
public:
    Signaler() = default;
    Signaler(AtomicU32 *word, AtomicU32 *waiters) : word_(word), waiters_(waiters) {}

    // Protocol for a waiter (all loads/stores sequentially consistent):
    //   uint32_t token = s.prepare();   // counts us as a waiter
    //   if (!condition()) s.wait(token, rel_ns);
    //   s.finish();
    // A notifier changes the condition first, then calls notify().
    uint32_t prepare() const;
    void wait(uint32_t token, int64_t rel_ns) const;
    void finish() const;

    // Wakes every waiter; a no-op without system call when nobody waits.
    void notify() const;
    // Wakes every waiter unconditionally (closing, interrupting).
    void notify_always() const;

private:
    AtomicU32 *word_ = nullptr;
    AtomicU32 *waiters_ = nullptr;
};

} // namespace bips::detail
