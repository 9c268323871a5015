// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: Producer, the owner of a channel segment.
#include "segment.h"

#include <bips/producer.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <unistd.h>

namespace bips {

namespace detail {

using Clock = std::chrono::steady_clock;

// While blocked, the producer wakes at least this often to reclaim the
// slots of consumers that died (bounds the reclaim delay).
constexpr auto kReapSlice = std::chrono::milliseconds(10);

class ProducerImpl {
public:
    std::unique_ptr<Segment> seg;
    RingWriter writer;
    // Guards writer and every non-atomic ring operation. Never held while
    // sleeping on a futex.
    std::mutex mu;
    std::atomic<bool> interrupted{false};
    // steady_clock ticks of the last reap done by consumer_count().
    std::atomic<int64_t> last_reap{0};

    explicit ProducerImpl(std::unique_ptr<Segment> s)
        : seg(std::move(s)), writer(seg->view()) {}

    // Caller holds mu.
    uint32_t reap_locked()
    {
        const Geometry &g = seg->view().geometry();
        uint32_t n = 0;
        for (uint32_t i = 0; i < g.max_consumers; ++i) {
            if (seg->view().consumer(i)->state.load(std::memory_order_acquire) == kConsumerFree)
                continue;
            // Taking the entry's lock succeeds only if its owner is gone.
            if (seg->lock_consumer(i)) {
                writer.reclaim_consumer(i);
                seg->unlock_consumer(i);
                ++n;
            }
        }
        return n;
    }

