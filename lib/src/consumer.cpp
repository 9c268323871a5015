// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: Consumer and Frame, the reading side of a channel.
#include "guards.h"
#include "rendezvous.h"
#include "ring.h"
#include "shm.h"
#include "wire.h"

#include <bips/consumer.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace bips {

namespace detail {

using Clock = std::chrono::steady_clock;

// How often a waiting consumer polls for a producer, and checks that the
// producer it reads still serves it (bounds "producer gone" detection).
constexpr auto kAttachPoll = std::chrono::milliseconds(5);
constexpr auto kLivenessSlice = std::chrono::milliseconds(50);
// How long the producer may take to answer a handshake message.
constexpr auto kAnswerTime = std::chrono::milliseconds(2000);

inline void cpu_relax()
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    asm volatile("yield" ::: "memory");
#else
    std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

// One connection to one producer (one epoch): the producer's segment
// (read-only), the doorbell, and this consumer's own state. Shared by the
// Consumer and every Frame read through it, so the mappings outlive the
// last Frame. release() may run on any thread (it only touches atomics).
class Attachment {
public:
    ~Attachment()
    {
        // A handshake that failed before the reader was set up (refused,
        // producer gone, segment rejected) has no state to give back.
        if (reader.view().base() != nullptr)
            reader.leave();
        Message bye;
        bye.type = MsgType::Leave;
        (void)send_message(sock.get(), bye);
        unregister_fork_fd(fork_token);
    }

    // False once the producer stopped serving us: it closed the
    // connection (`why` then holds its notice, if it sent one) or its
    // process exited.
    bool connected(std::string *why)
    {
        if (polls_ready(producer_pidfd.get())) {
            *why = "its process exited";
            return false;
        }
        if (!polls_ready(sock.get()))
            return true;
        auto r = receive_message(sock.get(), std::chrono::milliseconds(0));
        if (r && r->msg.type == MsgType::Notice)
            *why = r->msg.get_text();
        else if (!r && r.code() == Errc::Timeout)
            return true;
        return false;
    }

