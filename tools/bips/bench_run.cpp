// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: one benchmark phase across a producer and consumer processes.
#include "bench.h"
#include "children.h"
#include "timing.h"

#include <bips/consumer.h>
#include <bips/producer.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace bips::tool {

namespace {

using namespace std::chrono_literals;

constexpr auto kAttachTimeout = 10s;                    // consumers attaching, producer waiting
constexpr auto kFrameTimeout = 10s;                     // one acquire() or next()
constexpr uint64_t kStampMagic = 0x48434e4542535049ull; // "IPSBENCH"

// The first 64 bytes of every frame. The consumer copies it out of the
// read-only slot before looking at it (the slot is shared memory).
struct FrameStamp {
    uint64_t magic;
    uint64_t index;    // the producer's frame counter in this phase
    uint64_t stamp_ns; // CLOCK_MONOTONIC right before publish (paced phase)
    uint64_t start_ns; // CLOCK_MONOTONIC when the producer started the phase
    uint64_t size;     // frame size the producer published
    uint64_t check;    // mix of the fields above
    uint64_t reserved[2];
};
static_assert(sizeof(FrameStamp) == kBenchHeaderSize);

uint64_t stamp_check(const FrameStamp &s)
{
    uint64_t h = s.magic ^ (s.index * 0x9e3779b97f4a7c15ull);
    h ^= (s.stamp_ns + 0x632be59bd9b4e019ull) * 0xff51afd7ed558ccdull;
    h ^= s.start_ns * 0xc4ceb9fe1a85ec53ull;
    return h ^ s.size;
}

// The byte a full-touch frame is filled with after its header.
uint8_t fill_byte(uint64_t index)
{
    return static_cast<uint8_t>(index * 131 + 7);
}

// Wrapping sum of the 64-bit words (then the tail bytes) of a range: the
// consumer's full read of a frame, checkable against expected_sum().
uint64_t sum_range(const std::byte *p, uint64_t size)
{
    uint64_t sum = 0;
    uint64_t words = size / 8;
    for (uint64_t i = 0; i < words; ++i) {
        uint64_t w;
        std::memcpy(&w, p + i * 8, 8);
        sum += w;
    }
    for (uint64_t i = words * 8; i < size; ++i)
        sum += static_cast<uint8_t>(p[i]);
    return sum;
}

uint64_t expected_sum(uint8_t byte, uint64_t size)
{
    return (size / 8) * (byte * 0x0101010101010101ull) + (size % 8) * byte;
}

struct ProducerWire {
    uint64_t published;
    uint64_t elapsed_ns;
};

struct ConsumerWire {
    uint32_t policy;
    uint32_t reserved;
    uint64_t received;
    uint64_t skipped;
    uint64_t elapsed_ns;
};

// Reports `message` to the parent; the child's exit status is the result.
int fail(int fd, const std::string &message)
{
    send_error(fd, message);
    return 1;
}

std::string frame_error(uint64_t index, const bips::Error &e)
{
    return "frame " + std::to_string(index) + ": " + e.message + " (" + bips::errc_name(e.code) +
           ")";
}

int producer_main(int fd, const BenchConfig &cfg, bool paced, const std::string &name)
{
    bips::ProducerOptions opts;
    opts.slot_count = cfg.slots;
    opts.slot_size = cfg.slot_size;
    opts.max_consumers = std::max<uint32_t>(16, static_cast<uint32_t>(cfg.consumers.size()));
    auto created = bips::Producer::create(name, opts);
    if (!created.ok())
        return fail(fd, created.error().message);
    bips::Producer &producer = **created;
    send_message(fd, MsgKind::Ready, nullptr, 0);

    // Consumers attach before the first frame, so every one sees all of them.
    const auto wanted = static_cast<uint32_t>(cfg.consumers.size());
    const uint64_t attach_deadline = monotonic_ns() + 10'000'000'000ull;
    while (producer.consumer_count() < wanted) {
        if (monotonic_ns() > attach_deadline)
            return fail(fd, std::to_string(producer.consumer_count()) + " of " +
                                std::to_string(wanted) + " consumers attached within 10 s");
        ::usleep(200);
    }

    const uint64_t frames = paced ? cfg.latency_frames : cfg.frames;
    const uint64_t period_ns = paced ? static_cast<uint64_t>(1e9 / cfg.rate_hz) : 0;
    const uint64_t start = monotonic_ns();
    for (uint64_t i = 0; i < frames; ++i) {
        if (paced)
            sleep_until_ns(start + i * period_ns);
        auto slot = producer.acquire(kFrameTimeout);
        if (!slot.ok())
            return fail(fd, "acquire " + frame_error(i, slot.error()));
        if (cfg.touch == Touch::Full)
            std::memset(slot->data + kBenchHeaderSize, fill_byte(i),
                        cfg.slot_size - kBenchHeaderSize);
        FrameStamp stamp{kStampMagic, i, 0, start, cfg.slot_size, 0, {0, 0}};
        bips::FrameInfo info;
        info.size = cfg.slot_size;
        if (paced) {
            stamp.stamp_ns = monotonic_ns();
            info.pts = stamp.stamp_ns;
        }
        stamp.check = stamp_check(stamp);
        std::memcpy(slot->data, &stamp, sizeof(stamp));
        if (auto r = producer.publish(*slot, info); !r.ok())
            return fail(fd, "publish " + frame_error(i, r.error()));
    }
    producer.end_of_stream();
    ProducerWire wire{frames, monotonic_ns() - start};
    send_struct(fd, MsgKind::Stats, wire);
    return 0;
}

// Checks one frame; returns a description of the first problem, or "".
std::string verify(const bips::Frame &frame, const FrameStamp &s, const BenchConfig &cfg,
                   bips::Policy policy, uint64_t prev_index, bool first, bool paced)
{
    if (frame.size() != cfg.slot_size)
        return "size " + std::to_string(frame.size()) + ", expected " +
               std::to_string(cfg.slot_size);
    if (s.magic != kStampMagic || s.check != stamp_check(s) || s.size != cfg.slot_size)
        return "the bench header in the slot is not what the producer wrote";
    if (paced && frame.info().pts != s.stamp_ns)
        return "pts does not match the stamp in the slot";
    if (!first && s.index <= prev_index)
        return "frame " + std::to_string(s.index) + " after frame " + std::to_string(prev_index);
    if (policy == bips::Policy::Lossless && s.index != (first ? 0 : prev_index + 1))
        return "lossless consumer got frame " + std::to_string(s.index) + " after " +
               (first ? std::string("none") : std::to_string(prev_index));
    if (cfg.touch == Touch::Full) {
        uint64_t body = cfg.slot_size - kBenchHeaderSize;
        if (sum_range(frame.data() + kBenchHeaderSize, body) !=
            expected_sum(fill_byte(s.index), body))
            return "frame " + std::to_string(s.index) + " content differs from what was written";
    }
    return {};
}

int consumer_main(int fd, const BenchConfig &cfg, bool paced, const std::string &name,
                  bips::Policy policy)
{
    bips::ConsumerOptions opts;
    opts.policy = policy;
    opts.spin = cfg.spin;
    opts.anticipate = cfg.anticipate;
    auto attached = bips::Consumer::attach(name, opts, kAttachTimeout);
    if (!attached.ok())
        return fail(fd, attached.error().message);
    bips::Consumer &consumer = **attached;

    std::vector<uint64_t> samples;
    if (paced)
        samples.reserve(cfg.latency_frames);
    uint64_t received = 0, prev_index = 0, start_ns = 0;
    for (;;) {
        auto frame = consumer.next(kFrameTimeout);
        const uint64_t now = monotonic_ns();
        if (!frame.ok()) {
            if (frame.code() == bips::Errc::EndOfStream)
                break;
            return fail(fd, "next() after " + std::to_string(received) + " frames: " +
                                frame.error().message + " (" + bips::errc_name(frame.code()) + ")");
        }
        if (paced)
            samples.push_back(now - frame->info().pts);
        FrameStamp s;
        std::memcpy(&s, frame->data(), sizeof(s));
        std::string bad = verify(*frame, s, cfg, policy, prev_index, received == 0, paced);
        if (!bad.empty())
            return fail(fd, "frame check failed: " + bad);
        prev_index = s.index;
        start_ns = s.start_ns;
        ++received;
    }
    const uint64_t end_ns = monotonic_ns();
    ConsumerWire wire{static_cast<uint32_t>(policy), 0, received, consumer.skipped(),
                      start_ns && end_ns > start_ns ? end_ns - start_ns : 0};
    send_struct(fd, MsgKind::Stats, wire);
    if (paced)
        send_message(fd, MsgKind::Samples, samples.data(), samples.size() * sizeof(uint64_t));
    return 0;
}

// A generous bound for the whole phase: start-up, the paced time, a slow
// 20 us per frame, and the bytes touched at 200e6 bytes (190.7 MiB) per second.
std::chrono::seconds phase_bound(const BenchConfig &cfg, bool paced)
{
    double frames = static_cast<double>(paced ? cfg.latency_frames : cfg.frames);
    double bytes = cfg.touch == Touch::Full ? static_cast<double>(cfg.slot_size) : 64.0;
    double processes = static_cast<double>(cfg.consumers.size() + 1);
    double s = 30 + frames * 20e-6 + frames * bytes * processes / 200e6;
    if (paced)
        s += frames / cfg.rate_hz;
    return std::chrono::seconds(static_cast<int64_t>(s));
}

// What went wrong, one clause per process: the processes that failed on
// their own, else (after a timeout) the ones that had to be killed.
std::string failures_of(Supervisor &sup)
{
    std::string failed, killed;
    for (Child *c : sup.children()) {
        std::string &text = c->failed() ? failed : killed;
        if (std::string f = c->failure(); !f.empty())
            text += (text.empty() ? "" : "; ") + f;
    }
    return failed.empty() ? killed : failed;
}

} // namespace

