// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: enum types, the BIPS_ERROR domain and small helpers.
#include "bips-private.h"

#include <limits>

// The GError codes are the core's codes: keep them equal.
#define BIPS_ASSERT_CODE(gcode, ccode)                                                      \
    static_assert(static_cast<int>(gcode) == static_cast<int>(bips::Errc::ccode),         \
                  #gcode " must equal bips::Errc::" #ccode)
BIPS_ASSERT_CODE(BIPS_ERROR_INVALID_ARGUMENT, InvalidArgument);
BIPS_ASSERT_CODE(BIPS_ERROR_INVALID_NAME, InvalidName);
BIPS_ASSERT_CODE(BIPS_ERROR_NOT_FOUND, NotFound);
BIPS_ASSERT_CODE(BIPS_ERROR_BUSY, Busy);
BIPS_ASSERT_CODE(BIPS_ERROR_NO_SPACE, NoSpace);
BIPS_ASSERT_CODE(BIPS_ERROR_PERMISSION_DENIED, PermissionDenied);
BIPS_ASSERT_CODE(BIPS_ERROR_CORRUPT, Corrupt);
BIPS_ASSERT_CODE(BIPS_ERROR_INCOMPATIBLE, Incompatible);
BIPS_ASSERT_CODE(BIPS_ERROR_TIMEOUT, Timeout);
BIPS_ASSERT_CODE(BIPS_ERROR_WOULD_BLOCK, WouldBlock);
BIPS_ASSERT_CODE(BIPS_ERROR_PRODUCER_GONE, ProducerGone);
BIPS_ASSERT_CODE(BIPS_ERROR_END_OF_STREAM, EndOfStream);
BIPS_ASSERT_CODE(BIPS_ERROR_TOO_MANY_CONSUMERS, TooManyConsumers);
BIPS_ASSERT_CODE(BIPS_ERROR_SYSTEM, System);
BIPS_ASSERT_CODE(BIPS_ERROR_TOO_MANY_HELD, TooManyHeld);
#undef BIPS_ASSERT_CODE

static_assert(static_cast<int>(BIPS_POLICY_LOSSLESS) == static_cast<int>(bips::Policy::Lossless));
static_assert(static_cast<int>(BIPS_POLICY_LATEST) == static_cast<int>(bips::Policy::Latest));
static_assert(BIPS_TIME_NONE == bips::kNoTime);
static_assert(BIPS_FRAME_FLAG_USER_MASK == bips::kFrameFlagUserMask);

GType bips_policy_get_type(void)
{
    static gsize type_id = 0;
    static const GEnumValue values[] = {
        {BIPS_POLICY_LOSSLESS, "BIPS_POLICY_LOSSLESS", "lossless"},
        {BIPS_POLICY_LATEST, "BIPS_POLICY_LATEST", "latest"},
        {0, nullptr, nullptr},
    };
    if (g_once_init_enter(&type_id)) {
        GType t = g_enum_register_static(g_intern_static_string("BipsPolicy"), values);
        g_once_init_leave(&type_id, t);
    }
    return type_id;
}

GType bips_error_get_type(void)
{
    static gsize type_id = 0;
    static const GEnumValue values[] = {
        {BIPS_ERROR_INVALID_ARGUMENT, "BIPS_ERROR_INVALID_ARGUMENT", "invalid-argument"},
        {BIPS_ERROR_INVALID_NAME, "BIPS_ERROR_INVALID_NAME", "invalid-name"},
        {BIPS_ERROR_NOT_FOUND, "BIPS_ERROR_NOT_FOUND", "not-found"},
        {BIPS_ERROR_BUSY, "BIPS_ERROR_BUSY", "busy"},
        {BIPS_ERROR_NO_SPACE, "BIPS_ERROR_NO_SPACE", "no-space"},
        {BIPS_ERROR_PERMISSION_DENIED, "BIPS_ERROR_PERMISSION_DENIED", "permission-denied"},
        {BIPS_ERROR_CORRUPT, "BIPS_ERROR_CORRUPT", "corrupt"},
        {BIPS_ERROR_INCOMPATIBLE, "BIPS_ERROR_INCOMPATIBLE", "incompatible"},
        {BIPS_ERROR_TIMEOUT, "BIPS_ERROR_TIMEOUT", "timeout"},
        {BIPS_ERROR_WOULD_BLOCK, "BIPS_ERROR_WOULD_BLOCK", "would-block"},
        {BIPS_ERROR_PRODUCER_GONE, "BIPS_ERROR_PRODUCER_GONE", "producer-gone"},
        {BIPS_ERROR_END_OF_STREAM, "BIPS_ERROR_END_OF_STREAM", "end-of-stream"},
        {BIPS_ERROR_TOO_MANY_CONSUMERS, "BIPS_ERROR_TOO_MANY_CONSUMERS", "too-many-consumers"},
        {BIPS_ERROR_SYSTEM, "BIPS_ERROR_SYSTEM", "system"},
        {BIPS_ERROR_TOO_MANY_HELD, "BIPS_ERROR_TOO_MANY_HELD", "too-many-held"},
        {0, nullptr, nullptr},
    };
    if (g_once_init_enter(&type_id)) {
        GType t = g_enum_register_static(g_intern_static_string("BipsError"), values);
        g_once_init_leave(&type_id, t);
    }
    return type_id;
}

/**
 * bips_error_quark:
 *
 * The quark of the #BIPS_ERROR domain.
 *
 * Returns: the error domain quark
 */
G_DEFINE_QUARK(bips-error-quark, bips_error)

/**
 * bips_error_code_name:
 * @code: a #BipsError code
 *
 * The short lower-case name of an error code, the same text as the core's
 * bips::errc_name(), e.g. "invalid-name". Any thread.
 *
 * Returns: (transfer none): a static string ("unknown" for codes outside
 *   the domain)
 */
const gchar *bips_error_code_name(BipsError code)
{
    return bips::errc_name(static_cast<bips::Errc>(code));
}

/**
 * bips_validate_channel_name:
 * @name: a channel name
 * @error: return location for a #BIPS_ERROR_INVALID_NAME error
 *
 * Checks a channel name without touching any channel: 1 to 200 characters
 * from [A-Za-z0-9._-], not starting with '.'. Any thread.
 *
 * Returns: %TRUE if @name is valid
 */
gboolean bips_validate_channel_name(const gchar *name, GError **error)
{
    g_return_val_if_fail(name != nullptr, FALSE);
    auto r = bips::validate_channel_name(name);
    if (!r) {
        bips::gobject::set_error(error, r.error());
        return FALSE;
    }
    return TRUE;
}

/**
 * bips_channel_path:
 * @name: a channel name
 *
 * The path of the unix-domain socket of channel @name ($BIPS_DIR, else
 * /dev/shm, then "bips-" and the name): the address consumers connect to.
 * The channel's memory is not a file; the producer hands it to each
 * consumer over this socket. The name is not validated. Any thread.
 *
 * Returns: (transfer full): the path; free it with g_free()
 */
gchar *bips_channel_path(const gchar *name)
{
    g_return_val_if_fail(name != nullptr, nullptr);
    return g_strdup(bips::channel_path(name).c_str());
}

namespace bips::gobject {

void set_error(GError **error, const bips::Error &e)
{
    g_set_error_literal(error, BIPS_ERROR, static_cast<int>(e.code), e.message.c_str());
}

void set_misuse(GError **error, const std::string &message)
{
    g_set_error_literal(error, BIPS_ERROR, BIPS_ERROR_INVALID_ARGUMENT, message.c_str());
}

void poll_succeeded(gint *out_code, gchar **out_message)
{
    if (out_code)
        *out_code = 0;
    if (out_message)
        *out_message = nullptr;
}

void poll_failed(gint *out_code, gchar **out_message, const bips::Error &e, bool ran_out)
{
    if (out_code)
        *out_code = ran_out ? 0 : static_cast<gint>(e.code);
    if (out_message)
        *out_message = g_strdup(e.message.c_str());
}

std::chrono::nanoseconds timeout_from_ms(gint64 timeout_ms)
{
    if (timeout_ms < 0)
        return bips::kForever;
    // Clamp so that the multiplication cannot overflow; such a bound is
    // forever in practice.
    constexpr gint64 kMaxMs = std::numeric_limits<gint64>::max() / 1000000;
    if (timeout_ms >= kMaxMs)
        return bips::kForever;
    return std::chrono::milliseconds(timeout_ms);
}

} // namespace bips::gobject
