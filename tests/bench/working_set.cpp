// SPDX-License-Identifier: LGPL-2.1-or-later
// Benchmark: what it costs a source to write each frame into one reused
// buffer, against two or three buffers in turn.
//
//   working_set [FRAME_BYTES [ITERATIONS]]    (default: 1080p RGBA, 1000)
//
// A source coupled to its sink in one thread (videotestsrc ! fakesink)
// refills the buffer the sink has just dropped; decoupled (a queue, or a
// consumer in another process) the sink still holds frame N when the
// source starts N+1, so buffers alternate and the working set doubles.
// Like videotestsrc, each frame is a memcpy from a prepared frame. Prints
// the best of 3 runs per buffer count, in µs per frame, for anonymous
// memory and for a shared mapping of a /dev/shm file (what bips slots are).
// Not a test: nothing is asserted.
#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// `count` buffers of `bytes`, faulted in; nullptr on failure.
char *map_buffers(size_t bytes, int count, bool shared)
{
    const size_t len = bytes * size_t(count);
    void *p = MAP_FAILED;
    if (shared) {
        const std::string name = "/bips-working-set-" + std::to_string(getpid());
        const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
        if (fd < 0)
            return nullptr;
        shm_unlink(name.c_str()); // nothing left behind, whatever happens next
        if (ftruncate(fd, off_t(len)) == 0)
            p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
        close(fd);
    } else {
        p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                 -1, 0);
    }
    if (p == MAP_FAILED)
        return nullptr;
    std::memset(p, 1, len);
    return static_cast<char *>(p);
}

} // namespace

int main(int argc, char **argv)
{
    const size_t bytes = argc > 1 ? std::strtoull(argv[1], nullptr, 0) : 1920u * 1080u * 4u;
    const int iterations = argc > 2 ? std::atoi(argv[2]) : 1000;
    if (bytes == 0 || iterations <= 0) {
        std::fprintf(stderr, "usage: working_set [FRAME_BYTES [ITERATIONS]]\n");
        return 1;
    }
    std::vector<char> source(bytes, 0);
    std::printf("frame of %zu bytes, %d frames per run, best of 3 runs\n", bytes, iterations);
    for (bool shared : {false, true}) {
        for (int count = 1; count <= 3; ++count) {
            char *buffers = map_buffers(bytes, count, shared);
            if (!buffers) {
                std::fprintf(stderr, "working_set: cannot map %d buffers of %zu bytes: %s\n",
                             count, bytes, std::strerror(errno));
                return 1;
            }
            double best = 1e300;
            for (int run = 0; run < 3; ++run) {
                const auto start = Clock::now();
                for (int i = 0; i < iterations; ++i)
                    std::memcpy(buffers + size_t(i % count) * bytes, source.data(), bytes);
                const std::chrono::duration<double, std::micro> took = Clock::now() - start;
                best = std::min(best, took.count() / iterations);
            }
            std::printf("%-10s %d buffer%s in turn: %8.1f us per frame\n",
                        shared ? "/dev/shm" : "anonymous", count, count > 1 ? "s" : " ", best);
            munmap(buffers, bytes * size_t(count));
        }
    }
    return 0;
}
