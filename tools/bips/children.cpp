// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: forked helper processes that report to the parent via pipes.
#include "children.h"

#include <bips/channel.h>

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>

namespace bips::tool {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

void on_interrupt(int)
{
    g_interrupted = 1;
}

// A message larger than this is treated as a broken child.
constexpr uint32_t kMaxPayload = 64u << 20;

struct WireHeader {
    uint32_t kind;
    uint32_t size;
};

bool write_all(int fd, const void *data, std::size_t size)
{
    auto *p = static_cast<const char *>(data);
    while (size > 0) {
        ssize_t n = ::write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

// Moves every whole message out of child.pending.
void parse_pending(Child &child)
{
    std::size_t pos = 0;
    while (child.pending.size() - pos >= sizeof(WireHeader)) {
        WireHeader h;
        std::memcpy(&h, child.pending.data() + pos, sizeof(h));
        if (h.size > kMaxPayload) {
            child.messages.push_back({MsgKind::Error, "sent a malformed message"});
            child.pending.clear();
            return;
        }
        if (child.pending.size() - pos - sizeof(h) < h.size)
            break;
        child.messages.push_back(
            {static_cast<MsgKind>(h.kind), child.pending.substr(pos + sizeof(h), h.size)});
        pos += sizeof(h) + h.size;
    }
    child.pending.erase(0, pos);
}

} // namespace

bool send_message(int fd, MsgKind kind, const void *data, std::size_t size)
{
    WireHeader h{static_cast<uint32_t>(kind), static_cast<uint32_t>(size)};
    return size <= kMaxPayload && write_all(fd, &h, sizeof(h)) && write_all(fd, data, size);
}

const Message *Child::find(MsgKind kind) const
{
    for (const auto &m : messages)
        if (m.kind == kind)
            return &m;
    return nullptr;
}

bool Child::failed() const
{
    if (find(MsgKind::Error))
        return true;
    return reaped && !killed &&
           (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0));
}

std::string Child::failure() const
{
    if (const Message *m = find(MsgKind::Error))
        return role + ": " + m->payload;
    if (!reaped)
        return role + ": still running";
    if (killed)
        return role + ": did not finish; killed";
    if (WIFSIGNALED(status))
        return role + ": killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
               strsignal(WTERMSIG(status)) + ")";
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        return role + ": exited with status " + std::to_string(WEXITSTATUS(status));
    return {};
}

void install_interrupt_handler()
{
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    // A child that dies with its pipe open must not kill the parent.
    signal(SIGPIPE, SIG_IGN);
}

bool interrupted()
{
    return g_interrupted != 0;
}

Supervisor::~Supervisor()
{
    kill_all();
}

Result<Child *> Supervisor::spawn(std::string role, const std::function<int(int)> &body)
{
    int fds[2];
    if (::pipe(fds) != 0)
        return make_error(Errc::System, "pipe: " + std::string(std::strerror(errno)));
    // Unflushed output would otherwise be written twice, once by the child.
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) {
        int err = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        return make_error(Errc::System, "fork: " + std::string(std::strerror(err)));
    }
    if (pid == 0) {
        ::close(fds[0]);
        for (auto &c : children_)
            if (c->fd >= 0)
                ::close(c->fd);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        // Nothing may unwind out of the child into the parent's code.
        int code = 1;
        try {
            code = body(fds[1]);
        } catch (const std::exception &e) {
            send_error(fds[1], std::string("unexpected exception: ") + e.what());
        } catch (...) {
            send_error(fds[1], "unexpected exception");
        }
        ::close(fds[1]);
        std::fflush(nullptr);
        ::_exit(code);
    }
    ::close(fds[1]);
    auto child = std::make_unique<Child>();
    child->role = std::move(role);
    child->pid = pid;
    child->fd = fds[0];
    children_.push_back(std::move(child));
    return children_.back().get();
}

void Supervisor::reap(bool block)
{
    for (auto &c : children_) {
        if (c->reaped)
            continue;
        int status = 0;
        pid_t r;
        do {
            r = ::waitpid(c->pid, &status, block ? 0 : WNOHANG);
        } while (r < 0 && errno == EINTR && block);
        if (r == c->pid) {
            c->reaped = true;
            c->status = status;
        }
    }
}

void Supervisor::pump(Clock::time_point deadline)
{
    std::vector<pollfd> pfds;
    std::vector<Child *> owners;
    for (auto &c : children_) {
        if (c->fd >= 0) {
            pfds.push_back({c->fd, POLLIN, 0});
            owners.push_back(c.get());
        }
    }
    // Short slices so that exits without a pipe and Ctrl-C are noticed.
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    int timeout = static_cast<int>(std::clamp<int64_t>(left.count(), 0, 20));
    int n = 0;
    if (pfds.empty())
        ::usleep(static_cast<useconds_t>(timeout) * 1000);
    else
        n = ::poll(pfds.data(), pfds.size(), timeout);
    for (std::size_t i = 0; n > 0 && i < pfds.size(); ++i) {
        if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        Child &c = *owners[i];
        char buf[65536];
        ssize_t got = ::read(c.fd, buf, sizeof(buf));
        if (got > 0) {
            c.pending.append(buf, static_cast<std::size_t>(got));
            parse_pending(c);
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
            ::close(c.fd);
            c.fd = -1;
        }
    }
    reap(false);
}

bool Supervisor::wait_for(Child &child, MsgKind kind, Clock::time_point deadline)
{
    while (!child.find(kind)) {
        if (child.fd < 0 || interrupted() || Clock::now() >= deadline)
            return false;
        pump(deadline);
    }
    return true;
}

bool Supervisor::wait_all(Clock::time_point deadline)
{
    bool failing = false;
    for (;;) {
        if (!failing && std::any_of(children_.begin(), children_.end(),
                                    [](const auto &c) { return c->failed(); })) {
            failing = true;
            deadline = std::min(deadline, Clock::now() + kFailureGrace);
        }
        bool done = std::all_of(children_.begin(), children_.end(),
                                [](const auto &c) { return c->fd < 0 && c->reaped; });
        if (done)
            return true;
        if (interrupted() || Clock::now() >= deadline) {
            kill_all();
            return false;
        }
        pump(deadline);
    }
}

void Supervisor::kill_all()
{
    for (auto &c : children_) {
        if (!c->reaped) {
            ::kill(c->pid, SIGKILL);
            c->killed = true;
        }
    }
    reap(true);
    for (auto &c : children_) {
        if (c->fd >= 0) {
            // Whatever the child wrote before it died is still worth reading.
            char buf[65536];
            ssize_t got;
            while ((got = ::read(c->fd, buf, sizeof(buf))) > 0)
                c->pending.append(buf, static_cast<std::size_t>(got));
            parse_pending(*c);
            ::close(c->fd);
            c->fd = -1;
        }
    }
}

std::vector<Child *> Supervisor::children()
{
    std::vector<Child *> out;
    for (auto &c : children_)
        out.push_back(c.get());
    return out;
}

ChannelSweeper::~ChannelSweeper()
{
    // lstat, not access(): the name is looked at, never followed or opened.
    const std::string path = bips::channel_path(name_);
    auto exists = [&] {
        struct stat st;
        return ::lstat(path.c_str(), &st) == 0;
    };
    if (!exists())
        return;
    auto removed = bips::clean_channels();
    if (exists())
        std::cerr << "bips: channel " << name_ << " was left behind ("
                  << (removed.ok() ? "its producer still holds it" : removed.error().message)
                  << "); remove it with 'bips clean'\n";
}

} // namespace bips::tool
