// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: a buffer's metadata as channel frame metadata, both ways.
#include "gstbipsmeta.h"
#include "gstbipsstructure.h"

#include <gst/video/video.h>

#include <algorithm>
#include <cstdint>
#include <optional>

namespace gstbips {

namespace {

constexpr guint kMaxPlanes = bips::VideoLayoutMeta::kMaxPlanes;
static_assert(GST_VIDEO_MAX_PLANES == kMaxPlanes);

// The video meta of `buffer` as a layout record; nothing if there is none
// to send.
std::optional<bips::VideoLayoutMeta> video_layout(GstBuffer *buffer)
{
    GstVideoMeta *vmeta = gst_buffer_get_video_meta(buffer);
    if (!vmeta || vmeta->n_planes == 0 || vmeta->n_planes > kMaxPlanes)
        return std::nullopt;
    const char *name = gst_video_format_to_string(vmeta->format);
    if (!name)
        return std::nullopt;
    bips::VideoLayoutMeta v;
    v.format = name;
    v.flags = vmeta->flags;
    v.width = vmeta->width;
    v.height = vmeta->height;
    v.n_planes = vmeta->n_planes;
    for (guint i = 0; i < vmeta->n_planes; i++) {
        v.offset[i] = vmeta->offset[i];
        v.stride[i] = vmeta->stride[i];
    }
    return v;
}

bips::RegionOfInterest region(const GstVideoRegionOfInterestMeta *roi, std::string *why)
{
    bips::RegionOfInterest r;
    const gchar *type = g_quark_to_string(roi->roi_type);
    r.type = type ? type : "";
    r.x = roi->x, r.y = roi->y, r.w = roi->w, r.h = roi->h;
    r.id = roi->id;
    r.parent_id = roi->parent_id;
    for (GList *l = roi->params; l; l = l->next)
        r.params.push_back(to_meta_structure(static_cast<const GstStructure *>(l->data), why));
    return r;
}

// Every region of interest and custom meta of `buffer`, in its order.
void structured_metas(GstBuffer *buffer, bips::FrameMeta *m, std::string *why)
{
    gpointer state = nullptr;
    while (GstMeta *meta = gst_buffer_iterate_meta(buffer, &state)) {
        if (meta->info->api == GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE) {
            m->regions.push_back(
                region(reinterpret_cast<GstVideoRegionOfInterestMeta *>(meta), why));
        } else if (gst_meta_info_is_custom(meta->info)) {
            const GstStructure *s =
                gst_custom_meta_get_structure(reinterpret_cast<GstCustomMeta *>(meta));
            m->custom.push_back(to_meta_structure(s, why));
        }
    }
}

} // namespace

bips::Result<std::vector<std::byte>> serialize_meta(GstBuffer *buffer, GstClockTime latency,
                                                    size_t limit, std::string *why)
{
    bips::FrameMeta m;
    m.video = video_layout(buffer);
    if (GST_CLOCK_TIME_IS_VALID(latency))
        m.producer_latency = latency;
    m.offset = GST_BUFFER_OFFSET(buffer);
    m.offset_end = GST_BUFFER_OFFSET_END(buffer);
    why->clear();
    structured_metas(buffer, &m, why);
    return bips::encode_frame_meta(m, limit);
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
MetaCheck check_video_meta(const bips::VideoLayoutMeta &rec, gsize size,
                           const GstVideoInfo *layout, GstVideoFormat *format_out,
                           std::string *why)
{
    const char *name = rec.format.c_str();
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

void add_video_meta(GstBuffer *buffer, const bips::VideoLayoutMeta &rec, GstVideoFormat format)
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

void add_regions(GstBuffer *buffer, const bips::FrameMeta &m, std::string *why)
{
    for (const bips::RegionOfInterest &r : m.regions) {
        if (!may_intern(r.type, why))
            continue;
        GstVideoRegionOfInterestMeta *roi = gst_buffer_add_video_region_of_interest_meta(
            buffer, r.type.c_str(), r.x, r.y, r.w, r.h);
        roi->id = r.id;
        roi->parent_id = r.parent_id;
        for (const bips::MetaStructure &p : r.params)
            if (GstStructure *param = to_gst_structure(p, why))
                gst_video_region_of_interest_meta_add_param(roi, param);
    }
}

void add_custom(GstBuffer *buffer, const bips::FrameMeta &m, std::string *why)
{
    for (const bips::MetaStructure &c : m.custom) {
        if (!custom_meta_info(c.name, why))
            continue;
        GstCustomMeta *meta = gst_buffer_add_custom_meta(buffer, c.name.c_str());
        if (meta)
            set_fields(gst_custom_meta_get_structure(meta), c, why);
    }
}

} // namespace

FrameVerdict apply_meta(GstBuffer *buffer, std::span<const std::byte> blob,
                        const GstVideoInfo *layout, FrameExtras *extras, std::string *why)
{
    const gsize size = gst_buffer_get_size(buffer);
    why->clear();

    // Decode every record first, apply afterwards: a malformed blob adds
    // nothing.
    bips::FrameMeta decoded;
    if (auto m = bips::decode_frame_meta(blob))
        decoded = std::move(*m);
    else
        *why = m.error().message;
    std::optional<bips::VideoLayoutMeta> &video = decoded.video;

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
    std::string left_out;
    add_regions(buffer, decoded, &left_out);
    add_custom(buffer, decoded, &left_out);
    if (!left_out.empty())
        *why += (why->empty() ? "" : "; ") + left_out;
    GST_BUFFER_OFFSET(buffer) = decoded.offset;
    GST_BUFFER_OFFSET_END(buffer) = decoded.offset_end;
    extras->producer_latency = decoded.producer_latency == bips::kNoTime
                                   ? GST_CLOCK_TIME_NONE
                                   : decoded.producer_latency;
    extras->offset = decoded.offset;
    extras->offset_end = decoded.offset_end;
    return FrameVerdict::Use;
}

} // namespace gstbips