    UniqueFd sock;
    UniqueFd producer_pidfd;
    UniqueFd seg_fd;
    UniqueFd bell_fd;
    UniqueFd state_fd;
    Mapping seg_map;
    Mapping bell_map;
    Mapping state_map;
    RingView view;
    RingReader reader;
    uint64_t epoch = 0;
    uint32_t entry = 0;
    int fork_token = -1;
};

// Connects to `name` and joins as a consumer with `policy`. Errors: those
// of attach(); NotFound and Busy mean "try again".
Result<std::shared_ptr<Attachment>> join_channel(const std::string &name, Policy policy)
{
    const std::string ch = "channel '" + name + "'";
    auto sock = connect_channel(channel_path(name), name);
    if (!sock)
        return sock.error();
    auto a = std::make_shared<Attachment>();
    a->sock = std::move(sock.value());
    a->fork_token = register_fork_fd(a->sock.get());

    Message hello;
    hello.type = MsgType::Hello;
    hello.arg0 = uint32_t(Role::Consumer);
    if (auto r = send_message(a->sock.get(), hello); !r)
        return make_error(Errc::NotFound, ch + ": the producer went away during the handshake");
    auto welcome = receive_message(a->sock.get(), kAnswerTime);
    if (!welcome)
        return make_error(welcome.code() == Errc::ProducerGone ? Errc::NotFound : welcome.code(),
                          ch + ": " + welcome.error().message);
    if (welcome->msg.type == MsgType::Refused)
        return make_error(Errc(welcome->msg.arg0 <= uint32_t(Errc::System) ? welcome->msg.arg0
                                                                            : uint32_t(Errc::Corrupt)),
                          welcome->msg.get_text());
    if (welcome->msg.type != MsgType::Welcome || welcome->fds.size() < 2)
        return make_error(Errc::Corrupt, ch + ": the producer's welcome is malformed");
    a->epoch = welcome->msg.value;
    a->seg_fd = std::move(welcome->fds[0]);
    a->bell_fd = std::move(welcome->fds[1]);
    if (welcome->fds.size() > 2)
        a->producer_pidfd = std::move(welcome->fds[2]);

    // The producer's memory: sealed, mapped read-only, header validated.
    auto size = check_memfd(a->seg_fd.get(), kSealsNoResize, sizeof(SegmentHeader),
                            ch + ": the producer's memory");
    if (!size)
        return size.error();
    auto seg = map_shared(a->seg_fd.get(), size.value(), false, ch);
    if (!seg)
        return seg.error();
    a->seg_map = std::move(seg.value());
    auto g = validate_header(a->seg_map.data(), a->seg_map.size(), size.value(), name);
    if (!g)
        return g.error();
    a->view = RingView(a->seg_map.data(), g.value());
    madvise(a->view.data(), g->total_size - g->data_offset, MADV_POPULATE_READ);

    auto bell_size = check_memfd(a->bell_fd.get(), kSealsNoResize, sizeof(Doorbell),
                                 ch + ": the doorbell");
    if (!bell_size)
        return bell_size.error();
    auto bell = map_shared(a->bell_fd.get(), sizeof(Doorbell), true, ch + ": the doorbell");
    if (!bell)
        return bell.error();
    a->bell_map = std::move(bell.value());

    // Our own state, which only we write; sealed before the producer sees it.
    const uint64_t state_size = align_to_page(g->consumer_state_size());
    auto state_fd = create_memfd("bips-" + name + "-consumer", state_size, name);
    if (!state_fd)
        return state_fd.error();
    a->state_fd = std::move(state_fd.value());
    auto state = map_shared(a->state_fd.get(), state_size, true, ch + ": consumer state");
    if (!state)
        return state.error();
    a->state_map = std::move(state.value());
    if (auto r = add_seals(a->state_fd.get(), kSealsNoResize | 0x0001u /* F_SEAL_SEAL */,
                           "the consumer state");
        !r)
        return r.error();
    a->reader = RingReader(a->view, reinterpret_cast<ConsumerShared *>(a->state_map.data()),
                           reinterpret_cast<Doorbell *>(a->bell_map.data()));
    a->reader.init(policy, int32_t(getpid()));

    Message join;
    join.type = MsgType::Join;
    join.arg0 = uint32_t(policy);
    join.arg1 = int32_t(getpid());
    join.pid_ns = pid_namespace_id();
    UniqueFd pidfd = own_pidfd();
    std::vector<int> fds = {a->state_fd.get()};
    if (pidfd.valid())
        fds.push_back(pidfd.get());
    if (auto r = send_message(a->sock.get(), join, fds); !r)
        return make_error(Errc::NotFound, ch + ": the producer went away during the handshake");
    auto joined = receive_message(a->sock.get(), kAnswerTime);
    if (!joined)
        return make_error(joined.code() == Errc::ProducerGone ? Errc::NotFound : joined.code(),
                          ch + ": " + joined.error().message);
    if (joined->msg.type == MsgType::Refused)
        return make_error(Errc(joined->msg.arg0 <= uint32_t(Errc::System) ? joined->msg.arg0
                                                                           : uint32_t(Errc::Corrupt)),
                          joined->msg.get_text());
    if (joined->msg.type != MsgType::Joined)
        return make_error(Errc::Corrupt, ch + ": the producer's answer to joining is malformed");
    a->entry = joined->msg.arg0;
    a->reader.join(a->entry, joined->msg.value, uint32_t(joined->msg.arg1));
    return a;
}

class ConsumerImpl {
public:
    std::string name;
    ConsumerOptions options;
    std::shared_ptr<Attachment> att;
    std::string info;
    uint64_t info_gen = 0;
    uint64_t received_before = 0; // counters of earlier epochs
    uint64_t skipped_before = 0;
    std::atomic<bool> interrupted{false};
    // Arrival times of frames, to anticipate the next one (reading thread).
    Clock::time_point last_arrival{};
    Clock::duration interval{0}; // smoothed gap between frames
    // Guards replacing `att` (reattach, destruction) against readers on
    // other threads (interrupt). The reading thread itself needs no lock.
    mutable std::mutex att_mu;

    Result<std::shared_ptr<Attachment>> open(Clock::time_point deadline);
    std::optional<Result<Frame>> handle(RingReader::Poll poll, FrameCopy &fc);
    void drop_attachment();

