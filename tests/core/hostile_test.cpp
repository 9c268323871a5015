// SPDX-License-Identifier: LGPL-2.1-or-later
// Hostile peers, in forked processes: a consumer that attacks everything its
// own process can reach (the descriptors and mappings of the channel's
// memory it was given, its own consumer state, its channel socket) while
// honest consumers check every frame; and forked children that inherit a
// consumer's or a producer's descriptors and outlive it. Honest peers must
// not notice the attacks, and liveness must not depend on what a forked
// child keeps.

#include "helpers.h"

// The layout of a consumer state is public knowledge (layout.h). The hostile
// consumer uses it only to name the words of its own state it corrupts; it
// finds that state, like everything else it attacks, in /proc/self.
#include "layout.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace {

// Whether madvise() reaches the kernel. qemu-user answers it itself: every
// advice but MADV_DONTNEED returns 0 without a host call (qemu 7.2,
// linux-user target_madvise), so MADV_REMOVE is neither done nor refused
// there. The kernel rejects an unknown advice with EINVAL; qemu returns 0.
bool madvise_reaches_kernel()
{
    static const bool yes = [] {
        const size_t page = size_t(sysconf(_SC_PAGESIZE));
        void *p = mmap(nullptr, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return true;
        const bool refused = madvise(p, page, 12345) != 0;
        munmap(p, page);
        return refused;
    }();
    return yes;
}

using namespace bips;
using namespace bips_test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int64_t elapsed_ms(Clock::time_point from, Clock::time_point to)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

int64_t elapsed_us(Clock::time_point from, Clock::time_point to)
{
    return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
}

std::string errno_text(int err)
{
    if (err == 0)
        return "allowed";
    const char *name = strerrorname_np(err);
    return name ? name : "errno " + std::to_string(err);
}

// errno of a failed system call (result < 0), 0 when it succeeded. Call it
// directly around the system call, so nothing in between changes errno.
int err_of(long result) { return result < 0 ? errno : 0; }

// A pipe whose ends a child closes separately (a process that must see end
// of file may not keep the write end), with waits bounded in time.
class RawPipe {
public:
    RawPipe()
    {
        int fds[2];
        if (pipe(fds) == 0) {
            r_ = fds[0];
            w_ = fds[1];
        }
    }
    ~RawPipe()
    {
        close_read();
        close_write();
    }
    RawPipe(const RawPipe &) = delete;
    RawPipe &operator=(const RawPipe &) = delete;

    bool ok() const { return r_ >= 0 && w_ >= 0; }
    void close_read()
    {
        if (r_ >= 0)
            close(r_);
        r_ = -1;
    }
    void close_write()
    {
        if (w_ >= 0)
            close(w_);
        w_ = -1;
    }
    bool send(char c) const { return write(w_, &c, 1) == 1; }

    // Waits up to `bound` for one byte; false on time-out or end of file.
    bool wait_byte(char &c, std::chrono::milliseconds bound) const
    {
        pollfd p{r_, POLLIN, 0};
        int n;
        do
            n = poll(&p, 1, int(bound.count()));
        while (n < 0 && errno == EINTR);
        return n == 1 && read(r_, &c, 1) == 1;
    }

    // Blocks until a byte arrives or every write end is closed.
    void wait_closed() const
    {
        char c;
        while (read(r_, &c, 1) < 0 && errno == EINTR) {
        }
    }

private:
    int r_ = -1;
    int w_ = -1;
};

// A process that is not our child (a grandchild), watched and killed
// through a pidfd so that a recycled PID is never signalled.
class Watched {
public:
    explicit Watched(pid_t pid) : fd_(int(syscall(SYS_pidfd_open, pid, 0))) {}
    ~Watched()
    {
        kill();
        if (fd_ >= 0)
            close(fd_);
    }
    Watched(const Watched &) = delete;
    Watched &operator=(const Watched &) = delete;

    bool ok() const { return fd_ >= 0; }
    bool alive() const
    {
        pollfd p{fd_, POLLIN, 0};
        return fd_ >= 0 && poll(&p, 1, 0) == 0;
    }
    void kill() const
    {
        if (fd_ >= 0)
            syscall(SYS_pidfd_send_signal, fd_, SIGKILL, nullptr, 0);
    }

private:
    int fd_ = -1;
};

// In a process with a channel open: forks a child that keeps every
// inherited descriptor, mapping and Frame until `hold` reaches end of file
// (the test closes its write end, or dies). Returns the child's PID.
pid_t fork_sleeper(const RawPipe &hold)
{
    const pid_t pid = fork();
    if (pid == 0) {
        hold.wait_closed();
        _exit(0);
    }
    return pid;
}

// ---------------------------------------------------------------- frames

// Frames that check themselves: the pattern of their sequence number, and
// as metadata the sequence number and the FNV-1a checksum of the bytes.
constexpr uint64_t kSlotSize = 4096;
uint64_t frame_size(uint64_t seq) { return 16 + (seq * 7919) % (kSlotSize - 16); }

struct FrameStamp {
    uint64_t seq;
    uint64_t sum;
};

Result<void> publish_stamped(Producer &p, uint64_t seq, std::chrono::nanoseconds timeout)
{
    auto slot = p.acquire(timeout);
    if (!slot.ok())
        return slot.error();
    const uint64_t size = frame_size(seq);
    fill_pattern(slot->data, size, seq);
    const FrameStamp stamp{seq, checksum(slot->data, size)};
    FrameInfo info;
    info.size = size;
    info.pts = seq;
    return p.publish(*slot, info, std::as_bytes(std::span(&stamp, 1)));
}

// Why a frame fails its own checks, or "" when it is intact.
std::string frame_fault(const Frame &f)
{
    const std::string at = "frame pts " + std::to_string(f.info().pts);
    if (f.meta().size() != sizeof(FrameStamp))
        return at + ": " + std::to_string(f.meta().size()) + " bytes of metadata";
    FrameStamp stamp;
    std::memcpy(&stamp, f.meta().data(), sizeof stamp);
    if (stamp.seq != f.info().pts)
        return at + ": metadata names sequence " + std::to_string(stamp.seq);
    if (f.size() != frame_size(stamp.seq))
        return at + ": " + std::to_string(f.size()) + " bytes";
    if (checksum(f.data(), f.size()) != stamp.sum)
        return at + ": checksum differs";
    if (const uint64_t bad = check_pattern(f.data(), f.size(), stamp.seq); bad != f.size())
        return at + ": differs at byte " + std::to_string(bad);
    return {};
}

// ---------------------------------------------------------------- honest peers

// What an honest consumer saw, sent back through a pipe.
struct ReaderReport {
    uint64_t frames = 0;   // frames next() returned
    uint64_t bad = 0;      // frames that failed their checks
    uint64_t disorder = 0; // frames whose sequence was not above the previous
    uint64_t missing = 0;  // sequences between two frames it got
    uint64_t drops = 0;    // ProducerGone before the end of the stream
    uint64_t first = UINT64_MAX;
    uint64_t last = 0;
    char fault[200] = {};  // the first fault or drop
};

// Child body: reads until end of stream, checking every frame.
int honest_reader(const std::string &name, Policy policy, const Pipe &report)
{
    ConsumerOptions o;
    o.policy = policy;
    auto attached = Consumer::attach(name, o, kLong);
    if (!attached.ok())
        return child_fail(10, "attach", attached);
    auto c = std::move(attached).value();
    ReaderReport rep;
    auto note = [&rep](const std::string &s) {
        if (!rep.fault[0])
            std::snprintf(rep.fault, sizeof rep.fault, "%s", s.c_str());
    };
    int64_t prev = -1;
    for (;;) {
        auto f = c->next(2 * kLong);
        if (!f.ok()) {
            if (f.code() == Errc::EndOfStream)
                break;
            if (f.code() != Errc::ProducerGone)
                return child_fail(11, "next", f);
            ++rep.drops;
            note("dropped: " + f.error().message);
            if (auto r = c->reattach(kLong); !r.ok())
                return child_fail(12, "reattach", r);
            continue;
        }
        if (std::string fault = frame_fault(*f); !fault.empty()) {
            ++rep.bad;
            note(fault);
        }
        const int64_t seq = int64_t(f->info().pts);
        if (seq <= prev)
            ++rep.disorder;
        else if (prev >= 0)
            rep.missing += uint64_t(seq - prev - 1);
        prev = std::max(prev, seq);
        rep.first = std::min(rep.first, uint64_t(seq));
        rep.last = std::max(rep.last, uint64_t(seq));
        ++rep.frames;
    }
    return report.send(&rep, sizeof rep) ? 0 : 13;
}

// What the paced producer measured.
struct ProducerReport {
    uint64_t published = 0;
    int64_t max_gap_us = 0;   // largest time between two publishes
    uint64_t max_gap_seq = 0; // the frame published after it
    uint64_t long_gaps = 0;   // gaps above half of max_wait
    // The first long gaps: when each ended (steady clock, shared by all
    // processes) and how long it was.
    int64_t gap_end_us[32] = {};
    int64_t gap_us[32] = {};
};

int64_t steady_us(Clock::time_point t)
{
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// Child body: creates the channel, waits for the two honest consumers, then
// publishes a frame every `period` until told 'S', ends the stream, reports
// and closes the channel on 'X'.
int paced_producer(const std::string &name, const ProducerOptions &opts,
                   std::chrono::milliseconds period, const Pipe &up, const RawPipe &control,
                   const Pipe &report)
{
    auto created = Producer::create(name, opts);
    if (!created.ok())
        return child_fail(10, "create", created);
    auto p = std::move(created).value();
    up.send('C');
    if (!wait_until([&] { return p->consumer_count() >= 2; }))
        return child_fail(11, "the honest consumers did not attach");
    up.send('P');
    const int64_t long_gap_us =
        std::chrono::duration_cast<std::chrono::microseconds>(opts.max_wait).count() / 2;
    ProducerReport rep;
    auto tick = Clock::now();
    Clock::time_point last{};
    for (uint64_t seq = 0;; ++seq) {
        char c = 0;
        if (control.wait_byte(c, 0ms) && c == 'S')
            break;
        std::this_thread::sleep_until(tick);
        tick = std::max(tick + period, Clock::now()); // no burst after a stall
        if (auto r = publish_stamped(*p, seq, kLong); !r.ok())
            return child_fail(12, "publish " + std::to_string(seq), r);
        const auto now = Clock::now();
        if (last != Clock::time_point{}) {
            const int64_t gap =
                std::chrono::duration_cast<std::chrono::microseconds>(now - last).count();
            if (gap > rep.max_gap_us) {
                rep.max_gap_us = gap;
                rep.max_gap_seq = seq;
            }
            if (gap > long_gap_us && rep.long_gaps < std::size(rep.gap_us)) {
                rep.gap_end_us[rep.long_gaps] = steady_us(now);
                rep.gap_us[rep.long_gaps] = gap;
            }
            if (gap > long_gap_us)
                ++rep.long_gaps;
        }
        last = now;
        ++rep.published;
    }
    p->end_of_stream();
    if (!report.send(&rep, sizeof rep))
        return 13;
    char c = 0;
    if (!control.wait_byte(c, 3 * kLong) || c != 'X')
        return child_fail(14, "no 'X' from the test");
    return 0;
}

// ---------------------------------------------------------------- the hostile consumer

// What the hostile process finds in its own /proc/self.
enum class Kind { Segment, Doorbell, State, Other };

const char *kind_name(Kind k)
{
    switch (k) {
    case Kind::Segment:
        return "segment";
    case Kind::Doorbell:
        return "doorbell";
    case Kind::State:
        return "own state";
    case Kind::Other:
        break;
    }
    return "other bips memfd";
}

constexpr std::string_view kMemfdPrefix = "/memfd:bips-";

// A memfd's link target or maps path, "/memfd:bips-<label> (deleted)".
Kind classify(std::string path, const std::string &channel)
{
    path.erase(0, std::string_view("/memfd:").size());
    if (auto sp = path.find(" (deleted)"); sp != std::string::npos)
        path.resize(sp);
    if (path == "bips-" + channel)
        return Kind::Segment;
    if (path == "bips-" + channel + "-doorbell")
        return Kind::Doorbell;
    if (path == "bips-" + channel + "-consumer")
        return Kind::State;
    return Kind::Other;
}

struct BipsFd {
    int fd;
    Kind kind;
};

// Descriptors whose /proc/self/fd link names a bips memfd.
std::vector<BipsFd> bips_descriptors(const std::string &channel)
{
    std::vector<BipsFd> out;
    for (const auto &e : folder_entries("/proc/self/fd")) {
        char buf[512];
        const ssize_t n = readlink(("/proc/self/fd/" + e).c_str(), buf, sizeof buf);
        if (n <= 0)
            continue;
        const std::string target(buf, size_t(n));
        if (target.rfind(kMemfdPrefix, 0) == 0)
            out.push_back({std::atoi(e.c_str()), classify(target, channel)});
    }
    return out;
}

// Descriptors whose /proc/self/fd link names a socket.
std::vector<int> socket_descriptors()
{
    std::vector<int> out;
    for (const auto &e : folder_entries("/proc/self/fd")) {
        char buf[128];
        const ssize_t n = readlink(("/proc/self/fd/" + e).c_str(), buf, sizeof buf);
        if (n > 0 && std::string_view(buf, size_t(n)).rfind("socket:", 0) == 0)
            out.push_back(std::atoi(e.c_str()));
    }
    return out;
}

struct BipsMap {
    std::byte *start;
    size_t len;
    bool writable;
    Kind kind;
};

// Mappings of /proc/self/maps whose path names a bips memfd.
std::vector<BipsMap> bips_mappings(const std::string &channel)
{
    std::vector<BipsMap> out;
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        // start-end perms offset dev inode path
        std::istringstream in(line);
        std::string range, perms, offset, dev, inode, path;
        in >> range >> perms >> offset >> dev >> inode;
        std::getline(in, path);
        path.erase(0, std::min(path.size(), path.find_first_not_of(' ')));
        if (path.rfind(kMemfdPrefix, 0) != 0)
            continue;
        const auto dash = range.find('-');
        const uintptr_t start = std::stoull(range.substr(0, dash), nullptr, 16);
        const uintptr_t end = std::stoull(range.substr(dash + 1), nullptr, 16);
        out.push_back({reinterpret_cast<std::byte *>(start), size_t(end - start),
                       perms.size() > 1 && perms[1] == 'w', classify(path, channel)});
    }
    return out;
}

// One kind of attack on one kind of object and how the kernel answered.
struct AttackRecord {
    char name[72];
    uint32_t tries;
    uint32_t refused;
    int32_t first_errno; // errno of the first refusal
    uint32_t must_refuse; // allowing it would let a consumer change others' memory
};

// The hostile's phases, in order. Each lasts kPhaseTime; at its end the
// hostile reads what is there and, if the producer dropped it, counts the
// drop for the phase and attaches again.
enum Phase {
    kDescriptorAttacks,
    kRandomBytes,
    kAllHeld,
    kLosslessCursorZero,
    kGarbageWords,
    kCursorHuge,
    kWaitingFlips,
    kCursorFlicker,
    kSocketGarbage,
    kPhaseCount
};
constexpr const char *kPhaseNames[kPhaseCount] = {
    "descriptor and mapping attacks",
    "random bytes into writable mappings",
    "all held bits set",
    "lossless policy with cursor 0",
    "garbage state, policy and header words",
    "lossless policy with cursor 2^63",
    "waiting flag flipping",
    "cursor flickering between 0 and 2^63",
    "garbage on the channel socket",
};
constexpr auto kPhaseTime = 1000ms;

constexpr uint32_t kMaxAttacks = 64;

struct HostileReport {
    uint32_t attaches = 0;
    uint32_t drops = 0;
    uint32_t phase_drops[kPhaseCount] = {};
    uint32_t attack_count = 0;
    AttackRecord attacks[kMaxAttacks] = {};
    char drop_reason[kPhaseCount][160] = {}; // the first drop of each phase
    int64_t phase_start_us[kPhaseCount] = {};  // steady clock
};

class Hostile {
public:
    explicit Hostile(std::string name) : name_(std::move(name)) {}

    // Child body. Exit status 0 when it ran every phase and reported.
    int run(const Pipe &report)
    {
        ConsumerOptions o;
        o.policy = Policy::Latest; // only the corruption may hold the producer back
        auto attached = Consumer::attach(name_, o, kLong);
        if (!attached.ok())
            return child_fail(30, "hostile attach", attached);
        consumer_ = std::move(attached).value();
        rep_.attaches = 1;
        for (int phase = 0; phase < kPhaseCount; ++phase) {
            rep_.phase_start_us[phase] = steady_us(Clock::now());
            const auto until = Clock::now() + kPhaseTime;
            switch (Phase(phase)) {
            case kDescriptorAttacks:
                for (const BipsFd &d : bips_descriptors(name_))
                    attack_descriptor(d);
                for (const BipsMap &m : bips_mappings(name_))
                    attack_mapping(m);
                std::this_thread::sleep_until(until);
                break;
            case kRandomBytes:
                scribble(until);
                break;
            case kSocketGarbage:
                for (int fd : socket_descriptors()) {
                    std::byte junk[512];
                    fill_random(junk, sizeof junk);
                    (void)!send(fd, junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
                }
                std::this_thread::sleep_until(until);
                break;
            default:
                corrupt_state(Phase(phase), until);
                break;
            }
            // Each phase tests its own corruption only: an honest latest
            // consumer's words again (a lossless policy left behind would
            // hold the producer back in the next phase, rightly).
            restore_state();
            if (!settle(phase))
                return 31;
        }
        consumer_.reset();
        return report.send(&rep_, sizeof rep_) ? 0 : 32;
    }

private:
    void record(const std::string &what, Kind kind, int err, bool must_refuse)
    {
        const std::string name = what + " (" + kind_name(kind) + ")";
        AttackRecord *r = nullptr;
        for (uint32_t i = 0; i < rep_.attack_count && !r; ++i)
            if (name == rep_.attacks[i].name)
                r = &rep_.attacks[i];
        if (!r) {
            if (rep_.attack_count == kMaxAttacks)
                return;
            r = &rep_.attacks[rep_.attack_count++];
            std::snprintf(r->name, sizeof r->name, "%s", name.c_str());
        }
        ++r->tries;
        if (err != 0) {
            if (r->refused++ == 0)
                r->first_errno = err;
        }
        r->must_refuse |= must_refuse ? 1u : 0u;
    }

    void fill_random(void *p, size_t len)
    {
        auto *b = static_cast<std::byte *>(p);
        for (size_t off = 0; off < len; off += 8) {
            rng_ ^= rng_ << 13;
            rng_ ^= rng_ >> 7;
            rng_ ^= rng_ << 17;
            std::memcpy(b + off, &rng_, std::min<size_t>(8, len - off));
        }
    }

    int write_garbage(int fd)
    {
        std::byte junk[64];
        fill_random(junk, sizeof junk);
        return err_of(pwrite(fd, junk, sizeof junk, 0));
    }

    // Maps `fd` shared and writable; a mapping it gets stays (the random
    // phase writes into it).
    int map_writable(int fd, size_t len)
    {
        void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            return errno;
        return 0;
    }

    int write_proc_mem(const std::byte *at)
    {
        const int mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
        if (mem < 0)
            return errno;
        std::byte junk[8];
        fill_random(junk, sizeof junk);
        const int err = err_of(pwrite(mem, junk, sizeof junk, off_t(reinterpret_cast<uintptr_t>(at))));
        close(mem);
        return err;
    }

    // Everything a descriptor of a bips memfd might allow. Resizing any of
    // them could SIGBUS a peer; writing the segment would forge frames.
    void attack_descriptor(const BipsFd &d)
    {
        struct stat st{};
        if (fstat(d.fd, &st) != 0)
            return;
        const off_t size = st.st_size;
        const off_t page = off_t(page_size());
        const bool seg = d.kind == Kind::Segment;
        const Kind k = d.kind;
        constexpr int kPunch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

        record("ftruncate to grow", k, err_of(ftruncate(d.fd, size + page)), true);
        record("ftruncate to 0", k, err_of(ftruncate(d.fd, 0)), true);
        record("fallocate to grow", k, err_of(fallocate(d.fd, 0, size, page)), true);
        record("fallocate punch hole", k, err_of(fallocate(d.fd, kPunch, 0, size)), seg);
        record("pwrite", k, write_garbage(d.fd), seg);
        record("mmap shared writable", k, map_writable(d.fd, size_t(size)), seg);
        record("add seal F_SEAL_WRITE", k, err_of(fcntl(d.fd, F_ADD_SEALS, F_SEAL_WRITE)), true);
        record("add seal F_SEAL_FUTURE_WRITE", k,
               err_of(fcntl(d.fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE)), true);

        // The same memfd opened again through /proc/self/fd, read-write.
        const std::string proc = "/proc/self/fd/" + std::to_string(d.fd);
        const int trunc = open(proc.c_str(), O_RDWR | O_TRUNC | O_CLOEXEC);
        record("open O_RDWR|O_TRUNC via /proc/self/fd", k, trunc < 0 ? errno : 0, true);
        if (trunc >= 0)
            close(trunc);
        const int rw = open(proc.c_str(), O_RDWR | O_CLOEXEC);
        record("reopen O_RDWR via /proc/self/fd", k, rw < 0 ? errno : 0, false);
        if (rw < 0)
            return;
        record("pwrite via the reopened file", k, write_garbage(rw), seg);
        record("ftruncate to grow via the reopened file", k, err_of(ftruncate(rw, size + page)),
               true);
        record("ftruncate to 0 via the reopened file", k, err_of(ftruncate(rw, 0)), true);
        record("fallocate to grow via the reopened file", k, err_of(fallocate(rw, 0, size, page)),
               true);
        record("fallocate punch hole via the reopened file", k,
               err_of(fallocate(rw, kPunch, 0, size)), seg);
        record("mmap shared writable via the reopened file", k, map_writable(rw, size_t(size)),
               seg);
        close(rw);
    }

    // Making a read-only mapping writable, or writing or freeing its pages
    // anyway.
    void attack_mapping(const BipsMap &m)
    {
        const bool ro = !m.writable;
        if (ro)
            record("mprotect read-write", m.kind,
                   err_of(mprotect(m.start, m.len, PROT_READ | PROT_WRITE)), true);
        record(ro ? "write via /proc/self/mem into a read-only mapping"
                  : "write via /proc/self/mem into a writable mapping",
               m.kind, write_proc_mem(m.start), ro);
        if (madvise_reaches_kernel()) // else a no-op that returns 0 (qemu-user)
            record(ro ? "madvise MADV_REMOVE of a read-only mapping"
                      : "madvise MADV_REMOVE of a writable mapping",
                   m.kind, err_of(madvise(m.start, m.len, MADV_REMOVE)), ro);
    }

    // Random bytes into every bips mapping it can write, over and over.
    // Mappings an earlier attack made writable are included.
    void scribble(Clock::time_point until)
    {
        const auto maps = bips_mappings(name_);
        while (Clock::now() < until) {
            for (const BipsMap &m : maps)
                if (m.writable)
                    fill_random(m.start, m.len);
            std::this_thread::sleep_for(1ms);
        }
    }

    // Structured corruption of every consumer state it maps (its current
    // one and, after a reattach, its earlier ones).
    void corrupt_state(Phase phase, Clock::time_point until)
    {
        using namespace bips::detail;
        std::vector<BipsMap> states;
        for (const BipsMap &m : bips_mappings(name_))
            if (m.kind == Kind::State && m.writable && m.len >= sizeof(ConsumerShared))
                states.push_back(m);
        for (uint64_t round = 0; Clock::now() < until; ++round) {
            for (const BipsMap &m : states) {
                auto *s = reinterpret_cast<ConsumerShared *>(m.start);
                auto *held = reinterpret_cast<AtomicU64 *>(m.start + sizeof(ConsumerShared));
                const size_t words = (m.len - sizeof(ConsumerShared)) / 8;
                switch (phase) {
                case kAllHeld:
                    for (size_t w = 0; w < words; ++w)
                        held[w].store(~0ull);
                    break;
                case kLosslessCursorZero:
                    s->state.store(kConsumerActive);
                    s->policy.store(uint32_t(Policy::Lossless));
                    s->cursor.store(0);
                    break;
                case kGarbageWords:
                    s->magic = 0x6b6e756a6b6e756aull;
                    s->bitmap_words = 0xffffffffu;
                    s->pid = -1;
                    s->state.store(0xdeadbeefu + uint32_t(round));
                    s->policy.store(0x7fffffffu - uint32_t(round));
                    s->received.store(~0ull);
                    s->skipped.store(~0ull);
                    break;
                case kCursorHuge:
                    s->state.store(kConsumerActive);
                    s->policy.store(uint32_t(Policy::Lossless));
                    s->cursor.store(1ull << 63);
                    break;
                case kWaitingFlips:
                    for (int i = 0; i < 1000; ++i)
                        s->waiting.store(uint32_t(i & 1));
                    break;
                case kCursorFlicker:
                    s->state.store(kConsumerActive);
                    s->policy.store(uint32_t(Policy::Lossless));
                    for (int i = 0; i < 1000; ++i)
                        s->cursor.store(i & 1 ? 1ull << 63 : 0);
                    break;
                default:
                    break;
                }
            }
            std::this_thread::sleep_for(phase == kWaitingFlips || phase == kCursorFlicker ? 50us
                                                                                           : 1ms);
        }
    }

    void restore_state()
    {
        using namespace bips::detail;
        for (const BipsMap &m : bips_mappings(name_)) {
            if (m.kind != Kind::State || !m.writable || m.len < sizeof(ConsumerShared))
                continue;
            auto *s = reinterpret_cast<ConsumerShared *>(m.start);
            auto *held = reinterpret_cast<AtomicU64 *>(m.start + sizeof(ConsumerShared));
            for (size_t w = 0; w < (m.len - sizeof(ConsumerShared)) / 8; ++w)
                held[w].store(0);
            s->waiting.store(0);
            s->policy.store(uint32_t(Policy::Latest));
            s->state.store(kConsumerActive);
        }
    }

    // Reads whatever is there (releasing each frame at once) until nothing
    // is; a ProducerGone means the producer dropped us: count it and attach
    // again.
    bool settle(int phase)
    {
        for (int i = 0; i < 100000; ++i) {
            auto f = consumer_->next(0ns);
            if (f.ok())
                continue;
            if (f.code() == Errc::Timeout)
                return true;
            if (f.code() != Errc::ProducerGone) {
                child_fail(0, std::string("hostile next after ") + kPhaseNames[phase], f);
                return false;
            }
            ++rep_.drops;
            if (rep_.phase_drops[phase]++ == 0)
                std::snprintf(rep_.drop_reason[phase], sizeof rep_.drop_reason[phase], "%s",
                              f.error().message.c_str());
            if (auto r = consumer_->reattach(kLong); !r.ok()) {
                child_fail(0, "hostile reattach", r);
                return false;
            }
            ++rep_.attaches;
            return true;
        }
        return true;
    }

    std::string name_;
    std::unique_ptr<Consumer> consumer_;
    HostileReport rep_;
    uint64_t rng_ = 0x9e3779b97f4a7c15ull ^ uint64_t(getpid());
};

// A producer process publishes a frame every 2 ms (max_wait 300 ms) to an
// honest lossless and an honest latest consumer, which check every frame,
// while a hostile consumer process attacks for several seconds. The
// kernel must refuse every attack that would change others' memory; the
// producer drops the hostile consumer when it holds it back and keeps
// publishing; the honest consumers see only intact frames, in order, and
// the lossless one every frame; nobody is killed by a signal; and a fresh
// consumer can still attach and read.
TEST(Hostile, HostileConsumerCannotHurtOthers)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("hostile");
    constexpr auto kMaxWait = 300ms;
    constexpr auto kPeriod = 2ms;
    ProducerOptions opts = small_options(16, kSlotSize);
    opts.max_consumers = 8;
    opts.meta_capacity = sizeof(FrameStamp);
    opts.max_wait = kMaxWait;

    Pipe producer_up, producer_report, lossless_report, latest_report, hostile_go,
        hostile_report;
    RawPipe control;
    ASSERT_TRUE(control.ok());
    Child producer([&] {
        return paced_producer(name, opts, kPeriod, producer_up, control, producer_report);
    });
    Child lossless([&] { return honest_reader(name, Policy::Lossless, lossless_report); });
    Child latest([&] { return honest_reader(name, Policy::Latest, latest_report); });
    Child hostile([&] {
        if (!hostile_go.expect('G', 3 * kLong))
            return 40;
        return Hostile(name).run(hostile_report);
    });
    ASSERT_TRUE(producer.started() && lossless.started() && latest.started() &&
                hostile.started());
    control.close_read();

    ASSERT_TRUE(producer_up.expect('C')) << "the producer did not start";
    ASSERT_TRUE(producer_up.expect('P')) << "the honest consumers did not attach";
    std::this_thread::sleep_for(200ms); // some undisturbed frames first
    hostile_go.send('G');

    // Every child is reaped and every report collected before anything is
    // checked, so that a failure shows how each process ended.
    const ChildEnd hostile_end = hostile.wait(60s);
    HostileReport hrep;
    const bool have_hrep = hostile_report.receive(&hrep, sizeof hrep, 1s);

    // A fresh consumer attaches after all this and reads intact frames, in
    // order, without a gap.
    constexpr int kFresh = 20;
    int fresh_ok = 0;
    std::string fresh_error;
    {
        auto attached = Consumer::attach(name, {}, kLong);
        if (!attached.ok())
            fresh_error = "attach: " + attached.error().message;
        int64_t prev = -1;
        for (int i = 0; i < kFresh && fresh_error.empty(); ++i) {
            auto f = (*attached)->next(kLong);
            if (!f.ok()) {
                fresh_error = "frame " + std::to_string(i) + ": " + f.error().message;
                break;
            }
            const int64_t pts = int64_t(f->info().pts);
            fresh_error = frame_fault(*f);
            if (fresh_error.empty() && prev >= 0 && pts != prev + 1)
                fresh_error = "frame pts " + std::to_string(pts) + " after " + std::to_string(prev);
            fresh_ok += fresh_error.empty() ? 1 : 0;
            prev = pts;
        }
    }

    control.send('S');
    ProducerReport prep;
    const bool have_prep = producer_report.receive(&prep, sizeof prep);
    const ChildEnd lossless_end = lossless.wait(60s);
    const ChildEnd latest_end = latest.wait(60s);
    ReaderReport lrep, trep;
    const bool have_lrep = lossless_report.receive(&lrep, sizeof lrep, 1s);
    const bool have_trep = latest_report.receive(&trep, sizeof trep, 1s);
    control.send('X');
    const ChildEnd producer_end = producer.wait();

    // Nobody was killed by a signal: no SIGBUS, SIGSEGV or abort anywhere.
    EXPECT_TRUE(exited_ok(producer_end)) << "producer: " << producer_end;
    EXPECT_TRUE(exited_ok(lossless_end)) << "lossless: " << lossless_end;
    EXPECT_TRUE(exited_ok(latest_end)) << "latest: " << latest_end;
    EXPECT_TRUE(exited_ok(hostile_end)) << "hostile: " << hostile_end;
    EXPECT_EQ(fresh_error, "") << "the fresh consumer after the attacks";
    ASSERT_TRUE(have_hrep && have_prep && have_lrep && have_trep)
        << "reports received: hostile " << have_hrep << ", producer " << have_prep
        << ", lossless " << have_lrep << ", latest " << have_trep;

    std::cout << "hostile: max publish gap " << prep.max_gap_us / 1000 << " ms (max_wait "
              << kMaxWait.count() << " ms; " << prep.long_gaps << " gaps over "
              << kMaxWait.count() / 2 << " ms), published " << prep.published
              << "; honest lossless " << lrep.frames - lrep.bad << "/" << prep.published
              << " verified (bad " << lrep.bad << ", missing " << lrep.missing << ", drops "
              << lrep.drops << "); honest latest " << trep.frames - trep.bad << "/"
              << trep.frames << " verified (skipped " << trep.missing << ", drops "
              << trep.drops << "); fresh consumer " << fresh_ok << "/" << kFresh
              << " verified\n"
              << "hostile: attached " << hrep.attaches << " times, dropped " << hrep.drops
              << " times\n";
    for (int i = 0; i < kPhaseCount; ++i)
        std::cout << "hostile:   phase '" << kPhaseNames[i] << "': dropped "
                  << hrep.phase_drops[i] << (hrep.phase_drops[i] ? " (" : "")
                  << hrep.drop_reason[i] << (hrep.phase_drops[i] ? ")" : "") << "\n";
    for (uint32_t i = 0; i < hrep.attack_count; ++i) {
        const AttackRecord &a = hrep.attacks[i];
        std::cout << "hostile:   " << std::left << std::setw(9)
                  << (a.refused == a.tries ? errno_text(a.first_errno)
                      : a.refused == 0     ? std::string("allowed")
                                           : "partly " + errno_text(a.first_errno))
                  << " " << a.name << (a.must_refuse ? "" : "  [harmless to others]") << "\n";
    }
    for (uint64_t i = 0; i < std::min<uint64_t>(prep.long_gaps, std::size(prep.gap_us)); ++i) {
        // The phase it belongs to is the one running at its middle (its
        // last publish may precede the phase by a period).
        const int64_t start = prep.gap_end_us[i] - prep.gap_us[i];
        const int64_t middle = start + prep.gap_us[i] / 2;
        int phase = -1;
        for (int k = 0; k < kPhaseCount; ++k)
            if (hrep.phase_start_us[k] != 0 && hrep.phase_start_us[k] <= middle)
                phase = k;
        std::cout << "hostile:   publish gap of " << prep.gap_us[i] / 1000 << " ms "
                  << (phase < 0 ? std::string("before the hostile started")
                                : "in phase '" + std::string(kPhaseNames[phase]) + "' (from " +
                                      std::to_string((start - hrep.phase_start_us[phase]) / 1000) +
                                      " ms into it)")
                  << "\n";
    }
    std::cout << std::flush;

    // The kernel refused everything that would change others' memory.
    EXPECT_GT(hrep.attack_count, 20u) << "the hostile found too few descriptors and mappings";
    for (uint32_t i = 0; i < hrep.attack_count; ++i) {
        const AttackRecord &a = hrep.attacks[i];
        if (a.must_refuse) {
            EXPECT_EQ(a.refused, a.tries) << "the kernel allowed: " << a.name;
        }
    }

    // The honest consumers saw only intact frames, in order; the lossless
    // one every frame, from the first to the last.
    EXPECT_EQ(lrep.bad, 0u) << lrep.fault;
    EXPECT_EQ(trep.bad, 0u) << trep.fault;
    EXPECT_EQ(lrep.disorder, 0u);
    EXPECT_EQ(trep.disorder, 0u);
    EXPECT_EQ(lrep.drops, 0u) << lrep.fault;
    EXPECT_EQ(trep.drops, 0u) << trep.fault;
    EXPECT_EQ(lrep.missing, 0u);
    EXPECT_EQ(lrep.frames, prep.published);
    EXPECT_EQ(lrep.first, 0u);
    EXPECT_EQ(lrep.last + 1, prep.published);
    EXPECT_GE(trep.frames, 1u);
    EXPECT_EQ(trep.last + 1, prep.published) << "the latest reader ends with the last frame";
    EXPECT_EQ(fresh_ok, kFresh);

    // The producer stalled at most about max_wait at a time (loose bound:
    // these machines are noisy).
    EXPECT_LT(prep.max_gap_us, std::chrono::microseconds(kMaxWait + 2s).count());

    // Only the hostile consumer lost its place, and only for holding the
    // producer back (or talking garbage on its socket): each drop was
    // followed by a reattach, and the corruptions that hold nothing back
    // cost it nothing.
    EXPECT_EQ(hrep.attaches, hrep.drops + 1);
    EXPECT_GE(hrep.phase_drops[kAllHeld], 1u) << "holding every slot must get it dropped";
    EXPECT_GE(hrep.phase_drops[kLosslessCursorZero], 1u)
        << "a lossless cursor stuck at 0 must get it dropped";
    EXPECT_GE(hrep.phase_drops[kSocketGarbage], 1u) << "garbage on the socket must get it dropped";
    EXPECT_EQ(hrep.phase_drops[kGarbageWords], 0u);
    EXPECT_EQ(hrep.phase_drops[kCursorHuge], 0u);
    EXPECT_EQ(hrep.phase_drops[kWaitingFlips], 0u);

    if (!madvise_reaches_kernel())
        GTEST_SKIP() << "qemu-user limitation: madvise() never reaches the kernel (qemu returns 0 "
                        "for MADV_REMOVE without doing it), so the MADV_REMOVE attacks were not "
                        "made; every other check above ran and passed";
}

// A lossless consumer holding two frames forks a child that keeps every
// inherited descriptor, mapping and Frame, then is SIGKILLed. The producer
// (max_wait 0: only liveness can free it) must get its slots back although
// the child lives on.
TEST(Hostile, ForkedConsumerChildDoesNotKeepItAlive)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("forkcons");
    Pipe up;
    RawPipe hold;
    ASSERT_TRUE(hold.ok());
    Child consumer([&] {
        hold.close_write();
        ConsumerOptions o = keeps_frames();
        auto attached = Consumer::attach(name, o, kLong);
        if (!attached.ok())
            return child_fail(10, "attach", attached);
        auto c = std::move(attached).value();
        std::vector<Frame> held;
        for (int i = 0; i < 2; ++i) {
            auto f = c->next(kLong);
            if (!f.ok())
                return child_fail(11, "next", f);
            held.push_back(std::move(f).value());
        }
        const pid_t sleeper = fork_sleeper(hold);
        if (sleeper < 0)
            return child_fail(12, "fork");
        up.send('H');
        up.send(&sleeper, sizeof sleeper);
        std::this_thread::sleep_for(3 * kLong); // SIGKILLed here
        return 20;
    });
    ASSERT_TRUE(consumer.started());
    hold.close_read();

    ProducerOptions opts = small_options(4, 4096);
    opts.max_wait = 0ns;
    CREATE_PRODUCER(producer, name, opts);
    ASSERT_TRUE(wait_until([&] { return producer->consumer_count() == 1; }));
    for (uint64_t i = 0; i < 4; ++i)
        ASSERT_TRUE(IsOk(publish_pattern(*producer, i, 64)));
    ASSERT_TRUE(up.expect('H')) << "the consumer did not take 2 frames";
    pid_t sleeper_pid = -1;
    ASSERT_TRUE(up.receive(&sleeper_pid, sizeof sleeper_pid));
    Watched sleeper(sleeper_pid);
    ASSERT_TRUE(sleeper.ok());
    ASSERT_TRUE(sleeper.alive());
    // 2 slots held, 2 unread by a lossless consumer: nothing is free.
    EXPECT_TRUE(HasError(producer->acquire(0ns), Errc::WouldBlock));

    const auto killed_at = Clock::now();
    consumer.kill(SIGKILL);
    auto slot = producer->acquire(kLong);
    const auto resumed_at = Clock::now();
    ASSERT_TRUE(IsOk(slot)) << "the producer never got the dead consumer's slots back";
    producer->discard(*slot);
    const int64_t ms = elapsed_ms(killed_at, resumed_at);
    std::cout << "forked consumer child: producer resumed " << std::fixed << std::setprecision(1)
              << double(elapsed_us(killed_at, resumed_at)) / 1000.0
              << " ms after the consumer was killed (target 100 ms); the child was "
              << (sleeper.alive() ? "still alive" : "gone") << "\n"
              << std::defaultfloat << std::flush;
    EXPECT_LT(ms, 5000);
    EXPECT_TRUE(sleeper.alive()) << "the test proves nothing if the child is gone";
    EXPECT_TRUE(was_killed(consumer.wait()));
    EXPECT_EQ(producer->consumer_count(), 0u);

    // Every slot is free again.
    std::vector<WriteSlot> slots;
    for (int i = 0; i < 4; ++i) {
        auto s = producer->acquire(0ns);
        ASSERT_TRUE(IsOk(s)) << "slot " << i;
        slots.push_back(*s);
    }
    for (const auto &s : slots)
        producer->discard(s);
    sleeper.kill();
}

