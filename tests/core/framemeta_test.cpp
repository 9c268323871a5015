// SPDX-License-Identifier: LGPL-2.1-or-later
// The frame-metadata codec: round trips, the version-1 wire form, limits,
// and blobs from a buggy or hostile producer (truncated, mutated, random).
#include <bips/framemeta.h>

#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace {

using bips::FrameMeta;
using bips::MetaStructure;
using bips::RegionOfInterest;

FrameMeta full_meta()
{
    FrameMeta m;
    bips::VideoLayoutMeta v;
    v.format = "NV12";
    v.width = 640;
    v.height = 480;
    v.n_planes = 2;
    v.offset = {0, 640 * 480 + 128, 0, 0};
    v.stride = {704, 704, 0, 0};
    v.flags = 3;
    m.video = v;
    m.producer_latency = 33'000'000;
    m.offset = 12;
    m.offset_end = 13;
    RegionOfInterest person{"person", 10, 20, 100, 200, 7, -1, {}};
    person.params.push_back(MetaStructure{
        "detection",
        {{"label", std::string("person")},
         {"confidence", 0.93},
         {"class-id", int32_t(1)},
         {"track", uint32_t(4)},
         {"frame", int64_t(-5)},
         {"stamp", uint64_t(1) << 60},
         {"score", 0.5f},
         {"tracked", true},
         {"rate", bips::SerializedValue{"GstFraction", "30/1"}}}});
    m.regions.push_back(person);
    m.regions.push_back(RegionOfInterest{"face", 30, 25, 40, 40, 8, 7, {}});
    m.custom.push_back(MetaStructure{"inference-info", {{"model", std::string("yolo é")}}});
    return m;
}

std::vector<std::byte> encode(const FrameMeta &m, size_t limit = 65536)
{
    auto blob = bips::encode_frame_meta(m, limit);
    EXPECT_TRUE(blob.ok()) << (blob.ok() ? "" : blob.error().message);
    return blob.ok() ? *blob : std::vector<std::byte>{};
}

TEST(FrameMeta, RoundTripsEveryKindOfRecord)
{
    const FrameMeta m = full_meta();
    auto back = bips::decode_frame_meta(encode(m));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, m);
}

TEST(FrameMeta, NothingToSendIsAnEmptyBlob)
{
    EXPECT_TRUE(encode(FrameMeta{}).empty());
    FrameMeta zero_latency;
    zero_latency.producer_latency = 0;
    EXPECT_TRUE(encode(zero_latency).empty());
    auto back = bips::decode_frame_meta({});
    ASSERT_TRUE(back.ok());
    EXPECT_TRUE(back->empty());
}

// The layout earlier releases wrote for the video meta, by hand: readers
// of this version must keep reading it.
TEST(FrameMeta, ReadsTheVersionOneVideoRecord)
{
    std::vector<std::byte> blob(8 + 8 + 96);
    auto at = [&](size_t pos, const auto &v) { std::memcpy(blob.data() + pos, &v, sizeof(v)); };
    at(0, std::array<char, 4>{'B', 'M', 'T', '1'});
    at(4, uint16_t(1));
    at(6, uint16_t(1));
    at(8, std::array<char, 4>{'V', 'M', 'E', 'T'});
    at(12, uint32_t(96));
    at(16, std::array<char, 5>{'R', 'G', 'B', 'A', 0});
    at(48, std::array<uint32_t, 4>{0, 320, 240, 1});
    at(64, std::array<uint64_t, 4>{64, 0, 0, 0});
    at(96, std::array<int32_t, 4>{1536, 0, 0, 0});
    auto m = bips::decode_frame_meta(blob);
    ASSERT_TRUE(m.ok()) << m.error().message;
    ASSERT_TRUE(m->video);
    EXPECT_EQ(m->video->format, "RGBA");
    EXPECT_EQ(m->video->width, 320u);
    EXPECT_EQ(m->video->offset[0], 64u);
    EXPECT_EQ(m->video->stride[0], 1536);
}

TEST(FrameMeta, SkipsRecordsOfUnknownTags)
{
    FrameMeta m;
    m.offset = 5;
    auto blob = encode(m);
    // Append a record of a later version and count it in the header.
    const std::array<char, 4> tag{'N', 'E', 'W', '9'};
    const uint32_t length = 3;
    blob.resize(blob.size() + 16);
    std::memcpy(blob.data() + blob.size() - 16, tag.data(), 4);
    std::memcpy(blob.data() + blob.size() - 12, &length, 4);
    const uint16_t count = 2;
    std::memcpy(blob.data() + 6, &count, 2);
    auto back = bips::decode_frame_meta(blob);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->offset, 5u);
}

TEST(FrameMeta, TooLargeForTheAreaNamesTheSizesAndTheFix)
{
    FrameMeta m;
    for (int i = 0; i < 200; i++)
        m.regions.push_back(RegionOfInterest{"car", 1, 2, 3, 4, i, -1, {}});
    auto blob = bips::encode_frame_meta(m, 1024);
    ASSERT_FALSE(blob.ok());
    EXPECT_EQ(blob.code(), bips::Errc::InvalidArgument);
    const std::string &msg = blob.error().message;
    EXPECT_NE(msg.find("200 regions of interest"), std::string::npos) << msg;
    EXPECT_NE(msg.find("holds 1024"), std::string::npos) << msg;
    EXPECT_NE(msg.find("meta-size"), std::string::npos) << msg;
    EXPECT_TRUE(bips::encode_frame_meta(m, 65536).ok());
}

