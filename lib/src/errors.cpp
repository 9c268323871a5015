// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: names of error codes and policies.
#include <bips/channel.h>
#include <bips/result.h>

namespace bips {

const char *errc_name(Errc code) noexcept
{
    switch (code) {
    case Errc::InvalidArgument: return "invalid-argument";
    case Errc::InvalidName: return "invalid-name";
    case Errc::NotFound: return "not-found";
    case Errc::Busy: return "busy";
    case Errc::NoSpace: return "no-space";
    case Errc::PermissionDenied: return "permission-denied";
    case Errc::Corrupt: return "corrupt";
    case Errc::Incompatible: return "incompatible";
    case Errc::Timeout: return "timeout";
    case Errc::WouldBlock: return "would-block";
    case Errc::ProducerGone: return "producer-gone";
    case Errc::EndOfStream: return "end-of-stream";
    case Errc::TooManyConsumers: return "too-many-consumers";
    case Errc::System: return "system";
    case Errc::TooManyHeld: return "too-many-held";
    }
    return "unknown";
}

const char *policy_name(Policy policy) noexcept
{
    return policy == Policy::Latest ? "latest" : "lossless";
}

} // namespace bips
