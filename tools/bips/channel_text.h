// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: words for channel state shared by `list` and `info`.
#pragma once

#include <bips/channel.h>

namespace bips::tool {

// "live" while a producer holds the channel's lock, "closed" after a clean
// exit, "dead" when the producer died without closing (`bips clean` removes
// those).
inline const char *producer_state(const bips::ChannelInfo &info)
{
    if (info.producer_alive)
        return "live";
    return info.producer_closed ? "closed" : "dead";
}

} // namespace bips::tool
