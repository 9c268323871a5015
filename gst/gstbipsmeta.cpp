// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: per-frame metadata blob (GstVideoMeta) written by bipssink, read by bipssrc.
#include "gstbipsmeta.h"

#include <gst/video/video.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>

namespace gstbips {

namespace {

constexpr uint32_t fourcc(char a, char b, char c, char d)
{
    return uint32_t(uint8_t(a)) | uint32_t(uint8_t(b)) << 8 | uint32_t(uint8_t(c)) << 16 |
           uint32_t(uint8_t(d)) << 24;
}

constexpr uint32_t kMagic = fourcc('B', 'M', 'T', '1');
constexpr uint16_t kVersion = 1;
constexpr uint32_t kTagVideoMeta = fourcc('V', 'M', 'E', 'T');
constexpr uint32_t kTagLatency = fourcc('P', 'L', 'A', 'T');
constexpr uint32_t kTagOffsets = fourcc('O', 'F', 'F', 'S');

struct OffsetsRecord {
    uint64_t offset;
    uint64_t offset_end;
};
constexpr int kMaxPlanes = 4;
static_assert(GST_VIDEO_MAX_PLANES == kMaxPlanes);

struct BlobHeader {
    uint32_t magic;
    uint16_t version;
    uint16_t count;
};
static_assert(sizeof(BlobHeader) == 8);

struct RecordHeader {
    uint32_t tag;
    uint32_t length;
};
static_assert(sizeof(RecordHeader) == 8);

struct VideoMetaRecord {
    char format[32]; // gst_video_format_to_string(), NUL padded
    uint32_t flags;  // GstVideoFrameFlags
    uint32_t width;
    uint32_t height;
    uint32_t n_planes;
    uint64_t offset[kMaxPlanes];
    int32_t stride[kMaxPlanes];
};
static_assert(std::is_trivially_copyable_v<VideoMetaRecord>);
static_assert(sizeof(VideoMetaRecord) == 96);

constexpr size_t pad8(size_t n) { return (n + 7) & ~size_t(7); }

template <typename T>
void append(std::vector<std::byte> &out, const T &value)
{
    const auto *p = reinterpret_cast<const std::byte *>(&value);
    out.insert(out.end(), p, p + sizeof(T));
}

} // namespace

// The video meta of `buffer` as a record; false if there is none to send.
static bool video_record(GstBuffer *buffer, VideoMetaRecord *rec)
{
    GstVideoMeta *vmeta = gst_buffer_get_video_meta(buffer);
    if (!vmeta || vmeta->n_planes == 0 || vmeta->n_planes > kMaxPlanes)
        return false;
    const char *name = gst_video_format_to_string(vmeta->format);
    if (!name)
        return false;
    *rec = VideoMetaRecord{};
    g_strlcpy(rec->format, name, sizeof(rec->format));
    rec->flags = vmeta->flags;
    rec->width = vmeta->width;
    rec->height = vmeta->height;
    rec->n_planes = vmeta->n_planes;
    for (guint i = 0; i < vmeta->n_planes; i++) {
        rec->offset[i] = vmeta->offset[i];
        rec->stride[i] = vmeta->stride[i];
    }
    return true;
}

template <typename T>
static void append_record(std::vector<std::byte> &out, uint32_t tag, const T &payload)
{
    append(out, RecordHeader{tag, sizeof(T)});
    append(out, payload);
    out.resize(pad8(out.size()));
}

std::vector<std::byte> serialize_meta(GstBuffer *buffer, GstClockTime latency)
{
    std::vector<std::byte> out;
    VideoMetaRecord video;
    const bool have_video = video_record(buffer, &video);
    const bool have_latency = GST_CLOCK_TIME_IS_VALID(latency) && latency > 0;
    const OffsetsRecord offsets{GST_BUFFER_OFFSET(buffer), GST_BUFFER_OFFSET_END(buffer)};
    const bool have_offsets =
        offsets.offset != GST_BUFFER_OFFSET_NONE || offsets.offset_end != GST_BUFFER_OFFSET_NONE;
    const uint16_t count = uint16_t(have_video) + uint16_t(have_latency) + uint16_t(have_offsets);
    if (!count)
        return out;
    append(out, BlobHeader{kMagic, kVersion, count});
    if (have_video)
        append_record(out, kTagVideoMeta, video);
    if (have_latency)
        append_record(out, kTagLatency, uint64_t(latency));
    if (have_offsets)
        append_record(out, kTagOffsets, offsets);
    return out;
}

namespace {

// What check_video_meta found.
enum class MetaCheck {
    Valid,       // attach it
    Unsupported, // a layout these checks cannot follow: leave the meta out
    Invalid,     // it does not describe the frame: do not use the frame
};

std::string plane_text(guint plane) { return "plane " + std::to_string(plane); }

// Bytes that one row of `plane` takes at `width` pixels: the widest of its
// components (pixel stride times the component's subsampled width).
// False when a component has no whole-byte pixel stride.
bool plane_row_bytes(const GstVideoFormatInfo *finfo, guint plane, guint32 width,
                     guint64 *row_bytes)
{
    gint comps[GST_VIDEO_MAX_COMPONENTS];
    gst_video_format_info_component(finfo, plane, comps);
    guint64 widest = 0;
    for (gint comp : comps) {
        if (comp < 0)
            break;
        const gint pstride = GST_VIDEO_FORMAT_INFO_PSTRIDE(finfo, comp);
        const gint cwidth = GST_VIDEO_FORMAT_INFO_SCALE_WIDTH(finfo, comp, width);
        if (pstride <= 0 || cwidth <= 0)
            return false;
        widest = std::max(widest, guint64(pstride) * guint64(cwidth));
    }
    *row_bytes = widest;
    return widest > 0;
}

// Rows of `plane` at `height` lines (its components share one vertical
// subsampling).
guint64 plane_rows(const GstVideoFormatInfo *finfo, guint plane, guint32 height)
{
    gint comps[GST_VIDEO_MAX_COMPONENTS];
    gst_video_format_info_component(finfo, plane, comps);
    if (comps[0] < 0)
        return 0;
    const gint rows = GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT(finfo, comps[0], height);
    return rows > 0 ? guint64(rows) : 0;
}

// Checks a video meta record against a frame of `size` bytes sent with
// caps `layout` (nullptr: not raw video caps). Every sum and product is
// checked for overflow: the record's fields are the producer's word.
MetaCheck check_video_meta(const VideoMetaRecord &rec, gsize size, const GstVideoInfo *layout,
                           GstVideoFormat *format_out, std::string *why)
{
    char name[sizeof(rec.format) + 1] = {};
    std::memcpy(name, rec.format, sizeof(rec.format));
    const GstVideoFormat format = gst_video_format_from_string(name);
    if (format == GST_VIDEO_FORMAT_UNKNOWN) {
        *why = std::string("video meta of unknown format '") + name + "'";
        return MetaCheck::Invalid;
    }
    if (layout && format != GST_VIDEO_INFO_FORMAT(layout)) {
        *why = std::string("video meta of format ") + name + " on a stream of format " +
               GST_VIDEO_INFO_NAME(layout);
        return MetaCheck::Invalid;
    }
    if (rec.width == 0 || rec.height == 0 || rec.width > G_MAXINT || rec.height > G_MAXINT) {
        *why = "video meta of impossible size " + std::to_string(rec.width) + "x" +
               std::to_string(rec.height);
        return MetaCheck::Invalid;
    }
    if (layout && (rec.width < guint(GST_VIDEO_INFO_WIDTH(layout)) ||
                   rec.height < guint(GST_VIDEO_INFO_HEIGHT(layout)))) {
        *why = "video meta of " + std::to_string(rec.width) + "x" + std::to_string(rec.height) +
               " on a stream of " + std::to_string(GST_VIDEO_INFO_WIDTH(layout)) + "x" +
               std::to_string(GST_VIDEO_INFO_HEIGHT(layout));
        return MetaCheck::Invalid;
    }
    const GstVideoFormatInfo *finfo = gst_video_format_get_info(format);
    if (finfo == nullptr || format <= GST_VIDEO_FORMAT_ENCODED ||
        GST_VIDEO_FORMAT_INFO_IS_TILED(finfo) || GST_VIDEO_FORMAT_INFO_HAS_PALETTE(finfo) ||
        GST_VIDEO_FORMAT_INFO_IS_COMPLEX(finfo)) {
        *why = std::string("video meta of format ") + name +
               ", whose layout (tiles, palette or packed bits) is not checked, left out";
        return MetaCheck::Unsupported;
    }
    const guint n_planes = GST_VIDEO_FORMAT_INFO_N_PLANES(finfo);
    if (rec.n_planes != n_planes) {
        *why = "video meta with " + std::to_string(rec.n_planes) + " planes for format " + name +
               ", which has " + std::to_string(n_planes);
        return MetaCheck::Invalid;
    }
    for (guint i = 0; i < n_planes; i++) {
        guint64 row_bytes = 0;
        const guint64 rows = plane_rows(finfo, i, rec.height);
        if (!plane_row_bytes(finfo, i, rec.width, &row_bytes) || rows == 0) {
            *why = std::string("video meta of format ") + name + ": " + plane_text(i) +
                   " has no byte layout to check, left out";
            return MetaCheck::Unsupported;
        }
        const int32_t stride = rec.stride[i];
        if (stride <= 0 || guint64(stride) < row_bytes) {
            *why = "video meta " + plane_text(i) + " stride " + std::to_string(stride) +
                   " is less than its row of " + std::to_string(row_bytes) + " bytes";
            return MetaCheck::Invalid;
        }
        // offset + stride * (rows - 1) + row_bytes <= size
        guint64 span = 0, end = 0;
        if (!g_uint64_checked_mul(&span, guint64(stride), rows - 1) ||
            !g_uint64_checked_add(&end, span, row_bytes) ||
            !g_uint64_checked_add(&end, end, rec.offset[i]) || end > size) {
            *why = "video meta " + plane_text(i) + " (offset " + std::to_string(rec.offset[i]) +
                   ", stride " + std::to_string(stride) + ", " + std::to_string(rows) +
                   " rows of " + std::to_string(row_bytes) + " bytes) reaches past the end of "
                   "the " + std::to_string(size) + "-byte frame";
            return MetaCheck::Invalid;
        }
    }
    *format_out = format;
    return MetaCheck::Valid;
}

void add_video_meta(GstBuffer *buffer, const VideoMetaRecord &rec, GstVideoFormat format)
{
    gsize offset[kMaxPlanes] = {};
    gint stride[kMaxPlanes] = {};
    for (uint32_t i = 0; i < rec.n_planes; i++) {
        offset[i] = static_cast<gsize>(rec.offset[i]);
        stride[i] = rec.stride[i];
    }
    gst_buffer_add_video_meta_full(buffer, static_cast<GstVideoFrameFlags>(rec.flags), format,
                                   rec.width, rec.height, rec.n_planes, offset, stride);
}

// Decodes a blob. False with *why set if it is not one of ours or is
// malformed.
bool decode_blob(std::span<const std::byte> blob, std::optional<VideoMetaRecord> *video,
                 FrameExtras *decoded, std::string *why)
{
    BlobHeader header;
    if (blob.size() < sizeof(header)) {
        *why = "metadata blob too short";
        return false;
    }
    std::memcpy(&header, blob.data(), sizeof(header));
    if (header.magic != kMagic) {
        *why = "metadata blob has an unknown magic (not written by bipssink?)";
        return false;
    }
    if (header.version != kVersion) {
        *why = "metadata blob version " + std::to_string(header.version) + " not supported";
        return false;
    }
    size_t pos = sizeof(header);
    for (uint16_t i = 0; i < header.count; i++) {
        RecordHeader rh;
        if (blob.size() - pos < sizeof(rh)) {
            *why = "metadata blob truncated";
            return false;
        }
        std::memcpy(&rh, blob.data() + pos, sizeof(rh));
        pos += sizeof(rh);
        if (rh.length > blob.size() - pos) {
            *why = "metadata record longer than the blob";
            return false;
        }
        if (rh.tag == kTagVideoMeta) {
            if (rh.length < sizeof(VideoMetaRecord) || video->has_value()) {
                *why = "malformed video meta record";
                return false;
            }
            VideoMetaRecord rec;
            std::memcpy(&rec, blob.data() + pos, sizeof(rec));
            *video = rec;
        }
        if (rh.tag == kTagLatency) {
            uint64_t latency;
            if (rh.length < sizeof(latency)) {
                *why = "malformed latency record";
                return false;
            }
            std::memcpy(&latency, blob.data() + pos, sizeof(latency));
            if (latency < GST_CLOCK_TIME_NONE)
                decoded->producer_latency = latency;
        }
        if (rh.tag == kTagOffsets) {
            OffsetsRecord rec;
            if (rh.length < sizeof(rec)) {
                *why = "malformed offsets record";
                return false;
            }
            std::memcpy(&rec, blob.data() + pos, sizeof(rec));
            decoded->offset = rec.offset; // any value is a valid offset
            decoded->offset_end = rec.offset_end;
        }
        pos += rh.length;
        pos = pad8(pos) <= blob.size() ? pad8(pos) : blob.size();
    }
    return true;
}

} // namespace

FrameVerdict apply_meta(GstBuffer *buffer, std::span<const std::byte> blob,
                        const GstVideoInfo *layout, FrameExtras *extras, std::string *why)
{
    const gsize size = gst_buffer_get_size(buffer);
    why->clear();

    // Decode every record first, apply afterwards: a malformed blob adds
    // nothing.
    std::optional<VideoMetaRecord> video;
    FrameExtras decoded;
    if (!blob.empty() && !decode_blob(blob, &video, &decoded, why)) {
        video.reset();
        decoded = FrameExtras{};
    }

    GstVideoFormat format = GST_VIDEO_FORMAT_UNKNOWN;
    if (video) {
        std::string problem;
        switch (check_video_meta(*video, size, layout, &format, &problem)) {
        case MetaCheck::Valid:
            break;
        case MetaCheck::Unsupported:
            video.reset(); // the frame must then hold the default layout
            *why = problem;
            break;
        case MetaCheck::Invalid:
            *why = problem;
            return FrameVerdict::Reject;
        }
    }
    if (!video && layout && size < GST_VIDEO_INFO_SIZE(layout)) {
        const std::string ignored = why->empty() ? "" : " (" + *why + ")";
        *why = "frame of " + std::to_string(size) + " bytes without a usable video meta is "
               "smaller than the " + std::to_string(GST_VIDEO_INFO_SIZE(layout)) +
               " bytes its caps describe" + ignored;
        return FrameVerdict::Reject;
    }
    if (video)
        add_video_meta(buffer, *video, format);
    GST_BUFFER_OFFSET(buffer) = decoded.offset;
    GST_BUFFER_OFFSET_END(buffer) = decoded.offset_end;
    *extras = decoded;
    return FrameVerdict::Use;
}

} // namespace gstbips
