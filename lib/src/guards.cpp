// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: fork and signal guards.
#include "guards.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

namespace bips::detail {

namespace {

constexpr int kFdSlots = 1024;
std::atomic<int> g_fds[kFdSlots];

struct ExitName {
    std::atomic<int> used{0}; // 0 free, 1 being written, 2 valid
    char path[512];
    dev_t dev;
    ino_t ino;
};
constexpr int kNameSlots = 64;
ExitName g_names[kNameSlots];
constexpr int kSignals[] = {SIGTERM, SIGHUP, SIGINT};

void child_after_fork()
{
    // The parent's names are not the child's to remove: a child killed by
    // SIGTERM (multiprocessing's terminate()) must not unname the parent's
    // live channel.
    for (auto &n : g_names)
        n.used.store(0, std::memory_order_release);
    int null_fd = -1;
    for (auto &slot : g_fds) {
        const int v = slot.load(std::memory_order_acquire);
        if (v <= 0)
            continue; // 0 = free (descriptors are stored plus one)
        if (null_fd < 0)
            null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0)
            ::close(v - 1); // no /dev/null: closing is the lesser evil
        else
            ::dup3(null_fd, v - 1, O_CLOEXEC);
        slot.store(0, std::memory_order_release);
    }
    if (null_fd >= 0)
        ::close(null_fd);
}

std::once_flag g_atfork_once;

void on_terminating_signal(int sig)
{
    const int saved = errno;
    for (auto &n : g_names) {
        if (n.used.load(std::memory_order_acquire) != 2)
            continue;
        struct stat st;
        if (lstat(n.path, &st) == 0 && st.st_dev == n.dev && st.st_ino == n.ino)
            unlink(n.path);
    }
    // The PID 1 of a PID namespace (a container without --init) does not
    // die of a signal at its default action: the kernel drops it. Exit as
    // the signal would have.
    if (getpid() == 1)
        _exit(128 + sig);
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, nullptr);
    errno = saved;
    raise(sig);
}

void install_handlers()
{
    // Checked at every registration: the application may have changed the
    // disposition since (or a forked child reset it).
    for (int sig : kSignals) {
        struct sigaction old{};
        if (sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL ||
            (old.sa_flags & SA_SIGINFO))
            continue; // ours already, or the application's: its shutdown runs our destructors
        struct sigaction sa{};
        sa.sa_handler = on_terminating_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(sig, &sa, nullptr);
    }
}

} // namespace

int register_fork_fd(int fd)
{
    std::call_once(g_atfork_once, [] { pthread_atfork(nullptr, nullptr, child_after_fork); });
    for (int i = 0; i < kFdSlots; ++i) {
        int expected = 0;
        if (g_fds[i].compare_exchange_strong(expected, fd + 1, std::memory_order_acq_rel))
            return i;
    }
    return -1;
}

void unregister_fork_fd(int token)
{
    if (token >= 0 && token < kFdSlots)
        g_fds[token].store(0, std::memory_order_release);
}

int register_exit_name(const std::string &path, dev_t dev, ino_t ino)
{
    if (path.size() >= sizeof(ExitName::path))
        return -1;
    for (int i = 0; i < kNameSlots; ++i) {
        int expected = 0;
        if (!g_names[i].used.compare_exchange_strong(expected, 1, std::memory_order_acq_rel))
            continue;
        std::memcpy(g_names[i].path, path.c_str(), path.size() + 1);
        g_names[i].dev = dev;
        g_names[i].ino = ino;
        g_names[i].used.store(2, std::memory_order_release);
        install_handlers();
        return i;
    }
    return -1;
}

void unregister_exit_name(int token)
{
    if (token >= 0 && token < kNameSlots)
        g_names[token].used.store(0, std::memory_order_release);
}

} // namespace bips::detail
