// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: `bips info CHANNEL`, the header and consumers of one channel.
#include "channel_json.h"
#include "channel_text.h"
#include "cli.h"
#include "commands.h"

#include <bips/channel.h>

#include <cstdio>
#include <ctime>
#include <iostream>

namespace bips::tool {

namespace {

// Stream info is usually a caps string of a few hundred bytes; a hostile or
// unusual one is cut here unless --full asks for all of it.
constexpr std::size_t kInfoLimit = 1024;

const std::vector<OptionSpec> kOptions = {
    {"full", "", "print the whole stream info, however long"},
    {"json", "", "print the channel as JSON (schema bips.info/1, see docs/cli.md;\n"
                 "the stream info is always whole there)"},
};

void print_help()
{
    std::cout << "Usage: bips info [--full] [--json] CHANNEL\n"
                 "Asks the producer of one channel, over the channel's socket, for its\n"
                 "header (layout version, epoch, producer, geometry, counters, stream\n"
                 "info) and prints it with each attached consumer. A producer that does\n"
                 "not answer within 2 s is an error, never a hang. For a channel whose\n"
                 "producer died only the socket and its mode are left to show.\n"
                 "Each consumer's lag is the frames published that it has neither\n"
                 "received nor skipped yet; '<=N' marks an upper bound (docs/cli.md).\n\n"
                 "Exit status: 0 when the channel was described (dead or alive), 1 when\n"
                 "it could not be (no such channel, not a bips socket, no answer; with\n"
                 "--json an \"error\" object is printed too), 2 on a usage error.\n\n";
    print_options(std::cout, kOptions);
}

// The epoch is the time its producer was created, in microseconds since
// 1970 (by the wall clock of the producer's machine): shown as a date too.
std::string epoch_text(uint64_t epoch)
{
    const auto seconds = static_cast<std::time_t>(epoch / 1000000);
    std::tm tm {};
    char date[64];
    if (epoch == 0 || !::localtime_r(&seconds, &tm) ||
        std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
        return std::to_string(epoch);
    return std::to_string(epoch) + " (producer created " + date + ")";
}

void print_consumers(const bips::ChannelInfo &ch)
{
    if (ch.consumers.empty()) {
        std::cout << "consumers: none attached\n";
        return;
    }
    std::cout << "consumers:\n";
    Table table({"  INDEX", "POLICY", "PID", "ALIVE", "RECEIVED", "SKIPPED", "HELD", "LAG",
                 "LAST RELEASE", "BLOCKING"},
                {true, false, true, false, true, true, true, true, true, true});
    for (const auto &c : ch.consumers)
        table.add_row({std::to_string(c.index), bips::policy_name(c.policy),
                       pid_text(c.pid, c.local_pid, c.other_pid_namespace), c.alive ? "yes" : "no",
                       std::to_string(c.received), std::to_string(c.skipped),
                       std::to_string(c.held), lag_text(consumer_lag(ch, c)),
                       c.release_age_ns ? duration_text(c.release_age_ns) + " ago" : "-",
                       duration_text(c.blocking_ns)});
    table.print(std::cout);
}

} // namespace

int cmd_info(const std::vector<std::string_view> &argv)
{
    auto args = parse_args(argv, kOptions);
    if (!args.ok())
        return usage_error("info", args.error().message);
    if (args->help) {
        print_help();
        return kExitOk;
    }
    if (args->positionals.size() != 1)
        return usage_error("info", args->positionals.empty()
                                       ? "missing CHANNEL; 'bips list' shows the channels"
                                       : "give exactly one CHANNEL");
    const std::string &name = args->positionals[0];
    if (auto valid = bips::validate_channel_name(name); !valid.ok())
        return usage_error("info", valid.error().message);

    const bool as_json = args->has("json");
    auto info = bips::inspect_channel(name);
    if (as_json) {
        JsonWriter json(true);
        begin_document(json, "info");
        if (info.ok()) {
            json.key("channel");
            write_channel(json, *info, nullptr);
        } else {
            write_error(json, info.error());
        }
        json.end_object();
        std::cout << json.text();
    }
    if (!info.ok())
        return runtime_error("info", info.error().message);
    if (as_json)
        return kExitOk;
    const bips::ChannelInfo &ch = *info;

    std::size_t limit = args->has("full") ? ch.stream_info.size() : kInfoLimit;
    Table table({"channel:", ch.name});
    table.add_row({"socket:", bips::channel_path(ch.name)});
    if (!ch.producer_alive) {
        // Nobody listens on the socket: its name and mode are all there is
        // to show, only the producer could tell the rest.
        table.add_row({"producer:", std::string(producer_state(ch)) +
                                        " (nobody listens on the socket; a new producer takes "
                                        "the name over, 'bips clean' removes it)"});
        table.add_row({"socket mode:", octal_mode(ch.mode)});
        table.print(std::cout);
        return kExitOk;
    }
    table.add_row({"layout version:", std::to_string(ch.layout_version)});
    table.add_row({"epoch:", epoch_text(ch.epoch)});
    table.add_row({"producer:", std::string(producer_state(ch)) + ", pid " +
                                    pid_text(ch.producer_pid, ch.producer_local_pid,
                                             ch.producer_other_pid_namespace)});
    table.add_row({"waiting for consumers:",
                   (ch.producer_waiting_ns ? "yes, for " + duration_text(ch.producer_waiting_ns)
                                           : std::string("no")) +
                       " (" + duration_text(ch.producer_waited_ns) + " in all)"});
    table.add_row({"consumers dropped:",
                   std::to_string(ch.evictions) + " for holding the producer back past max-wait (" +
                       std::to_string(ch.eviction_frames) + " frames unread by them)"});
    table.add_row({"socket mode:", octal_mode(ch.mode)});
    table.add_row({"slots:", std::to_string(ch.slot_count)});
    table.add_row({"slot size:",
                   format_bytes(ch.slot_size) + " (" + std::to_string(ch.slot_size) + " bytes)"});
    table.add_row({"shared memory:", format_bytes(ch.segment_bytes) + " (" +
                                         std::to_string(ch.segment_bytes) + " bytes, memfd bips-" +
                                         ch.name + ")"});
    table.add_row({"max consumers:", std::to_string(ch.max_consumers)});
    table.add_row({"published:", std::to_string(ch.published)});
    table.add_row({"end-of-streams:", std::to_string(ch.end_of_streams)});
    table.add_row(
        {"stream info:", ch.stream_info.empty() ? "(none)" : printable(ch.stream_info, limit)});
    table.print(std::cout);
    print_consumers(ch);
    return kExitOk;
}

} // namespace bips::tool
