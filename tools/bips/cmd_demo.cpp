// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: `bips demo`, a producer and a consumer process that prove zero copy.
#include "children.h"
#include "cli.h"
#include "commands.h"
#include "proc_maps.h"
#include "timing.h"

#include <bips/consumer.h>
#include <bips/producer.h>

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <set>

namespace bips::tool {

namespace {

using namespace std::chrono_literals;

constexpr uint32_t kSlots = 4; // 4 x 1080p RGBA: 31.7 MiB of shared memory
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
                 "lies in the consumer's read-only mapping of the very memory the producer\n"
                 "created (the memfd it hands over the channel's socket), at the offset of\n"
                 "the slot the producer wrote, and holds the bytes the producer wrote.\n\n";
    print_options(std::cout, kOptions);
}

// The channel's memory as the producer sees it in its own /proc/self/maps:
// the identity of the memory object (a memfd has a device and an inode like
// a file, but no name in any folder) and where each slot lies in it.
struct MemoryId {
    uint64_t dev_major = 0, dev_minor = 0, inode = 0;
    uint64_t slot_offset[kSlots] = {}; // byte offset of each slot in the memfd
    char map_line[256] = {};           // the producer's maps line
};

// What the consumer found; sent to the parent in one piece.
struct Evidence {
    uint64_t steady_frames = 0, burst_frames = 0;
    uint64_t burst_ns = 0;           // first burst stamp to end-of-stream
    uint64_t in_producer_memory = 0; // data() in a read-only mapping of the producer's memfd
    uint64_t at_slot_offset = 0;     // ... at the offset where the producer wrote that slot
    uint64_t in_data_mapping = 0;    // data() inside Consumer::data_mapping()
    uint64_t pattern_ok = 0;         // every byte as the producer wrote it
    uint64_t distinct_addresses = 0;
    MemoryId producer{}; // as the producer sent it
    uint64_t mapped_dev_major = 0, mapped_dev_minor = 0, mapped_inode = 0;
    uint32_t mapping_found = 0, read_only = 0, named = 0;
    char map_line[256] = {}; // the consumer's maps line
};

// How the kernel names the mapping of the channel's memfd in /proc/*/maps.
std::string memfd_map_name(const std::string &name)
{
    return "/memfd:bips-" + name + " (deleted)";
}

bool same_memory(const Mapping &m, const MemoryId &id)
{
    return m.dev_major == id.dev_major && m.dev_minor == id.dev_minor && m.inode == id.inode;
}

// "r--s": readable, not writable, shared with other processes.
bool read_only_shared(const Mapping &m)
{
    return m.perms.size() == 4 && m.perms[0] == 'r' && m.perms[1] == '-' && m.perms[3] == 's';
}

// Offset in the mapped object of the byte at `p`, which `m` contains.
uint64_t object_offset(const Mapping &m, const void *p)
{
    return m.offset + (reinterpret_cast<uintptr_t>(p) - m.start);
}

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

