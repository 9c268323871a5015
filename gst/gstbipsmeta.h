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
// bipssrc adds it to the latency it reports. Readers skip unknown tags, so
// later versions can add records.
#pragma once

#include <gst/gst.h>

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace gstbips {

// What a blob says besides metadata attached to the buffer.
struct FrameExtras {
    GstClockTime producer_latency = GST_CLOCK_TIME_NONE;
};

// The blob describing `buffer`'s metadata and the producer's `latency`
// (GST_CLOCK_TIME_NONE or 0: not sent); empty when there is nothing.
std::vector<std::byte> serialize_meta(GstBuffer *buffer, GstClockTime latency);

// Adds to `buffer` (writable) the metadata that `blob` describes and fills
// *extras. The blob comes from another process: every field is validated
// against `buffer`'s size. Returns false with *why set when the blob is
// malformed; nothing is added then. An empty blob is fine.
bool apply_meta(GstBuffer *buffer, std::span<const std::byte> blob, FrameExtras *extras,
                std::string *why);

} // namespace gstbips
