// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: cross-process futex wait and wake on words in shared mappings.
//
// Uses the shared futex operations (not FUTEX_*_PRIVATE, which is what
// std::atomic::wait uses and which does not cross processes). Both work on
// read-only mappings too: waking does not write the word. Callers keep
// their own "somebody waits" flags (see ring.cpp) so that a notifier with
// nobody waiting makes no system call.
#pragma once

#include "layout.h"

namespace bips::detail {

// Sleeps while *word == token, at most rel_ns nanoseconds (<= 0: returns
// at once). EAGAIN, EINTR and timeouts all mean "re-check".
void futex_wait(const AtomicU32 *word, uint32_t token, int64_t rel_ns);

// Wakes every process sleeping on `word`.
void futex_wake(const AtomicU32 *word);

} // namespace bips::detail
