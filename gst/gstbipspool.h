// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: GstBipsPool, the buffer pool bipssink proposes to upstream.
//
// Each acquired buffer is a fresh GstBuffer holding one GstBipsMemory, that
// is one slot of the channel, so upstream renders straight into shared
// memory. Buffers are never recycled: once bipssink publishes a slot it
// belongs to the channel and may be rewritten for a later frame, so the
// released GstBuffer is freed (an unpublished slot goes back to the free
// list then). The allocator caps the slots acquired and not yet published
// at slot count - 1, so upstream cannot pin every slot; acquire waits for
// that in short slices and honours flushing.
//
// When the pool cannot hand out a slot (the channel was recreated, or the
// configured size exceeds a slot) it falls back to system memory: bipssink
// then copies, or reports a clear error, instead of upstream failing.
#pragma once

#include "gstbipsallocator.h"

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_BIPS_POOL (gst_bips_pool_get_type())
G_DECLARE_FINAL_TYPE(GstBipsPool, gst_bips_pool, GST, BIPS_POOL, GstBufferPool)

// A new pool drawing slots from `allocator` (a producer-role allocator; the
// pool keeps a reference). Returns a floating-free new reference.
GstBufferPool *gst_bips_pool_new(GstBipsAllocator *allocator);

G_END_DECLS
