// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: `bips bench`, throughput and latency of channels across processes.
#include "bench.h"
#include "bench_floor.h"
#include "children.h"
#include "cli.h"
#include "commands.h"
#include "timing.h"

#include <bips/producer.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

namespace bips::tool {

namespace {

constexpr int kRepetitions = 3;
constexpr uint64_t kDefaultFrames = 200000;
// Full-touch runs write and read the whole frame; this many bytes per run
// keeps a 4k-rgba row to about 10 s (194 frames of 31.6 MiB, 3 runs).
constexpr uint64_t kFullTouchBytes = 6ull << 30;
// Full-touch latency runs are paced so the producer can keep up: at most
// this many bytes per second, 953.7 MiB (30 Hz at 4k-rgba, 120 Hz at
// 1080p-rgba).
constexpr double kFullTouchRate = 1e9;

const std::vector<OptionSpec> kOptions = {
    {"slot-size", "SIZE", "bytes per slot: 65536, 64k, 8M, 1080p-rgba, 4k-rgba (default 64)"},
    {"slots", "N", "slots in the channel, 2..1024 (default 8)"},
    {"consumers", "N", "consumer processes, 1..16 (default 1)"},
    {"policy", "POLICY", "lossless or latest, for every consumer (default lossless)"},
    {"frames", "N",
     "frames per throughput run (default 200000; with --touch full\n"
     "6 GiB worth, at least 100: 194 at 4k-rgba)"},
    {"latency-frames", "N", "frames of the latency phase (default 2 s worth at --rate)"},
    {"rate", "HZ",
     "pace of the latency phase, 1..100000 (default 1000; with --touch\n"
     "full at most 953.7 MiB/s worth: 30 at 4k-rgba)"},
    {"spin-us", "N", "consumers busy-wait this long before sleeping (default 0)"},
    {"anticipate-us", "N",
     "consumers wake this long before a paced frame is due and busy-wait (default 0)"},
    {"touch", "WHAT", "header: 64 bytes per frame (default); full: the whole frame"},
    {"matrix", "",
     "the standard set: 64 B and 4k-rgba, each with 1 lossless,\n"
     "1 latest, and 2 consumers (lossless + latest)"},
};

void print_help()
{
    std::cout << "Usage: bips bench [OPTIONS]\n"
                 "Forks a producer process and consumer processes on a fresh channel and\n"
                 "prints one table row per configuration:\n"
                 "  frames/s   frames each consumer received per second while the producer\n"
                 "             published flat out (median of 3 runs); one figure per\n"
                 "             consumer, in the order of the policy column\n"
                 "  p50/p99/max  microseconds from the producer's CLOCK_MONOTONIC stamp,\n"
                 "             taken right before publish, to the return of next(), with\n"
                 "             the producer paced at --rate; over all consumers\n"
                 "  skipped    frames a latest consumer skipped (median run)\n"
                 "Consumers block in next(); the channel is removed afterwards, even when\n"
                 "a process crashes or the run times out.\n\n";
    print_options(std::cout, kOptions);
}

// Reads the options into one row, or the matrix rows. Returns the usage
// error's message on failure.
Result<std::vector<BenchConfig>> make_plan(const Args &args)
{
    std::vector<BenchConfig> rows;
    BenchConfig base;
    if (args.has("slot-size")) {
        auto size = parse_size(args.get("slot-size"));
        if (!size.ok())
            return make_error(Errc::InvalidArgument, "--slot-size: " + size.error().message);
        if (*size < kBenchHeaderSize)
            return make_error(Errc::InvalidArgument,
                              "--slot-size must be at least 64 bytes: every frame carries a "
                              "64-byte bench header");
        base.slot_size = *size;
    }
    if (args.has("slots")) {
        auto n = parse_count("slots", args.get("slots"), bips::kMinSlotCount,
                             bips::kMaxSlotCount);
        if (!n.ok())
            return n.error();
        base.slots = static_cast<uint32_t>(*n);
    }
    bips::Policy policy = bips::Policy::Lossless;
    if (std::string_view p = args.get("policy", "lossless"); p == "latest")
        policy = bips::Policy::Latest;
    else if (p != "lossless")
        return make_error(Errc::InvalidArgument, "--policy: '" + std::string(p) +
                                                     "' is not a policy; give lossless or latest");
    uint64_t consumers = 1;
    if (args.has("consumers")) {
        auto n = parse_count("consumers", args.get("consumers"), 1, 16);
        if (!n.ok())
            return n.error();
        consumers = *n;
    }
    base.consumers.assign(consumers, policy);
    if (args.has("rate")) {
        auto r = parse_number("rate", args.get("rate"), 1, 100000);
        if (!r.ok())
            return r.error();
        base.rate_hz = *r;
    }
    if (args.has("spin-us")) {
        auto n = parse_count("spin-us", args.get("spin-us"), 0, 1000000);
        if (!n.ok())
            return n.error();
        base.spin = std::chrono::microseconds(*n);
    }
    if (args.has("anticipate-us")) {
        auto n = parse_count("anticipate-us", args.get("anticipate-us"), 0, 1000000);
        if (!n.ok())
            return n.error();
        base.anticipate = std::chrono::microseconds(*n);
    }
    if (std::string_view t = args.get("touch", "header"); t == "full")
        base.touch = Touch::Full;
    else if (t != "header")
        return make_error(Errc::InvalidArgument,
                          "--touch: '" + std::string(t) + "' is not known; give header or full");
    if (args.has("frames")) {
        auto n = parse_count("frames", args.get("frames"), 1, 1000000000);
        if (!n.ok())
            return n.error();
        base.frames = *n;
    }
    if (args.has("latency-frames")) {
        auto n = parse_count("latency-frames", args.get("latency-frames"), 1, 10000000);
        if (!n.ok())
            return n.error();
        base.latency_frames = *n;
    }

    if (!args.has("matrix")) {
        rows.push_back(base);
    } else {
        for (const char *name : {"slot-size", "consumers", "policy"})
            if (args.has(name))
                return make_error(
                    Errc::InvalidArgument,
                    "--matrix sets slot sizes, consumers and policies itself; drop --" +
                        std::string(name) + " or --matrix");
        using P = bips::Policy;
        for (uint64_t size : {uint64_t{64}, uint64_t{3840} * 2160 * 4}) {
            for (auto set : {std::vector<P>{P::Lossless}, std::vector<P>{P::Latest},
                             std::vector<P>{P::Lossless, P::Latest}}) {
                BenchConfig row = base;
                row.slot_size = size;
                row.consumers = set;
                rows.push_back(row);
            }
        }
    }
    // Defaults that depend on the row's slot size.
    for (auto &row : rows) {
        const bool full = row.touch == Touch::Full;
        if (!args.has("frames"))
            row.frames =
                full ? std::clamp<uint64_t>(kFullTouchBytes / row.slot_size, 100, kDefaultFrames)
                     : kDefaultFrames;
        if (!args.has("rate") && full)
            row.rate_hz = std::clamp(
                std::floor(kFullTouchRate / static_cast<double>(row.slot_size)), 1.0, row.rate_hz);
        if (!args.has("latency-frames"))
            row.latency_frames =
                std::clamp<uint64_t>(static_cast<uint64_t>(row.rate_hz * 2), 60, 5000);
    }
    return rows;
}

template <typename T>
std::string joined(const std::vector<T> &items, const auto &format)
{
    std::string text;
    for (const auto &item : items)
        text += (text.empty() ? "" : "/") + format(item);
    return text;
}

// "lossless", "latest" or "lossless/latest": one word per consumer.
std::string policies(const BenchConfig &row)
{
    return joined(row.consumers, [](bips::Policy p) { return std::string(bips::policy_name(p)); });
}

// "64 B, 2 consumers (lossless/latest)", for progress and error messages.
std::string describe(const BenchConfig &row)
{
    const std::size_t n = row.consumers.size();
    return format_bytes(row.slot_size) + ", " + std::to_string(n) +
           (n == 1 ? " consumer (" : " consumers (") + policies(row) + ")";
}

// Runs the phases of one row and adds its table line. Returns the error of
// the first phase that failed.
Result<void> run_row(const BenchConfig &row, unsigned &run_number, Table &table)
{
    const bool tty = ::isatty(STDERR_FILENO);
    auto next_channel = [&] {
        return "bench-" + std::to_string(::getpid()) + "-" + std::to_string(run_number++);
    };
    // Per consumer: (frames/s, skipped) of each repetition.
    std::vector<std::vector<std::pair<double, uint64_t>>> runs(row.consumers.size());
    for (int rep = 0; rep < kRepetitions; ++rep) {
        if (tty)
            std::cerr << "bench: " << describe(row) << ": throughput run " << rep + 1 << "/"
                      << kRepetitions << "\n";
        auto phase = run_phase(row, false, next_channel());
        if (!phase.ok())
            return phase.error();
        for (std::size_t i = 0; i < row.consumers.size(); ++i)
            runs[i].emplace_back(phase->consumers[i].frames_per_s(), phase->consumers[i].skipped);
    }
    if (tty)
        std::cerr << "bench: " << describe(row) << ": latency, " << row.latency_frames
                  << " frames at " << row.rate_hz << " Hz\n";
    auto latency = run_phase(row, true, next_channel());
    if (!latency.ok())
        return latency.error();

    std::vector<std::pair<double, uint64_t>> medians;
    for (auto &r : runs) {
        std::sort(r.begin(), r.end());
        medians.push_back(r[r.size() / 2]);
    }
    auto &samples = latency->latencies_ns;
    std::sort(samples.begin(), samples.end());
    table.add_row({format_bytes(row.slot_size), std::to_string(row.slots),
                   std::to_string(row.consumers.size()), policies(row),
                   joined(medians, [](const auto &m) { return format_rate(m.first); }),
                   format_us(percentile(samples, 50)), format_us(percentile(samples, 99)),
                   format_us(samples.empty() ? 0 : samples.back()),
                   joined(medians, [](const auto &m) { return std::to_string(m.second); })});
    return {};
}

// What the rows were run with, under the table: one clause per slot size
// when the defaults differ between them.
void print_notes(const std::vector<BenchConfig> &rows)
{
    std::vector<std::pair<uint64_t, std::string>> items; // slot size, settings
    for (const BenchConfig &r : rows) {
        char rate[32];
        std::snprintf(rate, sizeof(rate), "%g", r.rate_hz);
        std::string item = std::to_string(r.frames) + " frames x " + std::to_string(kRepetitions) +
                           " for frames/s, " + std::to_string(r.latency_frames) + " at " + rate +
                           " Hz for latency";
        if (items.empty() || items.back().second != item)
            items.emplace_back(r.slot_size, std::move(item));
    }
    std::string text = items.front().second;
    if (items.size() > 1) {
        text.clear();
        for (const auto &[size, item] : items)
            text += (text.empty() ? "" : "; ") + format_bytes(size) + ": " + item;
    }
    const BenchConfig &first = rows.front();
    std::cout << "\n"
              << text << "\ntouch " << (first.touch == Touch::Full ? "full" : "header")
              << ", consumer spin " << first.spin.count() / 1000 << " us, anticipate "
              << first.anticipate.count() / 1000 << " us, "
              << ::sysconf(_SC_NPROCESSORS_ONLN) << " CPUs online\n";
}

// The peer measured in the same run: what a bare futex hand-over between
// two processes costs on this machine, paced like the latency phase.
void print_floor(const BenchConfig &row)
{
    auto floor = measure_futex_floor(row.rate_hz, row.latency_frames);
    if (!floor.ok()) {
        std::cout << "latency floor: not measured (" << floor.error().message << ")\n";
        return;
    }
    char line[160];
    std::snprintf(line, sizeof(line),
                  "latency floor: a bare futex wake-up between two processes, same pacing: "
                  "p50 %.1f us, p99 %.1f us\n",
                  double(percentile(*floor, 50)) / 1e3, double(percentile(*floor, 99)) / 1e3);
    std::cout << line;
}

} // namespace

int cmd_bench(const std::vector<std::string_view> &argv)
{
    auto args = parse_args(argv, kOptions);
    if (!args.ok())
        return usage_error("bench", args.error().message);
    if (args->help) {
        print_help();
        return kExitOk;
    }
    if (!args->positionals.empty())
        return usage_error("bench", "unexpected argument '" + args->positionals[0] +
                                        "'; bench takes only options");
    auto plan = make_plan(*args);
    if (!plan.ok())
        return usage_error("bench", plan.error().message);

    install_interrupt_handler();
    Table table({"SLOT SIZE", "SLOTS", "CONSUMERS", "POLICY", "FRAMES/S", "P50 US", "P99 US",
                 "MAX US", "SKIPPED"},
                {true, true, true, false, true, true, true, true, true});
    unsigned run_number = 0;
    for (const auto &row : *plan) {
        if (auto r = run_row(row, run_number, table); !r.ok()) {
            if (!table.empty())
                table.print(std::cout);
            return runtime_error("bench", describe(row) + ": " + r.error().message);
        }
    }
    table.print(std::cout);
    print_notes(*plan);
    print_floor(plan->front());
    return kExitOk;
}

} // namespace bips::tool
