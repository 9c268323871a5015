// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: sealed memfd segments.
#include "shm.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace bips::detail {

namespace {

std::string mib(uint64_t bytes)
{
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
    return buf;
}

Error sys_error(std::string_view what, int err)
{
    return make_error(Errc::System, std::string(what) + ": " + std::strerror(err));
}

} // namespace

uint64_t system_page_size()
{
    static const uint64_t size = [] {
        long p = sysconf(_SC_PAGESIZE);
        return p > 0 ? uint64_t(p) : uint64_t(4096);
    }();
    return size;
}

uint64_t align_to_page(uint64_t bytes)
{
    const uint64_t p = system_page_size();
    return (bytes + p - 1) / p * p;
}

Result<UniqueFd> create_memfd(const std::string &label, uint64_t size, std::string_view channel)
{
    int raw = memfd_create(label.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
    if (raw < 0 && errno == EINVAL) // kernels before 6.3 lack MFD_NOEXEC_SEAL
        raw = memfd_create(label.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (raw < 0)
        return sys_error("cannot create shared memory for channel '" + std::string(channel) + "'",
                         errno);
    UniqueFd fd(raw);
    if (ftruncate(fd.get(), off_t(size)) != 0)
        return sys_error("cannot size shared memory of channel '" + std::string(channel) + "'",
                         errno);
    if (int err = posix_fallocate(fd.get(), 0, off_t(size)); err != 0) {
        if (err == ENOSPC || err == ENOMEM)
            return make_error(Errc::NoSpace,
                              "channel '" + std::string(channel) + "' needs " + mib(size) +
                                  " of shared memory and the system refused it (" +
                                  std::strerror(err) +
                                  "); raise the memory limit of this process or container, "
                                  "or use fewer or smaller slots");
        if (err != EOPNOTSUPP && err != EINVAL)
            return sys_error("cannot reserve memory for channel '" + std::string(channel) + "'",
                             err);
    }
    return fd;
}

Result<void> add_seals(int fd, unsigned seals, std::string_view what)
{
    if (fcntl(fd, F_ADD_SEALS, int(seals)) != 0)
        return sys_error("cannot seal " + std::string(what), errno);
    return {};
}

Result<UniqueFd> reopen_read_only(int fd, std::string_view what)
{
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    int raw = ::open(proc.c_str(), O_RDONLY | O_CLOEXEC);
    if (raw < 0)
        return sys_error("cannot open a read-only view of " + std::string(what) +
                             " (is /proc mounted?)",
                         errno);
    return UniqueFd(raw);
}

Result<uint64_t> check_memfd(int fd, unsigned seals, uint64_t min_size, std::string_view what)
{
    const int have = fcntl(fd, F_GET_SEALS);
    if (have < 0)
        return make_error(Errc::Corrupt, std::string(what) + " is not a sealable memfd");
    if ((unsigned(have) & seals) != seals)
        return make_error(Errc::Corrupt, std::string(what) +
                                             " is not sealed against resizing; a peer could "
                                             "shrink it under us");
    struct stat st;
    if (fstat(fd, &st) != 0)
        return sys_error("cannot stat " + std::string(what), errno);
    if (uint64_t(st.st_size) < min_size)
        return make_error(Errc::Corrupt, std::string(what) + " has " +
                                             std::to_string(st.st_size) + " bytes, less than the " +
                                             std::to_string(min_size) + " it must hold");
    return uint64_t(st.st_size);
}

Result<Mapping> map_shared(int fd, uint64_t size, bool writable, std::string_view what)
{
    const int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
    void *p = mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return sys_error("cannot map " + std::string(what), errno);
    return Mapping(p, size);
}

} // namespace bips::detail
