// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: channel names, inspection, listing and cleaning of segments.
#include "segment.h"

#include <bips/channel.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace bips {

namespace {

constexpr size_t kMaxNameLength = 200;
constexpr std::string_view kPrefix = "bips-";
constexpr std::string_view kTmpPrefix = ".bips-tmp-";

bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
}

std::string describe_char(char c)
{
    auto u = static_cast<unsigned char>(c);
    char buf[32];
    if (u >= 0x21 && u < 0x7f)
        std::snprintf(buf, sizeof(buf), "'%c'", c);
    else
        std::snprintf(buf, sizeof(buf), "byte 0x%02x", u);
    return buf;
}


} // namespace

Result<void> validate_channel_name(std::string_view name)
{
    const std::string fix = "; use 1 to 200 characters from A-Z a-z 0-9 . _ - (e.g. cam0)";
    if (name.empty())
        return make_error(Errc::InvalidName, "channel name is empty" + fix);
    if (name.size() > kMaxNameLength)
        return make_error(Errc::InvalidName, "channel name is " + std::to_string(name.size()) +
                                                 " characters long, more than 200" + fix);
    if (name.front() == '.')
        return make_error(Errc::InvalidName,
                          "channel name '" + std::string(name) + "' starts with '.'" + fix);
    for (size_t i = 0; i < name.size(); ++i) {
        if (!name_char_ok(name[i])) {
            std::string shown;
            for (char c : name)
                shown += (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) ? c : '?';
            return make_error(Errc::InvalidName, "channel name '" + shown + "' contains " +
                                                     describe_char(name[i]) + " at position " +
                                                     std::to_string(i) + fix);
        }
    }
    return {};
}

std::string shm_directory()
{
    const char *dir = std::getenv("BIPS_SHM_DIR");
    if (dir && *dir)
        return dir;
    return "/dev/shm";
}

std::string segment_path(std::string_view name)
{
    return shm_directory() + "/" + std::string(kPrefix) + std::string(name);
}

Result<ChannelInfo> inspect_channel(std::string_view name)
{
    auto seg = detail::Segment::open(name, detail::Segment::Access::Inspect);
    if (!seg)
        return seg.error();
    return seg.value()->snapshot();
}

Result<ChannelList> list_channels()
{
    const std::string dir = shm_directory();
    DIR *d = opendir(dir.c_str());
    if (!d)
        return make_error(Errc::System, "cannot read " + dir);
    ChannelList list;
    while (dirent *e = readdir(d)) {
        std::string_view file = e->d_name;
        if (file.substr(0, kPrefix.size()) != kPrefix)
            continue;
        std::string name(file.substr(kPrefix.size()));
        if (!validate_channel_name(name) || e->d_type == DT_DIR)
            continue;
        auto seg = detail::Segment::open_path(dir + "/" + std::string(file), name,
                                              detail::Segment::Access::Inspect);
        if (!seg) {
            list.problems.push_back(name + ": " + seg.error().message);
            continue;
        }
        list.channels.push_back(seg.value()->snapshot());
    }
    closedir(d);
    std::sort(list.channels.begin(), list.channels.end(),
              [](const ChannelInfo &a, const ChannelInfo &b) { return a.name < b.name; });
    return list;
}

Result<std::vector<std::string>> clean_channels()
{
    const std::string dir = shm_directory();
    DIR *d = opendir(dir.c_str());
    if (!d)
        return make_error(Errc::System, "cannot read " + dir);
    std::vector<std::string> removed;
    while (dirent *e = readdir(d)) {
        std::string_view file = e->d_name;
        const bool tmp = file.substr(0, kTmpPrefix.size()) == kTmpPrefix;
        if (!tmp && file.substr(0, kPrefix.size()) != kPrefix)
            continue;
        const std::string path = dir + "/" + std::string(file);
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        // A temporary file is locked by its producer right after creation;
        // leave young ones alone so that window is never raced.
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
            (tmp && time(nullptr) - st.st_mtime < 10)) {
            close(fd);
            continue;
        }
        // Only files that really are (or were being made into) bips
        // segments, and whose producer lock nobody holds, are removed.
        detail::SegmentHeader h{};
        const bool is_bips =
            tmp || (pread(fd, &h, sizeof(h.magic), 0) == ssize_t(sizeof(h.magic)) &&
                    h.magic == detail::kMagic);
        const bool dead = !detail::ofd_locked_by_other(fd, detail::kProducerLockByte);
        close(fd);
        if (is_bips && dead && unlink(path.c_str()) == 0)
            removed.push_back(tmp ? std::string(file) : std::string(file.substr(kPrefix.size())));
    }
    closedir(d);
    std::sort(removed.begin(), removed.end());
    return removed;
}

} // namespace bips
