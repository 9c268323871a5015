// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: `bips top`, a live view of every channel's rates and consumers.
#include "channel_json.h"
#include "channel_text.h"
#include "cli.h"
#include "commands.h"
#include "timing.h"

#include <bips/channel.h>

#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>
#include <poll.h>
#include <sstream>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

namespace bips::tool {

namespace {

const std::vector<OptionSpec> kOptions = {
    {"interval", "SECONDS", "time between samples (default 1; 0.1 .. 3600, fractions allowed)"},
    {"once", "", "take two samples --interval apart, print one snapshot and exit\n"
                 "(never uses terminal control codes)"},
    {"json", "", "print JSON (schema bips.top/1, see docs/cli.md): one document with\n"
                 "--once, else one compact document per line per sample"},
    {"count", "N", "exit after N refreshes (default: until Ctrl-C or q)"},
};

void print_help()
{
    std::cout << "Usage: bips top [--interval SECONDS] [--once] [--json] [--count N]\n"
                 "A live view of every channel, like top: per channel its producer's state\n"
                 "and pid, consumers attached (of the maximum), frames published per second\n"
                 "and in all, slots held (of the slot count); per consumer its policy, pid,\n"
                 "frames received per second and in all, lag, slots held, frames skipped\n"
                 "and skipped per second.\n\n"
                 "Rates are the change between two successive samples divided by the time\n"
                 "between them; '-' where undefined (first sample, a new producer epoch or a\n"
                 "new consumer). LAG is the frames published that the consumer has neither\n"
                 "received nor skipped yet; '<=N' marks an upper bound (docs/cli.md).\n\n"
                 "On a terminal the view is redrawn in place every --interval; q or Ctrl-C\n"
                 "quits and restores the terminal. Otherwise (a pipe, a file) each sample\n"
                 "is printed after the previous one. Exit status: 0, or 1 when --once could\n"
                 "not list the channels, 2 on a usage error, 130 when --once is interrupted.\n"
                 "Channel sockets live in "
              << bips::channel_directory() << " ($BIPS_DIR, else /dev/shm).\n\n";
    print_options(std::cout, kOptions);
}

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_suspend = 0;
volatile std::sig_atomic_t g_resized = 0;

extern "C" void on_stop_signal(int) { g_stop = 1; }
extern "C" void on_suspend_signal(int) { g_suspend = 1; }
extern "C" void on_resize_signal(int) { g_resized = 1; }

void set_handler(int sig, void (*handler)(int))
{
    struct sigaction sa {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART: waits return at once
    sigaction(sig, &sa, nullptr);
}

// One listing and when it was taken (the middle of the call: producers are
// asked in parallel, so that is close to when each answered).
struct Sample {
    uint64_t t_ns = 0;
    std::time_t wall = 0;
    bool ok = false;
    bips::ChannelList list;
    bips::Error error{bips::Errc::System, {}};
};

Sample take_sample()
{
    Sample s;
    const uint64_t t0 = monotonic_ns();
    auto r = bips::list_channels();
    const uint64_t t1 = monotonic_ns();
    s.t_ns = t0 + (t1 - t0) / 2;
    s.wall = std::time(nullptr);
    s.ok = r.ok();
    if (s.ok)
        s.list = std::move(r.value());
    else
        s.error = r.error();
    return s;
}

std::optional<double> rate(uint64_t before, uint64_t after, double seconds)
{
    if (after < before || seconds <= 0)
        return std::nullopt;
    return static_cast<double>(after - before) / seconds;
}

// Rates of `cur` against `prev` (nullptr: none yet), parallel to its channels.
std::vector<ChannelRates> compute_rates(const Sample *prev, const Sample &cur)
{
    std::vector<ChannelRates> out(cur.list.channels.size());
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i].consumers.resize(cur.list.channels[i].consumers.size());
    if (!prev || !prev->ok || !cur.ok)
        return out;
    const double dt = static_cast<double>(cur.t_ns - prev->t_ns) / 1e9;
    for (std::size_t i = 0; i < cur.list.channels.size(); ++i) {
        const bips::ChannelInfo &now = cur.list.channels[i];
        ChannelRates &r = out[i];
        const bips::ChannelInfo *was = nullptr;
        for (const auto &ch : prev->list.channels)
            if (ch.name == now.name)
                was = &ch;
        // Counters restart with a new epoch (a new producer on the name).
        if (!was || !now.producer_alive || !was->producer_alive || was->epoch != now.epoch)
            continue;
        r.published_per_s = rate(was->published, now.published, dt);
        for (std::size_t k = 0; k < now.consumers.size(); ++k) {
            const bips::ConsumerInfo &c = now.consumers[k];
            for (const auto &p : was->consumers) {
                // The same entry, process and policy; a counter that went
                // down belongs to a new consumer in the same entry.
                if (p.index != c.index || p.pid != c.pid || p.policy != c.policy)
                    continue;
                r.consumers[k].received_per_s = rate(p.received, c.received, dt);
                r.consumers[k].skipped_per_s = rate(p.skipped, c.skipped, dt);
            }
        }
    }
    return out;
}

std::string rate_text(const std::optional<double> &r)
{
    if (!r)
        return "-";
    if (*r >= 1000.0)
        return format_rate(*r);
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f", *r);
    return buf;
}

std::string clock_text(std::time_t t)
{
    std::tm tm{};
    char buf[32];
    if (!::localtime_r(&t, &tm) || std::strftime(buf, sizeof(buf), "%H:%M:%S", &tm) == 0)
        return "?";
    return buf;
}

std::string seconds_text(double s)
{
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g s", s);
    return buf;
}

// The text view of one sample, one string per line (no newlines).
std::vector<std::string> render_text(const Sample &cur, const std::vector<ChannelRates> &rates,
                                     double interval_s, bool interactive)
{
    std::vector<std::string> lines;
    std::size_t live = 0, dead = 0;
    for (const auto &ch : cur.list.channels)
        (ch.producer_alive ? live : dead) += 1;
    std::string head = "bips top  " + bips::channel_directory() + "  " + clock_text(cur.wall) +
                       "  every " + seconds_text(interval_s);
    if (cur.ok)
        head += "  channels: " + std::to_string(live) + " live, " + std::to_string(dead) +
                " dead  problems: " + std::to_string(cur.list.problems.size());
    if (interactive)
        head += "  (q quits)";
    lines.push_back(head);
    lines.emplace_back();
    if (!cur.ok) {
        lines.push_back("cannot list the channels: " + printable(cur.error.message, 500));
        return lines;
    }
    if (cur.list.channels.empty()) {
        lines.emplace_back("no channels");
    } else {
        Table table({"NAME", "STATE", "PID", "CONS", "FRAMES/S", "FRAMES", "LAG", "HELD", "SKIPPED",
                     "SKIP/S"},
                    {false, false, true, true, true, true, true, true, true, true});
        for (std::size_t i = 0; i < cur.list.channels.size(); ++i) {
            const bips::ChannelInfo &ch = cur.list.channels[i];
            if (!ch.producer_alive) {
                table.add_row({ch.name, producer_state(ch), "-", "-", "-", "-", "", "-", "", ""});
                continue;
            }
            uint64_t held = 0;
            for (const auto &c : ch.consumers)
                held += c.held;
            table.add_row({ch.name, producer_state(ch),
                           pid_text(ch.producer_pid, ch.producer_local_pid,
                                    ch.producer_other_pid_namespace),
                           std::to_string(ch.consumers.size()) + "/" +
                               std::to_string(ch.max_consumers),
                           rate_text(rates[i].published_per_s), std::to_string(ch.published), "",
                           std::to_string(held) + "/" + std::to_string(ch.slot_count), "", ""});
            for (std::size_t k = 0; k < ch.consumers.size(); ++k) {
                const bips::ConsumerInfo &c = ch.consumers[k];
                const ConsumerRates &r = rates[i].consumers[k];
                table.add_row({"  #" + std::to_string(c.index) + " " + bips::policy_name(c.policy),
                               c.alive ? "" : "gone",
                               pid_text(c.pid, c.local_pid, c.other_pid_namespace), "",
                               rate_text(r.received_per_s), std::to_string(c.received),
                               lag_text(consumer_lag(ch, c)), std::to_string(c.held),
                               std::to_string(c.skipped), rate_text(r.skipped_per_s)});
            }
        }
        std::ostringstream text;
        table.print(text);
        std::istringstream printed(text.str());
        std::string line;
        while (std::getline(printed, line))
            lines.push_back(line);
    }
    if (!cur.list.problems.empty()) {
        lines.emplace_back();
        lines.emplace_back("problems:");
        for (const auto &p : cur.list.problems)
            lines.push_back("  " + printable(p, 500));
    }
    return lines;
}

std::string render_json(const Sample &cur, const std::vector<ChannelRates> &rates,
                        const Sample *prev, bool pretty)
{
    JsonWriter json(pretty);
    begin_document(json, "top");
    json.member("time_unix_s", static_cast<int64_t>(cur.wall));
    if (prev)
        json.member("sample_interval_s",
                    std::optional<double>(static_cast<double>(cur.t_ns - prev->t_ns) / 1e9), 3);
    else
        json.member_null("sample_interval_s");
    if (!cur.ok) {
        write_error(json, cur.error);
    } else {
        json.key("channels").begin_array();
        for (std::size_t i = 0; i < cur.list.channels.size(); ++i)
            write_channel(json, cur.list.channels[i], &rates[i]);
        json.end_array();
        write_problems(json, cur.list.problems);
    }
    json.end_object();
    return json.text();
}

void write_all(std::string_view text)
{
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

// The terminal while the view is live: the alternate screen, no cursor,
// and (when stdin is the terminal) keys read one by one without echo.
class Screen {
public:
    ~Screen() { leave(); }

    void enter()
    {
        if (active_)
            return;
        keyboard_ = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_) == 0;
        if (keyboard_) {
            termios raw = saved_;
            raw.c_lflag &= ~tcflag_t(ICANON | ECHO); // ISIG stays: Ctrl-C is SIGINT
            raw.c_cc[VMIN] = 0;
            raw.c_cc[VTIME] = 0;
            tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        }
        write_all("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J");
        active_ = true;
    }

    void leave()
    {
        if (!active_)
            return;
        write_all("\x1b[?25h\x1b[?1049l");
        if (keyboard_)
            tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
        active_ = false;
    }

    bool keyboard() const { return keyboard_ && active_; }

    // Draws `lines` from the top left, cut to the terminal's size.
    void draw(const std::vector<std::string> &lines) const
    {
        winsize ws{};
        std::size_t cols = 80, rows = 24;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
            cols = ws.ws_col;
            rows = ws.ws_row;
        }
        std::string out = "\x1b[H";
        std::size_t shown = std::min(lines.size(), rows);
        if (shown < lines.size() && shown > 0)
            --shown; // room for the note below
        for (std::size_t i = 0; i < shown; ++i) {
            out += lines[i].substr(0, cols);
            out += "\x1b[K";
            if (i + 1 < rows)
                out += "\r\n";
        }
        if (shown < lines.size())
            out += ("... " + std::to_string(lines.size() - shown) +
                    " more lines (enlarge the terminal)")
                       .substr(0, cols) +
                   "\x1b[K";
        out += "\x1b[J";
        write_all(out);
    }

private:
    bool active_ = false;
    bool keyboard_ = false;
    termios saved_{};
};

enum class Wake { Deadline, Stop, Suspend, Resize };

// Waits until the CLOCK_MONOTONIC time `deadline`, or less when a signal
// or (with `screen` reading keys) the key q asks for something.
Wake wait_until(uint64_t deadline, const Screen *screen)
{
    for (;;) {
        if (g_stop)
            return Wake::Stop;
        if (g_suspend)
            return Wake::Suspend;
        if (g_resized)
            return Wake::Resize;
        const uint64_t now = monotonic_ns();
        if (now >= deadline)
            return Wake::Deadline;
        // Short slices: a signal may land in another thread.
        const int ms = static_cast<int>(std::min<uint64_t>((deadline - now + 999999) / 1000000, 100));
        pollfd pfd{STDIN_FILENO, POLLIN, 0};
        const bool keys = screen && screen->keyboard();
        if (poll(keys ? &pfd : nullptr, keys ? 1 : 0, ms) > 0 && (pfd.revents & POLLIN)) {
            char buf[64];
            const ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
            for (ssize_t i = 0; i < n; ++i)
                if (buf[i] == 'q' || buf[i] == 'Q')
                    return Wake::Stop;
        }
    }
}

int run_once(double interval_s, bool as_json)
{
    const Sample first = take_sample();
    if (wait_until(monotonic_ns() + static_cast<uint64_t>(interval_s * 1e9), nullptr) == Wake::Stop)
        return 130;
    const Sample second = take_sample();
    if (!second.ok) {
        if (as_json)
            write_all(render_json(second, {}, &first, true));
        return runtime_error("top", second.error.message);
    }
    const auto rates = compute_rates(&first, second);
    if (as_json) {
        write_all(render_json(second, rates, &first, true));
    } else {
        std::string out;
        for (const auto &line : render_text(second, rates, interval_s, false))
            out += line + "\n";
        write_all(out);
    }
    return kExitOk;
}

int run_live(double interval_s, bool as_json, uint64_t count)
{
    const char *term = std::getenv("TERM");
    const bool interactive = !as_json && isatty(STDOUT_FILENO) &&
                             !(term && std::string_view(term) == "dumb");
    const auto interval_ns = static_cast<uint64_t>(interval_s * 1e9);
    Screen screen;
    if (interactive) {
        set_handler(SIGTSTP, on_suspend_signal);
        set_handler(SIGWINCH, on_resize_signal);
        screen.enter();
    }
    Sample prev = take_sample();
    std::vector<std::string> shown;
    if (interactive) {
        // Shown at once; rates follow with the next sample.
        shown = render_text(prev, compute_rates(nullptr, prev), interval_s, true);
        screen.draw(shown);
    }
    uint64_t next = monotonic_ns() + interval_ns;
    uint64_t refreshes = 0;
    while (!g_stop) {
        const Wake why = wait_until(next, interactive ? &screen : nullptr);
        if (why == Wake::Stop)
            break;
        if (why == Wake::Suspend) {
            // Ctrl-Z: give the shell its terminal back, stop, and come back.
            screen.leave();
            set_handler(SIGTSTP, SIG_DFL);
            raise(SIGTSTP);
            set_handler(SIGTSTP, on_suspend_signal);
            g_suspend = 0;
            screen.enter();
            screen.draw(shown);
            continue;
        }
        if (why == Wake::Resize) {
            g_resized = 0;
            screen.draw(shown);
            continue;
        }
        Sample cur = take_sample();
        if (g_stop)
            break;
        const auto rates = compute_rates(&prev, cur);
        if (as_json) {
            write_all(render_json(cur, rates, &prev, false) + "\n");
        } else if (interactive) {
            shown = render_text(cur, rates, interval_s, true);
            screen.draw(shown);
        } else {
            std::string out;
            for (const auto &line : render_text(cur, rates, interval_s, false))
                out += line + "\n";
            write_all(out + "\n");
        }
        prev = std::move(cur);
        // A fixed schedule, unless a slow sample (a stopped producer takes
        // up to 2 s to time out) made it fall behind.
        next += interval_ns;
        if (const uint64_t now = monotonic_ns(); next < now)
            next = now + interval_ns;
        if (count && ++refreshes >= count)
            break;
    }
    screen.leave();
    return kExitOk;
}

} // namespace