TEST(FrameMeta, RefusesToWriteWhatCannotBeRead)
{
    auto refused = [](FrameMeta m, const char *what) {
        auto blob = bips::encode_frame_meta(m, 65536);
        EXPECT_FALSE(blob.ok()) << what;
        if (!blob.ok()) {
            EXPECT_EQ(blob.code(), bips::Errc::InvalidArgument) << what;
        }
    };
    FrameMeta bad_name;
    bad_name.custom.push_back(MetaStructure{"9lives", {}});
    refused(bad_name, "a structure name starting with a digit");
    FrameMeta bad_field;
    bad_field.custom.push_back(MetaStructure{"ok", {{"has space", int32_t(1)}}});
    refused(bad_field, "a field name with a space");
    FrameMeta nul;
    nul.custom.push_back(MetaStructure{"ok", {{"s", std::string("a\0b", 3)}}});
    refused(nul, "a string with a NUL");
    FrameMeta latin1;
    latin1.regions.push_back(RegionOfInterest{"caf\xe9", 0, 0, 1, 1, 0, -1, {}});
    refused(latin1, "a type that is not UTF-8");
    FrameMeta no_type;
    no_type.regions.push_back(RegionOfInterest{});
    refused(no_type, "a region without a type");
    FrameMeta planes;
    planes.video = bips::VideoLayoutMeta{"RGBA", 0, 1, 1, 5, {}, {}};
    refused(planes, "five planes");
}

TEST(FrameMeta, NamesFollowGStreamersRule)
{
    EXPECT_TRUE(bips::is_valid_meta_name("detection"));
    EXPECT_TRUE(bips::is_valid_meta_name("video/x-raw"));
    EXPECT_TRUE(bips::is_valid_meta_name("a.b:c+d_e-f"));
    EXPECT_FALSE(bips::is_valid_meta_name(""));
    EXPECT_FALSE(bips::is_valid_meta_name("-x"));
    EXPECT_FALSE(bips::is_valid_meta_name("a b"));
    EXPECT_FALSE(bips::is_valid_meta_name(std::string(256, 'a')));
}

TEST(FrameMeta, EveryTruncationIsCorruptNeverACrash)
{
    const FrameMeta full = full_meta();
    const auto blob = encode(full);
    int corrupt = 0;
    for (size_t n = 1; n < blob.size(); n++) {
        auto m = bips::decode_frame_meta(std::span(blob).first(n));
        if (m.ok()) {
            // Only the last record's padding may go: the record count
            // makes any lost record an error.
            EXPECT_EQ(*m, full) << "a blob cut to " << n << " of " << blob.size() << " bytes";
            EXPECT_GT(n + 8, blob.size());
            continue;
        }
        EXPECT_EQ(m.code(), bips::Errc::Corrupt);
        corrupt++;
    }
    EXPECT_GT(corrupt, int(blob.size()) - 9);
}

TEST(FrameMeta, HostileBlobsAreRejectedOrReadWithinBounds)
{
    // Single-byte changes anywhere, then random bytes after a valid
    // header: decoding either fails with Corrupt or returns values that
    // the checks allow. ASan/UBSan runs of this test catch any read past
    // the blob.
    const auto good = encode(full_meta());
    std::mt19937 rng(1234);
    int rejected = 0;
    for (int round = 0; round < 20000; round++) {
        auto blob = good;
        const int changes = 1 + int(rng() % 4);
        for (int c = 0; c < changes; c++)
            blob[rng() % blob.size()] = std::byte(rng());
        auto m = bips::decode_frame_meta(blob);
        if (!m.ok()) {
            EXPECT_EQ(m.code(), bips::Errc::Corrupt);
            rejected++;
            continue;
        }
        for (const auto &r : m->regions) {
            EXPECT_FALSE(r.type.empty());
            for (const auto &p : r.params)
                EXPECT_TRUE(bips::is_valid_meta_name(p.name));
        }
        if (m->video) {
            EXPECT_GE(m->video->n_planes, 1u);
            EXPECT_LE(m->video->n_planes, 4u);
        }
    }
    EXPECT_GT(rejected, 1000);
    for (int round = 0; round < 20000; round++) {
        std::vector<std::byte> blob(8 + rng() % 300);
        for (auto &b : blob)
            b = std::byte(rng());
        std::memcpy(blob.data(), good.data(), 8);
        auto m = bips::decode_frame_meta(blob);
        if (!m.ok()) {
            EXPECT_EQ(m.code(), bips::Errc::Corrupt);
        }
    }
}

TEST(FrameMeta, HugeCountsDoNotAllocateBeyondTheBlob)
{
    // A structure claiming 2^32 - 1 fields in a few bytes fails at once.
    FrameMeta m;
    m.custom.push_back(MetaStructure{"x", {}});
    auto blob = encode(m);
    const uint32_t huge = UINT32_MAX;
    // header 8, record header 8, name length 4 + "x", then the field count
    std::memcpy(blob.data() + 8 + 8 + 4 + 1, &huge, 4);
    auto back = bips::decode_frame_meta(blob);
    ASSERT_FALSE(back.ok());
    EXPECT_EQ(back.code(), bips::Errc::Corrupt);
}

TEST(FrameMeta, ForeignBlobsSayWhatIsWrong)
{
    const std::array<std::byte, 8> junk{std::byte('J'), std::byte('U'), std::byte('N'),
                                        std::byte('K')};
    auto m = bips::decode_frame_meta(junk);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("unknown magic"), std::string::npos);
    auto blob = encode(full_meta());
    const uint16_t v2 = 2;
    std::memcpy(blob.data() + 4, &v2, 2);
    m = bips::decode_frame_meta(blob);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("version 2"), std::string::npos);
}

} // namespace
