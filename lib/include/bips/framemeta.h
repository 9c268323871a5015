// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the per-frame metadata format (BMT1), the one codec every side uses.
//
// A producer may publish, with each frame, up to ProducerOptions::
// meta_capacity bytes of metadata (Producer::publish's `meta`). bipssink,
// bipssrc, the GObject facade and the Python package all write and read
// them in this format, through encode_frame_meta() and decode_frame_meta().
// C++ programs may use it too, or put bytes of their own there.
//
// What travels (format version 1; docs/elements.md lists it for users):
//   - the frame's video layout (GstVideoMeta: format, size, plane offsets
//     and strides), for padded or aligned frames the caps do not describe;
//   - the producer pipeline's latency;
//   - the buffer's offset and offset-end;
//   - regions of interest (GstVideoRegionOfInterestMeta: type, box, id,
//     parent id and parameter structures, e.g. a detection's label and
//     confidence);
//   - custom metas (GstCustomMeta: a registered name and a structure).
//
// Blob layout, native byte order (both ends share one machine):
//
//   u32 magic "BMT1" | u16 version (1) | u16 record count
//   records: u32 tag | u32 payload length | payload, padded to 8 bytes
//
//   "VMET" video layout: char format[32] (NUL padded), u32 flags, u32 width,
//          u32 height, u32 n_planes, u64 offset[4], i32 stride[4]
//   "PLAT" u64 producer latency in ns
//   "OFFS" u64 offset, u64 offset-end
//   "ROI1" u32 x, y, w, h, i32 id, parent_id, string type, u32 n,
//          n structures (the parameters)
//   "CUST" one structure (its name is the custom meta's name)
//
//   string    = u32 length, that many bytes (UTF-8, no NUL)
//   structure = string name, u32 n, n fields
//   field     = string name, u8 type (MetaValue's index + 1), value:
//               bool u8 | int32 i32 | uint32 u32 | int64 i64 | uint64 u64 |
//               float f32 | double f64 | string string |
//               serialized: string type name, string text
//
// Readers skip records of unknown tags, so later versions can add some
// without breaking older readers.
#pragma once

#include <bips/channel.h>
#include <bips/result.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace bips {

// The format version encode_frame_meta() writes and decode_frame_meta() reads.
inline constexpr uint16_t kFrameMetaVersion = 1;

// "No offset", the same value as GStreamer's GST_BUFFER_OFFSET_NONE.
inline constexpr uint64_t kNoOffset = UINT64_MAX;

// A value GStreamer holds in some other type (a fraction, a list, caps...):
// its type's name (e.g. "GstFraction") and GStreamer's serialized text.
struct SerializedValue {
    std::string type_name;
    std::string text;
    bool operator==(const SerializedValue &) const = default;
};

// One field value, typed as GStreamer types structure fields, so that a
// GstStructure crosses unchanged. The order of the alternatives is the
// wire's type code (index + 1): never reorder them.
using MetaValue = std::variant<bool, int32_t, uint32_t, int64_t, uint64_t, float, double,
                               std::string, SerializedValue>;

struct MetaField {
    std::string name;
    MetaValue value;
    bool operator==(const MetaField &) const = default;
};

// A named list of fields, as a GstStructure is.
struct MetaStructure {
    std::string name;
    std::vector<MetaField> fields;
    bool operator==(const MetaStructure &) const = default;
};

// A frame's memory layout (GstVideoMeta). Only the structure is checked
// here; whether it describes a frame of its format is for the reader to
// check (bipssrc and the Python package do).
struct VideoLayoutMeta {
    static constexpr uint32_t kMaxPlanes = 4;
    std::string format; // GStreamer's name of the format, e.g. "NV12"
    uint32_t flags = 0; // GstVideoFrameFlags
    uint32_t width = 0;
    uint32_t height = 0;
    uint32_t n_planes = 0; // 1 .. kMaxPlanes
    std::array<uint64_t, kMaxPlanes> offset{};
    std::array<int32_t, kMaxPlanes> stride{};
    bool operator==(const VideoLayoutMeta &) const = default;
};

// A region of interest (GstVideoRegionOfInterestMeta): a box in pixels, its
// type (e.g. "person"), an id and its parent's (-1: none), and parameter
// structures (e.g. "detection" with label and confidence).
struct RegionOfInterest {
    std::string type;
    uint32_t x = 0, y = 0, w = 0, h = 0;
    int32_t id = 0;
    int32_t parent_id = -1;
    std::vector<MetaStructure> params;
    bool operator==(const RegionOfInterest &) const = default;
};

// Everything a frame's metadata says. Owns its contents.
struct FrameMeta {
    std::optional<VideoLayoutMeta> video;
    uint64_t producer_latency = kNoTime; // ns; kNoTime or 0: not sent
    uint64_t offset = kNoOffset;
    uint64_t offset_end = kNoOffset;
    std::vector<RegionOfInterest> regions;
    std::vector<MetaStructure> custom; // each structure's name is its meta's
    // Nothing to send: encode_frame_meta() gives an empty blob.
    bool empty() const noexcept
    {
        return !video && (producer_latency == kNoTime || producer_latency == 0) &&
               offset == kNoOffset && offset_end == kNoOffset && regions.empty() &&
               custom.empty();
    }
    bool operator==(const FrameMeta &) const = default;
};

// Whether `name` may name a structure, a field or a custom meta: an ASCII
// letter, then letters, digits and "/-_.:+" (GStreamer's rule for
// structure names), at most 255 characters.
BIPS_EXPORT bool is_valid_meta_name(std::string_view name) noexcept;

// The blob for `meta`, empty when there is nothing to send. Fails with
// InvalidArgument when a name is invalid, a string is not UTF-8 or holds a
// NUL, a video layout has no or too many planes, or the blob would take
// more than `limit` bytes (the message gives the size, what the frame
// carries, and the fix: a larger metadata area, ProducerOptions::
// meta_capacity, bipssink meta-size). The caller owns the result.
BIPS_EXPORT Result<std::vector<std::byte>> encode_frame_meta(const FrameMeta &meta,
                                                             size_t limit);

// Reads a blob written by encode_frame_meta() (another process's bytes:
// every length, count, name and string is checked against the blob before
// use, nothing is allocated beyond what the blob holds). An empty blob is
// an empty FrameMeta. Fails with Corrupt, naming what is wrong, for a blob
// that is not one (unknown magic or version, truncated or malformed
// records); nothing of it is returned then. Records of unknown tags are
// skipped. The caller owns the result.
BIPS_EXPORT Result<FrameMeta> decode_frame_meta(std::span<const std::byte> blob);

} // namespace bips
