// SPDX-License-Identifier: LGPL-2.1-or-later
// Segment files: space reservation, hostile headers, permissions, listing and clean-up.

#include "helpers.h"

#include "layout.h"
#include "ring.h"

#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <memory>

namespace {

using namespace bips;
using namespace bips_test;
using namespace std::chrono_literals;
using bips::detail::SegmentHeader;

// The numbers written just before "MiB" in a message ("needs 16 MiB",
// "16.0MiB").
std::vector<double> mib_numbers(const std::string &msg)
{
    std::vector<double> out;
    for (size_t at = msg.find("MiB"); at != std::string::npos; at = msg.find("MiB", at + 3)) {
        size_t end = at;
        while (end > 0 && msg[end - 1] == ' ')
            --end;
        size_t begin = end;
        while (begin > 0 && (std::isdigit(static_cast<unsigned char>(msg[begin - 1])) ||
                             msg[begin - 1] == '.'))
            --begin;
        if (begin < end)
            out.push_back(std::strtod(msg.substr(begin, end - begin).c_str(), nullptr));
    }
    return out;
}

// A tmpfs of 2 MiB mounted on a fresh folder, or a reason why not.
class SmallTmpfs {
public:
    SmallTmpfs()
    {
        if (geteuid() != 0) {
            reason_ = "not running as root: cannot mount a small tmpfs";
            return;
        }
        char tmpl[] = "/tmp/bips-nospace-XXXXXX";
        if (mkdtemp(tmpl) == nullptr) {
            reason_ = std::string("mkdtemp: ") + strerror(errno);
            return;
        }
        path_ = tmpl;
        if (mount("tmpfs", path_.c_str(), "tmpfs", 0, "size=2m,mode=0700") != 0) {
            reason_ = std::string("mount -t tmpfs -o size=2m failed: ") + strerror(errno);
            return;
        }
        mounted_ = true;
    }
    ~SmallTmpfs()
    {
        if (mounted_)
            umount2(path_.c_str(), MNT_DETACH);
        if (!path_.empty())
            rmdir(path_.c_str());
    }
    SmallTmpfs(const SmallTmpfs &) = delete;
    SmallTmpfs &operator=(const SmallTmpfs &) = delete;

    bool mounted() const { return mounted_; }
    const std::string &reason() const { return reason_; }
    const std::string &path() const { return path_; }

private:
    std::string path_;
    std::string reason_;
    bool mounted_ = false;
};

// ---------------------------------------------------------------- space

// A channel that does not fit the shm folder fails at creation with
// NoSpace, a message giving both sizes in MiB, and no file left behind
// (instead of a SIGBUS on first write).
TEST(Segment, TooSmallFolderGivesNoSpaceWithBothSizes)
{
    SmallTmpfs fs;
    if (!fs.mounted())
        GTEST_SKIP() << fs.reason();
    ShmDirOverride env(fs.path());

    ProducerOptions o = small_options(4, 4u << 20); // 4 slots of 4 MiB
    auto planned = detail::plan_geometry(o);
    ASSERT_TRUE(IsOk(planned));
    const double need_mib = double(planned->total_size) / (1 << 20);

    auto r = Producer::create(unique_name("nospace"), o);
    ASSERT_TRUE(HasError(r, Errc::NoSpace));
    const std::string &msg = r.error().message;
    auto numbers = mib_numbers(msg);
    auto mentions = [&](double mib) {
        return std::any_of(numbers.begin(), numbers.end(),
                           [&](double n) { return std::fabs(n - mib) <= 1.0; });
    };
    EXPECT_TRUE(mentions(need_mib)) << "the needed " << need_mib << " MiB: " << msg;
    EXPECT_TRUE(mentions(2.0)) << "the 2 MiB free: " << msg;
    EXPECT_TRUE(folder_entries(fs.path()).empty())
        << "left behind: " << ::testing::PrintToString(folder_entries(fs.path()));

    // A channel of ~1 MiB fits, and its memory is reserved at creation: the
    // free space drops by its size, so a second one no longer fits (without
    // the reservation it would be created and SIGBUS on first write).
    ProducerOptions half = small_options(4, 256u << 10);
    auto half_geometry = detail::plan_geometry(half);
    ASSERT_TRUE(IsOk(half_geometry));
    {
        CREATE_PRODUCER(fits, unique_name("fits"), half);
        EXPECT_EQ(folder_entries(fs.path()).size(), 1u);
        struct statvfs sv;
        ASSERT_EQ(statvfs(fs.path().c_str(), &sv), 0);
        EXPECT_LE(uint64_t(sv.f_bavail) * sv.f_frsize, (2u << 20) - half_geometry->total_size)
            << "the segment's memory is not reserved";
        EXPECT_TRUE(HasError(Producer::create(unique_name("second"), half), Errc::NoSpace));
        EXPECT_EQ(folder_entries(fs.path()).size(), 1u);
    }
    EXPECT_TRUE(folder_entries(fs.path()).empty());
}

// ---------------------------------------------------------------- hostile headers

// Maps the first page of a channel's file read-write, as another writer.
class HeaderWriter {
public:
    explicit HeaderWriter(const std::string &name)
    {
        fd_ = open(segment_path(name).c_str(), O_RDWR | O_CLOEXEC);
        if (fd_ < 0)
            return;
        void *p = mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
        if (p != MAP_FAILED)
            mem_ = static_cast<std::byte *>(p);
    }
    ~HeaderWriter()
    {
        if (mem_)
            munmap(mem_, kLen);
        if (fd_ >= 0)
            close(fd_);
    }
    HeaderWriter(const HeaderWriter &) = delete;
    HeaderWriter &operator=(const HeaderWriter &) = delete;

