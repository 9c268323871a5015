// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: channel names in the channel directory.
#include "rendezvous.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace bips::detail {

namespace {

std::string type_name(mode_t m)
{
    if (S_ISREG(m)) return "a regular file";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISLNK(m)) return "a symbolic link";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "an unknown kind of file";
}

std::string owner_text(const struct stat &st)
{
    char buf[64];
    std::snprintf(buf, sizeof(buf), " owned by uid %u (mode %04o)", unsigned(st.st_uid),
                  unsigned(st.st_mode & 07777));
    return buf;
}

bool fill_address(sockaddr_un &addr, const std::string &path)
{
    addr = {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path))
        return false;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return true;
}

// A fresh non-blocking seqpacket socket, connected to `path`; returns the
// errno of connect() (0 on success) and the socket through `out`.
int try_connect(const std::string &path, UniqueFd *out)
{
    sockaddr_un addr;
    if (!fill_address(addr, path))
        return ENAMETOOLONG;
    UniqueFd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!s.valid())
        return errno;
    int r;
    do
        r = connect(s.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr));
    while (r != 0 && errno == EINTR);
    const int err = r == 0 ? 0 : errno;
    if (out)
        *out = std::move(s);
    return err;
}

std::string dir_of(const std::string &path)
{
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
}

// A name in the folder of `path` that nobody can predict.
std::string random_name(const std::string &path, const char *prefix)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != ssize_t(sizeof(r)))
        r = uint64_t(getpid()) * 0x9e3779b97f4a7c15ull ^ uint64_t(time(nullptr)) ^
            reinterpret_cast<uintptr_t>(&r);
    char buf[64];
    std::snprintf(buf, sizeof(buf), "/%s%016llx", prefix, static_cast<unsigned long long>(r));
    return dir_of(path) + buf;
}

int rename2(const std::string &from, const std::string &to, unsigned flags)
{
    return renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags) == 0 ? 0 : errno;
}

// Sets the mode of the socket we just bound at `tmp`, refusing anything
// that is not our own socket (the folder may be writable by others).
int chmod_own_socket(const std::string &tmp, uint32_t mode)
{
    UniqueFd p(::open(tmp.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!p.valid())
        return errno;
    struct stat st;
    if (fstat(p.get(), &st) != 0)
        return errno;
    if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
        return EEXIST;
    const std::string proc = "/proc/self/fd/" + std::to_string(p.get());
    if (chmod(proc.c_str(), mode) == 0)
        return 0;
    return fchmodat(AT_FDCWD, tmp.c_str(), mode, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

// Binds and listens on a random temporary name beside `path`.
Result<NamedSocket> bind_temporary(const std::string &path, uint32_t mode, std::string *tmp)
{
    for (int attempt = 0; attempt < 16; ++attempt) {
        *tmp = random_name(path, ".bips-tmp-");
        sockaddr_un addr;
        if (!fill_address(addr, *tmp))
            return make_error(Errc::InvalidName, "channel path " + path +
                                                     " is too long for a unix socket (" +
                                                     std::to_string(sizeof(addr.sun_path) - 1) +
                                                     " bytes at most); use a shorter BIPS_DIR");
        NamedSocket out;
        out.fd.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!out.fd.valid())
            return make_error(Errc::System, std::string("socket: ") + std::strerror(errno));
        if (bind(out.fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) {
            if (errno == EADDRINUSE)
                continue; // someone planted that name: draw another
            const int err = errno;
            return make_error(err == EACCES || err == EPERM || err == EROFS ? Errc::PermissionDenied
                                                                            : Errc::System,
                              "cannot create the channel socket in " + dir_of(path) + ": " +
                                  std::strerror(err));
        }
        struct stat st;
        if (int err = chmod_own_socket(*tmp, mode); err != 0 || lstat(tmp->c_str(), &st) != 0) {
            unlink(tmp->c_str());
            return make_error(Errc::System, "cannot set the mode of the channel socket " + *tmp +
                                                ": " + std::strerror(err ? err : errno));
        }
        if (listen(out.fd.get(), 64) != 0) {
            const int err = errno;
            unlink(tmp->c_str());
            return make_error(Errc::System, std::string("listen: ") + std::strerror(err));
        }
        out.dev = st.st_dev;
        out.ino = st.st_ino;
        return out;
    }
    return make_error(Errc::System, "cannot find a free temporary name in " + dir_of(path));
}

} // namespace

ProbeResult probe_name(const std::string &path)
{
    ProbeResult p;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT)
            return p;
        if (errno == EACCES) {
            p.state = NameState::Denied;
            p.what = "behind a folder this user may not search (" + dir_of(path) + ")";
            return p;
        }
        p.state = NameState::Foreign;
        p.what = std::string("a name that cannot be examined (") + std::strerror(errno) + ")";
        return p;
    }
    p.dev = st.st_dev;
    p.ino = st.st_ino;
    p.uid = st.st_uid;
    p.mode = st.st_mode;
    p.what = type_name(st.st_mode) + owner_text(st);
    if (!S_ISSOCK(st.st_mode)) {
        p.state = NameState::Foreign;
        return p;
    }
    switch (try_connect(path, nullptr)) {
    case 0:
    case EAGAIN:
    case EINPROGRESS:
        p.state = NameState::Live;
        break;
    case ECONNREFUSED:
        p.state = NameState::Dead;
        break;
    case EACCES:
    case EPERM:
        p.state = NameState::Denied;
        break;
    case ENOENT:
        p.state = NameState::Missing;
        break;
    default: // EPROTOTYPE: a stream or datagram socket of some other program
        p.state = NameState::Foreign;
        p.what = "a socket of another kind" + owner_text(st);
        break;
    }
    return p;
}

