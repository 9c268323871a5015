// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: socket messages with descriptors (SCM_RIGHTS).
#include "wire.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace bips::detail {

void Message::set_text(std::string_view s)
{
    const size_t n = std::min(s.size(), sizeof(text) - 1);
    std::memcpy(text, s.data(), n);
    text[n] = '\0';
}

std::string Message::get_text() const
{
    return std::string(text, strnlen(text, sizeof(text)));
}

Result<void> send_message(int sock, const Message &msg, std::span<const int> fds,
                          std::span<const std::byte> extra)
{
    iovec iov[2] = {{const_cast<Message *>(&msg), sizeof(msg)},
                    {const_cast<std::byte *>(extra.data()), extra.size()}};
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = extra.empty() ? 1 : 2;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
    if (!fds.empty()) {
        const size_t n = std::min(fds.size(), kMaxFds);
        mh.msg_control = control;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * n);
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0)
            return {};
        if (errno == EINTR)
            continue;
        if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)
            return make_error(Errc::ProducerGone, "peer closed the channel connection");
        return make_error(Errc::System,
                          std::string("cannot send on the channel socket: ") + std::strerror(errno));
    }
}

Result<Received> receive_message(int sock, std::chrono::milliseconds timeout, size_t max_extra)
{
    pollfd p{sock, POLLIN, 0};
    int r;
    do
        r = poll(&p, 1, int(std::clamp<int64_t>(timeout.count(), 0, 60000)));
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return make_error(Errc::Timeout, "no answer on the channel socket in time");
    if (r < 0)
        return make_error(Errc::System, std::string("poll: ") + std::strerror(errno));

    Received out;
    std::vector<std::byte> buf(sizeof(Message) + max_extra);
    iovec iov{buf.data(), buf.size()};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    // Take ownership of whatever descriptors arrived before judging.
    for (cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            out.fds.emplace_back(fd);
        }
    }
    if (n == 0)
        return make_error(Errc::ProducerGone, "peer closed the channel connection");
    if (n < 0) {
        if (errno == ECONNRESET)
            return make_error(Errc::ProducerGone, "peer closed the channel connection");
        if (errno == EAGAIN)
            return make_error(Errc::Timeout, "no answer on the channel socket in time");
        return make_error(Errc::System, std::string("recvmsg: ") + std::strerror(errno));
    }
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || size_t(n) < sizeof(Message))
        return make_error(Errc::Corrupt, "malformed message on the channel socket (" +
                                             std::to_string(n) + " bytes)");
    std::memcpy(&out.msg, buf.data(), sizeof(Message));
    if (out.msg.magic != kWireMagic)
        return make_error(Errc::Corrupt, "the channel socket does not speak the bips protocol");
    if (out.msg.version != kWireVersion)
        return make_error(Errc::Incompatible,
                          "the channel's producer speaks protocol version " +
                              std::to_string(out.msg.version) + ", this library " +
                              std::to_string(kWireVersion) +
                              "; run producer and consumers with the same bips version");
    out.msg.text[sizeof(out.msg.text) - 1] = '\0';
    out.extra.assign(buf.begin() + sizeof(Message), buf.begin() + n);
    return out;
}

UniqueFd own_pidfd()
{
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, getpid(), 0);
    if (fd >= 0) // pidfds are always close-on-exec
        return UniqueFd(int(fd));
#endif
    return UniqueFd();
}

uint64_t pid_namespace_id()
{
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) != 0)
        return 0;
    return uint64_t(st.st_ino);
}

int32_t peer_pid(int sock)
{
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
        return 0;
    return int32_t(cred.pid);
}

bool polls_ready(int fd)
{
    if (fd < 0)
        return false;
    pollfd p{fd, POLLIN, 0};
    int r;
    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

} // namespace bips::detail
