// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: GstBipsAllocator and GstBipsMemory, GstMemory over channel slots.
//
// One allocator type serves both elements, in one of two roles fixed at
// construction:
//
// - producer role (bipssink): each memory wraps a slot acquired from a
//   bips::Producer. Upstream writes into it; bipssink publishes it without a
//   copy. A memory freed while still unpublished gives its slot back
//   (Producer::discard). A published slot belongs to the channel: the memory
//   must not be reused for another frame, which is why GstBipsPool never
//   recycles buffers.
// - consumer role (bipssrc): each memory owns one bips::Frame (read-only
//   slot data of another process) and releases it when the memory is freed,
//   from whatever thread drops the last reference. The allocator counts the
//   memories still alive, which bipssrc's max-held limit is based on.
//
// Lifetimes: every memory refs its allocator (gst_memory_init does), and
// every memory that wraps a slot also holds what keeps the slot mapped (a
// std::shared_ptr to the Producer, or the Frame, which keeps the consumer's
// mapping). So a memory stays valid after the element stopped, after the
// allocator was retired and after the channel was recreated.
//
// Memory type "bips"; the allocator carries GST_ALLOCATOR_FLAG_CUSTOM_ALLOC
// because gst_allocator_alloc() cannot express "a slot of this channel".
// Sub-memories made by gst_memory_share() ref their parent and are
// read-only; they never own a slot.
#pragma once

#include <bips/bips.h>

#include <gst/gst.h>

#include <chrono>
#include <memory>
#include <span>
#include <string>

G_BEGIN_DECLS

#define GST_BIPS_MEMORY_TYPE "bips"

#define GST_TYPE_BIPS_ALLOCATOR (gst_bips_allocator_get_type())
G_DECLARE_FINAL_TYPE(GstBipsAllocator, gst_bips_allocator, GST, BIPS_ALLOCATOR, GstAllocator)

// TRUE if `mem` (or its parent) comes from a GstBipsAllocator.
gboolean gst_is_bips_memory(GstMemory *mem);

G_END_DECLS

// ---- C++ API used by the elements (every function is thread-safe) ----

// A producer-role allocator over `producer`. At most `max_pending` slots
// may be acquired and not yet published or discarded at any time, so
// upstream can never pin every slot of the channel. Returns a new
// reference.
GstBipsAllocator *gst_bips_allocator_new_producer(std::shared_ptr<bips::Producer> producer,
                                                  guint max_pending);

// A consumer-role allocator (wraps frames). Returns a new reference.
GstBipsAllocator *gst_bips_allocator_new_consumer();

enum class GstBipsAcquire {
    Ok,
    Timeout,     // no slot within the timeout (consumers hold them all)
    Interrupted, // Producer::interrupt() is in effect (flushing)
    Retired,     // the allocator no longer serves a channel
    TooBig,      // the requested size exceeds the slot size
    Error,       // see *error
};

// Who asks for a slot: upstream (the pool, gst_allocator_alloc) is held to
// the max_pending bound; bipssink's own copy path is not, because the
// buffers that hold the pending slots may be queued behind the one it
// copies, and waiting for them would deadlock.
enum class GstBipsSlotUser { Upstream, Sink };

// Acquires one slot and wraps it in a writable GstBipsMemory of `size` bytes
// (offset 0, maxsize = slot size). Waits at most `timeout`; callers loop in
// short slices so that they can notice flushing. Returns nullptr unless
// the status is Ok. Producer role only.
GstMemory *gst_bips_allocator_acquire_slot(GstBipsAllocator *allocator, gsize size,
                                           GstBipsSlotUser user,
                                           std::chrono::nanoseconds timeout,
                                           GstBipsAcquire *status, std::string *error);

// TRUE if `mem` is an unpublished slot memory of this (not retired)
// allocator, not a sub-memory and starting at offset 0: then it can be
// published as it is.
bool gst_bips_allocator_can_publish(GstBipsAllocator *allocator, GstMemory *mem);

// Publishes the slot of `mem` (checked with can_publish) with `info` and
// `meta`. Afterwards the slot belongs to the channel and freeing `mem` does
// not touch it.
bips::Result<void> gst_bips_allocator_publish(GstBipsAllocator *allocator, GstMemory *mem,
                                              const bips::FrameInfo &info,
                                              std::span<const std::byte> meta);

// Detaches the allocator from its channel: later acquires return Retired
// and can_publish() is false. Memories already handed out stay valid and
// keep their Producer alive until they are freed.
void gst_bips_allocator_retire(GstBipsAllocator *allocator);

// Wraps a frame in a read-only GstBipsMemory (consumer role). Takes the
// frame; its slot is released when the memory is freed.
GstMemory *gst_bips_allocator_wrap_frame(GstBipsAllocator *allocator, bips::Frame &&frame);

// How many memories made by wrap_frame() on this allocator are still alive
// (sub-memories keep their parent alive, copies do not count): the slots
// they keep from the producer. Consumer role; any thread; a snapshot that
// other threads may change at once (it only drops unless the caller wraps).
guint gst_bips_allocator_frames_alive(GstBipsAllocator *allocator);