// A producer forks a child that keeps every inherited descriptor and
// mapping, then is SIGKILLed. A consumer waiting in next() must get
// ProducerGone although the child lives on; the child does not keep the
// channel's name either: a new producer takes it over and the consumer
// reattaches.
TEST(Hostile, ForkedProducerChildDoesNotKeepItAlive)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("forkprod");
    Pipe up, down;
    RawPipe hold;
    ASSERT_TRUE(hold.ok());
    Child writer([&] {
        hold.close_write();
        auto created = Producer::create(name, small_options());
        if (!created.ok())
            return child_fail(10, "create", created);
        auto p = std::move(created).value();
        up.send('C');
        if (!down.expect('A'))
            return 11;
        if (auto r = publish_pattern(*p, 1, 100); !r.ok())
            return child_fail(12, "publish", r);
        const pid_t sleeper = fork_sleeper(hold);
        if (sleeper < 0)
            return child_fail(13, "fork");
        up.send('F');
        up.send(&sleeper, sizeof sleeper);
        std::this_thread::sleep_for(3 * kLong); // SIGKILLed here
        return 20;
    });
    ASSERT_TRUE(writer.started());
    hold.close_read();
    ASSERT_TRUE(up.expect('C'));
    auto attached = Consumer::attach(name, {}, kLong);
    ASSERT_TRUE(IsOk(attached));
    auto consumer = std::move(attached).value();
    const uint64_t old_epoch = consumer->epoch();
    down.send('A');
    {
        auto f = consumer->next(kLong);
        ASSERT_TRUE(IsOk(f));
        EXPECT_EQ(f->info().pts, 1u);
    }
    ASSERT_TRUE(up.expect('F'));
    pid_t sleeper_pid = -1;
    ASSERT_TRUE(up.receive(&sleeper_pid, sizeof sleeper_pid));
    Watched sleeper(sleeper_pid);
    ASSERT_TRUE(sleeper.ok());
    ASSERT_TRUE(sleeper.alive());

    std::optional<Result<Frame>> got;
    Clock::time_point returned_at;
    std::thread reader([&] {
        got.emplace(consumer->next(kLong));
        returned_at = Clock::now();
    });
    std::this_thread::sleep_for(100ms); // let it block in next()
    const auto killed_at = Clock::now();
    writer.kill(SIGKILL);
    reader.join();
    ASSERT_TRUE(got.has_value());
    EXPECT_TRUE(HasError(*got, Errc::ProducerGone));
    const int64_t ms = elapsed_ms(killed_at, returned_at);
    std::cout << "forked producer child: the waiting consumer got "
              << (got->ok() ? std::string("a frame") : errc_name(got->code())) << " "
              << std::fixed << std::setprecision(1)
              << double(elapsed_us(killed_at, returned_at)) / 1000.0
              << " ms after the producer was killed; the child was "
              << (sleeper.alive() ? "still alive" : "gone") << "\n"
              << std::defaultfloat << std::flush;
    EXPECT_LT(ms, 5000);
    EXPECT_TRUE(sleeper.alive()) << "the test proves nothing if the child is gone";
    EXPECT_TRUE(was_killed(writer.wait()));

    // The child did not keep the listening socket: the name is dead...
    auto seen = inspect_channel(name);
    ASSERT_TRUE(IsOk(seen));
    EXPECT_FALSE(seen->producer_alive) << "the forked child keeps the channel's name alive";
    // ... and a new producer takes it over.
    auto created = Producer::create(name, small_options());
    ASSERT_TRUE(IsOk(created)) << "the forked child keeps the channel's name";
    auto producer = std::move(created).value();
    EXPECT_GT(producer->epoch(), old_epoch);
    ASSERT_TRUE(IsOk(consumer->reattach(kLong)));
    EXPECT_EQ(consumer->epoch(), producer->epoch());
    ASSERT_TRUE(IsOk(publish_pattern(*producer, 2, 300)));
    auto f = consumer->next(kLong);
    ASSERT_TRUE(IsOk(f));
    EXPECT_EQ(f->info().pts, 2u);
    EXPECT_EQ(check_pattern(f->data(), f->size(), 2), 300u);
    sleeper.kill();
}

