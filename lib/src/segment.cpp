// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: segment files: creation, takeover, opening, mapping and kernel locks.
#include "segment.h"

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace bips::detail {

namespace {

std::string mib(uint64_t bytes)
{
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
    return buf;
}

Error sys_error(const std::string &what, int err)
{
    return make_error(Errc::System, what + ": " + std::strerror(err));
}

Error no_space(std::string_view name, const std::string &dir, uint64_t need, uint64_t free)
{
    return make_error(Errc::NoSpace,
                      "channel '" + std::string(name) + "' needs " + mib(need) + ", " + dir +
                          " has " + mib(free) +
                          " free; enlarge it (e.g. docker run --shm-size=1g, or remount "
                          "the tmpfs with a larger size) or use fewer or smaller slots");
}

uint64_t free_bytes(const std::string &dir)
{
    struct statvfs st;
    if (statvfs(dir.c_str(), &st) != 0)
        return UINT64_MAX;
    return uint64_t(st.f_bavail) * st.f_frsize;
}

Error open_error(std::string_view name, const std::string &path, int err)
{
    if (err == ENOENT)
        return make_error(Errc::NotFound, "channel '" + std::string(name) +
                                              "' does not exist (no " + path +
                                              "); start its producer first");
    if (err == EACCES || err == EPERM) {
        struct stat st;
        std::string detail;
        if (stat(path.c_str(), &st) == 0) {
            char buf[96];
            std::snprintf(buf, sizeof(buf), " (mode %04o, owner uid %u)", st.st_mode & 07777,
                          unsigned(st.st_uid));
            detail = buf;
        }
        return make_error(Errc::PermissionDenied,
                          "no permission to open channel '" + std::string(name) + "' at " +
                              path + detail +
                              "; run as the producer's user or start the producer with a "
                              "wider mode (e.g. perms=0666)");
    }
    return sys_error("cannot open " + path, err);
}

std::atomic<uint32_t> g_tmp_counter{0};

} // namespace

namespace {

// A one-byte OFD lock request on `byte`.
struct flock ofd_byte(short type, uint64_t byte)
{
    struct flock fl{};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = off_t(byte);
    fl.l_len = 1;
    return fl;
}

} // namespace

bool ofd_try_lock(int fd, uint64_t byte)
{
    struct flock fl = ofd_byte(F_WRLCK, byte);
    return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

void ofd_unlock(int fd, uint64_t byte)
{
    struct flock fl = ofd_byte(F_UNLCK, byte);
    fcntl(fd, F_OFD_SETLK, &fl);
}

bool ofd_locked_by_other(int fd, uint64_t byte)
{
    struct flock fl = ofd_byte(F_WRLCK, byte);
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return true; // cannot tell: assume alive, never reclaim wrongly
    return fl.l_type != F_UNLCK;
}

Segment::~Segment()
{
    if (data_map_)
        munmap(data_map_, data_len_);
    if (map_)
        munmap(map_, map_len_);
    if (fd_ >= 0)
        close(fd_); // drops every OFD lock taken through it
}

bool Segment::producer_alive() const { return ofd_locked_by_other(fd_, kProducerLockByte); }
bool Segment::lock_consumer(uint32_t i) const { return ofd_try_lock(fd_, consumer_lock_byte(i)); }
void Segment::unlock_consumer(uint32_t i) const { ofd_unlock(fd_, consumer_lock_byte(i)); }
bool Segment::consumer_alive(uint32_t i) const
{
    return ofd_locked_by_other(fd_, consumer_lock_byte(i));
}

ChannelInfo Segment::snapshot(uint32_t own_entry) const
{
    ChannelInfo info;
    info.name = name_;
    read_counters(view_, info);
    // A lock held through our own descriptor does not show as "other".
    info.producer_alive = ofd_producer_ || producer_alive();
    for (auto &c : info.consumers)
        c.alive = c.index == own_entry || consumer_alive(c.index);
    return info;
}

void Segment::unlink_if_named()
{
    struct stat st;
    if (stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
        unlink(path_.c_str());
}

Result<std::unique_ptr<Segment>> Segment::create(std::string_view name, const Geometry &g,
                                                 uint32_t mode)
{
    if (auto r = validate_channel_name(name); !r)
        return r.error();
    const std::string dir = shm_directory();
    const std::string path = segment_path(name);
    if (uint64_t avail = free_bytes(dir); avail < g.total_size)
        return no_space(name, dir, g.total_size, avail);

    std::unique_ptr<Segment> seg(new Segment());
    seg->name_ = std::string(name);
    seg->path_ = path;

    char tmpname[96];
    std::snprintf(tmpname, sizeof(tmpname), "/.bips-tmp-%d-%u", int(getpid()),
                  g_tmp_counter.fetch_add(1));
    const std::string tmp = dir + tmpname;
    seg->fd_ = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (seg->fd_ < 0) {
        int err = errno;
        if (err == EACCES || err == EPERM)
            return make_error(Errc::PermissionDenied, "cannot create files in " + dir +
                                                          ": " + std::strerror(err));
        return sys_error("cannot create a segment in " + dir, err);
    }
    // From here on the temporary file is removed on every failure.
    struct TmpGuard {
        const std::string &path;
        bool armed = true;
        ~TmpGuard()
        {
            if (armed)
                unlink(path.c_str());
        }
    } guard{tmp};

    fchmod(seg->fd_, mode); // the creation mode was filtered by the umask
    seg->ofd_producer_ = ofd_try_lock(seg->fd_, kProducerLockByte);
    if (ftruncate(seg->fd_, off_t(g.total_size)) != 0)
        return sys_error("cannot size segment of channel '" + std::string(name) + "'", errno);
    if (int err = posix_fallocate(seg->fd_, 0, off_t(g.total_size)); err != 0) {
        if (err == ENOSPC)
            return no_space(name, dir, g.total_size, free_bytes(dir));
        if (err != EOPNOTSUPP && err != EINVAL)
            return sys_error("cannot reserve memory for channel '" + std::string(name) + "'", err);
    }
    seg->map_len_ = g.total_size;
    seg->map_ = mmap(nullptr, seg->map_len_, PROT_READ | PROT_WRITE, MAP_SHARED, seg->fd_, 0);
    if (seg->map_ == MAP_FAILED) {
        seg->map_ = nullptr;
        return sys_error("cannot map channel '" + std::string(name) + "'", errno);
    }
    // Fault the whole mapping in now: the first write to each page of a
    // slot otherwise costs a page fault while frames flow (about 8,000 of
    // them for one 4K RGBA slot). Best effort: older kernels lack it.
    madvise(seg->map_, seg->map_len_, MADV_POPULATE_WRITE);
    auto *base = static_cast<std::byte *>(seg->map_);
    seg->view_ = RingView(base, base + g.control_size, g);
    struct stat st;
    fstat(seg->fd_, &st);
    seg->dev_ = st.st_dev;
    seg->ino_ = st.st_ino;

    // Give the segment its name: link() when the name is free; rename()
    // over a dead producer's segment, whose producer lock we then hold, so
    // that no other producer can take it over at the same time.
    for (int attempt = 0; attempt < 8; ++attempt) {
        int old = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (old < 0 && errno == ENOENT) {
            format_segment(seg->view_, 1, mode, int32_t(getpid()));
            if (link(tmp.c_str(), path.c_str()) == 0)
                return seg; // the guard unlinks the temporary name
            if (errno == EEXIST)
                continue;
            return sys_error("cannot name segment " + path, errno);
        }
        if (old < 0)
            return open_error(name, path, errno);
        if (!ofd_try_lock(old, kProducerLockByte)) {
            SegmentHeader h{};
            ssize_t n = pread(old, &h, offsetof(SegmentHeader, write_seq), 0);
            close(old);
            std::string pid = (n > 0 && h.magic == kMagic)
                                  ? " (pid " + std::to_string(h.producer_pid) + ")"
                                  : "";
            return make_error(Errc::Busy, "channel '" + std::string(name) +
                                              "' already has a live producer" + pid +
                                              "; stop it or choose another channel name");
        }
        // The previous producer is dead. Read its epoch if its header is sane.
        uint64_t epoch = 1;
        struct stat ost;
        fstat(old, &ost);
        SegmentHeader oh{};
        if (pread(old, &oh, sizeof(oh), 0) == ssize_t(sizeof(oh)) &&
            validate_header(&oh, uint64_t(ost.st_size), uint64_t(ost.st_size), name).ok())
            epoch = oh.epoch + 1;
        struct stat now;
        if (stat(path.c_str(), &now) != 0 || now.st_ino != ost.st_ino || now.st_dev != ost.st_dev) {
            close(old); // replaced meanwhile by another producer: look again
            continue;
        }
        format_segment(seg->view_, epoch, mode, int32_t(getpid()));
        // Tell the old segment's consumers promptly that it is closed.
        if (epoch > 1) {
            void *om = mmap(nullptr, sizeof(SegmentHeader), PROT_READ | PROT_WRITE, MAP_SHARED,
                            old, 0);
            if (om != MAP_FAILED) {
                auto *h = static_cast<SegmentHeader *>(om);
                h->producer_state.store(kProducerClosed, std::memory_order_seq_cst);
                Signaler(&h->frame_futex, &h->frame_waiters).notify_always();
                munmap(om, sizeof(SegmentHeader));
            }
        }
        if (rename(tmp.c_str(), path.c_str()) != 0) {
            int err = errno;
            close(old);
            return sys_error("cannot replace segment " + path, err);
        }
        guard.armed = false;
        close(old);
        return seg;
    }
    return make_error(Errc::Busy, "channel '" + std::string(name) +
                                      "' is being created by several producers at once");
}

Result<std::unique_ptr<Segment>> Segment::open(std::string_view name, Access access)
{
    if (auto r = validate_channel_name(name); !r)
        return r.error();
    return open_path(segment_path(name), name, access);
}

Result<std::unique_ptr<Segment>> Segment::open_path(const std::string &path, std::string_view name,
                                                    Access access)
{
    const bool writable = access != Access::Inspect;
    std::unique_ptr<Segment> seg(new Segment());
    seg->name_ = std::string(name);
    seg->path_ = path;
    seg->fd_ = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
    if (seg->fd_ < 0)
        return open_error(name, path, errno);
    struct stat st;
    if (fstat(seg->fd_, &st) != 0)
        return sys_error("cannot stat " + path, errno);
    if (!S_ISREG(st.st_mode))
        return make_error(Errc::Corrupt, path + " is not a regular file, so not a bips channel");
    seg->dev_ = st.st_dev;
    seg->ino_ = st.st_ino;
    const uint64_t file_size = uint64_t(st.st_size);

    // Validate a private copy of the header before mapping anything.
    SegmentHeader h{};
    if (file_size < sizeof(h) || pread(seg->fd_, &h, sizeof(h), 0) != ssize_t(sizeof(h)))
        return make_error(Errc::Corrupt, "channel '" + std::string(name) +
                                             "': segment is too short to hold a header; "
                                             "delete the file if no producer uses it");
    auto geometry = validate_header(&h, file_size, file_size, name);
    if (!geometry)
        return geometry.error();
    const Geometry &g = geometry.value();

    const int ctl_prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
    seg->map_len_ = g.control_size;
    seg->map_ = mmap(nullptr, seg->map_len_, ctl_prot, MAP_SHARED, seg->fd_, 0);
    if (seg->map_ == MAP_FAILED) {
        seg->map_ = nullptr;
        return sys_error("cannot map channel '" + std::string(name) + "'", errno);
    }
    std::byte *data = nullptr;
    if (access == Access::Consumer) {
        // Slot data is read-only for consumers: a bug there cannot corrupt
        // the producer's frames.
        seg->data_len_ = g.total_size - g.control_size;
        seg->data_map_ = mmap(nullptr, seg->data_len_, PROT_READ, MAP_SHARED, seg->fd_,
                              off_t(g.control_size));
        if (seg->data_map_ == MAP_FAILED) {
            seg->data_map_ = nullptr;
            return sys_error("cannot map frames of channel '" + std::string(name) + "'", errno);
        }
        // Likewise for reading frames (best effort).
        madvise(seg->data_map_, seg->data_len_, MADV_POPULATE_READ);
        data = static_cast<std::byte *>(seg->data_map_);
    }
    seg->view_ = RingView(static_cast<std::byte *>(seg->map_), data, g);
    return seg;
}

} // namespace bips::detail
