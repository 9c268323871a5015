// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: C++ helpers shared by the facade's sources (not installed).
#pragma once

#include "bips-gobject.h"

#include <bips/bips.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace bips::gobject {

// Copies a core error into a GError of the BIPS_ERROR domain (codes are
// equal by construction; see the static_asserts in bips-types.cpp).
void set_error(GError **error, const bips::Error &e);

// The facade's own misuse errors (closed object, released frame, foreign
// slot) are reported as BIPS_ERROR_INVALID_ARGUMENT with `message`.
void set_misuse(GError **error, const std::string &message);

// Milliseconds as the GObject API takes them (negative: forever) to the
// core's nanoseconds.
std::chrono::nanoseconds timeout_from_ms(gint64 timeout_ms);

// The outcome of a bips_*_poll_*() call in plain values, for bindings that
// cannot take a GError at every moment (see bips_consumer_poll_next()).
// Either pointer may be NULL; a message is a new string for the caller.
// poll_succeeded: code 0, no message.
void poll_succeeded(gint *out_code, gchar **out_message);
// poll_failed: `e`'s code and message; code 0 with `e`'s message when
// `ran_out` (the wait ran out, which a poll does not count as a failure).
void poll_failed(gint *out_code, gchar **out_message, const bips::Error &e, bool ran_out);

// The stream info a frame was published under, shared by every frame of one
// generation (immutable once made, so any thread may read it).
using SharedInfo = std::shared_ptr<const std::string>;

// Frame metadata as GVariant (bips-metas.cpp; the forms are documented on
// bips_frame_get_metas()). The *_to_variant functions return a floating
// reference; metas_from_variant reads a{sv} into `m` and is false, with
// *why naming the key or field, for anything it cannot carry.
GVariant *video_to_variant(const bips::VideoLayoutMeta &v);

// What a frame's layout depends on: the stream info it was published under
// (compared by identity: one object per generation), its own video layout,
// and whether its metadata could be read. Equal keys describe the same
// layout; a value, owns nothing but a reference on the stream info.
struct FrameLayoutKey {
    SharedInfo stream_info;
    std::optional<bips::VideoLayoutMeta> video;
    bool meta_problem = false;
    bool operator==(const FrameLayoutKey &) const = default;
};
GVariant *metas_to_variant(const bips::FrameMeta &m);
bool metas_from_variant(GVariant *v, bips::FrameMeta *m, std::string *why);

} // namespace bips::gobject

// A frame returned by the core goes into an empty BipsFrame
// (bips_frame_new()), made before the consumer waits for it (making it
// costs more than the rest of next() when the CPU caches are cold): fill()
// once; the BipsFrame takes the frame over and releases it in
// bips_frame_release() or on finalize. A frame the caller made
// (bips_consumer_poll_next_into()) is claimed first, so that no two calls
// fill it: claim() is false unless it was empty; unclaim() makes a claimed
// frame that got no frame empty again. Any thread.
void bips_frame_fill_internal(BipsFrame *self, bips::Frame &&frame,
                              bips::gobject::SharedInfo info, guint64 epoch);
bool bips_frame_claim_internal(BipsFrame *self);
void bips_frame_unclaim_internal(BipsFrame *self);

// The key of `frame`'s layout (decodes its metadata if not done yet). Any
// thread.
bips::gobject::FrameLayoutKey bips_frame_layout_key_internal(BipsFrame *frame);

// Wraps a slot acquired from `producer`'s core. The BipsSlot holds a
// reference on `producer` so the slot memory stays mapped while it lives; it
// discards the slot on finalize if it was neither published nor discarded.
// Returns a new reference.
BipsSlot *bips_slot_new_internal(BipsProducer *producer, const bips::WriteSlot &slot);

// Hands the core handle of a pending slot to the caller (for publish or
// discard) and marks it in flight, so a concurrent second publish of the
// same slot fails. Returns FALSE if the slot is not pending or belongs to
// another producer.
gboolean bips_slot_begin_use(BipsSlot *slot, BipsProducer *producer, bips::WriteSlot *out);

// Ends a bips_slot_begin_use(): `done` TRUE marks the slot published or
// discarded for good, FALSE makes it pending again (a failed publish).
void bips_slot_end_use(BipsSlot *slot, gboolean done);

// Called by a BipsSlot's finalize: discards the slot if it is still pending
// and forgets it. The producer is alive (the slot holds a reference).
void bips_producer_forget_slot(BipsProducer *self, const bips::WriteSlot &slot,
                               gboolean pending);