    bool ok() const { return mem_ != nullptr; }
    int fd() const { return fd_; }

    // Overwrites the field at `offset` (offsetof(SegmentHeader, ...)).
    template <typename T>
    void put(size_t offset, T value)
    {
        std::memcpy(mem_ + offset, &value, sizeof value);
    }
    template <typename T>
    T get(size_t offset) const
    {
        T v;
        std::memcpy(&v, mem_ + offset, sizeof v);
        return v;
    }

private:
    static constexpr size_t kLen = 4096;
    int fd_ = -1;
    std::byte *mem_ = nullptr;
};

// Creates a live channel, lets `corrupt` change its header through a
// second mapping, and checks that attach and inspect refuse it with
// `code` and a message instead of crashing or reading out of bounds.
void expect_refused(const char *what, void (*corrupt)(HeaderWriter &), Errc code)
{
    SCOPED_TRACE(what);
    const std::string name = unique_name("hostile");
    CREATE_PRODUCER(producer, name, small_options(4, 8192));
    {
        HeaderWriter w(name);
        ASSERT_TRUE(w.ok()) << strerror(errno);
        corrupt(w);
    }
    EXPECT_TRUE(HasError(Consumer::attach(name, {}, 2s), code));
    EXPECT_TRUE(HasError(inspect_channel(name), code));
}

#define FIELD(f) offsetof(SegmentHeader, f)

TEST(Segment, WrongMagicIsCorrupt)
{
    expect_refused("magic", [](HeaderWriter &w) { w.put<uint64_t>(FIELD(magic), 0x4b4e554a4b4e554aull); },
                   Errc::Corrupt);
}

TEST(Segment, OtherLayoutVersionIsIncompatible)
{
    expect_refused("layout_version",
                   [](HeaderWriter &w) { w.put<uint32_t>(FIELD(layout_version), 99); },
                   Errc::Incompatible);
}

TEST(Segment, BadSlotCountIsCorrupt)
{
    expect_refused("slot_count huge", [](HeaderWriter &w) { w.put<uint32_t>(FIELD(slot_count), 1u << 30); },
                   Errc::Corrupt);
    expect_refused("slot_count 0", [](HeaderWriter &w) { w.put<uint32_t>(FIELD(slot_count), 0); },
                   Errc::Corrupt);
    expect_refused("slot_count + 1", [](HeaderWriter &w) {
        w.put<uint32_t>(FIELD(slot_count), w.get<uint32_t>(FIELD(slot_count)) + 1);
    }, Errc::Corrupt);
}

TEST(Segment, BadOffsetsAreCorrupt)
{
    expect_refused("desc_offset past the file", [](HeaderWriter &w) {
        w.put<uint64_t>(FIELD(desc_offset), w.get<uint64_t>(FIELD(total_size)) + 4096);
    }, Errc::Corrupt);
    expect_refused("consumer table over the info ring", [](HeaderWriter &w) {
        w.put<uint64_t>(FIELD(consumer_offset), w.get<uint64_t>(FIELD(info_offset)));
    }, Errc::Corrupt);
    expect_refused("unaligned pub ring", [](HeaderWriter &w) {
        w.put<uint64_t>(FIELD(pubring_offset), w.get<uint64_t>(FIELD(pubring_offset)) + 4);
    }, Errc::Corrupt);
    expect_refused("total_size past the file", [](HeaderWriter &w) {
        w.put<uint64_t>(FIELD(total_size), w.get<uint64_t>(FIELD(total_size)) * 2);
    }, Errc::Corrupt);
    expect_refused("slot_stride huge", [](HeaderWriter &w) {
        w.put<uint64_t>(FIELD(slot_stride), 1ull << 50);
    }, Errc::Corrupt);
}

// A file shorter than its header says (truncated behind the producer's
// back) is Corrupt for a consumer, not a SIGBUS.
TEST(Segment, TruncatedFileIsCorrupt)
{
    ShmDir dir; // the producer lives in a child that is killed afterwards
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("short");
    Pipe up;
    Child owner([&] {
        auto p = Producer::create(name, small_options(4, 65536));
        if (!p.ok())
            return child_fail(10, "create", p);
        up.send('C');
        std::this_thread::sleep_for(3 * kLong);
        return 0;
    });
    ASSERT_TRUE(owner.started());
    ASSERT_TRUE(up.expect('C'));
    {
        HeaderWriter w(name);
        ASSERT_TRUE(w.ok());
        const auto control = w.get<uint64_t>(FIELD(control_size));
        ASSERT_EQ(ftruncate(w.fd(), off_t(control + 4096)), 0) << strerror(errno);
    }
    EXPECT_TRUE(HasError(Consumer::attach(name, {}, 2s), Errc::Corrupt));
    EXPECT_TRUE(HasError(inspect_channel(name), Errc::Corrupt));
    owner.kill(SIGKILL);
    EXPECT_TRUE(was_killed(owner.wait()));
}

// A file that is not a segment at all (too short for a header) is Corrupt.
TEST(Segment, GarbageFileIsCorrupt)
{
    ShmDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("garbage");
    std::ofstream(segment_path(name)) << "not a bips segment";
    EXPECT_TRUE(HasError(inspect_channel(name), Errc::Corrupt));
    auto listed = list_channels();
    ASSERT_TRUE(IsOk(listed)) << "one bad file must not fail the listing";
    EXPECT_TRUE(std::any_of(listed->problems.begin(), listed->problems.end(),
                            [&](const std::string &p) { return p.rfind(name, 0) == 0; }))
        << "problems: " << ::testing::PrintToString(listed->problems);
}

#undef FIELD

// ---------------------------------------------------------------- permissions

// Restores the process umask when the scope ends.
class UmaskScope {
public:
    explicit UmaskScope(mode_t mask) : old_(umask(mask)) {}
    ~UmaskScope() { umask(old_); }
    UmaskScope(const UmaskScope &) = delete;
    UmaskScope &operator=(const UmaskScope &) = delete;

private:
    mode_t old_;
};

mode_t file_mode(const std::string &path)
{
    struct stat st;
    if (stat(path.c_str(), &st) != 0)
        return 0;
    return st.st_mode & 07777;
}

// Segments are owner-only by default, even with a permissive umask.
TEST(Segment, DefaultModeIsOwnerOnly)
{
    UmaskScope mask(0);
    const std::string name = unique_name("mode");
    {
        CREATE_PRODUCER(producer, name, small_options());
        EXPECT_EQ(file_mode(segment_path(name)), 0600u);
        EXPECT_EQ(producer->info().mode, 0600u);
    }
    struct stat st;
    EXPECT_NE(stat(segment_path(name).c_str(), &st), 0) << "the producer removes its segment";
}

// A requested mode is applied exactly, whatever the umask.
TEST(Segment, RequestedModeIsHonouredDespiteUmask)
{
    for (mode_t mask : {mode_t(022), mode_t(077)}) {
        UmaskScope scope(mask);
        const std::string name = unique_name("mode");
        ProducerOptions o = small_options();
        o.mode = 0644;
        CREATE_PRODUCER(producer, name, o);
        EXPECT_EQ(file_mode(segment_path(name)), 0644u) << "umask " << mask;
        auto seen = inspect_channel(name);
        ASSERT_TRUE(IsOk(seen));
        EXPECT_EQ(seen->mode, 0644u);
    }
}

// Another user cannot attach to or inspect an owner-only channel: a
// PermissionDenied error that says so (not a crash or a generic error).
TEST(Segment, OtherUserGetsPermissionDenied)
{
    if (geteuid() != 0)
        GTEST_SKIP() << "needs root to switch to another user";
    const std::string name = unique_name("perm");
    Pipe up, down;
    Child other([&] {
        if (!down.expect('C'))
            return 10;
        if (setgid(65534) != 0 || setuid(65534) != 0)
            return 77;
        auto c = Consumer::attach(name, {}, 2s);
        if (c.ok() || c.code() != Errc::PermissionDenied || c.error().message.empty())
            return child_fail(11, "attach as nobody", c);
        auto i = inspect_channel(name);
        if (i.ok() || i.code() != Errc::PermissionDenied)
            return child_fail(12, "inspect as nobody", i);
        return 0;
    });
    ASSERT_TRUE(other.started());
    CREATE_PRODUCER(producer, name, small_options());
    down.send('C');
    auto end = other.wait();
    if (end.exited && end.status == 77)
        GTEST_SKIP() << "cannot switch to uid 65534";
    EXPECT_TRUE(exited_ok(end)) << end;
}

// ---------------------------------------------------------------- inspect, list, clean

// inspect_channel and list_channels report live and dead channels;
// clean_channels removes the dead producer's channel and nothing else.
TEST(Segment, CleanRemovesOnlyDeadChannels)
{
    ShmDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string dead = unique_name("dead");
    const std::string live = unique_name("live");
    Pipe up;
    Child doomed([&] {
        ProducerOptions o = small_options(3, 8192);
        auto p = Producer::create(dead, o);
        if (!p.ok())
            return child_fail(10, "create", p);
        if (!publish_pattern(**p, 0, 10).ok())
            return 11;
        up.send('C');
        std::this_thread::sleep_for(3 * kLong);
        return 12;
    });
    ASSERT_TRUE(doomed.started());
    ASSERT_TRUE(up.expect('C'));
    doomed.kill(SIGKILL);
    EXPECT_TRUE(was_killed(doomed.wait()));

    ProducerOptions o = small_options(5, 4096);
    CREATE_PRODUCER(producer, live, o);
    EXPECT_TRUE(HasError(inspect_channel(unique_name("absent")), Errc::NotFound));

    auto d = inspect_channel(dead);
    ASSERT_TRUE(IsOk(d));
    EXPECT_EQ(d->name, dead);
    EXPECT_FALSE(d->producer_alive);
    EXPECT_FALSE(d->producer_closed);
    EXPECT_EQ(d->producer_pid, doomed.pid());
    EXPECT_EQ(d->slot_count, 3u);
    EXPECT_EQ(d->slot_size, 8192u);
    EXPECT_EQ(d->published, 1u);
    EXPECT_EQ(d->layout_version, detail::kLayoutVersion);

    auto l = inspect_channel(live);
    ASSERT_TRUE(IsOk(l));
    EXPECT_TRUE(l->producer_alive);
    EXPECT_EQ(l->producer_pid, getpid());
    EXPECT_EQ(l->slot_count, 5u);
    EXPECT_EQ(l->max_consumers, o.max_consumers);
    EXPECT_GE(l->segment_bytes, 5u * 4096u);
    EXPECT_EQ(l->epoch, producer->epoch());

    auto listed = list_channels();
    ASSERT_TRUE(IsOk(listed));
    EXPECT_TRUE(listed->problems.empty()) << ::testing::PrintToString(listed->problems);
    std::vector<std::string> names;
    for (const auto &c : listed->channels)
        names.push_back(c.name);
    std::sort(names.begin(), names.end());
    std::vector<std::string> both{dead, live};
    std::sort(both.begin(), both.end());
    EXPECT_EQ(names, both);

    auto removed = clean_channels();
    ASSERT_TRUE(IsOk(removed));
    EXPECT_EQ(*removed, std::vector<std::string>{dead});
    EXPECT_TRUE(HasError(inspect_channel(dead), Errc::NotFound));
    auto still = inspect_channel(live);
    ASSERT_TRUE(IsOk(still));
    EXPECT_TRUE(still->producer_alive);
    EXPECT_EQ(dir.files().size(), 1u) << ::testing::PrintToString(dir.files());

    // Nothing dead is left: a second clean removes nothing.
    auto again = clean_channels();
    ASSERT_TRUE(IsOk(again));
    EXPECT_TRUE(again->empty());
}

// ---------------------------------------------------------------- producer API checks

// Producer::create refuses bad geometry with InvalidArgument.
TEST(Segment, CreateRejectsBadOptions)
{
    ShmDir dir;
    ASSERT_TRUE(dir.ok());
    ProducerOptions o = small_options();
    o.slot_size = 0;
    EXPECT_TRUE(HasError(Producer::create(unique_name("opt"), o), Errc::InvalidArgument));
    o = small_options(1);
    EXPECT_TRUE(HasError(Producer::create(unique_name("opt"), o), Errc::InvalidArgument));
    o = small_options();
    o.max_consumers = 0;
    EXPECT_TRUE(HasError(Producer::create(unique_name("opt"), o), Errc::InvalidArgument));
    EXPECT_TRUE(dir.files().empty());
}

// publish() refuses what is not an acquired slot or does not fit it.
TEST(Segment, PublishRefusesBadSlotsAndSizes)
{
    ShmDir dir;
    ASSERT_TRUE(dir.ok());
    ProducerOptions o = small_options(4, 4096);
    CREATE_PRODUCER(producer, unique_name("pub"), o);
    auto slot = producer->acquire(kLong);
    ASSERT_TRUE(IsOk(slot));
    EXPECT_GE(slot->capacity, 4096u);
    EXPECT_EQ(slot->data, producer->slot_data(slot->index));

    FrameInfo info;
    info.size = slot->capacity + 1;
    EXPECT_TRUE(HasError(producer->publish(*slot, info), Errc::InvalidArgument)) << "too large";
    std::vector<std::byte> meta(o.meta_capacity + 1);
    info.size = 10;
    EXPECT_TRUE(HasError(producer->publish(*slot, info, meta), Errc::InvalidArgument))
        << "meta too large";
    EXPECT_TRUE(IsOk(producer->publish(*slot, info))) << "the slot is still ours";
    EXPECT_TRUE(HasError(producer->publish(*slot, info), Errc::InvalidArgument))
        << "a second publish of one handle";
    WriteSlot bogus;
    EXPECT_TRUE(HasError(producer->publish(bogus, info), Errc::InvalidArgument));
    producer->discard(bogus); // ignored
    EXPECT_EQ(producer->published(), 1u);
}

} // namespace
