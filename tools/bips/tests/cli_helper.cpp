// SPDX-License-Identifier: LGPL-2.1-or-later
// Test helper for tools/bips/tests/cli_test.py: real channels to run the
// `bips` tool against.
//
//   bips-cli-helper producer NAME [--fps N] [--info plain|utf8|binary]
//                   [--consumers lossless,latest,...] [--seconds S]
//       Creates channel NAME (4 slots of 4 KiB) with the chosen stream info,
//       attaches the listed consumers in this process (a lossless one reads
//       every frame, a latest one reads every 50 ms and skips the rest),
//       prints "ready HEX" (HEX: the stream info's bytes) and publishes N
//       frames per second (default 200) until SIGTERM/SIGINT or S seconds
//       (default 60) have passed, then exits cleanly.
//   bips-cli-helper dead NAME
//       Creates channel NAME and exits without closing it, leaving a dead
//       producer's socket behind; prints "dead".
#include <bips/bips.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) { g_stop = 1; }

int fail(const std::string &what)
{
    std::fprintf(stderr, "bips-cli-helper: %s\n", what.c_str());
    return 1;
}

std::string stream_info(const std::string &kind)
{
    using namespace std::string_literals;
    if (kind == "utf8")
        // Quotes, backslash, control characters, DEL, Latin-1, an emoji
        // (outside the BMP) and U+2028: all valid UTF-8.
        return "video/x-raw, format=(string)\"RGBA\", note=\"tab\there\"\\n, ctl=\x01\x1f\x7f, "
               "caf\xc3\xa9, cam \xf0\x9f\x8e\xa5, sep \xe2\x80\xa8 end"s;
    if (kind == "binary")
        // Not UTF-8: stray bytes, a truncated sequence, an encoded
        // surrogate, an overlong NUL, a code point above U+10FFFF and a NUL.
        return "bad \xff\xfe bytes \xc3 and \xed\xa0\x80 \xc0\x80 \xf4\x90\x80\x80 and \0nul"s;
    return "video/x-raw, format=(string)GRAY8, width=(int)64, height=(int)64";
}

std::string hex(const std::string &bytes)
{
    std::string out;
    char buf[4];
    for (unsigned char c : bytes) {
        std::snprintf(buf, sizeof(buf), "%02x", c);
        out += buf;
    }
    return out;
}

std::chrono::nanoseconds seconds_to(double s)
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
}

int run_producer(const std::string &name, double fps, const std::string &info_kind,
                 const std::vector<std::string> &consumers, double seconds)
{
    using namespace std::chrono;
    bips::ProducerOptions opt;
    opt.slot_count = 4;
    opt.slot_size = 4096;
    auto producer = bips::Producer::create(name, opt);
    if (!producer)
        return fail(producer.error().message);
    const std::string info = stream_info(info_kind);
    if (auto r = (*producer)->set_stream_info(info); !r)
        return fail(r.error().message);

    std::atomic<bool> done{false};
    std::vector<std::thread> readers;
    std::vector<std::unique_ptr<bips::Consumer>> attached;
    for (const auto &policy : consumers) {
        bips::ConsumerOptions copt;
        copt.policy = policy == "latest" ? bips::Policy::Latest : bips::Policy::Lossless;
        auto c = bips::Consumer::attach(name, copt, seconds_to(2));
        if (!c)
            return fail("attach: " + c.error().message);
        attached.push_back(std::move(c.value()));
    }
    for (auto &c : attached) {
        bips::Consumer *consumer = c.get();
        readers.emplace_back([consumer, &done] {
            const bool latest = consumer->policy() == bips::Policy::Latest;
            while (!done.load()) {
                auto f = consumer->next(milliseconds(50));
                if (latest)
                    std::this_thread::sleep_for(milliseconds(50));
                (void)f;
            }
        });
    }
    std::printf("ready %s\n", hex(info).c_str());
    std::fflush(stdout);

    const auto start = steady_clock::now();
    const auto period = duration_cast<nanoseconds>(duration<double>(1.0 / fps));
    auto next = start;
    uint64_t n = 0;
    while (!g_stop && steady_clock::now() - start < duration<double>(seconds)) {
        auto slot = (*producer)->acquire(milliseconds(50));
        if (slot) {
            std::memcpy(slot->data, &n, sizeof(n));
            bips::FrameInfo fi;
            fi.size = sizeof(n);
            if ((*producer)->publish(*slot, fi))
                ++n;
        }
        next += period;
        std::this_thread::sleep_until(next);
    }
    done = true;
    for (auto &t : readers)
        t.join();
    attached.clear();
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 3)
        return fail("usage: bips-cli-helper producer|dead NAME [options]");
    const std::string mode = argv[1], name = argv[2];
    // Our own handlers first: a signal ends the loop and the producer
    // closes its channel the normal way.
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);

    if (mode == "dead") {
        bips::ProducerOptions opt;
        opt.slot_size = 4096;
        auto producer = bips::Producer::create(name, opt);
        if (!producer)
            return fail(producer.error().message);
        std::printf("dead\n");
        std::fflush(stdout);
        _exit(0); // no destructor: the socket stays, nobody listens on it
    }
    if (mode != "producer")
        return fail("unknown mode " + mode);
    double fps = 200, seconds = 60;
    std::string info = "plain";
    std::vector<std::string> consumers;
    for (int i = 3; i + 1 < argc; i += 2) {
        const std::string opt = argv[i], val = argv[i + 1];
        if (opt == "--fps")
            fps = std::strtod(val.c_str(), nullptr);
        else if (opt == "--seconds")
            seconds = std::strtod(val.c_str(), nullptr);
        else if (opt == "--info")
            info = val;
        else if (opt == "--consumers") {
            std::size_t from = 0;
            while (from <= val.size()) {
                const auto comma = val.find(',', from);
                const std::string one = val.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
                if (one == "lossless" || one == "latest")
                    consumers.push_back(one);
                else if (!one.empty())
                    return fail("unknown consumer policy " + one);
                if (comma == std::string::npos)
                    break;
                from = comma + 1;
            }
        } else {
            return fail("unknown option " + opt);
        }
    }
    if (fps <= 0 || seconds <= 0)
        return fail("--fps and --seconds must be positive");
    return run_producer(name, fps, info, consumers, seconds);
}
