// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: `bips demo`, a producer and a consumer process that prove zero copy.
#include "children.h"
#include "cli.h"
#include "commands.h"
#include "proc_maps.h"
#include "timing.h"

#include <bips/consumer.h>
#include <bips/producer.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <set>

namespace bips::tool {

namespace {

using namespace std::chrono_literals;

constexpr uint32_t kSlots = 4; // 4 x 1080p RGBA fits Docker's 64 MiB /dev/shm
constexpr double kSteadyHz = 240;
constexpr uint32_t kFlagBurst = 1; // FrameInfo user flag: flat-out phase

const std::vector<OptionSpec> kOptions = {
    {"frames", "N",
     "frames of the steady phase at 240 Hz, and again of the\n"
     "flat-out burst (default 480: 2 s + a burst)"},
    {"slot-size", "SIZE", "bytes per frame: 1080p-rgba (default), 4k-rgba, 64k, ..."},
};

void print_help()
{
    std::cout << "Usage: bips demo [--frames N] [--slot-size SIZE]\n"
                 "Forks a producer and a consumer on a fresh channel, sends frames at a\n"
                 "steady 240 Hz and then as fast as possible, and prints frames/s, the\n"
                 "latency and the evidence that no frame was copied: each frame's data()\n"
                 "lies in the consumer's mapping of the very file the producer created,\n"
                 "and holds the bytes the producer wrote.\n\n";
    print_options(std::cout, kOptions);
}

// Device and inode of the segment file as the producer sees it.
struct FileId {
    uint64_t dev_major, dev_minor, inode;
};

// What the consumer found; sent to the parent in one piece.
struct Evidence {
    uint64_t steady_frames = 0, burst_frames = 0;
    uint64_t burst_ns = 0;        // first burst stamp to end-of-stream
    uint64_t in_file_mapping = 0; // data() inside a mapping of the file
    uint64_t in_data_mapping = 0; // data() inside Consumer::data_mapping()
    uint64_t pattern_ok = 0;      // every byte as the producer wrote it
    uint64_t distinct_addresses = 0;
    FileId producer_file{}, mapped_file{};
    uint32_t mapping_found = 0, read_only = 0;
    char map_line[200] = {};
};

// The producer fills frame `index` with words seed + i; the consumer checks
// all of them, so a stale, shifted or foreign frame cannot pass.
uint64_t seed_of(uint64_t index)
{
    return (index + 1) * 0x9e3779b97f4a7c15ull;
}

void fill(std::byte *p, uint64_t size, uint64_t index)
{
    const uint64_t seed = seed_of(index);
    for (uint64_t i = 0; i < size / 8; ++i) {
        uint64_t w = seed + i;
        std::memcpy(p + i * 8, &w, 8);
    }
    for (uint64_t i = size / 8 * 8; i < size; ++i)
        p[i] = static_cast<std::byte>(seed);
}

bool check(const std::byte *p, uint64_t size, uint64_t index)
{
    const uint64_t seed = seed_of(index);
    uint64_t diff = 0;
    for (uint64_t i = 0; i < size / 8; ++i) {
        uint64_t w;
        std::memcpy(&w, p + i * 8, 8);
        diff |= w ^ (seed + i);
    }
    for (uint64_t i = size / 8 * 8; i < size; ++i)
        diff |= static_cast<uint64_t>(p[i] ^ static_cast<std::byte>(seed));
    return diff == 0;
}

int fail(int fd, const std::string &message)
{
    send_error(fd, message);
    return 1;
}

int producer_main(int fd, int peer_fd, const std::string &name, uint64_t slot_size, uint64_t frames)
{
    bips::ProducerOptions opts;
    opts.slot_count = kSlots;
    opts.slot_size = slot_size;
    auto created = bips::Producer::create(name, opts);
    if (!created.ok())
        return fail(fd, created.error().message);
    bips::Producer &producer = **created;
    (void)producer.set_stream_info("bips demo: " + std::to_string(slot_size) + "-byte frames");

    // The identity of the file behind the channel's name, as the consumer
    // will have to find it in its own mappings.
    std::string path = bips::segment_path(name);
    int file = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    const bool stated = file >= 0 && ::fstat(file, &st) == 0;
    const int err = errno;
    if (file >= 0)
        ::close(file);
    if (!stated)
        return fail(fd, "fstat " + path + ": " + std::strerror(err));
    FileId id{major(st.st_dev), minor(st.st_dev), st.st_ino};
    send_struct(fd, MsgKind::Ready, id);
    if (::write(peer_fd, &id, sizeof(id)) != static_cast<ssize_t>(sizeof(id)))
        return fail(fd, "could not send the file identity to the consumer");

    const uint64_t wait_until = monotonic_ns() + 10'000'000'000ull;
    while (producer.consumer_count() < 1) {
        if (monotonic_ns() > wait_until)
            return fail(fd, "no consumer attached within 10 s");
        ::usleep(200);
    }
    const uint64_t start = monotonic_ns();
    const auto period = static_cast<uint64_t>(1e9 / kSteadyHz);
    for (uint64_t i = 0; i < 2 * frames; ++i) {
        const bool burst = i >= frames;
        if (!burst)
            sleep_until_ns(start + i * period);
        auto slot = producer.acquire(10s);
        if (!slot.ok())
            return fail(fd, "acquire: " + slot.error().message);
        fill(slot->data, slot_size, i);
        bips::FrameInfo info;
        info.size = slot_size;
        info.flags = burst ? kFlagBurst : 0;
        info.pts = monotonic_ns();
        if (auto r = producer.publish(*slot, info); !r.ok())
            return fail(fd, "publish: " + r.error().message);
    }
    producer.end_of_stream();
    return 0;
}

// Reads the producer's FileId from the pipe, waiting at most 10 s.
bool read_file_id(int peer_fd, FileId &id)
{
    pollfd p{peer_fd, POLLIN, 0};
    return ::poll(&p, 1, 10000) == 1 && ::read(peer_fd, &id, sizeof(id)) == sizeof(id);
}

int consumer_main(int fd, int peer_fd, const std::string &name)
{
    Evidence ev;
    if (!read_file_id(peer_fd, ev.producer_file))
        return fail(fd, "the producer did not send its file identity");
    auto attached = bips::Consumer::attach(name, {}, 10s);
    if (!attached.ok())
        return fail(fd, attached.error().message);
    bips::Consumer &consumer = **attached;

    std::vector<Mapping> maps = mappings_of_file(bips::segment_path(name));
    std::vector<uint64_t> latencies;
    std::set<const std::byte *> addresses;
    uint64_t index = 0, first_burst_pts = 0;
    for (;; ++index) {
        auto frame = consumer.next(10s);
        const uint64_t now = monotonic_ns();
        if (!frame.ok()) {
            if (frame.code() != bips::Errc::EndOfStream)
                return fail(fd, "next(): " + frame.error().message);
            ev.burst_ns = first_burst_pts ? now - first_burst_pts : 0;
            break;
        }
        if (frame->info().flags & kFlagBurst) {
            ev.burst_frames++;
            if (!first_burst_pts)
                first_burst_pts = frame->info().pts;
        } else {
            ev.steady_frames++;
            latencies.push_back(now - frame->info().pts);
        }
        const std::byte *data = frame->data();
        addresses.insert(data);
        if (std::any_of(maps.begin(), maps.end(),
                        [&](const Mapping &m) { return m.contains(data, frame->size()); }))
            ev.in_file_mapping++;
        const auto span = consumer.data_mapping();
        const auto lo = reinterpret_cast<uintptr_t>(span.data());
        const auto at = reinterpret_cast<uintptr_t>(data);
        if (at >= lo && at <= lo + span.size() && frame->size() <= lo + span.size() - at)
            ev.in_data_mapping++;
        if (check(data, frame->size(), index))
            ev.pattern_ok++;
    }
    ev.distinct_addresses = addresses.size();
    // The mapping that holds the frames is the evidence worth printing.
    for (const Mapping &m : maps) {
        if (!addresses.empty() && m.contains(*addresses.begin(), 1)) {
            ev.mapping_found = 1;
            ev.mapped_file = {m.dev_major, m.dev_minor, m.inode};
            ev.read_only = m.perms.size() == 4 && m.perms[1] == '-' && m.perms[3] == 's';
            std::snprintf(ev.map_line, sizeof(ev.map_line), "%s", m.line.c_str());
        }
    }
    send_struct(fd, MsgKind::Stats, ev);
    send_message(fd, MsgKind::Samples, latencies.data(), latencies.size() * sizeof(uint64_t));
    return 0;
}

// The same notation as /proc/self/maps: hexadecimal major:minor.
std::string file_id_text(const FileId &id)
{
    char buf[96];
    std::snprintf(buf, sizeof(buf), "device %02llx:%02llx, inode %llu",
                  static_cast<unsigned long long>(id.dev_major),
                  static_cast<unsigned long long>(id.dev_minor),
                  static_cast<unsigned long long>(id.inode));
    return buf;
}

// A maps line with its column padding squeezed to single spaces.
std::string squeezed(const char *line)
{
    std::string out;
    for (const char *p = line; *p; ++p)
        if (*p != ' ' || out.empty() || out.back() != ' ')
            out += *p;
    return out;
}

// Prints the results and what they prove; false when a check failed.
bool report(const std::string &name, uint64_t slot_size, const Evidence &ev,
            std::vector<uint64_t> latencies)
{
    std::sort(latencies.begin(), latencies.end());
    const uint64_t total = ev.steady_frames + ev.burst_frames;
    const double fps =
        ev.burst_ns ? static_cast<double>(ev.burst_frames) * 1e9 / static_cast<double>(ev.burst_ns)
                    : 0;
    std::cout << "channel " << name << ": " << kSlots << " slots x " << format_bytes(slot_size)
              << ", one producer and one lossless consumer process\n"
              << "steady: " << ev.steady_frames << " frames at " << kSteadyHz << " Hz, latency p50 "
              << format_us(percentile(latencies, 50)) << " us, p99 "
              << format_us(percentile(latencies, 99)) << " us (publish to next() return)\n"
              << "burst:  " << ev.burst_frames << " frames flat out, " << format_rate(fps)
              << " frames/s ("
              << format_bytes(static_cast<uint64_t>(fps * static_cast<double>(slot_size)))
              << "/s of frame data, written and read in full)\n\n"
              << "zero-copy evidence:\n"
              << "  producer created " << bips::segment_path(name) << " ("
              << file_id_text(ev.producer_file) << ")\n";
    if (!ev.mapping_found) {
        std::cout << "  the consumer's frames are NOT inside any mapping of that file\n";
        return false;
    }
    const bool same = ev.mapped_file.dev_major == ev.producer_file.dev_major &&
                      ev.mapped_file.dev_minor == ev.producer_file.dev_minor &&
                      ev.mapped_file.inode == ev.producer_file.inode;
    auto mark = [](bool ok) { return ok ? "yes" : "NO"; };
    std::cout << "  consumer's /proc/self/maps: " << squeezed(ev.map_line) << "\n"
              << "  same device and inode as the producer's file: " << mark(same) << "\n"
              << "  frames whose data() lies in that mapping: " << ev.in_file_mapping << " of "
              << total << " (at " << ev.distinct_addresses << " distinct addresses, " << kSlots
              << " slots)\n"
              << "  frames inside Consumer::data_mapping(): " << ev.in_data_mapping << " of "
              << total << "\n"
              << "  frames holding every byte the producer wrote: " << ev.pattern_ok << " of "
              << total << "\n"
              << "  mapping is read-only and shared: " << mark(ev.read_only) << "\n\n";
    const bool proven = same && total > 0 && ev.in_file_mapping == total &&
                        ev.in_data_mapping == total && ev.pattern_ok == total &&
                        ev.distinct_addresses <= kSlots;
    if (proven)
        std::cout << "Proven: the consumer read all " << total << " frames in place, in the "
                  << "producer's shared-memory file, through\na read-only mapping; each frame "
                     "held the producer's bytes. No frame was copied between the processes.\n";
    else
        std::cout << "NOT proven: at least one check above failed.\n";
    return proven;
}

} // namespace

int cmd_demo(const std::vector<std::string_view> &argv)
{
    auto args = parse_args(argv, kOptions);
    if (!args.ok())
        return usage_error("demo", args.error().message);
    if (args->help) {
        print_help();
        return kExitOk;
    }
    if (!args->positionals.empty())
        return usage_error("demo", "unexpected argument '" + args->positionals[0] + "'");
    auto frames = parse_count("frames", args->get("frames", "480"), 1, 1000000);
    if (!frames.ok())
        return usage_error("demo", frames.error().message);
    auto slot_size = parse_size(args->get("slot-size", "1080p-rgba"));
    if (!slot_size.ok())
        return usage_error("demo", "--slot-size: " + slot_size.error().message);
    if (*slot_size == 0)
        return usage_error("demo", "--slot-size must be at least 1 byte");

    install_interrupt_handler();
    const std::string name = "demo-" + std::to_string(::getpid());
    int peer[2];
    if (::pipe(peer) != 0)
        return runtime_error("demo", std::string("pipe: ") + std::strerror(errno));

    ChannelSweeper sweeper(name);
    Supervisor sup;
    using Clock = Supervisor::Clock;
    auto producer = sup.spawn("producer", [&](int fd) {
        ::close(peer[0]);
        return producer_main(fd, peer[1], name, *slot_size, *frames);
    });
    Result<Child *> consumer =
        make_error(Errc::Timeout, "the producer did not create the channel within 10 s");
    if (producer.ok() && sup.wait_for(**producer, MsgKind::Ready, Clock::now() + 10s))
        consumer = sup.spawn("consumer", [&](int fd) {
            ::close(peer[1]);
            return consumer_main(fd, peer[0], name);
        });
    ::close(peer[0]);
    ::close(peer[1]);
    if (!producer.ok())
        return runtime_error("demo", producer.error().message);
    const auto bound = std::chrono::seconds(60 + *frames * *slot_size / 50'000'000);
    const bool finished = consumer.ok() && sup.wait_all(Clock::now() + bound);
    if (!finished)
        sup.kill_all();
    if (interrupted())
        return runtime_error("demo", "interrupted; stopped the producer and consumer");
    // Processes that failed on their own explain more than the ones killed.
    std::string failed, killed;
    for (Child *c : sup.children())
        if (std::string why = c->failure(); !why.empty())
            (c->failed() ? failed : killed) += "\n  " + why;
    if (!failed.empty())
        return runtime_error("demo", "failed:" + failed);
    if (!consumer.ok())
        return runtime_error("demo", consumer.error().message);
    if (!finished)
        return runtime_error("demo", "did not finish within " + std::to_string(bound.count()) +
                                         " s:" + killed);
    Evidence ev;
    const Message *stats = (*consumer)->find(MsgKind::Stats);
    const Message *samples = (*consumer)->find(MsgKind::Samples);
    if (!stats || !read_struct(*stats, ev) || !samples)
        return runtime_error("demo", "the consumer sent no results");
    std::vector<uint64_t> latencies(samples->payload.size() / sizeof(uint64_t));
    std::memcpy(latencies.data(), samples->payload.data(), latencies.size() * sizeof(uint64_t));
    return report(name, *slot_size, ev, std::move(latencies)) ? kExitOk : kExitRuntime;
}

} // namespace bips::tool
