// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: process-wide guards: descriptors a forked child must not keep, and
// channel names to remove when a terminating signal kills the process.
//
// Fork: a child made by fork() without exec (Python multiprocessing's
// default) inherits every descriptor. A child that outlives its parent
// would keep the parent's channel sockets open and make a dead process
// look alive. Registered descriptors are replaced by /dev/null in the child
// (pthread_atfork), so the number stays valid for the child's own close()
// while the socket itself is no longer shared.
//
// Signals: a producer killed by SIGTERM, SIGHUP or SIGINT would leave its
// socket name behind. When those signals have their default disposition at
// registration, a handler removes registered names (lstat + unlink, both
// async-signal-safe) and re-raises the signal with the default action.
// Handlers the application installed itself are never replaced. A forked
// child forgets its parent's names (they are not its own to remove).
//
// All functions are thread-safe and lock-free.
#pragma once

#include <string>
#include <sys/types.h>

namespace bips::detail {

// Returns a token for unregister_fork_fd (-1 when the table is full: the
// descriptor then stays inherited, as without the guard).
int register_fork_fd(int fd);
void unregister_fork_fd(int token);

// Returns a token for unregister_exit_name (-1 when the table is full or
// the path too long).
int register_exit_name(const std::string &path, dev_t dev, ino_t ino);
void unregister_exit_name(int token);

} // namespace bips::detail
