// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: a buffer's metadata as the frame metadata of the channel
// (bips::FrameMeta, <bips/framemeta.h>), written by bipssink, read by bipssrc.
//
// Caps travel as the channel's stream info; what can change from frame to
// frame without a caps change travels as each frame's metadata:
//   - the GstVideoMeta (format, size, planes, offsets, strides), which
//     upstream elements with padded or aligned buffers attach;
//   - the producer pipeline's latency: bipssink publishes a frame up to
//     that long after its timestamp, so bipssrc adds it to the latency it
//     reports;
//   - the buffer's offset and offset-end (sample or frame counts for audio
//     and video, byte positions for others);
//   - every GstVideoRegionOfInterestMeta with its parameter structures;
//   - every GstCustomMeta with its structure.
// The format itself belongs to the library (lib/src/framemeta.cpp).
#pragma once

#include <bips/framemeta.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace gstbips {

// What a blob says besides metadata attached to the buffer.
struct FrameExtras {
    GstClockTime producer_latency = GST_CLOCK_TIME_NONE;
    guint64 offset = GST_BUFFER_OFFSET_NONE;     // also set on the buffer
    guint64 offset_end = GST_BUFFER_OFFSET_NONE; // also set on the buffer
};

// The blob describing `buffer`'s metadata and the producer's `latency`
// (GST_CLOCK_TIME_NONE or 0: not sent); empty when there is nothing. Fails
// with InvalidArgument when it would take more than `limit` bytes or a
// structure has a name the format cannot carry (the message says which
// and what to do). Values GStreamer cannot serialize are left out and
// named in *why (empty when nothing was).
bips::Result<std::vector<std::byte>> serialize_meta(GstBuffer *buffer, GstClockTime latency,
                                                    size_t limit, std::string *why);

// What apply_meta decided about a frame.
enum class FrameVerdict {
    Use,    // push the buffer; *why is set if (part of) the blob was ignored
    Reject, // do not push it: downstream would read outside the frame
};

// Adds to `buffer` (writable, holding one frame) the metadata that `blob`
// describes and fills *extras, after checking it against the frame: the
// blob comes from another process, which may be buggy or hostile.
//
// `layout` is the video info of the caps the buffer goes out with (nullptr
// when they are not raw video). A video meta is attached only if its
// format is a plain planar or packed one (not tiled, palettized or of a
// complex layout) with the format's plane count, a stride of at least one
// row per plane and every row of every plane inside the frame, and if it
// agrees with `layout` (same format, at least its width and height); a
// meta of a format that cannot be checked is left out. Without a video
// meta the frame must hold the default layout of `layout`.
//
// Regions of interest and custom metas are added as GstVideoRegionOf-
// InterestMeta and GstCustomMeta (a custom meta this process does not know
// yet is registered under its name, see custom_meta_info()).
//
// Returns Reject with *why naming the problem when the frame cannot be
// used safely (nothing is added then), Use otherwise. A blob that is not
// bipssink's (unknown magic, malformed records) adds nothing and sets
// *why, but the frame is still used if it holds the default layout. An
// empty blob is fine.
FrameVerdict apply_meta(GstBuffer *buffer, std::span<const std::byte> blob,
                        const GstVideoInfo *layout, FrameExtras *extras, std::string *why);

} // namespace gstbips
