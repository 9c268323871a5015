// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: channel names, inspection, listing and cleaning of segments.
#include "rendezvous.h"
#include "ring.h"
#include "shm.h"
#include "wire.h"

#include <bips/channel.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <dirent.h>
#include <future>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace bips {

namespace {

constexpr size_t kMaxNameLength = 200;
constexpr std::string_view kPrefix = "bips-";
constexpr std::string_view kTmpPrefix = ".bips-tmp-";
constexpr std::string_view kCleanPrefix = ".bips-clean-";
constexpr time_t kYoungSeconds = 10;

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

std::string channel_directory()
{
    const char *dir = std::getenv("BIPS_DIR");
    if (dir && *dir)
        return dir;
    return "/dev/shm";
}

uint64_t page_size() noexcept { return detail::system_page_size(); }

uint64_t round_up_to_page(uint64_t bytes) noexcept { return detail::align_to_page(bytes); }

std::string channel_path(std::string_view name)
{
    return channel_directory() + "/" + std::string(kPrefix) + std::string(name);
}

namespace {

// Fills what an inspect answer `r` on `sock` tells beyond the segment: the
// producer's waiting figures and its consumers, with their PIDs placed
// relative to the caller's PID namespace. The records are the producer's
// word: clamped, never trusted for anything but display.
void add_records(const detail::Received &r, int sock, ChannelInfo &info)
{
    using namespace detail;
    const uint64_t own_ns = pid_namespace_id();
    const auto other = [own_ns](uint64_t ns) { return ns != 0 && own_ns != 0 && ns != own_ns; };
    info.producer_local_pid = peer_pid(sock);
    info.producer_other_pid_namespace =
        r.msg.pid_ns ? other(r.msg.pid_ns) : info.producer_local_pid != info.producer_pid;
    if (r.extra.size() < sizeof(ProducerRecord))
        return;
    ProducerRecord prec;
    std::memcpy(&prec, r.extra.data(), sizeof(prec));
    info.producer_waiting_ns = prec.waiting_ns;
    info.producer_waited_ns = prec.waited_ns;
    info.evictions = prec.evictions;
    info.eviction_frames = prec.eviction_frames;
    const size_t count = std::min<size_t>(r.msg.arg0, (r.extra.size() - sizeof(prec)) /
                                                          sizeof(ConsumerRecord));
    for (size_t i = 0; i < count; ++i) {
        ConsumerRecord rec;
        std::memcpy(&rec, r.extra.data() + sizeof(prec) + i * sizeof(rec), sizeof(rec));
        if (rec.detached)
            continue;
        ConsumerInfo ci;
        ci.index = rec.index;
        ci.policy = rec.policy == uint32_t(Policy::Lossless) ? Policy::Lossless : Policy::Latest;
        ci.pid = rec.pid;
        ci.other_pid_namespace = other(rec.pid_ns);
        // The kernel's pid is in the producer's namespace: ours too only
        // when the producer shares our namespace.
        if (!info.producer_other_pid_namespace)
            ci.local_pid = rec.peer_pid;
        else if (!ci.other_pid_namespace)
            ci.local_pid = rec.pid;
        ci.alive = true;
        ci.received = rec.received;
        ci.skipped = rec.skipped;
        ci.held = std::min(rec.held, info.slot_count);
        ci.cursor = rec.cursor;
        ci.release_age_ns = rec.release_age_ns;
        ci.blocking_ns = rec.blocking_ns;
        info.consumers.push_back(ci);
    }
}

// Asks the producer listening at `path` for a snapshot.
Result<ChannelInfo> inspect_path(const std::string &path, std::string_view name)
{
    using namespace detail;
    const std::string ch = "channel '" + std::string(name) + "'";
    auto sock = connect_channel(path, name);
    if (!sock)
        return sock.error();
    Message hello;
    hello.type = MsgType::Hello;
    hello.arg0 = uint32_t(Role::Inspect);
    if (auto r = send_message(sock->get(), hello); !r)
        return make_error(Errc::NotFound, ch + ": its producer went away");
    auto r = receive_message(sock->get(), std::chrono::milliseconds(2000),
                             sizeof(ProducerRecord) +
                                 sizeof(ConsumerRecord) * kMaxConsumers);
    if (!r) {
        if (r.code() == Errc::Timeout)
            return make_error(Errc::Timeout, "the producer of " + ch +
                                                 " did not answer within 2 s (stopped, or "
                                                 "not a bips producer)");
        return make_error(r.code() == Errc::ProducerGone ? Errc::NotFound : r.code(),
                          ch + ": " + r.error().message);
    }
    if (r->msg.type != MsgType::Welcome || r->fds.empty())
        return make_error(Errc::Corrupt, ch + ": the producer's answer is malformed");
    auto size = check_memfd(r->fds[0].get(), kSealsNoResize, sizeof(SegmentHeader),
                            ch + ": the producer's memory");
    if (!size)
        return size.error();
    auto map = map_shared(r->fds[0].get(), size.value(), false, ch);
    if (!map)
        return map.error();
    auto g = validate_header(map->data(), map->size(), size.value(), name);
    if (!g)
        return g.error();
    ChannelInfo info;
    info.name = std::string(name);
    info.producer_alive = true;
    read_counters(RingView(map->data(), g.value()), info);
    add_records(*r, sock->get(), info);
    return info;
}

// The names in the channel directory, read without following anything.
Result<std::vector<std::string>> directory_entries(const std::string &dir)
{
    DIR *d = opendir(dir.c_str());
    if (!d)
        return make_error(Errc::System, "cannot read the channel directory " + dir + ": " +
                                            std::strerror(errno) +
                                            " (set BIPS_DIR to the folder your channels use)");
    std::vector<std::string> names;
    while (dirent *e = readdir(d))
        names.emplace_back(e->d_name);
    closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

constexpr size_t kMaxParallelAsks = 32;

// Waits for the answers of `asked` and sorts them into `list`.
void collect(std::vector<std::pair<std::string, std::future<Result<ChannelInfo>>>> &asked,
             ChannelList &list)
{
    for (auto &[name, answer] : asked) {
        auto info = answer.get();
        if (info)
            list.channels.push_back(std::move(info.value()));
        else
            list.problems.push_back(name + ": " + info.error().message);
    }
}

} // namespace

Result<ChannelInfo> inspect_channel(std::string_view name)
{
    if (auto r = validate_channel_name(name); !r)
        return r.error();
    const std::string path = channel_path(name);
    const detail::ProbeResult p = detail::probe_name(path);
    if (p.state == detail::NameState::Dead) {
        // What is left of a producer that died: the name and its mode.
        ChannelInfo dead;
        dead.name = std::string(name);
        dead.mode = p.mode & 0777;
        return dead;
    }
    return inspect_path(path, name);
}

Result<ChannelList> list_channels()
{
    const std::string dir = channel_directory();
    auto names = directory_entries(dir);
    if (!names)
        return names.error();
    ChannelList list;
    // Live producers are asked in parallel, so a few stopped ones cost one
    // answer bound (2 s) in all, not one each.
    std::vector<std::pair<std::string, std::future<Result<ChannelInfo>>>> asked;
    for (const std::string &file : names.value()) {
        if (file.substr(0, kPrefix.size()) != kPrefix)
            continue;
        const std::string name = file.substr(kPrefix.size());
        if (!validate_channel_name(name))
            continue;
        const std::string path = dir + "/" + file;
        const detail::ProbeResult p = detail::probe_name(path);
        if (p.state == detail::NameState::Missing)
            continue;
        if (p.state == detail::NameState::Foreign) {
            list.problems.push_back(name + ": " + path + " is " + p.what +
                                    ", not a bips channel; remove it if it is not needed");
            continue;
        }
        if (p.state == detail::NameState::Dead) {
            ChannelInfo dead;
            dead.name = name;
            dead.mode = p.mode & 0777;
            list.channels.push_back(std::move(dead));
            continue;
        }
        if (asked.size() >= kMaxParallelAsks) {
            collect(asked, list);
            asked.clear();
        }
        asked.emplace_back(name, std::async(std::launch::async,
                                            [path, name] { return inspect_path(path, name); }));
    }
    collect(asked, list);
    std::sort(list.channels.begin(), list.channels.end(),
              [](const ChannelInfo &a, const ChannelInfo &b) { return a.name < b.name; });
    return list;
}

namespace {

// The names in `dir` that clean_channels() may consider: channel names and
// temporary names old enough that no producer or cleaner is still using
// them (a temporary name is bound a moment before its socket listens, and
// another cleaner's aside name is removed by that cleaner).
std::vector<std::string> cleanable_names(const std::string &dir,
                                         const std::vector<std::string> &files)
{
    std::vector<std::string> out;
    for (const std::string &file : files) {
        const bool tmp = file.substr(0, kTmpPrefix.size()) == kTmpPrefix ||
                         file.substr(0, kCleanPrefix.size()) == kCleanPrefix;
        if (!tmp && file.substr(0, kPrefix.size()) != kPrefix)
            continue;
        struct stat st;
        if (tmp && (lstat((dir + "/" + file).c_str(), &st) != 0 ||
                    time(nullptr) - st.st_ctime < kYoungSeconds))
            continue;
        out.push_back(file);
    }
    return out;
}

std::string shown_name(const std::string &file)
{
    return file.substr(0, kPrefix.size()) == kPrefix ? file.substr(kPrefix.size()) : file;
}

} // namespace

Result<std::vector<std::string>> clean_channels()
{
    const std::string dir = channel_directory();
    auto names = directory_entries(dir);
    if (!names)
        return names.error();
    std::vector<std::string> removed;
    // Only sockets that nobody listens on go; remove_if_dead() proves it
    // for the very inode it removes.
    for (const std::string &file : cleanable_names(dir, names.value()))
        if (detail::remove_if_dead(dir + "/" + file))
            removed.push_back(shown_name(file));
    std::sort(removed.begin(), removed.end());
    return removed;
}

Result<std::vector<std::string>> dead_channels()
{
    const std::string dir = channel_directory();
    auto names = directory_entries(dir);
    if (!names)
        return names.error();
    std::vector<std::string> dead;
    for (const std::string &file : cleanable_names(dir, names.value()))
        if (detail::probe_name(dir + "/" + file).state == detail::NameState::Dead)
            dead.push_back(shown_name(file));
    std::sort(dead.begin(), dead.end());
    return dead;
}

Result<bool> clean_channel(std::string_view name)
{
    if (auto r = validate_channel_name(name); !r)
        return r.error();
    const std::string path = channel_path(name);
    const std::string ch = "channel '" + std::string(name) + "'";
    const detail::ProbeResult p = detail::probe_name(path);
    switch (p.state) {
    case detail::NameState::Missing:
        return make_error(Errc::NotFound, ch + " does not exist (no " + path + ")");
    case detail::NameState::Live:
        return make_error(Errc::Busy, ch + " has a live producer; stop the producer instead, "
                                           "it removes the name when it exits");
    case detail::NameState::Foreign:
        return detail::foreign_error(name, path, p);
    case detail::NameState::Denied:
        return make_error(Errc::PermissionDenied,
                          "cannot tell whether " + ch + " is alive: " + path + " is " + p.what +
                              " and this user may not connect to it; ask its owner");
    case detail::NameState::Dead:
        break;
    }
    return detail::remove_if_dead(path);
}

} // namespace bips