Result<PhaseResult> run_phase(const BenchConfig &cfg, bool paced, const std::string &channel)
{
    // Destroyed after `sup`, i.e. after every child is dead.
    ChannelSweeper sweeper(channel);
    Supervisor sup;
    using Clock = Supervisor::Clock;

    auto producer =
        sup.spawn("producer", [&](int fd) { return producer_main(fd, cfg, paced, channel); });
    if (!producer.ok())
        return producer.error();
    if (!sup.wait_for(**producer, MsgKind::Ready, Clock::now() + kAttachTimeout)) {
        sup.kill_all();
        std::string why = failures_of(sup);
        return make_error(Errc::System,
                          why.empty() ? "producer: did not create the channel within 10 s" : why);
    }
    for (std::size_t i = 0; i < cfg.consumers.size(); ++i) {
        bips::Policy policy = cfg.consumers[i];
        std::string role =
            "consumer " + std::to_string(i + 1) + " (" + bips::policy_name(policy) + ")";
        auto c = sup.spawn(std::move(role),
                           [&](int fd) { return consumer_main(fd, cfg, paced, channel, policy); });
        if (!c.ok())
            return c.error();
    }

    const auto bound = phase_bound(cfg, paced);
    const bool finished = sup.wait_all(Clock::now() + bound);
    if (interrupted())
        return make_error(Errc::System, "interrupted; stopped the producer and consumers");
    auto children = sup.children();
    if (std::any_of(children.begin(), children.end(), [](Child *c) { return c->failed(); }))
        return make_error(Errc::System, failures_of(sup));
    if (!finished)
        return make_error(Errc::Timeout, std::string(paced ? "latency" : "throughput") +
                                             " phase did not end within " +
                                             std::to_string(bound.count()) +
                                             " s: " + failures_of(sup));

    PhaseResult result;
    ProducerWire pw{};
    if (const Message *m = children[0]->find(MsgKind::Stats); !m || !read_struct(*m, pw))
        return make_error(Errc::System, "producer: sent no counters");
    result.published = pw.published;
    result.producer_elapsed_ns = pw.elapsed_ns;
    for (std::size_t i = 1; i < children.size(); ++i) {
        ConsumerWire cw{};
        if (const Message *m = children[i]->find(MsgKind::Stats); !m || !read_struct(*m, cw))
            return make_error(Errc::System, children[i]->role + ": sent no counters");
        result.consumers.push_back(
            {static_cast<bips::Policy>(cw.policy), cw.received, cw.skipped, cw.elapsed_ns});
        if (const Message *m = children[i]->find(MsgKind::Samples)) {
            std::size_t n = m->payload.size() / sizeof(uint64_t);
            std::size_t old = result.latencies_ns.size();
            result.latencies_ns.resize(old + n);
            std::memcpy(result.latencies_ns.data() + old, m->payload.data(), n * sizeof(uint64_t));
        }
    }
    return result;
}

} // namespace bips::tool
