// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: Consumer and Frame, the reading side of a channel.
#include "segment.h"

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
// producer it reads is still alive (bounds "producer gone" detection).
constexpr auto kAttachPoll = std::chrono::milliseconds(5);
constexpr auto kLivenessSlice = std::chrono::milliseconds(50);

// One segment plus one consumer entry. Shared by the Consumer and every
// Frame read through it, so the mapping outlives the last Frame. release()
// may run on any thread (it only touches atomics).
class Attachment {
public:
    Attachment(std::unique_ptr<Segment> s, uint32_t entry)
        : seg(std::move(s)), reader(seg->view(), entry) {}
    ~Attachment()
    {
        reader.leave();
        seg->unlock_consumer(reader.entry());
    }

    std::unique_ptr<Segment> seg;
    RingReader reader;
};

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
    std::optional<Result<Frame>> handle(RingReader::Poll poll, FrameCopy &fc,
                                        const std::string &why);
    void drop_attachment();

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
        auto seg = Segment::open(name, Segment::Access::Consumer);
        if (seg) {
            Segment &s = *seg.value();
            const bool live =
                s.view().header()->producer_state.load(std::memory_order_acquire) ==
                    kProducerLive &&
                s.producer_alive();
            if (live) {
                const uint32_t n = s.view().geometry().max_consumers;
                for (uint32_t i = 0; i < n; ++i) {
                    if (!s.lock_consumer(i))
                        continue;
                    auto a = std::make_shared<Attachment>(std::move(seg.value()), i);
                    a->reader.join(options.policy, int32_t(getpid()));
                    return a;
                }
                return make_error(Errc::TooManyConsumers,
                                  "all " + std::to_string(n) + " consumer entries of channel '" +
                                      name + "' are taken; create the channel with more "
                                             "consumers or stop one");
            }
            // A dead or closing producer's segment: wait for its successor.
        } else if (seg.code() != Errc::NotFound) {
            return seg.error();
        }
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

std::optional<Result<Frame>> ConsumerImpl::handle(RingReader::Poll poll, FrameCopy &fc,
                                                  const std::string &why)
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
    case RingReader::Poll::Corrupt:
        return Result<Frame>(make_error(Errc::Corrupt, "channel '" + name + "': " + why));
    case RingReader::Poll::Frame:
        break;
    }
    if (fc.info_gen != info_gen) {
        uint64_t gen = fc.info_gen;
        auto text = read_stream_info(att->seg->view(), gen, nullptr);
        if (!text) // overwritten by several quick changes: take the newest
            text = read_stream_info(att->seg->view(), 0, &gen);
        info = text.value_or(std::string());
        info_gen = gen;
    }
    Frame f;
    f.att_ = att;
    f.data_ = att->seg->view().slot_data(fc.slot);
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
    impl->info = detail::read_stream_info(impl->att->seg->view(), 0, &impl->info_gen)
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
    if (ahead.count() > 0 && d.interval.count() > 0 && d.last_arrival != Clock::time_point{})
        wake_at = d.last_arrival + d.interval - ahead;
    auto check_at = start + detail::kLivenessSlice;
    const auto frames = d.att->seg->view().frames();
    detail::FrameCopy fc;
    std::string why;

    for (;;) {
        if (auto r = d.handle(d.att->reader.try_next(fc, &why), fc, why))
            return std::move(*r);
        if (d.interrupted.load(std::memory_order_acquire))
            return make_error(Errc::Timeout, "reading channel '" + d.name + "' was interrupted");
        auto now = Clock::now();
        if (now >= wake_at) {
            spin_until = now + 2 * ahead;
            wake_at = Clock::time_point::max();
        }
        if (now < spin_until && now < deadline) {
            __builtin_ia32_pause();
            continue;
        }
        // Check the producer before every Timeout too, so that callers
        // polling with short timeouts also learn that it died.
        if (now >= check_at || now >= deadline) {
            check_at = now + detail::kLivenessSlice;
            if (!d.att->seg->producer_alive()) {
                if (auto r = d.handle(d.att->reader.try_next(fc, &why), fc, why))
                    return std::move(*r);
                return make_error(Errc::ProducerGone,
                                  "producer of channel '" + d.name +
                                      "' died; reattach to wait for a new one");
            }
            if (now >= deadline)
                return make_error(Errc::Timeout, "no frame on channel '" + d.name + "' in time");
        }
        uint32_t token = frames.prepare();
        if (auto r = d.handle(d.att->reader.try_next(fc, &why), fc, why)) {
            frames.finish();
            return std::move(*r);
        }
        Clock::duration slice = std::min<Clock::duration>(deadline - now, check_at - now);
        if (wake_at != Clock::time_point::max())
            slice = std::max<Clock::duration>(std::min<Clock::duration>(slice, wake_at - now),
                                              Clock::duration(1));
        frames.wait(token, std::chrono::duration_cast<std::chrono::nanoseconds>(slice).count());
        frames.finish();
    }
}

Result<void> Consumer::reattach(std::chrono::nanoseconds timeout)
{
    auto &d = *impl_;
    d.drop_attachment();
    const auto deadline =
        timeout == kForever ? Clock::time_point::max() : Clock::now() + timeout;
    auto att = d.open(deadline);
    if (!att)
        return att.error();
    {
        std::lock_guard lock(d.att_mu);
        d.att = std::move(att.value());
    }
    d.info = detail::read_stream_info(d.att->seg->view(), 0, &d.info_gen).value_or(std::string());
    return {};
}

void Consumer::interrupt()
{
    impl_->interrupted.store(true, std::memory_order_release);
    std::lock_guard lock(impl_->att_mu);
    if (impl_->att)
        impl_->att->seg->view().frames().notify_always();
}

void Consumer::resume() { impl_->interrupted.store(false, std::memory_order_release); }

const std::string &Consumer::stream_info() const { return impl_->info; }
uint64_t Consumer::stream_info_generation() const { return impl_->info_gen; }
const std::string &Consumer::name() const { return impl_->name; }
uint64_t Consumer::epoch() const
{
    return impl_->att ? impl_->att->seg->view().header()->epoch : 0;
}
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
    if (!impl_->att) {
        ChannelInfo out;
        out.name = impl_->name;
        return out;
    }
    return impl_->att->seg->snapshot(impl_->att->reader.entry());
}

std::span<const std::byte> Consumer::data_mapping() const
{
    if (!impl_->att)
        return {};
    const auto &v = impl_->att->seg->view();
    return {v.data(), v.geometry().total_size - v.geometry().control_size};
}

} // namespace bips
