// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: segment files: creation, takeover, opening, mapping and kernel locks.
//
// A channel `name` is the file <shm_directory()>/bips-<name>. A producer
// builds a new segment under a hidden temporary name, formats it, locks its
// producer byte and only then gives it the channel's name (link() for a new
// channel, rename() over a dead producer's segment), so the name never
// points at a half-written header and maps to at most one segment.
//
// Liveness is carried by open-file-description (OFD) byte locks, which the
// kernel drops when the owning process dies, whatever its PID namespace.
#pragma once

#include "ring.h"

#include <memory>
#include <string>
#include <sys/types.h>

namespace bips::detail {

class Segment {
public:
    enum class Access { Producer, Consumer, Inspect };

    // Creates the channel's segment, taking over a dead producer's segment
    // if there is one (epoch = old epoch + 1). The result is formatted, named,
    // mapped read-write and holds the producer lock.
    static Result<std::unique_ptr<Segment>> create(std::string_view name,
                                                   const Geometry &geometry, uint32_t mode);

    // Opens an existing channel. Consumer: control mapped read-write, slot
    // data read-only. Inspect: everything read-only. The header is validated.
    // Errors: NotFound, PermissionDenied, Corrupt, Incompatible, System.
    static Result<std::unique_ptr<Segment>> open(std::string_view name, Access access);

    // Same, for a file path (used by listing and cleaning).
    static Result<std::unique_ptr<Segment>> open_path(const std::string &path,
                                                      std::string_view name, Access access);

    ~Segment();
    Segment(const Segment &) = delete;
    Segment &operator=(const Segment &) = delete;

    const RingView &view() const { return view_; }
    const std::string &name() const { return name_; }
    const std::string &path() const { return path_; }
    int fd() const { return fd_; }

    // True while some process (other than through this descriptor) holds
    // the producer lock.
    bool producer_alive() const;
    // Takes/drops the lock of consumer entry i; false if someone holds it.
    bool lock_consumer(uint32_t i) const;
    void unlock_consumer(uint32_t i) const;
    // True while another open file description holds entry i's lock.
    bool consumer_alive(uint32_t i) const;

    // Counters and liveness of the channel. `own_entry` is the consumer
    // entry this process holds through this segment (alive by definition).
    ChannelInfo snapshot(uint32_t own_entry = UINT32_MAX) const;

    // Removes the name if it still refers to this segment (clean exit).
    void unlink_if_named();

private:
    Segment() = default;
    std::string name_;
    std::string path_;
    int fd_ = -1;
    void *map_ = nullptr;      // control (and, for producers, data) mapping
    size_t map_len_ = 0;
    void *data_map_ = nullptr; // consumers: separate read-only data mapping
    size_t data_len_ = 0;
    bool ofd_producer_ = false; // this descriptor holds the producer lock
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    RingView view_;
};

// OFD byte-range locks on a segment file descriptor.
bool ofd_try_lock(int fd, uint64_t byte);
void ofd_unlock(int fd, uint64_t byte);
bool ofd_locked_by_other(int fd, uint64_t byte);

} // namespace bips::detail
