// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: per-frame metadata blob (GstVideoMeta) written by bipssink, read by bipssrc.
#include "gstbipsmeta.h"

#include <gst/video/video.h>

#include <cstdint>
#include <cstring>
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
    const uint16_t count = uint16_t(have_video) + uint16_t(have_latency);
    if (!count)
        return out;
    append(out, BlobHeader{kMagic, kVersion, count});
    if (have_video)
        append_record(out, kTagVideoMeta, video);
    if (have_latency)
        append_record(out, kTagLatency, uint64_t(latency));
    return out;
}

static bool apply_video_meta(GstBuffer *buffer, const VideoMetaRecord &rec, std::string *why)
{
    char name[sizeof(rec.format) + 1] = {};
    std::memcpy(name, rec.format, sizeof(rec.format));
    GstVideoFormat format = gst_video_format_from_string(name);
    if (format == GST_VIDEO_FORMAT_UNKNOWN) {
        *why = std::string("unknown video format '") + name + "'";
        return false;
    }
    if (rec.n_planes == 0 || rec.n_planes > kMaxPlanes || rec.width == 0 || rec.height == 0 ||
        rec.width > G_MAXINT || rec.height > G_MAXINT) {
        *why = "video meta with impossible size or plane count";
        return false;
    }
    const gsize size = gst_buffer_get_size(buffer);
    gsize offset[kMaxPlanes] = {};
    gint stride[kMaxPlanes] = {};
    for (uint32_t i = 0; i < rec.n_planes; i++) {
        if (rec.offset[i] >= size) {
            *why = "video meta plane offset beyond the frame";
            return false;
        }
        offset[i] = static_cast<gsize>(rec.offset[i]);
        stride[i] = rec.stride[i];
    }
    gst_buffer_add_video_meta_full(buffer, static_cast<GstVideoFrameFlags>(rec.flags), format,
                                   rec.width, rec.height, rec.n_planes, offset, stride);
    return true;
}

bool apply_meta(GstBuffer *buffer, std::span<const std::byte> blob, FrameExtras *extras,
                std::string *why)
{
    if (blob.empty())
        return true;
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

    // Decode every record first, apply afterwards: a malformed blob adds
    // nothing.
    size_t pos = sizeof(header);
    bool have_video = false;
    VideoMetaRecord video{};
    GstClockTime producer_latency = GST_CLOCK_TIME_NONE;
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
            if (rh.length < sizeof(video) || have_video) {
                *why = "malformed video meta record";
                return false;
            }
            std::memcpy(&video, blob.data() + pos, sizeof(video));
            have_video = true;
        }
        if (rh.tag == kTagLatency) {
            uint64_t latency;
            if (rh.length < sizeof(latency)) {
                *why = "malformed latency record";
                return false;
            }
            std::memcpy(&latency, blob.data() + pos, sizeof(latency));
            if (latency < GST_CLOCK_TIME_NONE)
                producer_latency = latency;
        }
        pos += rh.length;
        pos = pad8(pos) <= blob.size() ? pad8(pos) : blob.size();
    }
    if (have_video && !apply_video_meta(buffer, video, why))
        return false;
    extras->producer_latency = producer_latency;
    return true;
}

} // namespace gstbips
