// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: reads this process's memory mappings from /proc/self/maps.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace bips::tool {

// One line of /proc/self/maps.
struct Mapping {
    uintptr_t start = 0;
    uintptr_t end = 0;   // one past the last byte
    std::string perms;   // e.g. "r--s": read-only, shared
    uint64_t offset = 0; // offset in the file or memfd
    uint32_t dev_major = 0;
    uint32_t dev_minor = 0;
    uint64_t inode = 0;
    std::string path; // e.g. "/memfd:bips-cam0 (deleted)"
    std::string line; // the line as the kernel wrote it

    bool contains(const void *p, uint64_t size) const
    {
        auto a = reinterpret_cast<uintptr_t>(p);
        return a >= start && a < end && size <= end - a;
    }
};

// The mapping of this process that holds the `size` bytes at `p` (all of
// them in one mapping), if any. nullopt also when /proc is not mounted.
std::optional<Mapping> mapping_containing(const void *p, uint64_t size);

} // namespace bips::tool