Error foreign_error(std::string_view name, const std::string &path, const ProbeResult &p)
{
    return make_error(Errc::Corrupt,
                      "channel '" + std::string(name) + "': " + path + " is " + p.what +
                          ", not a bips channel socket; remove it if it is not needed, or "
                          "choose another channel name or BIPS_DIR");
}

Result<UniqueFd> connect_channel(const std::string &path, std::string_view name)
{
    const std::string ch = "channel '" + std::string(name) + "'";
    const ProbeResult p = probe_name(path);
    if (p.state == NameState::Foreign)
        return foreign_error(name, path, p);
    if (p.state == NameState::Missing)
        return make_error(Errc::NotFound, ch + " does not exist (no " + path +
                                              "); start its producer first");
    UniqueFd s;
    switch (const int err = try_connect(path, &s)) {
    case 0:
        return s;
    case ENOENT:
        return make_error(Errc::NotFound, ch + " does not exist (no " + path +
                                              "); start its producer first");
    case ECONNREFUSED:
        return make_error(Errc::NotFound,
                          ch + " has no producer: " + path +
                              " was left by one that died; start a producer (it takes the "
                              "name over) or remove it with `bips clean`");
    case EAGAIN:
        return make_error(Errc::Busy, "the producer of " + ch + " is not accepting connections");
    case EACCES:
    case EPERM:
        return make_error(Errc::PermissionDenied,
                          "no permission to connect to " + ch + " at " + path + " (" + p.what +
                              "); run as the producer's user, or start the producer with a "
                              "group mode (e.g. mode 0660) and add this user to its group");
    default:
        if (err == EPROTOTYPE || err == ENOTSOCK) {
            ProbeResult other = p;
            other.what = "a socket of another kind";
            return foreign_error(name, path, other);
        }
        return make_error(Errc::System,
                          "cannot connect to " + ch + " at " + path + ": " + std::strerror(err));
    }
}

Result<NamedSocket> bind_channel(const std::string &path, std::string_view name, uint32_t mode)
{
    const std::string ch = "channel '" + std::string(name) + "'";
    std::string tmp;
    auto bound = bind_temporary(path, mode, &tmp);
    if (!bound)
        return bound.error();
    // The temporary name goes on every path out of here except success.
    struct TmpGuard {
        std::string &path;
        ~TmpGuard()
        {
            if (!path.empty())
                unlink(path.c_str());
        }
    } guard{tmp};

    for (int attempt = 0; attempt < 16; ++attempt) {
        const ProbeResult p = probe_name(path);
        switch (p.state) {
        case NameState::Live:
            return make_error(Errc::Busy, ch + " already has a live producer; stop it or "
                                               "choose another channel name");
        case NameState::Denied:
            return make_error(Errc::PermissionDenied,
                              ch + " is held by " + p.what +
                                  " that this user cannot connect to, so it cannot be told "
                                  "dead or alive; ask its owner, or choose another name");
        case NameState::Foreign:
            return foreign_error(name, path, p);
        case NameState::Missing: {
            int err = rename2(tmp, path, RENAME_NOREPLACE);
            if (err == EINVAL) { // a file system without renameat2 flags
                err = link(tmp.c_str(), path.c_str()) == 0 ? 0 : errno;
                if (err == 0)
                    unlink(tmp.c_str());
            }
            if (err == 0) {
                tmp.clear();
                return std::move(bound.value());
            }
            if (err == EEXIST)
                continue; // someone else took the name: look again
            return make_error(Errc::System, "cannot name the channel socket " + path + ": " +
                                                std::strerror(err));
        }
        case NameState::Dead: {
            // Swap atomically, then check that what we displaced is the
            // dead socket we probed; if a live producer got there first,
            // swap back.
            int err = rename2(tmp, path, RENAME_EXCHANGE);
            if (err == EINVAL) {
                err = rename(tmp.c_str(), path.c_str()) == 0 ? 0 : errno;
                if (err == 0) {
                    tmp.clear();
                    return std::move(bound.value());
                }
            }
            if (err == ENOENT)
                continue;
            if (err != 0)
                return make_error(Errc::System, "cannot replace the dead socket " + path + ": " +
                                                    std::strerror(err));
            const ProbeResult displaced = probe_name(tmp);
            const bool same = displaced.dev == p.dev && displaced.ino == p.ino;
            if (!same && displaced.state == NameState::Live) {
                rename2(tmp, path, RENAME_EXCHANGE);
                continue;
            }
            // `tmp` now names the dead socket: the guard removes it.
            return std::move(bound.value());
        }
        }
    }
    return make_error(Errc::Busy, ch + " is being taken over by several producers at once");
}

void unlink_if_same(const std::string &path, dev_t dev, ino_t ino)
{
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && st.st_dev == dev && st.st_ino == ino)
        unlink(path.c_str());
}

bool remove_if_dead(const std::string &path)
{
    const ProbeResult p = probe_name(path);
    if (p.state != NameState::Dead)
        return false;
    // Move it aside first, then check that what moved is what we proved
    // dead: a producer may have replaced the name in between.
    const std::string aside = random_name(path, ".bips-clean-");
    if (rename2(path, aside, RENAME_NOREPLACE) != 0)
        return false;
    const ProbeResult moved = probe_name(aside);
    if (moved.dev == p.dev && moved.ino == p.ino) {
        unlink(aside.c_str());
        return true;
    }
    // Not the one we checked: put it back. If the name was taken again
    // meanwhile, remove what we moved only if it is a dead socket too.
    if (rename2(aside, path, RENAME_NOREPLACE) != 0 && moved.state == NameState::Dead)
        unlink(aside.c_str());
    return false;
}

} // namespace bips::detail
