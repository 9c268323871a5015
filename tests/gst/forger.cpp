// SPDX-License-Identifier: LGPL-2.1-or-later
// A bips producer for the element tests that writes whatever metadata a
// test asks for (forger.h).
#include "forger.h"

#include <bips/bips.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

struct _BtForger {
    std::unique_ptr<bips::Producer> producer;
};

namespace {

// The blob layout of lib/include/bips/framemeta.h, written out independently of the
// plugin's serializer: a forger does not use the real thing either.
constexpr uint32_t fourcc(char a, char b, char c, char d)
{
    return uint32_t(uint8_t(a)) | uint32_t(uint8_t(b)) << 8 | uint32_t(uint8_t(c)) << 16 |
           uint32_t(uint8_t(d)) << 24;
}

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
    char format[32];
    uint32_t flags;
    uint32_t width;
    uint32_t height;
    uint32_t n_planes;
    uint64_t offset[4];
    int32_t stride[4];
};
static_assert(std::is_trivially_copyable_v<VideoMetaRecord>);
static_assert(sizeof(VideoMetaRecord) == 96);

template <typename T>
void append(std::vector<std::byte> &out, const T &value)
{
    const auto *p = reinterpret_cast<const std::byte *>(&value);
    out.insert(out.end(), p, p + sizeof(T));
}

std::vector<std::byte> video_blob(const BtForgedVideoMeta &meta)
{
    VideoMetaRecord rec{};
    std::strncpy(rec.format, meta.format ? meta.format : "", sizeof(rec.format) - 1);
    rec.flags = meta.flags;
    rec.width = meta.width;
    rec.height = meta.height;
    rec.n_planes = meta.n_planes;
    for (int i = 0; i < 4; i++) {
        rec.offset[i] = meta.offset[i];
        rec.stride[i] = meta.stride[i];
    }
    std::vector<std::byte> out;
    append(out, BlobHeader{fourcc('B', 'M', 'T', '1'), 1, 1});
    append(out, RecordHeader{fourcc('V', 'M', 'E', 'T'), sizeof(rec)});
    append(out, rec);
    return out;
}

gboolean fail(gchar **error, const std::string &what)
{
    if (error)
        *error = g_strdup(what.c_str());
    return FALSE;
}

gboolean publish(BtForger *forger, const guint8 *data, gsize size,
                 std::span<const std::byte> meta, gchar **error)
{
    bips::Producer &p = *forger->producer;
    auto slot = p.acquire(std::chrono::seconds(20));
    if (!slot)
        return fail(error, "acquire: " + slot.error().message);
    if (size > slot->capacity) {
        p.discard(slot.value());
        return fail(error, "frame larger than a slot");
    }
    std::memcpy(slot->data, data, size);
    bips::FrameInfo info;
    info.size = size;
    if (auto r = p.publish(slot.value(), info, meta); !r) {
        p.discard(slot.value());
        return fail(error, "publish: " + r.error().message);
    }
    return TRUE;
}

} // namespace

BtForger *bt_forger_new(const gchar *channel, guint64 slot_size, const gchar *caps,
                        gchar **error)
{
    bips::ProducerOptions options;
    options.slot_count = 4;
    options.slot_size = slot_size;
    auto created = bips::Producer::create(channel, options);
    if (!created) {
        fail(error, created.error().message);
        return nullptr;
    }
    auto forger = std::make_unique<BtForger>();
    forger->producer = std::move(created.value());
    if (auto r = forger->producer->set_stream_info(caps); !r) {
        fail(error, r.error().message);
        return nullptr;
    }
    return forger.release();
}

gboolean bt_forger_wait_consumers(BtForger *forger, guint n, guint timeout_ms)
{
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (forger->producer->consumer_count() < n) {
        if (std::chrono::steady_clock::now() > end)
            return FALSE;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return TRUE;
}

gboolean bt_forger_publish(BtForger *forger, const guint8 *data, gsize size,
                           const BtForgedVideoMeta *meta, gchar **error)
{
    const std::vector<std::byte> blob = meta ? video_blob(*meta) : std::vector<std::byte>();
    return publish(forger, data, size, blob, error);
}

gboolean bt_forger_publish_blob(BtForger *forger, const guint8 *data, gsize size,
                                const guint8 *blob, gsize blob_size, gchar **error)
{
    return publish(forger, data, size,
                   std::span<const std::byte>(reinterpret_cast<const std::byte *>(blob),
                                              blob_size),
                   error);
}

gboolean bt_forger_publish_custom(BtForger *forger, const guint8 *data, gsize size,
                                  const gchar *const *names, gchar **error)
{
    bips::FrameMeta meta;
    for (int32_t i = 0; names[i]; i++)
        meta.custom.push_back(bips::MetaStructure{names[i], {{"n", i}}});
    auto blob = bips::encode_frame_meta(meta, 65536);
    if (!blob)
        return fail(error, "encode: " + blob.error().message);
    return publish(forger, data, size, *blob, error);
}

gboolean bt_forger_publish_fields(BtForger *forger, const guint8 *data, gsize size,
                                  const gchar *meta_name, const gchar *prefix, guint n_fields,
                                  const gchar *caps_text, gchar **error)
{
    bips::MetaStructure s{meta_name, {}};
    for (guint i = 0; i < n_fields; i++)
        s.fields.push_back({prefix + std::to_string(i), int32_t(i)});
    if (caps_text)
        s.fields.push_back({"caps", bips::SerializedValue{"GstCaps", caps_text}});
    bips::FrameMeta meta;
    meta.custom.push_back(std::move(s));
    auto blob = bips::encode_frame_meta(meta, forger->producer->meta_capacity());
    if (!blob)
        return fail(error, "encode: " + blob.error().message);
    return publish(forger, data, size, *blob, error);
}

void bt_forger_end_of_stream(BtForger *forger) { forger->producer->end_of_stream(); }

void bt_forger_free(BtForger *forger) { delete forger; }
