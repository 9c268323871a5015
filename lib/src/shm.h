// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: sealed memfd segments: creation, sealing, checking and mapping.
//
// Memory is never named in a file system: each segment is a memfd handed
// to peers over the channel's socket. Seals (F_SEAL_SHRINK | F_SEAL_GROW)
// make a SIGBUS from a peer resizing it impossible; the producer's segment
// also carries F_SEAL_FUTURE_WRITE, and consumers get it through a
// read-only open file description, so nobody but its producer can write it.
#pragma once

#include "fd.h"

#include <bips/result.h>

#include <string>
#include <string_view>

namespace bips::detail {

inline constexpr unsigned kSealsNoResize = 0x0002u | 0x0004u; // SHRINK | GROW

// The system page size (4, 16 or 64 KiB), read once at run time.
uint64_t system_page_size();
uint64_t align_to_page(uint64_t bytes);

// Creates a sealable memfd named `label` of `size` bytes and reserves its
// memory now, so that too little memory is a NoSpace error naming both
// sizes instead of a SIGBUS later. `channel` only names the channel in
// messages. The caller owns the descriptor.
Result<UniqueFd> create_memfd(const std::string &label, uint64_t size, std::string_view channel);

// Adds `seals` (F_SEAL_* bits) to a memfd.
Result<void> add_seals(int fd, unsigned seals, std::string_view what);

// A second, read-only open file description of the same memfd, for
// handing to peers that must not write it.
Result<UniqueFd> reopen_read_only(int fd, std::string_view what);

// Checks a descriptor received from a peer: a memfd carrying at least
// `seals`, of at least `min_size` bytes. Returns its size. Errors: Corrupt
// with `what` and the reason (a peer sent something else).
Result<uint64_t> check_memfd(int fd, unsigned seals, uint64_t min_size, std::string_view what);

// Maps `size` bytes of `fd` shared, read-only or read-write.
Result<Mapping> map_shared(int fd, uint64_t size, bool writable, std::string_view what);

} // namespace bips::detail
