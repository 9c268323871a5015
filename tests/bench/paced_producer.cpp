// SPDX-License-Identifier: LGPL-2.1-or-later
// Benchmark helper: a native producer of raw RGBA video, paced like a camera.
//
//   paced_producer CHANNEL WIDTH HEIGHT FPS FRAMES
//
// Creates CHANNEL with raw-video caps as stream info and eight slots of one
// frame, prints "ready", waits (up to 20 s) for a consumer, then publishes
// FRAMES frames on an absolute CLOCK_MONOTONIC schedule of FPS per second,
// then end of stream. Each frame's PTS is CLOCK_MONOTONIC read right before
// publish(), so a consumer's "now - pts" is the latency from the moment the
// frame is published. Like a camera that DMAs into its buffers, it writes
// only a frame counter into the first 8 bytes and leaves the pixels alone.
// Used by tests/bench/python_latency.py, so that the figure measures the
// Python consumer and not a Python producer's own call overhead.
#include <bips/bips.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>

namespace {

uint64_t monotonic_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void sleep_until_ns(uint64_t t)
{
    timespec ts{time_t(t / 1000000000ull), long(t % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

int fail(const std::string &what)
{
    std::fprintf(stderr, "paced_producer: %s\n", what.c_str());
    return 1;
}

} // namespace

int main(int argc, char **argv)
{
    using namespace std::chrono;
    if (argc != 6)
        return fail("usage: paced_producer CHANNEL WIDTH HEIGHT FPS FRAMES");
    const std::string name = argv[1];
    const uint64_t width = std::strtoull(argv[2], nullptr, 10);
    const uint64_t height = std::strtoull(argv[3], nullptr, 10);
    const double fps = std::strtod(argv[4], nullptr);
    const uint64_t frames = std::strtoull(argv[5], nullptr, 10);
    if (width == 0 || height == 0 || fps <= 0 || frames == 0)
        return fail("WIDTH, HEIGHT, FPS and FRAMES must be positive");

    bips::ProducerOptions opts;
    opts.slot_count = 8; // bipssink's default: bipssrc then keeps 2 frames zero-copy
    opts.slot_size = width * height * 4;
    auto created = bips::Producer::create(name, opts);
    if (!created)
        return fail(created.error().message);
    bips::Producer &producer = *created.value();
    const std::string caps = "video/x-raw,format=(string)RGBA,width=(int)" + std::to_string(width) +
                             ",height=(int)" + std::to_string(height) + ",framerate=(fraction)" +
                             std::to_string(int(fps)) + "/1";
    if (auto set = producer.set_stream_info(caps); !set)
        return fail(set.error().message);
    std::printf("ready\n");
    std::fflush(stdout);

    for (int waited = 0; producer.consumer_count() == 0; ++waited) {
        if (waited == 20000)
            return fail("no consumer attached to '" + name + "' within 20 s");
        std::this_thread::sleep_for(milliseconds(1));
    }

    const uint64_t period = uint64_t(1e9 / fps);
    const uint64_t start = monotonic_ns() + 200000000ull;
    for (uint64_t k = 0; k < frames; ++k) {
        sleep_until_ns(start + k * period);
        auto slot = producer.acquire(seconds(5));
        if (!slot)
            return fail(slot.error().message);
        std::memcpy(slot->data, &k, sizeof(k));
        bips::FrameInfo info;
        info.size = opts.slot_size;
        info.duration = period;
        info.pts = monotonic_ns();
        if (auto published = producer.publish(*slot, info); !published)
            return fail(published.error().message);
    }
    producer.end_of_stream();
    // Let the consumers read the end of stream before the channel goes.
    for (int waited = 0; producer.consumer_count() > 0 && waited < 10000; ++waited)
        std::this_thread::sleep_for(milliseconds(1));
    return 0;
}
