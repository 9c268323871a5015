// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: `bips clean`, removes channels whose producer is dead.
#include "cli.h"
#include "commands.h"

#include <bips/channel.h>

#include <algorithm>
#include <iostream>

namespace bips::tool {

namespace {

const std::vector<OptionSpec> kOptions = {
    {"dry-run", "", "print what would be removed and remove nothing"},
};

void print_help()
{
    std::cout << "Usage: bips clean [--dry-run] [CHANNEL...]\n"
                 "Without CHANNEL: removes the sockets of every channel whose producer died\n"
                 "(nobody listens on them any more), and temporary sockets of producers\n"
                 "that crashed while creating a channel.\n"
                 "With CHANNEL...: removes only those channels, each only if its producer is\n"
                 "dead; a channel with a live producer is refused with a message (stop the\n"
                 "producer instead: it removes its own name when it exits).\n"
                 "A socket with a live producer is never touched, nor is anything that is\n"
                 "not a socket: a name is removed only after the very socket removed is\n"
                 "proven to have no listener, even if a new producer takes the name over\n"
                 "meanwhile. Prints each name removed. The channels' memory needs no\n"
                 "cleaning: it has no name, and the kernel frees it when the last process\n"
                 "using it lets go.\n"
                 "Channel sockets live in "
              << bips::channel_directory()
              << " ($BIPS_DIR, else /dev/shm).\n\n"
                 "Exit status: 0 when everything asked for was (or, with --dry-run, would\n"
                 "be) removed or there was nothing to remove; 1 when a named channel is\n"
                 "live, missing, not a bips socket or could not be removed; 2 on a usage\n"
                 "error.\n\n";
    print_options(std::cout, kOptions);
}

// `bips clean` without names: every dead name, as clean_channels() does.
int clean_all(bool dry_run)
{
    if (!dry_run) {
        auto removed = bips::clean_channels();
        if (!removed.ok())
            return runtime_error("clean", removed.error().message);
        if (removed->empty())
            std::cout << "nothing to clean\n";
        for (const auto &name : *removed)
            std::cout << "removed " << name << "\n";
        return kExitOk;
    }
    auto dead = bips::dead_channels();
    if (!dead.ok())
        return runtime_error("clean", dead.error().message);
    for (const auto &name : *dead) {
        if (name.rfind(".bips-", 0) == 0)
            std::cout << "would remove " << name
                      << " (temporary name of a producer that crashed)\n";
        else
            std::cout << "would remove " << name << "\n";
    }
    if (dead->empty())
        std::cout << "nothing to clean\n";
    return kExitOk;
}

// One named channel; true when it was (or would be) removed.
bool clean_one(const std::string &name, bool dry_run)
{
    if (dry_run) {
        auto info = bips::inspect_channel(name);
        if (!info.ok()) {
            std::cerr << "bips clean: '" << name << "': " << info.error().message << "\n";
            return false;
        }
        if (info->producer_alive) {
            std::cerr << "bips clean: refusing to remove '" << name
                      << "': its producer is live (pid " << info->producer_pid
                      << "); stop the producer instead, it removes the name when it exits\n";
            return false;
        }
        std::cout << "would remove " << name << "\n";
        return true;
    }
    auto removed = bips::clean_channel(name);
    if (!removed.ok() && removed.code() == bips::Errc::Busy) {
        auto info = bips::inspect_channel(name);
        std::cerr << "bips clean: refusing to remove '" << name << "': its producer is live";
        if (info.ok() && info->producer_alive)
            std::cerr << " (pid " << info->producer_pid << ")";
        std::cerr << "; stop the producer instead, it removes the name when it exits\n";
        return false;
    }
    if (!removed.ok() && removed.code() == bips::Errc::NotFound) {
        std::cerr << "bips clean: no channel '" << name << "' (" << removed.error().message
                  << ")\n";
        return false;
    }
    if (!removed.ok()) {
        std::cerr << "bips clean: refusing to remove '" << name << "': " << removed.error().message
                  << "\n";
        return false;
    }
    if (!*removed) {
        std::cerr << "bips clean: '" << name
                  << "' was dead a moment ago, but it is gone or a new producer took the name "
                     "over meanwhile; nothing removed\n";
        return false;
    }
    std::cout << "removed " << name << "\n";
    return true;
}

} // namespace

int cmd_clean(const std::vector<std::string_view> &argv)
{
    auto args = parse_args(argv, kOptions);
    if (!args.ok())
        return usage_error("clean", args.error().message);
    if (args->help) {
        print_help();
        return kExitOk;
    }
    const bool dry_run = args->has("dry-run");
    if (args->positionals.empty())
        return clean_all(dry_run);

    // Every name is checked before anything is removed.
    for (const auto &name : args->positionals)
        if (auto valid = bips::validate_channel_name(name); !valid.ok())
            return usage_error("clean", valid.error().message);
    bool all = true;
    std::vector<std::string> done;
    for (const auto &name : args->positionals) {
        if (std::find(done.begin(), done.end(), name) != done.end())
            continue; // a name given twice is cleaned once
        done.push_back(name);
        all = clean_one(name, dry_run) && all;
    }
    return all ? kExitOk : kExitRuntime;
}

} // namespace bips::tool
