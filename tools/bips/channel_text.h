// SPDX-License-Identifier: LGPL-2.1-or-later
// bips tool: words for channel state shared by `list` and `info`.
#pragma once

#include <bips/channel.h>

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

} // namespace bips::tool
