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
                 "Removes the channels whose producer is dead (and temporary files of\n"
                 "producers that crashed while creating one). Channels with a live\n"
                 "producer are never touched. Prints each name removed.\n"
                 "Channels live in "
              << bips::shm_directory() << " ($BIPS_SHM_DIR, else /dev/shm).\n\n";
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