// A hostile process can take every consumer place of a channel. Others are
// then refused with TooManyConsumers (a failed handshake: never a crash) and
// get a place as soon as one is given back.
TEST(Hostile, TakenConsumerPlacesAreRefusedNotACrash)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string name = unique_name("full");
    Pipe hog_up, late_up, go;
    Child hog([&] {
        std::vector<std::unique_ptr<Consumer>> places;
        for (int i = 0; i < 2; ++i) {
            auto c = Consumer::attach(name, {}, kLong);
            if (!c.ok())
                return child_fail(10, "attach", c);
            places.push_back(std::move(c).value());
        }
        hog_up.send('T');
        std::this_thread::sleep_for(3 * kLong); // SIGKILLed here
        return 20;
    });
    Child late([&] {
        if (!go.expect('G'))
            return 10;
        auto refused = Consumer::attach(name, {}, 1s);
        if (refused.ok())
            return child_fail(11, "attached to a channel without a free place");
        if (refused.code() != Errc::TooManyConsumers || refused.error().message.empty())
            return child_fail(12, "expected too-many-consumers", refused);
        late_up.send('R');
        if (!go.expect('K'))
            return 13;
        auto c = Consumer::attach(name, {}, kLong);
        if (!c.ok())
            return child_fail(14, "attach once a place is free", c);
        return 0;
    });
    ASSERT_TRUE(hog.started() && late.started());
    ProducerOptions o = small_options();
    o.max_consumers = 2;
    CREATE_PRODUCER(producer, name, o);
    ASSERT_TRUE(hog_up.expect('T')) << "the hog did not take both places";
    EXPECT_EQ(producer->consumer_count(), 2u);
    go.send('G');
    EXPECT_TRUE(late_up.expect('R', 10s)) << "the late consumer was not refused";
    hog.kill(SIGKILL);
    EXPECT_TRUE(was_killed(hog.wait()));
    go.send('K');
    const ChildEnd end = late.wait();
    EXPECT_TRUE(exited_ok(end)) << "late consumer: " << end;
}

