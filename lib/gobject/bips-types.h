// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: the BipsPolicy enum, the BIPS_ERROR domain and constants.
#pragma once

#include <glib-object.h>

#include "bips-export.h"

G_BEGIN_DECLS

/**
 * BIPS_TIME_NONE:
 *
 * The "no timestamp" value of pts, dts and duration; the same value as
 * GStreamer's GST_CLOCK_TIME_NONE.
 */
#define BIPS_TIME_NONE ((guint64) -1)

/**
 * BIPS_FRAME_FLAG_USER_MASK:
 *
 * The bits of a frame's flags that belong to the application (bipssink
 * carries GstBufferFlags there).
 */
#define BIPS_FRAME_FLAG_USER_MASK 0xffff

/**
 * BIPS_TIMEOUT_FOREVER:
 *
 * A timeout in milliseconds that never runs out. Any negative value means
 * the same.
 */
#define BIPS_TIMEOUT_FOREVER (-1)

/**
 * BipsPolicy:
 * @BIPS_POLICY_LOSSLESS: every frame, in order; the producer waits for this
 *   consumer (backpressure)
 * @BIPS_POLICY_LATEST: the newest frame; never slows the producer, and
 *   counts the frames it skipped
 *
 * How a consumer reads a channel. Each consumer picks its own policy on the
 * same channel.
 */
typedef enum {
    BIPS_POLICY_LOSSLESS = 0,
    BIPS_POLICY_LATEST = 1,
} BipsPolicy;

BIPS_API GType bips_policy_get_type(void) G_GNUC_CONST;
#define BIPS_TYPE_POLICY (bips_policy_get_type())

/**
 * BIPS_ERROR:
 *
 * The error domain of bips. Its codes are the values of #BipsError and
 * mirror the core library's error codes one to one.
 */
#define BIPS_ERROR (bips_error_quark())

/**
 * BipsError:
 * @BIPS_ERROR_INVALID_ARGUMENT: a parameter is out of range (the message
 *   names it)
 * @BIPS_ERROR_INVALID_NAME: a channel name that the OS or bips rejects
 * @BIPS_ERROR_NOT_FOUND: no such channel (or no producer yet)
 * @BIPS_ERROR_BUSY: a live producer already owns the channel, or the call
 *   was interrupted
 * @BIPS_ERROR_NO_SPACE: too little memory for the channel's shared memory
 *   (the message names the sizes)
 * @BIPS_ERROR_PERMISSION_DENIED: the channel socket's mode forbids this
 *   user
 * @BIPS_ERROR_CORRUPT: the channel's name or memory fails validation (the
 *   name holds something else, or a peer sent something unexpected)
 * @BIPS_ERROR_INCOMPATIBLE: another layout version of bips made the channel
 * @BIPS_ERROR_TIMEOUT: a bounded wait ran out
 * @BIPS_ERROR_WOULD_BLOCK: a non-blocking call found nothing to do
 * @BIPS_ERROR_PRODUCER_GONE: the producer exited or died; reattach to go on
 * @BIPS_ERROR_END_OF_STREAM: the producer marked the end of the stream
 * @BIPS_ERROR_TOO_MANY_CONSUMERS: every consumer entry of the channel is
 *   taken
 * @BIPS_ERROR_SYSTEM: an unexpected system call failure (errno text)
 * @BIPS_ERROR_TOO_MANY_HELD: the consumer already holds #BipsConsumer:max-held
 *   frames; release one first
 *
 * Error codes of the #BIPS_ERROR domain: one for each of the core's
 * bips::Errc codes, with the same value. The facade's own misuse errors
 * (a released frame, a published slot, a closed object) are
 * %BIPS_ERROR_INVALID_ARGUMENT.
 */
typedef enum {
    BIPS_ERROR_INVALID_ARGUMENT = 1,
    BIPS_ERROR_INVALID_NAME,
    BIPS_ERROR_NOT_FOUND,
    BIPS_ERROR_BUSY,
    BIPS_ERROR_NO_SPACE,
    BIPS_ERROR_PERMISSION_DENIED,
    BIPS_ERROR_CORRUPT,
    BIPS_ERROR_INCOMPATIBLE,
    BIPS_ERROR_TIMEOUT,
    BIPS_ERROR_WOULD_BLOCK,
    BIPS_ERROR_PRODUCER_GONE,
    BIPS_ERROR_END_OF_STREAM,
    BIPS_ERROR_TOO_MANY_CONSUMERS,
    BIPS_ERROR_SYSTEM,
    BIPS_ERROR_TOO_MANY_HELD,
} BipsError;

BIPS_API GType bips_error_get_type(void) G_GNUC_CONST;
#define BIPS_TYPE_ERROR (bips_error_get_type())

BIPS_API GQuark bips_error_quark(void);

BIPS_API const gchar *bips_error_code_name(BipsError code);

BIPS_API gboolean bips_validate_channel_name(const gchar *name, GError **error);

BIPS_API gchar *bips_channel_path(const gchar *name);

G_END_DECLS
