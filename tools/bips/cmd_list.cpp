// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: `bips list`, one line per channel.
#include "channel_json.h"
#include "channel_text.h"
#include "cli.h"
#include "commands.h"

#include <bips/channel.h>

#include <iostream>

namespace bips::tool {

namespace {

const std::vector<OptionSpec> kOptions = {
    {"json", "", "print the listing as JSON (schema bips.list/1, see docs/cli.md)"},
};

void print_help()
{
    std::cout << "Usage: bips list [--json]\n"
                 "Lists every channel: its producer state (live, dead or closed), epoch,\n"
                 "slots x slot size, consumers attached and frames published, as its\n"
                 "producer reports them over the channel's socket. A dead channel is a\n"
                 "socket its producer left behind (nothing more is known about it; 'bips\n"
                 "clean' removes it). Names that are not bips channel sockets (a FIFO, a\n"
                 "file, ...) and producers that do not answer within 2 s are listed under\n"
                 "'problems': nothing found in the folder holds the listing up longer.\n"
                 "Channel sockets live in "
              << bips::channel_directory()
              << " ($BIPS_DIR, else /dev/shm).\n\n"
                 "Exit status:\n"
                 "  0  every channel found has a live producer and nothing is amiss\n"
                 "     (no channels at all counts as healthy)\n"
                 "  1  the folder could not be read\n"
                 "  2  usage error\n"
                 "  3  listed, but found dead channels or problems (foreign files, channels\n"
                 "     that could not be read, producers that did not answer)\n"
                 "The listing is printed in full either way.\n\n";
    print_options(std::cout, kOptions);
}

std::size_t count_dead(const bips::ChannelList &list)
{
    std::size_t dead = 0;
    for (const auto &ch : list.channels)
        dead += ch.producer_alive ? 0 : 1;
    return dead;
}

void print_json(const bips::ChannelList &list, bool healthy)
{
    JsonWriter json(true);
    begin_document(json, "list");
    json.member("healthy", healthy);
    json.key("channels").begin_array();
    for (const auto &ch : list.channels)
        write_channel(json, ch, nullptr);
    json.end_array();
    write_problems(json, list.problems);
    json.end_object();
    std::cout << json.text();
}

void print_text(const bips::ChannelList &list)
{
    if (list.channels.empty()) {
        std::cout << "no channels\n";
    } else {
        Table table({"NAME", "PRODUCER", "EPOCH", "SLOTS", "CONSUMERS", "PUBLISHED"},
                    {false, false, true, true, true, true});
        for (const auto &ch : list.channels) {
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
    if (!list.problems.empty()) {
        std::cout << "problems:\n";
        for (const auto &p : list.problems)
            std::cout << "  " << printable(p, 500) << "\n";
    }
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
        return usage_error("list", "unexpected argument '" + printable(args->positionals[0], 80) +
                                       "'; for one channel use 'bips info CHANNEL'");
    const bool as_json = args->has("json");

    auto list = bips::list_channels();
    if (!list.ok()) {
        if (as_json) {
            JsonWriter json(true);
            begin_document(json, "list");
            write_error(json, list.error());
            json.end_object();
            std::cout << json.text();
        }
        return runtime_error("list", list.error().message);
    }

    const std::size_t dead = count_dead(*list);
    const bool healthy = dead == 0 && list->problems.empty();
    if (as_json)
        print_json(*list, healthy);
    else
        print_text(*list);
    std::cout.flush();
    if (healthy)
        return kExitOk;
    // The summary goes to stderr: stdout stays the listing (or JSON).
    std::cerr << "bips list: ";
    if (dead)
        std::cerr << dead << (dead == 1 ? " dead channel" : " dead channels")
                  << (list->problems.empty() ? "" : ", ");
    if (!list->problems.empty())
        std::cerr << list->problems.size() << (list->problems.size() == 1 ? " problem" : " problems");
    std::cerr << (dead ? " ('bips clean' removes dead channels)" : "") << "\n";
    return kExitUnhealthy;
}

} // namespace bips::tool
