// SPDX-License-Identifier: LGPL-2.1-or-later
// The C++ snippet of README.md as a complete program: produce() and consume()
// hold the snippet's lines as written (tests/examples/readme_sync.py checks
// that they stay in sync), here in two threads of one process rather than in
// two processes. The producer publishes 1080p RGBA frames until the consumer
// has read one and checked its bytes. Exit status 0 on success.
//
// Build it against an installed bips (the headers need C++20, which the
// pkg-config file asks for):
//   c++ cxx_example.cpp $(pkg-config --cflags --libs bips-1.0) -o cxx_example
#include <bips/bips.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

namespace {

// What the README leaves to the reader's own code.
std::atomic<bool> running{true}; // the producer runs until the consumer is done
const std::vector<std::byte> image(1920 * 1080 * 4, std::byte{0x5a});
const std::byte *pixels = image.data();
bool frame_checked = false;

int fail(const bips::Error &error)
{
    std::fprintf(stderr, "cxx_example: %s: %s\n", bips::errc_name(error.code),
                 error.message.c_str());
    return 1;
}

void use(const std::byte *data, uint64_t size)
{
    frame_checked = size == image.size() && std::memcmp(data, pixels, size) == 0;
}

int produce()
{
    bips::ProducerOptions opts;
    opts.slot_size = 1920 * 1080 * 4;
    auto producer = bips::Producer::create("cam0", opts);   // Result<unique_ptr<Producer>>
    if (!producer)
        return fail(producer.error());                      // .code, and a .message saying what to do
    while (running) {
        auto slot = (*producer)->acquire(std::chrono::milliseconds(100));
        if (!slot)
            return fail(slot.error());
        std::memcpy(slot->data, pixels, opts.slot_size);    // or render straight into it
        if (auto r = (*producer)->publish(*slot, bips::FrameInfo{.size = opts.slot_size}); !r)
            return fail(r.error());
    }
    return 0;
}

// another process (or thread)
int consume()
{
    auto consumer = bips::Consumer::attach("cam0", {.policy = bips::Policy::Latest},
                                           std::chrono::seconds(5));
    if (!consumer)
        return fail(consumer.error());
    auto frame = (*consumer)->next(std::chrono::seconds(1)); // read-only view, no copy
    if (!frame)
        return fail(frame.error());
    use(frame->data(), frame->size());                        // released when `frame` goes
    return 0;
}

} // namespace

int main()
{
    int produced = 0;
    std::thread producer_thread([&] { produced = produce(); });
    const int consumed = consume();
    running = false;
    producer_thread.join();
    if (produced != 0 || consumed != 0)
        return 1;
    if (!frame_checked) {
        std::fprintf(stderr, "cxx_example: the frame read is not the frame written\n");
        return 1;
    }
    std::printf("cxx_example: read a %u-byte frame in place from channel 'cam0' in %s\n",
                1920 * 1080 * 4, bips::channel_directory().c_str());
    return 0;
}
