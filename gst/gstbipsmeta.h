// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: per-frame metadata blob (GstVideoMeta) written by bipssink, read by bipssrc.
//
// Caps travel as the channel's stream info; what can change from frame to
// frame without a caps change travels in each slot's meta blob. Today that
// is the GstVideoMeta (format, size, planes, offsets, strides), which
// upstream elements with padded or aligned buffers attach.
//
// Blob layout (native byte order: both sides share one machine):
//
//   u32 magic "BMT1" | u16 version (1) | u16 record count
//   records: u32 tag | u32 payload length | payload, padded to 8 bytes
//
// Tag "VMET" carries one video meta (struct VideoMetaRecord in the .cpp);
// the format travels by name, not by enum value, so two GStreamer versions
// can talk. Tag "PLAT" carries the producer pipeline's latency (u64 ns):
// bipssink publishes a frame up to that long after its timestamp, so
// bipssrc adds it to the latency it reports. Tag "OFFS" carries the
// buffer's offset and offset-end (two u64, GST_BUFFER_OFFSET_NONE when
// unset): sample or frame counts for audio and video, byte positions for
// others. Readers skip unknown tags, so later versions can add records.
#pragma once

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
// (GST_CLOCK_TIME_NONE or 0: not sent); empty when there is nothing.
std::vector<std::byte> serialize_meta(GstBuffer *buffer, GstClockTime latency);

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
// Returns Reject with *why naming the problem when the frame cannot be
// used safely (nothing is added then), Use otherwise. A blob that is not
// bipssink's (unknown magic, malformed records) adds nothing and sets
// *why, but the frame is still used if it holds the default layout. An
// empty blob is fine.
FrameVerdict apply_meta(GstBuffer *buffer, std::span<const std::byte> blob,
                        const GstVideoInfo *layout, FrameExtras *extras, std::string *why);

} // namespace gstbips
