// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: option parsing, size and number parsing, tables and units.
#include "cli.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iostream>

namespace bips::tool {

namespace {

Error invalid(std::string message)
{
    return make_error(Errc::InvalidArgument, std::move(message));
}

std::string quoted(std::string_view text)
{
    return "'" + std::string(text) + "'";
}

// Decimal digits only, no sign; false on overflow or other characters.
bool parse_u64(std::string_view text, uint64_t &out)
{
    if (text.empty())
        return false;
    const char *end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc() && ptr == end;
}

} // namespace

std::string_view Args::get(std::string_view name, std::string_view fallback) const
{
    auto it = values.find(name);
    return it == values.end() ? fallback : std::string_view(it->second);
}

Result<Args> parse_args(const std::vector<std::string_view> &argv,
                        const std::vector<OptionSpec> &specs)
{
    Args args;
    bool options_done = false;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        std::string_view word = argv[i];
        if (options_done || !word.starts_with("-") || word == "-") {
            args.positionals.emplace_back(word);
            continue;
        }
        if (word == "--") {
            options_done = true;
            continue;
        }
        if (word == "--help" || word == "-h") {
            args.help = true;
            continue;
        }
        if (!word.starts_with("--"))
            return invalid("unknown option " + quoted(word) + "; options are spelled --name");
        std::string_view name = word.substr(2);
        std::string_view inline_value;
        bool has_inline = false;
        if (auto eq = name.find('='); eq != std::string_view::npos) {
            inline_value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_inline = true;
        }
        auto spec = std::find_if(specs.begin(), specs.end(),
                                 [&](const OptionSpec &s) { return s.name == name; });
        if (spec == specs.end())
            return invalid("unknown option " + quoted(word));
        if (spec->value.empty()) {
            if (has_inline)
                return invalid("--" + std::string(name) + " takes no value");
            args.values[std::string(name)] = "";
        } else if (has_inline) {
            args.values[std::string(name)] = std::string(inline_value);
        } else {
            if (i + 1 >= argv.size())
                return invalid("--" + std::string(name) + " needs a value (" +
                               std::string(spec->value) + ")");
            args.values[std::string(name)] = std::string(argv[++i]);
        }
    }
    return args;
}

void print_options(std::ostream &out, const std::vector<OptionSpec> &specs)
{
    std::vector<std::string> lefts;
    std::size_t width = 0;
    for (const auto &s : specs) {
        std::string left = "--" + std::string(s.name);
        if (!s.value.empty())
            left += " " + std::string(s.value);
        width = std::max(width, left.size());
        lefts.push_back(std::move(left));
    }
    out << "Options:\n";
    const std::string indent(width + 4, ' ');
    for (std::size_t i = 0; i < specs.size(); ++i) {
        out << "  " << lefts[i] << std::string(width - lefts[i].size() + 2, ' ');
        // Help text may span lines; continuation lines align under the first.
        for (char c : specs[i].help)
            out << c << (c == '\n' ? indent : "");
        out << "\n";
    }
    out << "  --help" << std::string(width > 6 ? width - 6 + 2 : 2, ' ') << "show this help\n";
}

int usage_error(std::string_view command, std::string_view message)
{
    std::cerr << "bips " << command << ": " << message << "\n"
              << "Run 'bips " << command << " --help' for usage.\n";
    return kExitUsage;
}

int runtime_error(std::string_view command, std::string_view message)
{
    std::cerr << "bips " << command << ": " << message << "\n";
    return kExitRuntime;
}

Result<uint64_t> parse_size(std::string_view text)
{
    const std::string forms = "give bytes (65536), a k/M/G suffix (64k, 8M, 1G; powers of 1024) "
                              "or one of 1080p-rgba, 4k-rgba";
    if (text == "1080p-rgba")
        return uint64_t{1920} * 1080 * 4;
    if (text == "4k-rgba")
        return uint64_t{3840} * 2160 * 4;

    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
        ++digits;
    uint64_t number = 0;
    if (digits == 0 || !parse_u64(text.substr(0, digits), number))
        return invalid("bad size " + quoted(text) + ": " + forms);

    std::string_view suffix = text.substr(digits);
    unsigned shift = 0;
    if (!suffix.empty()) {
        switch (suffix[0]) {
        case 'k':
        case 'K': shift = 10; break;
        case 'm':
        case 'M': shift = 20; break;
        case 'g':
        case 'G': shift = 30; break;
        case 'b':
        case 'B': shift = 0; break;
        default: return invalid("bad size " + quoted(text) + ": " + forms);
        }
        std::string_view rest = suffix.substr(1);
        bool ok = shift == 0 ? rest.empty()
                             : (rest.empty() || rest == "i" || rest == "iB" || rest == "B");
        if (!ok)
            return invalid("bad size " + quoted(text) + ": " + forms);
    }
    if (number > (UINT64_MAX >> shift))
        return invalid("size " + quoted(text) + " is too large");
    return number << shift;
}

