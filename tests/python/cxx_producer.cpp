// SPDX-License-Identifier: LGPL-2.1-or-later
// Test helper: a plain C++ producer of RGBA frames with a known byte pattern.
//
// usage: bips-pytest-producer CHANNEL FRAMES WIDTH HEIGHT [CONSUMERS] [INTERVAL_MS]
//
// Creates CHANNEL with raw-video caps, prints "ready" once it exists, waits
// (up to 10 s) until CONSUMERS consumers are attached, then publishes FRAMES
// frames in which byte i of frame k is (i * 7 + k * 13) mod 256, stamped
// with CLOCK_MONOTONIC nanoseconds, INTERVAL_MS apart, then end of stream.
// It exits 0 once every frame is published, 1 on any error (with a message
// on stderr).
#include <bips/bips.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>

namespace {

uint64_t monotonic_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

int fail(const std::string &what)
{
    std::fprintf(stderr, "bips-pytest-producer: %s\n", what.c_str());
    return 1;
}

} // namespace

int main(int argc, char **argv)
{
    using namespace std::chrono_literals;
    if (argc < 5)
        return fail("usage: CHANNEL FRAMES WIDTH HEIGHT [CONSUMERS] [INTERVAL_MS]");
    const std::string channel = argv[1];
    const uint64_t frames = std::strtoull(argv[2], nullptr, 10);
    const uint64_t width = std::strtoull(argv[3], nullptr, 10);
    const uint64_t height = std::strtoull(argv[4], nullptr, 10);
    const uint32_t consumers = argc > 5 ? uint32_t(std::strtoul(argv[5], nullptr, 10)) : 1;
    const auto interval = std::chrono::milliseconds(argc > 6 ? std::atoi(argv[6]) : 0);
    const uint64_t size = width * height * 4;

    bips::ProducerOptions options;
    options.slot_count = 4;
    options.slot_size = size;
    auto created = bips::Producer::create(channel, options);
    if (!created)
        return fail(created.error().message);
    bips::Producer &producer = **created;
    const std::string caps = "video/x-raw,format=(string)RGBA,width=(int)" +
                             std::to_string(width) + ",height=(int)" + std::to_string(height) +
                             ",framerate=(fraction)30/1";
    if (auto r = producer.set_stream_info(caps); !r)
        return fail(r.error().message);
    std::printf("ready\n");
    std::fflush(stdout);

    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (producer.consumer_count() < consumers) {
        if (std::chrono::steady_clock::now() > deadline)
            return fail("consumers did not attach within 10 s");
        std::this_thread::sleep_for(2ms);
    }

    for (uint64_t k = 0; k < frames; ++k) {
        auto slot = producer.acquire(10s);
        if (!slot)
            return fail(slot.error().message);
        auto *bytes = reinterpret_cast<unsigned char *>(slot->data);
        for (uint64_t i = 0; i < size; ++i)
            bytes[i] = static_cast<unsigned char>((i * 7 + k * 13) & 0xff);
        bips::FrameInfo info;
        info.size = size;
        info.pts = monotonic_ns();
        if (auto r = producer.publish(*slot, info); !r)
            return fail(r.error().message);
        if (interval.count() > 0)
            std::this_thread::sleep_for(interval);
    }
    producer.end_of_stream();
    // Stay until the consumers have read the end of stream (or gave up):
    // the channel closes when the producer is destroyed.
    const auto linger = std::chrono::steady_clock::now() + 10s;
    while (producer.consumer_count() > 0 && std::chrono::steady_clock::now() < linger)
        std::this_thread::sleep_for(5ms);
    return 0;
}
