// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: words and derived figures for channel state shared by `list`,
// `info` and `top` (text and JSON alike).
#pragma once

#include <bips/channel.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

namespace bips::tool {

// "live" while a producer listens on the channel's socket, "dead" when the
// socket was left by a producer that died (`bips clean` removes those),
// "closed" after a clean exit (a consumer's own view of its channel; a
// clean exit removes the socket, so `list` and `info` do not meet it).
inline const char *producer_state(const bips::ChannelInfo &info)
{
    if (info.producer_alive)
        return "live";
    return info.producer_closed ? "closed" : "dead";
}

// Permission bits as four octal digits: "0600".
inline std::string octal_mode(uint32_t mode)
{
    char buf[16];
    std::snprintf(buf, sizeof(buf), "0%03o", mode & 07777u);
    return buf;
}

// How far a consumer is behind its producer, in frames: those published in
// this epoch that it has neither received nor skipped yet (for a latest
// consumer, what it will skip on its next read counts, since it has not
// dealt with those frames yet). `exact` is false when the figure is only an
// upper bound (see consumer_lag).
struct Lag {
    uint64_t frames = 0;
    bool exact = false;
};

// The lag of consumer `c` of channel `ch`: frames published that it has
// not reached yet (published minus its cursor, the next sequence it reads).
// A latest consumer that keeps up has a lag of 0 or 1. The cursor is what
// the consumer reports about itself, so a figure it could not have reached
// (a cursor beyond what was published) counts as 0.
inline Lag consumer_lag(const bips::ChannelInfo &ch, const bips::ConsumerInfo &c)
{
    return {ch.published > c.cursor ? ch.published - c.cursor : 0, true};
}

// "3" for an exact lag, "<=3" for an upper bound.
inline std::string lag_text(const Lag &lag)
{
    return (lag.exact ? "" : "<=") + std::to_string(lag.frames);
}

// A PID as a reader of this process can use it: "4711"; a process in
// another PID namespace shows the number it has there and, when the kernel
// could tell, its number here: "1 (other PID namespace, 4711 here)".
inline std::string pid_text(int32_t pid, int32_t local_pid, bool other_namespace)
{
    if (!other_namespace)
        return std::to_string(pid);
    std::string out = std::to_string(pid) + " (other PID namespace";
    if (local_pid > 0)
        out += ", " + std::to_string(local_pid) + " here";
    return out + ")";
}

// A duration for people: "-" for 0, else "850 us", "35 ms", "2.4 s".
inline std::string duration_text(uint64_t ns)
{
    char buf[32];
    if (ns == 0)
        return "-";
    if (ns < 1000000)
        std::snprintf(buf, sizeof(buf), "%llu us", static_cast<unsigned long long>(ns / 1000));
    else if (ns < 10000000000ull)
        std::snprintf(buf, sizeof(buf), "%llu ms", static_cast<unsigned long long>(ns / 1000000));
    else
        std::snprintf(buf, sizeof(buf), "%.1f s", double(ns) / 1e9);
    return buf;
}

} // namespace bips::tool
