// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: reads this process's memory mappings from /proc/self/maps.
#include "proc_maps.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace bips::tool {

namespace {

// Parses "start-end perms offset major:minor inode [path]"; false when the
// line does not have that shape.
bool parse_line(const std::string &line, Mapping &m)
{
    std::istringstream in(line);
    std::string range, dev;
    if (!(in >> range >> m.perms >> std::hex >> m.offset >> dev >> std::dec >> m.inode))
        return false;
    auto dash = range.find('-');
    auto colon = dev.find(':');
    if (dash == std::string::npos || colon == std::string::npos)
        return false;
    char *end = nullptr;
    m.start = std::strtoull(range.c_str(), &end, 16);
    m.end = std::strtoull(range.c_str() + dash + 1, &end, 16);
    m.dev_major = static_cast<uint32_t>(std::strtoul(dev.c_str(), &end, 16));
    m.dev_minor = static_cast<uint32_t>(std::strtoul(dev.c_str() + colon + 1, &end, 16));
    std::getline(in, m.path);
    m.path.erase(0, m.path.find_first_not_of(' '));
    m.line = line;
    return m.end > m.start;
}

} // namespace

std::optional<Mapping> mapping_containing(const void *p, uint64_t size)
{
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        Mapping m;
        if (parse_line(line, m) && m.contains(p, size))
            return m;
    }
    return std::nullopt;
}

} // namespace bips::tool
