// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: `bips list`, one line per channel.
#include "channel_text.h"
#include "cli.h"
#include "commands.h"

#include <bips/channel.h>

#include <iostream>

namespace bips::tool {

namespace {

const std::vector<OptionSpec> kOptions = {};

void print_help()
{
    std::cout << "Usage: bips list\n"
                 "Lists every channel: its producer state (live, dead or closed), epoch,\n"
                 "slots x slot size, consumers attached and frames published, as its\n"
                 "producer reports them over the channel's socket. A dead channel is a\n"
                 "socket its producer left behind (nothing more is known about it; 'bips\n"
                 "clean' removes it). Names that are not bips channel sockets (a FIFO, a\n"
                 "file, ...) and producers that do not answer within 2 s are listed under\n"
                 "'problems': nothing found in the folder holds the listing up longer.\n"
                 "Channel sockets live in "
              << bips::channel_directory() << " ($BIPS_DIR, else /dev/shm).\n\n";
    print_options(std::cout, kOptions);
}

} // namespace

int cmd_list(const std::vector<std::string_view> &argv)
{
    auto args = parse_args(argv, kOptions);
    if (!args.ok())
        return usage_error("list", args.error().message);
    if (args->help) {
        print_help();
        return kExitOk;
    }
    if (!args->positionals.empty())
        return usage_error("list", "unexpected argument '" + args->positionals[0] +
                                       "'; for one channel use 'bips info CHANNEL'");

    auto list = bips::list_channels();
    if (!list.ok())
        return runtime_error("list", list.error().message);

    if (list->channels.empty()) {
        std::cout << "no channels\n";
    } else {
        Table table({"NAME", "PRODUCER", "EPOCH", "SLOTS", "CONSUMERS", "PUBLISHED"},
                    {false, false, true, true, true, true});
        for (const auto &ch : list->channels) {
            // A dead producer cannot be asked: its geometry and counters
            // are unknown, not zero.
            if (!ch.producer_alive) {
                table.add_row({ch.name, producer_state(ch), "-", "-", "-", "-"});
                continue;
            }
            table.add_row({ch.name, producer_state(ch), std::to_string(ch.epoch),
                           std::to_string(ch.slot_count) + " x " + format_bytes(ch.slot_size),
                           std::to_string(ch.consumers.size()), std::to_string(ch.published)});
        }
        table.print(std::cout);
    }
    if (!list->problems.empty()) {
        std::cout << "problems:\n";
        for (const auto &p : list->problems)
            std::cout << "  " << printable(p, 500) << "\n";
    }
    return kExitOk;
}

} // namespace bips::tool
