// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: reads this process's memory mappings from /proc/self/maps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bips::tool {

// One line of /proc/self/maps.
struct Mapping {
    uintptr_t start = 0;
    uintptr_t end = 0;   // one past the last byte
    std::string perms;   // e.g. "r--s": read-only, shared
    uint64_t offset = 0; // offset in the file
    uint32_t dev_major = 0;
    uint32_t dev_minor = 0;
    uint64_t inode = 0;
    std::string path; // may end in " (deleted)"
    std::string line; // the line as the kernel wrote it

    bool contains(const void *p, uint64_t size) const
    {
        auto a = reinterpret_cast<uintptr_t>(p);
        return a >= start && a <= end && size <= end - a;
    }
};

// The mappings of this process whose file is `path` (compared after
// resolving symbolic links in `path`). Empty when there are none or when
// /proc is not mounted.
std::vector<Mapping> mappings_of_file(const std::string &path);

} // namespace bips::tool