Result<uint64_t> parse_count(std::string_view option, std::string_view text, uint64_t min,
                             uint64_t max)
{
    uint64_t value = 0;
    std::string range = std::to_string(min) + ".." + std::to_string(max);
    if (!parse_u64(text, value))
        return invalid("--" + std::string(option) + ": " + quoted(text) +
                       " is not a whole number; give one in " + range);
    if (value < min || value > max)
        return invalid("--" + std::string(option) + ": " + std::string(text) +
                       " is out of range; give one in " + range);
    return value;
}

Result<double> parse_number(std::string_view option, std::string_view text, double min, double max)
{
    double value = 0;
    const char *end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    char range[96];
    std::snprintf(range, sizeof(range), "%g..%g", min, max);
    if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(value))
        return invalid("--" + std::string(option) + ": " + quoted(text) +
                       " is not a number; give one in " + range);
    if (value < min || value > max)
        return invalid("--" + std::string(option) + ": " + std::string(text) +
                       " is out of range; give one in " + range);
    return value;
}

std::string format_bytes(uint64_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024)
        return std::to_string(bytes) + " B";
    double v = static_cast<double>(bytes);
    unsigned u = 0;
    while (v >= 1024.0 && u + 1 < std::size(units)) {
        v /= 1024.0;
        ++u;
    }
    char buf[32];
    // Whole numbers print without a fraction: "64 KiB", not "64.0 KiB".
    if (v == std::floor(v))
        std::snprintf(buf, sizeof(buf), "%.0f %s", v, units[u]);
    else
        std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
    return buf;
}

std::string format_rate(double value)
{
    char buf[32];
    if (value >= 1e6)
        std::snprintf(buf, sizeof(buf), "%.2fM", value / 1e6);
    else if (value >= 1e4)
        std::snprintf(buf, sizeof(buf), "%.1fk", value / 1e3);
    else
        std::snprintf(buf, sizeof(buf), "%.0f", value);
    return buf;
}

std::string format_us(uint64_t ns)
{
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f", static_cast<double>(ns) / 1000.0);
    return buf;
}

Table::Table(std::vector<std::string> header, std::vector<bool> right_aligned)
    : header_(std::move(header)), right_(std::move(right_aligned))
{
    right_.resize(header_.size(), false);
}

void Table::add_row(std::vector<std::string> row)
{
    row.resize(header_.size());
    rows_.push_back(std::move(row));
}

void Table::print(std::ostream &out) const
{
    std::vector<std::size_t> width(header_.size());
    for (std::size_t c = 0; c < header_.size(); ++c) {
        width[c] = header_[c].size();
        for (const auto &row : rows_)
            width[c] = std::max(width[c], row[c].size());
    }
    auto line = [&](const std::vector<std::string> &cells) {
        std::string text;
        for (std::size_t c = 0; c < cells.size(); ++c) {
            std::string pad(width[c] - cells[c].size(), ' ');
            if (c)
                text += "  ";
            text += right_[c] ? pad + cells[c] : cells[c] + pad;
        }
        while (!text.empty() && text.back() == ' ')
            text.pop_back();
        out << text << "\n";
    };
    line(header_);
    for (const auto &row : rows_)
        line(row);
}

std::string printable(std::string_view text, std::size_t limit)
{
    std::string out;
    std::size_t shown = std::min(text.size(), limit);
    for (std::size_t i = 0; i < shown; ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else if (c == '\\') {
            out += "\\\\";
        } else {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\x%02x", c);
            out += buf;
        }
    }
    if (shown < text.size())
        out += " ... (" + std::to_string(text.size() - shown) + " more bytes)";
    return out;
}

} // namespace bips::tool
