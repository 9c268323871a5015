// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: channel names in the channel directory (unix-domain sockets).
//
// A channel `cam0` is the socket <channel_directory()>/bips-cam0 on which
// its producer listens; the channel's memory never appears in the folder.
// The folder is treated as hostile: nothing in it is opened (only lstat,
// connect, rename and unlink, which neither follow a final symlink nor block
// on a FIFO), temporary names are random, and a name is replaced or removed
// only after proving that its socket has no listener, with an atomic
// exchange that is undone if the proof went stale meanwhile.
#pragma once

#include "fd.h"

#include <bips/result.h>

#include <string>
#include <sys/types.h>

namespace bips::detail {

enum class NameState {
    Missing, // nothing under the name
    Live,    // a socket with a listener (a producer, possibly busy)
    Dead,    // a socket nobody listens on (its producer died)
    Foreign, // something else: see ProbeResult::what
    Denied,  // a socket this user may not connect to
};

struct ProbeResult {
    NameState state = NameState::Missing;
    dev_t dev = 0;
    ino_t ino = 0;
    uid_t uid = 0;
    mode_t mode = 0;
    std::string what; // e.g. "a FIFO owned by uid 1000 (mode 0644)"
};

// Looks at `path` without opening it. Never blocks.
ProbeResult probe_name(const std::string &path);

// Connects to the channel at `path` (non-blocking socket, close-on-exec).
// Errors: NotFound (no name, or a dead producer's name), PermissionDenied,
// Corrupt (the name is not a socket: the message says what is there).
Result<UniqueFd> connect_channel(const std::string &path, std::string_view name);

// A bound, listening socket that carries the channel's name.
struct NamedSocket {
    UniqueFd fd;
    dev_t dev = 0;
    ino_t ino = 0;
};

// Binds a listening socket with permission bits `mode` under the
// channel's name, replacing a dead producer's socket. Errors: Busy (a live
// producer), PermissionDenied, Corrupt (the name holds something else),
// System.
Result<NamedSocket> bind_channel(const std::string &path, std::string_view name, uint32_t mode);

// Removes `path` if it is still the socket (dev, ino): a clean exit.
void unlink_if_same(const std::string &path, dev_t dev, ino_t ino);

// Removes `path` only if it is a socket nobody listens on, never a live
// one even if a producer replaces it concurrently. True when removed.
bool remove_if_dead(const std::string &path);

// The error for a name held by something that is not a bips socket.
Error foreign_error(std::string_view name, const std::string &path, const ProbeResult &p);

} // namespace bips::detail