    // The one estimate of when the next frame is due: the last arrival
    // plus the smoothed interval, once two frames have arrived (reading
    // thread, like note_arrival()).
    std::optional<Clock::time_point> next_due() const
    {
        if (interval.count() == 0)
            return std::nullopt;
        return last_arrival + interval;
    }

    // Forgets the pace: the next producer may keep another (reading thread).
    void forget_pace()
    {
        last_arrival = Clock::time_point{};
        interval = Clock::duration{0};
    }

    // Keeps a smoothed interval between returned frames (for anticipate);
    // called by handle() for every frame it returns.
    void note_arrival()
    {
        if (options.anticipate.count() == 0)
            return;
        const auto now = Clock::now();
        if (last_arrival != Clock::time_point{}) {
            const auto gap = now - last_arrival;
            interval = interval.count() == 0 ? gap : (7 * interval + gap) / 8;
        }
        last_arrival = now;
    }
};

Result<std::shared_ptr<Attachment>> ConsumerImpl::open(Clock::time_point deadline)
{
    for (;;) {
        if (interrupted.load(std::memory_order_acquire))
            return make_error(Errc::Timeout, "waiting for channel '" + name + "' was interrupted");
        auto a = join_channel(name, options.policy);
        if (a)
            return a;
        if (a.code() != Errc::NotFound && a.code() != Errc::Busy)
            return a.error();
        const auto now = Clock::now();
        if (now >= deadline)
            return make_error(Errc::Timeout,
                              "no producer on channel '" + name +
                                  "' in time; start one (e.g. `gst-launch-1.0 ... ! bipssink "
                                  "channel=" + name + "`) or wait longer");
        std::this_thread::sleep_for(std::min<Clock::duration>(deadline - now, kAttachPoll));
    }
}

void ConsumerImpl::drop_attachment()
{
    if (!att)
        return;
    received_before += att->reader.received();
    skipped_before += att->reader.skipped();
    // Frames still alive keep the attachment; they must not hold the
    // producer back meanwhile.
    att->reader.detach();
    std::lock_guard lock(att_mu);
    att.reset();
}

std::optional<Result<Frame>> ConsumerImpl::handle(RingReader::Poll poll, FrameCopy &fc)
{
    switch (poll) {
    case RingReader::Poll::Empty:
        return std::nullopt;
    case RingReader::Poll::EndOfStream:
        return Result<Frame>(make_error(Errc::EndOfStream,
                                        "producer of channel '" + name + "' ended the stream"));
    case RingReader::Poll::Closed:
        return Result<Frame>(make_error(Errc::ProducerGone,
                                        "producer of channel '" + name +
                                            "' closed the channel; reattach to wait for a new one"));
    case RingReader::Poll::Dropped: {
        // The producer sends its reason right after dropping us.
        std::string why;
        for (int i = 0; i < 20 && att->connected(&why); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return Result<Frame>(make_error(
            Errc::ProducerGone,
            !why.empty() ? why
                         : "the producer of channel '" + name +
                               "' dropped this consumer for holding it back longer than its "
                               "max_wait; reattach to read on"));
    }
    case RingReader::Poll::Frame:
        break;
    }
    if (fc.info_gen != info_gen) {
        uint64_t gen = fc.info_gen;
        auto text = read_stream_info(att->view, gen, nullptr);
        if (!text) // overwritten by several quick changes: take the newest
            text = read_stream_info(att->view, 0, &gen);
        info = text.value_or(std::string());
        info_gen = gen;
    }
    Frame f;
    f.att_ = att;
    f.data_ = att->view.slot_data(fc.slot);
    f.info_ = fc.info;
    f.seq_ = fc.seq;
    f.info_gen_ = fc.info_gen;
    f.slot_ = fc.slot;
    f.meta_ = std::move(fc.meta);
    note_arrival();
    return Result<Frame>(std::move(f));
}

} // namespace detail

using detail::Clock;

// ---------------------------------------------------------------- Frame

Frame::Frame(Frame &&o) noexcept
    : att_(std::move(o.att_)), data_(o.data_), info_(o.info_), seq_(o.seq_),
      info_gen_(o.info_gen_), slot_(o.slot_), meta_(std::move(o.meta_))
{
    o.data_ = nullptr;
}

Frame &Frame::operator=(Frame &&o) noexcept
{
    if (this != &o) {
        release();
        att_ = std::move(o.att_);
        data_ = o.data_;
        info_ = o.info_;
        seq_ = o.seq_;
        info_gen_ = o.info_gen_;
        slot_ = o.slot_;
        meta_ = std::move(o.meta_);
        o.data_ = nullptr;
    }
    return *this;
}

Frame::~Frame() { release(); }

void Frame::release() noexcept
{
    if (!att_)
        return;
    att_->reader.release(slot_);
    att_.reset();
    data_ = nullptr;
}

// ---------------------------------------------------------------- Consumer

uint32_t default_max_held(uint32_t slot_count) noexcept
{
    return slot_count > 5 ? (slot_count - 2) / 3 : 1;
}

Consumer::Consumer(std::unique_ptr<detail::ConsumerImpl> impl) : impl_(std::move(impl)) {}

Consumer::~Consumer() { impl_->drop_attachment(); }

Result<std::unique_ptr<Consumer>> Consumer::attach(std::string_view name,
                                                   const ConsumerOptions &options,
                                                   std::chrono::nanoseconds timeout)
{
    if (auto r = validate_channel_name(name); !r)
        return r.error();
    if (options.policy != Policy::Lossless && options.policy != Policy::Latest)
        return make_error(Errc::InvalidArgument, "unknown consumer policy");
    auto impl = std::make_unique<detail::ConsumerImpl>();
    impl->name = std::string(name);
    impl->options = options;
    const auto deadline =
        timeout == kForever ? Clock::time_point::max() : Clock::now() + timeout;
    auto att = impl->open(deadline);
    if (!att)
        return att.error();
    impl->att = std::move(att.value());
    impl->info = detail::read_stream_info(impl->att->view, 0, &impl->info_gen)
                     .value_or(std::string());
    return std::unique_ptr<Consumer>(new Consumer(std::move(impl)));
}

Result<Frame> Consumer::next(std::chrono::nanoseconds timeout)
{
    auto &d = *impl_;
    if (!d.att)
        return make_error(Errc::ProducerGone,
                          "not attached to channel '" + d.name + "'; call reattach()");
    const auto start = Clock::now();
    const auto deadline = timeout == kForever ? Clock::time_point::max() : start + timeout;
    auto spin_until = start + d.options.spin;
    // With anticipate, sleep only until shortly before the next frame is
    // due, then busy-wait for it for at most 2 * ahead
    // (ConsumerOptions::anticipate). A frame due sooner than that (a stream
    // faster than 1 / ahead) is busy-waited for at once, so the producer
    // finds the reader awake and needs no wake-up call.
    const Clock::duration ahead = d.options.anticipate;
    auto wake_at = Clock::time_point::max();
    if (const auto due = d.next_due(); ahead.count() > 0 && due)
        wake_at = *due - ahead;
    auto check_at = start + detail::kLivenessSlice;
    auto &reader = d.att->reader;
    const uint32_t limit = d.options.max_held != 0
                               ? d.options.max_held
                               : std::max<uint32_t>(2, default_max_held(
                                                          reader.view().geometry().slot_count));
    if (limit != kUnlimitedHeld && reader.held() >= limit)
        return make_error(Errc::TooManyHeld,
                          "this consumer of channel '" + d.name + "' already holds " +
                              std::to_string(limit) + (limit == 1 ? " frame" : " frames") +
                              " (max_held): each keeps a slot from the producer. "
                              "Release a frame before asking for the next, copy the data "
                              "you keep, or raise ConsumerOptions::max_held");
    detail::FrameCopy fc;
    std::string why;

    for (;;) {
        if (auto r = d.handle(reader.try_next(fc, &why), fc))
            return std::move(*r);
        if (d.interrupted.load(std::memory_order_acquire))
            return make_error(Errc::Timeout, "reading channel '" + d.name + "' was interrupted");
        auto now = Clock::now();
        if (now >= wake_at) {
            spin_until = now + 2 * ahead;
            wake_at = Clock::time_point::max();
        }
        if (now < spin_until && now < deadline) {
            detail::cpu_relax();
            continue;
        }
        // Check the producer before every Timeout too, so that callers
        // polling with short timeouts also learn that it went away.
        if (now >= check_at || now >= deadline) {
            check_at = now + detail::kLivenessSlice;
            std::string gone;
            if (!d.att->connected(&gone)) {
                if (auto r = d.handle(reader.try_next(fc, &why), fc))
                    return std::move(*r);
                return make_error(Errc::ProducerGone,
                                  gone.find("dropped this consumer") != std::string::npos
                                      ? gone
                                      : "producer of channel '" + d.name + "' went away (" +
                                            (gone.empty() ? "connection closed" : gone) +
                                            "); reattach to wait for a new one");
            }
            if (now >= deadline)
                return make_error(Errc::Timeout, "no frame on channel '" + d.name + "' in time");
        }
        const uint32_t token = reader.prepare_wait();
        if (auto r = d.handle(reader.try_next(fc, &why), fc)) {
            reader.finish_wait();
            return std::move(*r);
        }
        Clock::duration slice = std::min<Clock::duration>(deadline - now, check_at - now);
        if (wake_at != Clock::time_point::max())
            slice = std::max<Clock::duration>(std::min<Clock::duration>(slice, wake_at - now),
                                              Clock::duration(1));
        reader.wait(token, std::chrono::duration_cast<std::chrono::nanoseconds>(slice).count());
        reader.finish_wait();
    }
}

Result<void> Consumer::reattach(std::chrono::nanoseconds timeout)
{
    auto &d = *impl_;
    d.drop_attachment();
    d.forget_pace();
    const auto deadline =
        timeout == kForever ? Clock::time_point::max() : Clock::now() + timeout;
    auto att = d.open(deadline);
    if (!att)
        return att.error();
    {
        std::lock_guard lock(d.att_mu);
        d.att = std::move(att.value());
    }
    d.info = detail::read_stream_info(d.att->view, 0, &d.info_gen).value_or(std::string());
    return {};
}

void Consumer::interrupt()
{
    impl_->interrupted.store(true, std::memory_order_release);
    std::lock_guard lock(impl_->att_mu);
    if (impl_->att)
        impl_->att->reader.wake_frames();
}

void Consumer::resume() { impl_->interrupted.store(false, std::memory_order_release); }

const std::string &Consumer::stream_info() const { return impl_->info; }
uint64_t Consumer::stream_info_generation() const { return impl_->info_gen; }
std::optional<Clock::time_point> Consumer::next_due() const { return impl_->next_due(); }
const std::string &Consumer::name() const { return impl_->name; }
uint64_t Consumer::epoch() const { return impl_->att ? impl_->att->epoch : 0; }
Policy Consumer::policy() const { return impl_->options.policy; }

uint64_t Consumer::received() const
{
    return impl_->received_before + (impl_->att ? impl_->att->reader.received() : 0);
}

uint64_t Consumer::skipped() const
{
    return impl_->skipped_before + (impl_->att ? impl_->att->reader.skipped() : 0);
}

ChannelInfo Consumer::info() const
{
    ChannelInfo out;
    out.name = impl_->name;
    if (!impl_->att)
        return out;
    const auto &a = *impl_->att;
    detail::read_counters(a.view, out);
    out.producer_alive = !detail::polls_ready(a.producer_pidfd.get());
    // The producer knows every consumer; ask it, and fall back to our own
    // entry when it does not answer.
    if (auto all = inspect_channel(impl_->name); all && all->epoch == a.epoch) {
        all->producer_closed = out.producer_closed;
        return std::move(all.value());
    }
    const auto s = detail::read_consumer(
        reinterpret_cast<const detail::ConsumerShared *>(a.state_map.data()), a.view.geometry());
    out.consumers.push_back(detail::consumer_info(a.entry, s));
    return out;
}

std::span<const std::byte> Consumer::data_mapping() const
{
    if (!impl_->att)
        return {};
    const auto &g = impl_->att->view.geometry();
    return {impl_->att->view.data(), g.total_size - g.data_offset};
}

} // namespace bips
