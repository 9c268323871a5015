// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: `bips clean`, removes channels whose producer is dead.
#include "cli.h"
#include "commands.h"

#include <bips/channel.h>

#include <iostream>

namespace bips::tool {

namespace {

const std::vector<OptionSpec> kOptions = {};

void print_help()
{
    std::cout << "Usage: bips clean\n"
                 "Removes the sockets of channels whose producer died (nobody listens on\n"
                 "them any more), and temporary sockets of producers that crashed while\n"
                 "creating a channel. A socket with a live producer is never touched, nor\n"
                 "is anything that is not a socket. Prints each name removed. The channels'\n"
                 "memory needs no cleaning: it has no name, and the kernel frees it when\n"
                 "the last process using it lets go.\n"
                 "Channel sockets live in "
              << bips::channel_directory() << " ($BIPS_DIR, else /dev/shm).\n\n";
    print_options(std::cout, kOptions);
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
    if (!args->positionals.empty())
        return usage_error("clean", "unexpected argument '" + args->positionals[0] +
                                        "'; clean takes no channel name, it removes every "
                                        "channel whose producer is dead");

    auto removed = bips::clean_channels();
    if (!removed.ok())
        return runtime_error("clean", removed.error().message);
    if (removed->empty())
        std::cout << "nothing to clean\n";
    for (const auto &name : *removed)
        std::cout << "removed " << name << "\n";
    return kExitOk;
}

} // namespace bips::tool
