// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: option parsing, size and number parsing, tables and units.
#pragma once

#include <bips/result.h>

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace bips::tool {

// Exit codes shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;
// `bips list` worked but found dead channels or problems.
inline constexpr int kExitUnhealthy = 3;

// One option a command accepts: "--name VALUE" (or "--name=VALUE") when
// `value` names the placeholder, a plain flag when it is empty.
struct OptionSpec {
    std::string_view name;  // without the leading "--"
    std::string_view value; // placeholder shown in help, empty for flags
    std::string_view help;
};

// The parsed command line of one command. Later repetitions of an option
// replace earlier ones.
struct Args {
    std::map<std::string, std::string, std::less<>> values;
    std::vector<std::string> positionals;
    bool help = false;

    bool has(std::string_view name) const { return values.contains(name); }
    // The value of an option, or `fallback` when it was not given.
    std::string_view get(std::string_view name, std::string_view fallback = {}) const;
};

// Parses `argv` (the words after the command name). Unknown options and
// missing values are InvalidArgument errors whose message names the word.
Result<Args> parse_args(const std::vector<std::string_view> &argv,
                        const std::vector<OptionSpec> &specs);

// Prints "Options:" and one aligned line per option.
void print_options(std::ostream &out, const std::vector<OptionSpec> &specs);

// Prints "bips CMD: MESSAGE" and a pointer to --help on stderr; returns
// kExitUsage so callers can `return usage_error(...)`.
int usage_error(std::string_view command, std::string_view message);

// Prints "bips CMD: MESSAGE" on stderr; returns kExitRuntime.
int runtime_error(std::string_view command, std::string_view message);

// Byte sizes: plain digits, a k/M/G suffix (powers of 1024, optionally
// followed by "i", "iB" or "B"), or an alias: 1080p-rgba (1920x1080x4) and
// 4k-rgba (3840x2160x4). The error message lists the accepted forms.
Result<uint64_t> parse_size(std::string_view text);

// A decimal count in [min, max]; the message names the option and range.
Result<uint64_t> parse_count(std::string_view option, std::string_view text, uint64_t min,
                             uint64_t max);

// A positive decimal number (integer or fraction) in [min, max].
Result<double> parse_number(std::string_view option, std::string_view text, double min, double max);

// "64 B", "7.9 MiB", "31.6 MiB", "1.5 GiB".
std::string format_bytes(uint64_t bytes);
// "950", "12.3k", "1.92M": rates and counts for tables.
std::string format_rate(double value);
// Microseconds from nanoseconds, one decimal: "12.5".
std::string format_us(uint64_t ns);

// A plain text table: a header row, then rows; columns are padded to their
// widest cell; numeric columns (marked by the caller) align right.
class Table {
public:
    explicit Table(std::vector<std::string> header, std::vector<bool> right_aligned = {});
    void add_row(std::vector<std::string> row);
    void print(std::ostream &out) const;
    bool empty() const { return rows_.empty(); }

private:
    std::vector<std::string> header_;
    std::vector<bool> right_;
    std::vector<std::vector<std::string>> rows_;
};

// Makes a string printable on one line: control bytes and non-ASCII bytes
// become \xNN escapes, and text past `limit` bytes is cut with a note of
// how much was left out.
std::string printable(std::string_view text, std::size_t limit);

} // namespace bips::tool