// A fake producer: something listening on a channel's name that hangs up
// at once, or answers garbage. attach() fails with an error (Timeout or
// Corrupt), bounded - never a crash.
TEST(Hostile, FakeProducerSocketIsAnErrorNotACrash)
{
    ChannelDir dir;
    ASSERT_TRUE(dir.ok());
    for (const bool garbage : {false, true}) {
        SCOPED_TRACE(garbage ? "answers garbage" : "hangs up");
        const std::string name = unique_name("fake");
        Child victim([&] {
            auto c = Consumer::attach(name, {}, 1s);
            if (c.ok())
                return child_fail(10, "attached to a fake producer");
            if (c.code() != Errc::Timeout && c.code() != Errc::Corrupt)
                return child_fail(11, "unexpected error", c);
            return 0;
        });
        ASSERT_TRUE(victim.started());

        const int listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ASSERT_GE(listener, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        const std::string path = channel_path(name);
        ASSERT_LT(path.size(), sizeof addr.sun_path);
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        ASSERT_EQ(bind(listener, reinterpret_cast<const sockaddr *>(&addr), sizeof addr), 0)
            << std::strerror(errno);
        ASSERT_EQ(listen(listener, 16), 0);
        // Serves until the victim has ended (seen without reaping it: the
        // Child reaps it below).
        auto ended = [&] {
            siginfo_t info{};
            return waitid(P_PID, id_t(victim.pid()), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
                   info.si_pid != 0;
        };
        uint64_t served = 0;
        const auto until = Clock::now() + 10s;
        while (Clock::now() < until && !ended()) {
            pollfd p{listener, POLLIN, 0};
            if (poll(&p, 1, 20) != 1)
                continue;
            const int conn = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
            if (conn < 0)
                continue;
            ++served;
            if (garbage) {
                char junk[512];
                for (size_t i = 0; i < sizeof junk; ++i)
                    junk[i] = char(i * 131 + served);
                (void)!send(conn, junk, sizeof junk, MSG_NOSIGNAL);
            }
            close(conn);
        }
        close(listener);
        unlink(path.c_str());
        const ChildEnd end = victim.wait(1s);
        EXPECT_TRUE(exited_ok(end)) << end << " after " << served << " connections";
        EXPECT_GE(served, 1u);
    }
}

} // namespace
