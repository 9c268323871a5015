// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the per-frame metadata codec (BMT1); the format is described in
// <bips/framemeta.h>.
#include <bips/framemeta.h>

#include <cstring>
#include <type_traits>

namespace bips {

namespace {

constexpr uint32_t fourcc(char a, char b, char c, char d)
{
    return uint32_t(uint8_t(a)) | uint32_t(uint8_t(b)) << 8 | uint32_t(uint8_t(c)) << 16 |
           uint32_t(uint8_t(d)) << 24;
}

constexpr uint32_t kMagic = fourcc('B', 'M', 'T', '1');
constexpr uint32_t kTagVideo = fourcc('V', 'M', 'E', 'T');
constexpr uint32_t kTagLatency = fourcc('P', 'L', 'A', 'T');
constexpr uint32_t kTagOffsets = fourcc('O', 'F', 'F', 'S');
constexpr uint32_t kTagRegion = fourcc('R', 'O', 'I', '1');
constexpr uint32_t kTagCustom = fourcc('C', 'U', 'S', 'T');
constexpr size_t kFormatBytes = 32; // VMET's format name, NUL padded
constexpr size_t kVideoRecordBytes = kFormatBytes + 4 * 4 + 8 * 4 + 4 * 4;
static_assert(kVideoRecordBytes == 96);

constexpr size_t pad8(size_t n) { return (n + 7) & ~size_t(7); }

// ---------------------------------------------------------------- checks

bool valid_utf8(std::string_view s) noexcept
{
    size_t i = 0;
    while (i < s.size()) {
        const auto c = uint8_t(s[i]);
        if (c == 0)
            return false;
        size_t extra = 0;
        uint32_t cp = 0;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (s.size() - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            const auto cc = uint8_t(s[i + k]);
            if ((cc & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (cc & 0x3f);
        }
        // No overlong forms, no surrogates, nothing past U+10FFFF.
        static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
        if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

Error invalid(std::string what) { return Error{Errc::InvalidArgument, std::move(what)}; }

Result<void> check_name(std::string_view name, std::string_view what)
{
    if (is_valid_meta_name(name))
        return {};
    return invalid(std::string(what) + " name '" + std::string(name.substr(0, 64)) +
                   "' is not valid metadata: use a letter, then letters, digits and /-_.:+ "
                   "(at most 255 characters)");
}

Result<void> check_text(std::string_view text, std::string_view what)
{
    if (valid_utf8(text))
        return {};
    return invalid(std::string(what) + " is not UTF-8 text without NUL characters");
}

// ---------------------------------------------------------------- writing

// Appends the wire form of values to a blob. Owns nothing but its buffer.
class Writer {
public:
    std::vector<std::byte> out;

    template <typename T>
    void put(const T &value)
    {
        static_assert(std::is_trivially_copyable_v<T>);
        const auto *p = reinterpret_cast<const std::byte *>(&value);
        out.insert(out.end(), p, p + sizeof(T));
    }
    void put_string(std::string_view s)
    {
        put(uint32_t(s.size()));
        const auto *p = reinterpret_cast<const std::byte *>(s.data());
        out.insert(out.end(), p, p + s.size());
    }
    // Starts a record; returns where its length goes (set by end_record).
    size_t begin_record(uint32_t tag)
    {
        put(tag);
        put(uint32_t(0));
        return out.size();
    }
    void end_record(size_t start)
    {
        const uint32_t length = uint32_t(out.size() - start);
        std::memcpy(out.data() + start - sizeof(length), &length, sizeof(length));
        out.resize(pad8(out.size()));
    }
};

Result<void> write_value(Writer &w, const MetaValue &value, std::string_view field)
{
    w.put(uint8_t(value.index() + 1));
    return std::visit(
        [&](const auto &v) -> Result<void> {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, bool>) {
                w.put(uint8_t(v ? 1 : 0));
            } else if constexpr (std::is_same_v<T, std::string>) {
                if (auto ok = check_text(v, "the value of field " + std::string(field)); !ok)
                    return ok;
                w.put_string(v);
            } else if constexpr (std::is_same_v<T, SerializedValue>) {
                if (auto ok = check_name(v.type_name, "the type of field " + std::string(field));
                    !ok)
                    return ok;
                if (auto ok = check_text(v.text, "the value of field " + std::string(field)); !ok)
                    return ok;
                w.put_string(v.type_name);
                w.put_string(v.text);
            } else {
                w.put(v);
            }
            return {};
        },
        value);
}

Result<void> write_structure(Writer &w, const MetaStructure &s)
{
    if (auto ok = check_name(s.name, "a structure"); !ok)
        return ok;
    w.put_string(s.name);
    w.put(uint32_t(s.fields.size()));
    for (const MetaField &f : s.fields) {
        if (auto ok = check_name(f.name, "a field of " + s.name); !ok)
            return ok;
        w.put_string(f.name);
        if (auto ok = write_value(w, f.value, s.name + "." + f.name); !ok)
            return ok;
    }
    return {};
}

Result<void> write_video(Writer &w, const VideoLayoutMeta &v)
{
    if (v.n_planes == 0 || v.n_planes > VideoLayoutMeta::kMaxPlanes)
        return invalid("a video layout with " + std::to_string(v.n_planes) +
                       " planes (1 to 4)");
    if (v.format.empty() || v.format.size() >= kFormatBytes || !is_valid_meta_name(v.format))
        return invalid("video format name '" + v.format.substr(0, 64) + "' is not valid");
    const size_t start = w.begin_record(kTagVideo);
    char name[kFormatBytes] = {};
    std::memcpy(name, v.format.data(), v.format.size());
    w.put(name);
    for (uint32_t x : {v.flags, v.width, v.height, v.n_planes})
        w.put(x);
    w.put(v.offset);
    w.put(v.stride);
    w.end_record(start);
    return {};
}

Result<void> write_region(Writer &w, const RegionOfInterest &r)
{
    if (r.type.empty() || r.type.size() > 255)
        return invalid("a region of interest's type must have 1 to 255 characters");
    if (auto ok = check_text(r.type, "a region of interest's type"); !ok)
        return ok;
    const size_t start = w.begin_record(kTagRegion);
    for (uint32_t x : {r.x, r.y, r.w, r.h})
        w.put(x);
    w.put(r.id);
    w.put(r.parent_id);
    w.put_string(r.type);
    w.put(uint32_t(r.params.size()));
    for (const MetaStructure &p : r.params)
        if (auto ok = write_structure(w, p); !ok)
            return ok;
    w.end_record(start);
    return {};
}

std::string contents(const FrameMeta &m)
{
    std::string s = m.video ? "a video layout, " : "";
    s += std::to_string(m.regions.size()) + " regions of interest, " +
         std::to_string(m.custom.size()) + " custom metas";
    return s;
}

// ---------------------------------------------------------------- reading

// Reads values off a blob; every read is checked against what is left.
// Views the blob, which the caller keeps alive.
class Reader {
public:
    explicit Reader(std::span<const std::byte> b) : b_(b) {}

    size_t left() const { return b_.size() - pos_; }
    size_t pos() const { return pos_; }

    template <typename T>
    bool get(T *value)
    {
        static_assert(std::is_trivially_copyable_v<T>);
        if (left() < sizeof(T))
            return false;
        std::memcpy(value, b_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return true;
    }
    bool get_string(std::string *s)
    {
        uint32_t n;
        if (!get(&n) || n > left())
            return false;
        s->assign(reinterpret_cast<const char *>(b_.data() + pos_), n);
        pos_ += n;
        return true;
    }
    // A reader of the next `n` bytes only; this one moves past them.
    bool sub(size_t n, Reader *out)
    {
        if (n > left())
            return false;
        *out = Reader(b_.subspan(pos_, n));
        pos_ += n;
        return true;
    }
    void skip_padding() { pos_ = std::min(pad8(pos_), b_.size()); }

private:
    std::span<const std::byte> b_;
    size_t pos_ = 0;
};

Error corrupt(std::string what) { return Error{Errc::Corrupt, "frame metadata: " + what}; }

template <typename T>
bool read_as(Reader &r, MetaValue *value)
{
    T v;
    if (!r.get(&v))
        return false;
    *value = v;
    return true;
}

// False, with *why set, if the value is malformed.
bool read_value(Reader &r, MetaValue *value, std::string *why)
{
    uint8_t type;
    if (!r.get(&type)) {
        *why = "a field's type is cut off";
        return false;
    }
    bool ok = false;
    switch (type) {
    case 1: {
        uint8_t b = 0;
        ok = r.get(&b) && b <= 1;
        *value = b == 1;
        break;
    }
    case 2: ok = read_as<int32_t>(r, value); break;
    case 3: ok = read_as<uint32_t>(r, value); break;
    case 4: ok = read_as<int64_t>(r, value); break;
    case 5: ok = read_as<uint64_t>(r, value); break;
    case 6: ok = read_as<float>(r, value); break;
    case 7: ok = read_as<double>(r, value); break;
    case 8: {
        std::string s;
        ok = r.get_string(&s) && valid_utf8(s);
        *value = std::move(s);
        break;
    }
    case 9: {
        SerializedValue s;
        ok = r.get_string(&s.type_name) && is_valid_meta_name(s.type_name) &&
             r.get_string(&s.text) && valid_utf8(s.text);
        *value = std::move(s);
        break;
    }
    default:
        *why = "a field of unknown type " + std::to_string(type);
        return false;
    }
    if (!ok)
        *why = "a field value of type " + std::to_string(type) + " is malformed";
    return ok;
}

bool read_structure(Reader &r, MetaStructure *s, std::string *why)
{
    uint32_t n;
    if (!r.get_string(&s->name) || !is_valid_meta_name(s->name) || !r.get(&n)) {
        *why = "a structure's name is malformed";
        return false;
    }
    // Each field takes at least 6 bytes, so `n` cannot ask for more than
    // the blob holds before the loop runs out of bytes.
    for (uint32_t i = 0; i < n; i++) {
        MetaField f;
        if (!r.get_string(&f.name) || !is_valid_meta_name(f.name)) {
            *why = "a field name in structure " + s->name + " is malformed";
            return false;
        }
        if (!read_value(r, &f.value, why)) {
            *why += " (" + s->name + "." + f.name + ")";
            return false;
        }
        s->fields.push_back(std::move(f));
    }
    return true;
}

bool read_video(Reader &r, FrameMeta *m, std::string *why)
{
    VideoLayoutMeta v;
    char name[kFormatBytes];
    bool ok = r.get(&name) && r.get(&v.flags) && r.get(&v.width) && r.get(&v.height) &&
              r.get(&v.n_planes) && r.get(&v.offset) && r.get(&v.stride);
    if (!ok || m->video) {
        *why = ok ? "two video layouts" : "a video layout record is cut off";
        return false;
    }
    v.format.assign(name, strnlen(name, sizeof(name)));
    if (v.format.size() == sizeof(name) || !is_valid_meta_name(v.format)) {
        *why = "a video layout's format name is malformed";
        return false;
    }
    if (v.n_planes == 0 || v.n_planes > VideoLayoutMeta::kMaxPlanes) {
        *why = "a video layout with " + std::to_string(v.n_planes) + " planes";
        return false;
    }
    m->video = std::move(v);
    return true;
}

bool read_region(Reader &r, FrameMeta *m, std::string *why)
{
    RegionOfInterest roi;
    uint32_t n;
    if (!r.get(&roi.x) || !r.get(&roi.y) || !r.get(&roi.w) || !r.get(&roi.h) ||
        !r.get(&roi.id) || !r.get(&roi.parent_id) || !r.get_string(&roi.type) ||
        roi.type.empty() || roi.type.size() > 255 || !valid_utf8(roi.type) || !r.get(&n)) {
        *why = "a region of interest record is malformed";
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        MetaStructure p;
        if (!read_structure(r, &p, why))
            return false;
        roi.params.push_back(std::move(p));
    }
    m->regions.push_back(std::move(roi));
    return true;
}

bool read_record(uint32_t tag, Reader &r, FrameMeta *m, std::string *why)
{
    switch (tag) {
    case kTagVideo:
        return read_video(r, m, why);
    case kTagLatency:
        if (!r.get(&m->producer_latency))
            *why = "a latency record is cut off";
        return why->empty();
    case kTagOffsets:
        if (!r.get(&m->offset) || !r.get(&m->offset_end))
            *why = "an offsets record is cut off";
        return why->empty();
    case kTagRegion:
        return read_region(r, m, why);
    case kTagCustom: {
        MetaStructure s;
        if (!read_structure(r, &s, why))
            return false;
        m->custom.push_back(std::move(s));
        return true;
    }
    default:
        return true; // a later version's record: skipped
    }
}

} // namespace

bool is_valid_meta_name(std::string_view name) noexcept
{
    if (name.empty() || name.size() > 255)
        return false;
    const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    if (!letter(name[0]))
        return false;
    for (char c : name)
        if (!letter(c) && !(c >= '0' && c <= '9') && !std::strchr("/-_.:+", c))
            return false;
    return true;
}

Result<std::vector<std::byte>> encode_frame_meta(const FrameMeta &meta, size_t limit)
{
    Writer w;
    if (meta.empty())
        return std::move(w.out);
    const size_t records = size_t(bool(meta.video)) + 2 + meta.regions.size() + meta.custom.size();
    if (records > UINT16_MAX)
        return invalid("frame metadata with " + contents(meta) + " has more than 65535 records");
    w.put(kMagic);
    w.put(kFrameMetaVersion);
    w.put(uint16_t(0)); // the record count, set below
    uint16_t count = 0;
    if (meta.video) {
        if (auto ok = write_video(w, *meta.video); !ok)
            return ok.error();
        count++;
    }
    if (meta.producer_latency != kNoTime && meta.producer_latency != 0) {
        const size_t start = w.begin_record(kTagLatency);
        w.put(meta.producer_latency);
        w.end_record(start);
        count++;
    }
    if (meta.offset != kNoOffset || meta.offset_end != kNoOffset) {
        const size_t start = w.begin_record(kTagOffsets);
        w.put(meta.offset);
        w.put(meta.offset_end);
        w.end_record(start);
        count++;
    }
    for (const RegionOfInterest &r : meta.regions) {
        if (auto ok = write_region(w, r); !ok)
            return ok.error();
        count++;
    }
    for (const MetaStructure &s : meta.custom) {
        const size_t start = w.begin_record(kTagCustom);
        if (auto ok = write_structure(w, s); !ok)
            return ok.error();
        w.end_record(start);
        count++;
    }
    if (w.out.size() > limit)
        return invalid("frame metadata (" + contents(meta) + ") takes " +
                       std::to_string(w.out.size()) + " bytes; the channel's metadata area "
                       "holds " + std::to_string(limit) + ": raise it (bipssink meta-size, "
                       "ProducerOptions::meta_capacity, up to 65536) or send fewer metas");
    std::memcpy(w.out.data() + 6, &count, sizeof(count));
    return std::move(w.out);
}

Result<FrameMeta> decode_frame_meta(std::span<const std::byte> blob)
{
    FrameMeta meta;
    if (blob.empty())
        return meta;
    Reader r(blob);
    uint32_t magic;
    uint16_t version, count;
    if (!r.get(&magic) || !r.get(&version) || !r.get(&count))
        return corrupt(std::to_string(blob.size()) + " bytes are too few for a header");
    if (magic != kMagic)
        return corrupt("unknown magic (not written by bips?)");
    if (version != kFrameMetaVersion)
        return corrupt("format version " + std::to_string(version) + " is not supported (" +
                       std::to_string(kFrameMetaVersion) + " is)");
    for (uint16_t i = 0; i < count; i++) {
        uint32_t tag, length;
        Reader record(std::span<const std::byte>{});
        if (!r.get(&tag) || !r.get(&length) || !r.sub(length, &record))
            return corrupt("record " + std::to_string(i) + " runs past the end of the " +
                           std::to_string(blob.size()) + "-byte blob");
        std::string why;
        if (!read_record(tag, record, &meta, &why))
            return corrupt(why);
        r.skip_padding();
    }
    return meta;
}

} // namespace bips
