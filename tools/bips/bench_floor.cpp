// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: the latency floor of the machine (a bare futex wake-up).
#include "bench_floor.h"

#include "timing.h"

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <climits>
#include <csignal>
#include <cstring>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bips::tool {

namespace {

// Lives in an anonymous MAP_SHARED page, shared by parent and child.
struct FloorPage {
    std::atomic<uint32_t> word;
    std::atomic<uint32_t> done;
    std::atomic<uint64_t> stamp_ns;
    std::atomic<uint64_t> count;
};

long futex(std::atomic<uint32_t> *w, int op, uint32_t val, const timespec *ts)
{
    return syscall(SYS_futex, reinterpret_cast<uint32_t *>(w), op, val, ts, nullptr, 0);
}

} // namespace

Result<std::vector<uint64_t>> measure_futex_floor(double rate_hz, uint64_t frames)
{
    const size_t page_bytes = sizeof(FloorPage) + frames * sizeof(uint64_t);
    void *mem = mmap(nullptr, page_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
    if (mem == MAP_FAILED)
        return make_error(Errc::System, std::string("mmap: ") + std::strerror(errno));
    auto *page = new (mem) FloorPage{};
    auto *samples = reinterpret_cast<uint64_t *>(page + 1);

    const pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        munmap(mem, page_bytes);
        return make_error(Errc::System, std::string("fork: ") + std::strerror(errno));
    }
    if (child == 0) {
        // Sleep on the word like a consumer; every wait is bounded.
        uint32_t seen = 0;
        const timespec slice{0, 100 * 1000 * 1000};
        while (!page->done.load()) {
            const uint32_t v = page->word.load();
            if (v == seen) {
                // A parent that died leaves us re-parented: stop then.
                if (futex(&page->word, FUTEX_WAIT, v, &slice) != 0 && errno == ETIMEDOUT &&
                    getppid() != parent)
                    _exit(1);
                continue;
            }
            seen = v;
            const uint64_t n = page->count.load();
            if (n < frames)
                samples[n] = monotonic_ns() - page->stamp_ns.load();
            page->count.store(n + 1);
        }
        _exit(0);
    }

    const uint64_t period = static_cast<uint64_t>(1e9 / rate_hz);
    const uint64_t start = monotonic_ns() + 20 * 1000 * 1000; // let the child sleep
    for (uint64_t i = 0; i < frames; ++i) {
        sleep_until_ns(start + i * period);
        // Wait (bounded) until the previous wake-up was recorded.
        for (int spins = 0; page->count.load() < i && spins < 100000; ++spins)
            usleep(10);
        page->stamp_ns.store(monotonic_ns());
        page->word.fetch_add(1);
        futex(&page->word, FUTEX_WAKE, INT_MAX, nullptr);
    }
    for (int spins = 0; page->count.load() < frames && spins < 100000; ++spins)
        usleep(10);
    page->done.store(1);
    page->word.fetch_add(1);
    futex(&page->word, FUTEX_WAKE, INT_MAX, nullptr);
    int status = 0;
    waitpid(child, &status, 0);

    const uint64_t got = std::min<uint64_t>(page->count.load(), frames);
    std::vector<uint64_t> out(samples, samples + got);
    munmap(mem, page_bytes);
    std::sort(out.begin(), out.end());
    if (out.empty())
        return make_error(Errc::System, "the futex floor measurement recorded nothing");
    return out;
}

} // namespace bips::tool
