// SPDX-License-Identifier: LGPL-2.1-or-later
// Benchmark: the CPU cost of one frame through bips, without any wake-up.
//
// One thread alternates acquire/publish and next/release on one channel, so
// no futex sleep or context switch is involved: what remains is the work the
// library itself does per frame. Run it under `valgrind --tool=callgrind`
// (tests/bench/frame_cost.sh) for an instruction count per frame that does
// not depend on how busy the machine is.
#include <bips/bips.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

int main(int argc, char **argv)
{
    using namespace std::chrono;
    const uint64_t slot_size = argc > 1 ? std::strtoull(argv[1], nullptr, 0) : 64;
    const uint64_t frames = argc > 2 ? std::strtoull(argv[2], nullptr, 0) : 100000;
    const std::string name = "cost-" + std::to_string(getpid());

    bips::ProducerOptions opts;
    opts.slot_size = slot_size;
    auto producer = bips::Producer::create(name, opts);
    if (!producer) {
        std::fprintf(stderr, "frame_cost: %s\n", producer.error().message.c_str());
        return 1;
    }
    auto consumer = bips::Consumer::attach(name, {}, seconds(5));
    if (!consumer) {
        std::fprintf(stderr, "frame_cost: %s\n", consumer.error().message.c_str());
        return 1;
    }
    uint64_t sum = 0;
    const auto start = steady_clock::now();
    for (uint64_t i = 0; i < frames; ++i) {
        auto slot = producer.value()->acquire(seconds(1));
        if (!slot)
            return 1;
        std::memcpy(slot->data, &i, sizeof(i));
        bips::FrameInfo info;
        info.size = slot_size;
        if (!producer.value()->publish(*slot, info))
            return 1;
        auto frame = consumer.value()->next(seconds(1));
        if (!frame)
            return 1;
        uint64_t v;
        std::memcpy(&v, frame->data(), sizeof(v));
        sum += v;
    }
    const double ns = double(duration_cast<nanoseconds>(steady_clock::now() - start).count());
    std::printf("slot size %llu: %llu frames, %.0f ns per frame (publish + next + release)\n",
                static_cast<unsigned long long>(slot_size),
                static_cast<unsigned long long>(frames), ns / double(frames));
    return sum == frames * (frames - 1) / 2 ? 0 : 1;
}
