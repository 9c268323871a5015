// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: the JSON form of channels, shared by `list`, `info` and `top`.
// The schemas are documented in docs/cli.md; change them only additively
// (new members) unless kJsonSchemaVersion goes up.
#pragma once

#include "json.h"

#include <bips/channel.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bips::tool {

// The major version of every --json schema ("bips.list/1" and so on).
inline constexpr int kJsonSchemaVersion = 1;

// Rates measured by `top` between two snapshots; nullopt when undefined
// (first sample, a new epoch, a new consumer, a dead producer).
struct ConsumerRates {
    std::optional<double> received_per_s;
    std::optional<double> skipped_per_s;
};
struct ChannelRates {
    std::optional<double> published_per_s;
    std::vector<ConsumerRates> consumers; // parallel to ChannelInfo::consumers
};

// Opens the document: {"schema": "bips.<kind>/1", "version": 1,
// "tool_version": ..., "directory": ...; the caller adds members and
// closes the object.
void begin_document(JsonWriter &json, std::string_view kind);

// One channel object (see docs/cli.md), with rate members when `rates` is
// given (top) and without them otherwise (list, info).
void write_channel(JsonWriter &json, const bips::ChannelInfo &ch, const ChannelRates *rates);

// "problems": [{"name": ..., "message": ...}, ...] from list_channels'
// "name: message" strings.
void write_problems(JsonWriter &json, const std::vector<std::string> &problems);

// "error": {"code": "not-found", "message": ...}.
void write_error(JsonWriter &json, const bips::Error &error);

} // namespace bips::tool
