// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: command dispatch and top-level help.
#include "cli.h"
#include "commands.h"

#include <bips/version.h>

#include <iostream>
#include <string_view>
#include <vector>

namespace {

using bips::tool::kExitOk;
using bips::tool::kExitUsage;

struct Command {
    std::string_view name;
    int (*run)(const std::vector<std::string_view> &);
    std::string_view summary;
};

const Command kCommands[] = {
    {"list", bips::tool::cmd_list, "one line per channel: state, geometry, consumers"},
    {"info", bips::tool::cmd_info, "the header and consumers of one channel"},
    {"top", bips::tool::cmd_top, "live view: publish and receive rates, lag, held slots"},
    {"clean", bips::tool::cmd_clean, "remove channels whose producer is dead"},
    {"bench", bips::tool::cmd_bench, "measure throughput and latency across processes"},
    {"demo", bips::tool::cmd_demo, "run a producer and a consumer and prove zero copy"},
};

void print_help(std::ostream &out)
{
    out << "Usage: bips COMMAND [OPTIONS]\n"
           "Inspect, clean and measure bips shared-memory frame channels.\n\n"
           "Commands:\n";
    for (const auto &c : kCommands)
        out << "  " << c.name << std::string(8 - c.name.size(), ' ') << c.summary << "\n";
    out << "\nRun 'bips COMMAND --help' for the options of a command.\n"
           "A channel is the socket bips-NAME in $BIPS_DIR (/dev/shm when unset) on\n"
           "which its producer listens and hands its shared memory to consumers; every\n"
           "process of a channel must use the same folder.\n";
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(std::cerr);
        return kExitUsage;
    }
    std::string_view first = argv[1];
    if (first == "--help" || first == "-h" || first == "help") {
        print_help(std::cout);
        return kExitOk;
    }
    if (first == "--version") {
        std::cout << "bips " << BIPS_VERSION << "\n";
        return kExitOk;
    }
    std::vector<std::string_view> rest(argv + 2, argv + argc);
    for (const auto &c : kCommands)
        if (c.name == first)
            return c.run(rest);

    std::cerr << "bips: unknown command '" << first
              << "'; commands are list, info, top, clean, bench, demo (see bips --help)\n";
    return kExitUsage;
}