    WriteSlot handle(uint32_t index) const
    {
        return WriteSlot{index, seg->view().slot_data(index), seg->view().geometry().slot_size};
    }
};

} // namespace detail

using detail::Clock;

Producer::Producer(std::unique_ptr<detail::ProducerImpl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Producer>> Producer::create(std::string_view name,
                                                   const ProducerOptions &options)
{
    if (auto r = validate_channel_name(name); !r)
        return r.error();
    auto geometry = detail::plan_geometry(options);
    if (!geometry)
        return make_error(Errc::InvalidArgument, "channel '" + std::string(name) + "': " +
                                                     geometry.error().message);
    auto seg = detail::Segment::create(name, geometry.value(), options.mode);
    if (!seg)
        return seg.error();
    auto impl = std::make_unique<detail::ProducerImpl>(std::move(seg.value()));
    return std::unique_ptr<Producer>(new Producer(std::move(impl)));
}

Producer::~Producer()
{
    std::lock_guard lock(impl_->mu);
    const auto &g = impl_->seg->view().geometry();
    for (uint32_t s = 0; s < g.slot_count; ++s)
        impl_->writer.discard(s);
    // Unname first, so a consumer that wakes on the close cannot find this
    // segment again while it still looks alive.
    impl_->seg->unlink_if_named();
    impl_->writer.close();
}

Result<WriteSlot> Producer::acquire(std::chrono::nanoseconds timeout)
{
    auto &d = *impl_;
    const auto start = Clock::now();
    const auto deadline =
        timeout == kForever ? Clock::time_point::max() : start + timeout;
    const auto space = d.seg->view().space();
    if (!d.interrupted.load(std::memory_order_acquire)) {
        // Fast path: a free slot, no waiter bookkeeping.
        std::lock_guard lock(d.mu);
        if (auto slot = d.writer.try_acquire())
            return d.handle(*slot);
    }
    for (bool reaped = false;;) {
        if (d.interrupted.load(std::memory_order_acquire))
            return make_error(Errc::Busy, "acquire on channel '" + name() + "' was interrupted");
        uint32_t token = space.prepare();
        std::optional<uint32_t> slot;
        {
            std::lock_guard lock(d.mu);
            slot = d.writer.try_acquire();
            if (!slot && !reaped) {
                // Nothing free: dead consumers may be pinning slots.
                if (d.reap_locked())
                    slot = d.writer.try_acquire();
                reaped = true;
            }
        }
        if (slot) {
            space.finish();
            return d.handle(*slot);
        }
        const auto now = Clock::now();
        if (timeout.count() == 0) {
            space.finish();
            return make_error(Errc::WouldBlock,
                              "no free slot on channel '" + name() +
                                  "': every slot is unread by a lossless consumer or held");
        }
        if (now >= deadline) {
            space.finish();
            return make_error(Errc::Timeout, "no free slot on channel '" + name() +
                                                 "' in time: lossless consumers are too slow "
                                                 "or hold every slot");
        }
        auto slice = std::min<Clock::duration>(deadline - now, detail::kReapSlice);
        space.wait(token, std::chrono::duration_cast<std::chrono::nanoseconds>(slice).count());
        space.finish();
        // Look for dead consumers again once per slice spent waiting.
        reaped = Clock::now() - now < detail::kReapSlice;
    }
}

Result<void> Producer::publish(const WriteSlot &slot, const FrameInfo &info,
                               std::span<const std::byte> meta)
{
    auto &d = *impl_;
    const auto &g = d.seg->view().geometry();
    std::lock_guard lock(d.mu);
    if (!d.writer.owns(slot.index))
        return make_error(Errc::InvalidArgument,
                          "slot " + std::to_string(slot.index) + " of channel '" + name() +
                              "' is not acquired (already published or discarded)");
    if (info.size > g.slot_size)
        return make_error(Errc::InvalidArgument,
                          "frame of " + std::to_string(info.size) + " bytes does not fit the " +
                              std::to_string(g.slot_size) + "-byte slots of channel '" + name() +
                              "'; create the channel with a larger slot size");
    if (meta.size() > g.meta_capacity)
        return make_error(Errc::InvalidArgument,
                          "frame metadata of " + std::to_string(meta.size()) +
                              " bytes exceeds the channel's " + std::to_string(g.meta_capacity) +
                              "-byte metadata capacity");
    d.writer.publish(slot.index, info, meta);
    return {};
}

void Producer::discard(const WriteSlot &slot)
{
    std::lock_guard lock(impl_->mu);
    impl_->writer.discard(slot.index);
}

Result<void> Producer::set_stream_info(std::string_view info)
{
    const auto cap = impl_->seg->view().geometry().info_capacity;
    if (info.size() > cap)
        return make_error(Errc::InvalidArgument,
                          "stream info of " + std::to_string(info.size()) +
                              " bytes exceeds the capacity of " + std::to_string(cap) +
                              " bytes of channel '" + name() + "'");
    std::lock_guard lock(impl_->mu);
    impl_->writer.set_stream_info(info);
    return {};
}

void Producer::end_of_stream()
{
    std::lock_guard lock(impl_->mu);
    impl_->writer.end_of_stream();
}

void Producer::interrupt()
{
    impl_->interrupted.store(true, std::memory_order_release);
    impl_->seg->view().space().notify_always();
}

void Producer::resume() { impl_->interrupted.store(false, std::memory_order_release); }

uint32_t Producer::reap_dead_consumers()
{
    std::lock_guard lock(impl_->mu);
    return impl_->reap_locked();
}

std::vector<ConsumerInfo> Producer::consumers()
{
    reap_dead_consumers();
    return info().consumers;
}

uint32_t Producer::consumer_count()
{
    // Cheap enough to call per frame: dead consumers are reaped at most
    // every kReapSlice here (each check is a system call per consumer).
    auto &d = *impl_;
    const int64_t now = Clock::now().time_since_epoch().count();
    int64_t last = d.last_reap.load(std::memory_order_relaxed);
    if (now - last >= std::chrono::duration_cast<Clock::duration>(detail::kReapSlice).count() &&
        d.last_reap.compare_exchange_strong(last, now))
        reap_dead_consumers();
    const auto &v = d.seg->view();
    uint32_t n = 0;
    for (uint32_t i = 0; i < v.geometry().max_consumers; ++i)
        n += v.consumer(i)->state.load(std::memory_order_acquire) == detail::kConsumerActive;
    return n;
}

ChannelInfo Producer::info() const { return impl_->seg->snapshot(); }

const std::string &Producer::name() const { return impl_->seg->name(); }
uint64_t Producer::epoch() const { return impl_->seg->view().header()->epoch; }
uint32_t Producer::slot_count() const { return impl_->seg->view().geometry().slot_count; }
uint64_t Producer::slot_size() const { return impl_->seg->view().geometry().slot_size; }
uint64_t Producer::published() const
{
    return impl_->seg->view().header()->write_seq.load(std::memory_order_acquire);
}

std::byte *Producer::slot_data(uint32_t index) const
{
    if (index >= slot_count())
        return nullptr;
    return impl_->seg->view().slot_data(index);
}

} // namespace bips