    // The memory the producer writes its slots into, as its own
    // /proc/self/maps shows it: the consumer has to find this very memory
    // object (same device and inode) behind every frame it reads.
    const auto mapping = mapping_containing(producer.slot_data(0), slot_size);
    if (!mapping)
        return fail(fd, "slot 0 is not inside any mapping in /proc/self/maps (is /proc mounted?)");
    if (mapping->path != memfd_map_name(name))
        return fail(fd, "slot 0 lies in a mapping of '" + mapping->path + "', not of the memfd '" +
                            memfd_map_name(name) + "': " + mapping->line);
    MemoryId id;
    id.dev_major = mapping->dev_major;
    id.dev_minor = mapping->dev_minor;
    id.inode = mapping->inode;
    for (uint32_t i = 0; i < kSlots; ++i) {
        if (!mapping->contains(producer.slot_data(i), slot_size))
            return fail(fd, "slot " + std::to_string(i) + " is not in the mapping of slot 0");
        id.slot_offset[i] = object_offset(*mapping, producer.slot_data(i));
    }
    std::snprintf(id.map_line, sizeof(id.map_line), "%s", mapping->line.c_str());
    send_struct(fd, MsgKind::Ready, id);
    if (::write(peer_fd, &id, sizeof(id)) != static_cast<ssize_t>(sizeof(id)))
        return fail(fd, "could not send the memory identity to the consumer");

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

// Reads the producer's MemoryId from the pipe, waiting at most 10 s.
bool read_memory_id(int peer_fd, MemoryId &id)
{
    pollfd p{peer_fd, POLLIN, 0};
    return ::poll(&p, 1, 10000) == 1 && ::read(peer_fd, &id, sizeof(id)) == sizeof(id);
}

int consumer_main(int fd, int peer_fd, const std::string &name)
{
    Evidence ev;
    if (!read_memory_id(peer_fd, ev.producer))
        return fail(fd, "the producer did not send the identity of its memory");
    auto attached = bips::Consumer::attach(name, {}, 10s);
    if (!attached.ok())
        return fail(fd, attached.error().message);
    bips::Consumer &consumer = **attached;

    // The mappings found so far that hold frames; /proc/self/maps is read
    // again only for a frame outside all of them (normally once in all).
    std::vector<Mapping> maps;
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
        auto held = std::find_if(maps.begin(), maps.end(), [&](const Mapping &m) {
            return m.contains(data, frame->size());
        });
        if (held == maps.end()) {
            if (auto found = mapping_containing(data, frame->size()))
                held = maps.insert(maps.end(), std::move(*found));
        }
        if (held != maps.end() && same_memory(*held, ev.producer) && read_only_shared(*held) &&
            held->path == memfd_map_name(name)) {
            ev.in_producer_memory++;
            if (frame->slot() < kSlots &&
                object_offset(*held, data) == ev.producer.slot_offset[frame->slot()])
                ev.at_slot_offset++;
        }
        const auto span = consumer.data_mapping();
        const auto lo = reinterpret_cast<uintptr_t>(span.data());
        const auto at = reinterpret_cast<uintptr_t>(data);
        if (at >= lo && at <= lo + span.size() && frame->size() <= lo + span.size() - at)
            ev.in_data_mapping++;
        if (check(data, frame->size(), index))
            ev.pattern_ok++;
    }
    ev.distinct_addresses = addresses.size();
    // The mapping that holds the first frame is the evidence worth printing.
    for (const Mapping &m : maps) {
        if (!addresses.empty() && m.contains(*addresses.begin(), 1)) {
            ev.mapping_found = 1;
            ev.mapped_dev_major = m.dev_major;
            ev.mapped_dev_minor = m.dev_minor;
            ev.mapped_inode = m.inode;
            ev.read_only = read_only_shared(m);
            ev.named = m.path == memfd_map_name(name);
            std::snprintf(ev.map_line, sizeof(ev.map_line), "%s", m.line.c_str());
        }
    }
    send_struct(fd, MsgKind::Stats, ev);
    send_message(fd, MsgKind::Samples, latencies.data(), latencies.size() * sizeof(uint64_t));
    return 0;
}

// The same notation as /proc/self/maps: hexadecimal major:minor.
std::string memory_id_text(uint64_t dev_major, uint64_t dev_minor, uint64_t inode)
{
    char buf[96];
    std::snprintf(buf, sizeof(buf), "device %02llx:%02llx, inode %llu",
                  static_cast<unsigned long long>(dev_major),
                  static_cast<unsigned long long>(dev_minor),
                  static_cast<unsigned long long>(inode));
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
              << "  producer's /proc/self/maps: " << squeezed(ev.producer.map_line) << "\n"
              << "    (the memfd it created and hands to consumers over " << bips::channel_path(name)
              << "; " << memory_id_text(ev.producer.dev_major, ev.producer.dev_minor,
                                        ev.producer.inode)
              << ")\n";
    if (!ev.mapping_found) {
        std::cout << "  the consumer's frames are NOT inside any mapping it could find\n";
        return false;
    }
    const bool same = ev.mapped_dev_major == ev.producer.dev_major &&
                      ev.mapped_dev_minor == ev.producer.dev_minor &&
                      ev.mapped_inode == ev.producer.inode;
    auto mark = [](bool ok) { return ok ? "yes" : "NO"; };
    std::cout << "  consumer's /proc/self/maps: " << squeezed(ev.map_line) << "\n"
              << "  same device and inode as the producer's memory: " << mark(same) << "\n"
              << "  it maps the memfd bips-" << name << ": " << mark(ev.named) << "\n"
              << "  mapping is read-only and shared: " << mark(ev.read_only) << "\n"
              << "  frames whose data() lies in such a mapping: " << ev.in_producer_memory
              << " of " << total << " (at " << ev.distinct_addresses << " distinct addresses, "
              << kSlots << " slots)\n"
              << "  ... at the offset where the producer wrote that slot: " << ev.at_slot_offset
              << " of " << total << "\n"
              << "  frames inside Consumer::data_mapping(): " << ev.in_data_mapping << " of "
              << total << "\n"
              << "  frames holding every byte the producer wrote: " << ev.pattern_ok << " of "
              << total << "\n\n";
    const bool proven = same && ev.named && ev.read_only && total > 0 &&
                        ev.in_producer_memory == total && ev.at_slot_offset == total &&
                        ev.in_data_mapping == total && ev.pattern_ok == total &&
                        ev.distinct_addresses <= kSlots;
    if (proven)
        std::cout << "Proven: the consumer read all " << total << " frames in place, in the very "
                  << "memory the producer created\n(the memfd bips-" << name
                  << ", handed over the channel's socket), through a read-only\nmapping; each "
                     "frame held the producer's bytes. No frame was copied between the\n"
                     "processes.\n";
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