int cmd_top(const std::vector<std::string_view> &argv)
{
    auto args = parse_args(argv, kOptions);
    if (!args.ok())
        return usage_error("top", args.error().message);
    if (args->help) {
        print_help();
        return kExitOk;
    }
    if (!args->positionals.empty())
        return usage_error("top", "unexpected argument '" + printable(args->positionals[0], 80) +
                                      "'; top shows every channel");
    double interval_s = 1.0;
    if (args->has("interval")) {
        auto v = parse_number("interval", args->get("interval"), 0.1, 3600);
        if (!v.ok())
            return usage_error("top", v.error().message);
        interval_s = *v;
    }
    uint64_t count = 0;
    if (args->has("count")) {
        if (args->has("once"))
            return usage_error("top", "--count and --once do not go together (--once is one "
                                      "snapshot)");
        auto v = parse_count("count", args->get("count"), 1, UINT32_MAX);
        if (!v.ok())
            return usage_error("top", v.error().message);
        count = *v;
    }
    set_handler(SIGINT, on_stop_signal);
    set_handler(SIGTERM, on_stop_signal);
    set_handler(SIGHUP, on_stop_signal);
    if (args->has("once"))
        return run_once(interval_s, args->has("json"));
    return run_live(interval_s, args->has("json"), count);
}

} // namespace bips::tool
