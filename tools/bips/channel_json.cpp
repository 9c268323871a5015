// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: the JSON form of channels, shared by `list`, `info` and `top`.
#include "channel_json.h"

#include "channel_text.h"

#include <bips/version.h>

#include <ctime>

namespace bips::tool {

namespace {

// The epoch (microseconds since 1970 by the producer's wall clock) as UTC
// ISO 8601 with microseconds.
std::string utc_text(uint64_t epoch_us)
{
    const auto seconds = static_cast<std::time_t>(epoch_us / 1000000);
    std::tm tm{};
    char date[48];
    if (!::gmtime_r(&seconds, &tm) || std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return {};
    char out[80];
    std::snprintf(out, sizeof(out), "%s.%06uZ", date, unsigned(epoch_us % 1000000));
    return out;
}

constexpr int kRateDecimals = 3;

} // namespace

void begin_document(JsonWriter &json, std::string_view kind)
{
    json.begin_object();
    json.member("schema", "bips." + std::string(kind) + "/" + std::to_string(kJsonSchemaVersion));
    json.member("version", kJsonSchemaVersion);
    json.member("tool_version", BIPS_VERSION);
    json.member("directory", bips::channel_directory());
}

void write_channel(JsonWriter &json, const bips::ChannelInfo &ch, const ChannelRates *rates)
{
    const bool live = ch.producer_alive;
    json.begin_object();
    json.member("name", ch.name);
    json.member("socket_path", bips::channel_path(ch.name));
    json.member("producer_state", producer_state(ch));
    json.member("producer_alive", ch.producer_alive);
    json.member("producer_closed", ch.producer_closed);
    json.member("socket_mode", octal_mode(ch.mode));
    // A dead producer cannot be asked: the rest is unknown (null), not 0.
    const auto known = [&](std::string_view name, auto value) {
        if (live)
            json.member(name, value);
        else
            json.member_null(name);
    };
    known("producer_pid", ch.producer_pid);
    known("producer_local_pid", ch.producer_local_pid);
    known("producer_other_pid_namespace", ch.producer_other_pid_namespace);
    known("layout_version", ch.layout_version);
    known("epoch_us", ch.epoch);
    if (live && ch.epoch != 0)
        json.member("epoch_utc", utc_text(ch.epoch));
    else
        json.member_null("epoch_utc");
    known("slot_count", ch.slot_count);
    known("slot_size_bytes", ch.slot_size);
    known("max_consumers", ch.max_consumers);
    known("segment_bytes", ch.segment_bytes);
    known("published_frames", ch.published);
    known("end_of_stream_markers", ch.end_of_streams);
    if (live) {
        bool utf8 = true;
        (void)json_escape(ch.stream_info, &utf8);
        json.member("stream_info", std::string_view(ch.stream_info));
        json.member("stream_info_bytes", uint64_t{ch.stream_info.size()});
        json.member("stream_info_valid_utf8", utf8);
        if (utf8)
            json.member_null("stream_info_base64");
        else
            json.member("stream_info_base64", base64(ch.stream_info));
    } else {
        for (const char *name : {"stream_info", "stream_info_bytes", "stream_info_valid_utf8",
                                 "stream_info_base64"})
            json.member_null(name);
    }
    if (rates)
        json.member("publish_rate_frames_per_s", rates->published_per_s, kRateDecimals);
    if (live)
        json.member("consumer_count", uint64_t{ch.consumers.size()});
    else
        json.member_null("consumer_count");
    uint64_t held = 0;
    for (const auto &c : ch.consumers)
        held += c.held;
    known("held_slots", held);
    known("producer_waiting_ns", ch.producer_waiting_ns);
    known("producer_waited_ns", ch.producer_waited_ns);
    known("evicted_consumers", ch.evictions);
    known("evicted_unread_frames", ch.eviction_frames);

    json.key("consumers").begin_array();
    for (std::size_t i = 0; i < ch.consumers.size(); ++i) {
        const bips::ConsumerInfo &c = ch.consumers[i];
        const Lag lag = consumer_lag(ch, c);
        json.begin_object();
        json.member("index", c.index);
        json.member("policy", bips::policy_name(c.policy));
        json.member("pid", c.pid);
        json.member("local_pid", c.local_pid);
        json.member("other_pid_namespace", c.other_pid_namespace);
        json.member("alive", c.alive);
        json.member("received_frames", c.received);
        json.member("skipped_frames", c.skipped);
        json.member("held_slots", c.held);
        json.member("lag_frames", lag.frames);
        json.member("lag_exact", lag.exact);
        json.member("release_age_ns", c.release_age_ns);
        json.member("blocking_ns", c.blocking_ns);
        if (rates) {
            const ConsumerRates r = i < rates->consumers.size() ? rates->consumers[i] : ConsumerRates{};
            json.member("receive_rate_frames_per_s", r.received_per_s, kRateDecimals);
            json.member("skip_rate_frames_per_s", r.skipped_per_s, kRateDecimals);
        }
        json.end_object();
    }
    json.end_array();
    json.end_object();
}

void write_problems(JsonWriter &json, const std::vector<std::string> &problems)
{
    json.key("problems").begin_array();
    for (const auto &p : problems) {
        // Channel names cannot hold ':', so the first ": " ends the name.
        const auto colon = p.find(": ");
        json.begin_object();
        if (colon == std::string::npos) {
            json.member_null("name");
            json.member("message", std::string_view(p));
        } else {
            json.member("name", std::string_view(p).substr(0, colon));
            json.member("message", std::string_view(p).substr(colon + 2));
        }
        json.end_object();
    }
    json.end_array();
}

void write_error(JsonWriter &json, const bips::Error &error)
{
    json.key("error").begin_object();
    json.member("code", bips::errc_name(error.code));
    json.member("message", std::string_view(error.message));
    json.end_object();
}

} // namespace bips::tool
