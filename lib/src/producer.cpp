// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: Producer, the owner of a channel.
#include "guards.h"
#include "producer_core.h"
#include "shm.h"
#include "wire.h"

#include <bips/producer.h>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace bips {

namespace detail {

namespace {

// While blocked, the producer wakes at least this often to re-check the
// consumers and the wait bound.
constexpr auto kWaitSlice = std::chrono::milliseconds(10);

// Epochs: the creation time in microseconds, strictly increasing within a
// process, so a successor's epoch is above its predecessor's.
uint64_t next_epoch()
{
    static std::atomic<uint64_t> last{0};
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t e = uint64_t(ts.tv_sec) * 1000000u + uint64_t(ts.tv_nsec) / 1000u;
    uint64_t prev = last.load();
    while (true) {
        const uint64_t want = std::max(e, prev + 1);
        if (last.compare_exchange_weak(prev, want))
            return want;
    }
}

Result<void> make_segment(ProducerImpl &p, const Geometry &g)
{
    auto fd = create_memfd("bips-" + p.name, g.total_size, p.name);
    if (!fd)
        return fd.error();
    p.seg_fd = std::move(fd.value());
    auto map = map_shared(p.seg_fd.get(), g.total_size, true, "channel '" + p.name + "'");
    if (!map)
        return map.error();
    p.seg_map = std::move(map.value());
    // Fault the whole mapping in now: the first write to each page of a
    // slot otherwise costs a page fault while frames flow. Best effort.
    madvise(p.seg_map.data(), p.seg_map.size(), MADV_POPULATE_WRITE);
    p.view = RingView(p.seg_map.data(), g);
    format_segment(p.view, p.epoch, p.options.mode, int32_t(getpid()));
    // From now on nobody can resize it or map it writable: only our
    // mapping, made above, writes.
    if (auto r = add_seals(p.seg_fd.get(),
                           kSealsNoResize | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL,
                           "the channel's memory");
        !r)
        return r;
    auto ro = reopen_read_only(p.seg_fd.get(), "the channel's memory");
    if (!ro)
        return ro.error();
    p.seg_ro = std::move(ro.value());
    return {};
}

Result<void> make_doorbell(ProducerImpl &p)
{
    const uint64_t size = system_page_size();
    auto fd = create_memfd("bips-" + p.name + "-doorbell", size, p.name);
    if (!fd)
        return fd.error();
    p.bell_fd = std::move(fd.value());
    if (auto r = add_seals(p.bell_fd.get(), kSealsNoResize | F_SEAL_SEAL, "the doorbell"); !r)
        return r;
    auto map = map_shared(p.bell_fd.get(), size, true, "the doorbell");
    if (!map)
        return map.error();
    p.bell_map = std::move(map.value());
    return {};
}

} // namespace

} // namespace detail

using detail::Clock;

Producer::Producer(std::unique_ptr<detail::ProducerImpl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Producer>> Producer::create(std::string_view name,
                                                   const ProducerOptions &options)
{
    if (auto r = validate_channel_name(name); !r)
        return r.error();
    auto geometry = detail::plan_geometry(options, detail::system_page_size());
    if (!geometry)
        return make_error(Errc::InvalidArgument, "channel '" + std::string(name) + "': " +
                                                     geometry.error().message);
    auto impl = std::make_unique<detail::ProducerImpl>();
    auto &p = *impl;
    p.name = std::string(name);
    p.path = channel_path(name);
    p.options = options;
    p.epoch = detail::next_epoch();
    if (auto r = detail::make_segment(p, geometry.value()); !r)
        return r.error();
    if (auto r = detail::make_doorbell(p); !r)
        return r.error();
    p.writer = detail::RingWriter(p.view, reinterpret_cast<detail::Doorbell *>(p.bell_map.data()));
    p.joined.assign(options.max_consumers, nullptr);
    p.evictions.assign(options.max_consumers, std::string());
    p.peers.assign(options.max_consumers, detail::ProducerImpl::Peer{});
    p.pid_ns = detail::pid_namespace_id();
    p.writer.set_consumers(p.joined);
    p.pidfd = detail::own_pidfd();
    p.wake.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!p.wake.valid())
        return make_error(Errc::System, "cannot create an eventfd for channel '" + p.name + "'");
    auto sock = detail::bind_channel(p.path, name, options.mode);
    if (!sock)
        return sock.error();
    p.sock = std::move(sock.value());
    p.sock_fork_token = detail::register_fork_fd(p.sock.fd.get());
    p.exit_token = detail::register_exit_name(p.path, p.sock.dev, p.sock.ino);
    detail::start_service(p);
    return std::unique_ptr<Producer>(new Producer(std::move(impl)));
}

Producer::~Producer()
{
    auto &p = *impl_;
    // Unname first, so a consumer that wakes on the close cannot find this
    // channel again while it still looks alive.
    detail::unregister_exit_name(p.exit_token);
    detail::unlink_if_same(p.path, p.sock.dev, p.sock.ino);
    {
        std::lock_guard lock(p.mu);
        for (uint32_t s = 0; s < p.view.geometry().slot_count; ++s)
            p.writer.discard(s);
        p.writer.close();
    }
    detail::stop_service(p);
    detail::unregister_fork_fd(p.sock_fork_token);
}

Result<WriteSlot> Producer::acquire(std::chrono::nanoseconds timeout)
{
    auto &d = *impl_;
    const auto start = Clock::now();
    const auto deadline = timeout == kForever ? Clock::time_point::max() : start + timeout;
    auto handle = [&d](uint32_t index) {
        d.blocked_since = Clock::time_point{};
        return WriteSlot{index, d.view.slot_data(index), d.view.geometry().slot_size};
    };
    if (!d.interrupted.load(std::memory_order_acquire)) {
        std::lock_guard lock(d.mu);
        if (auto slot = d.writer.try_acquire())
            return handle(*slot);
    }
    // From here on the producer waits for space: counted in waited_ns, and
    // shown to inspecting peers while it lasts.
    struct WaitMark {
        detail::ProducerImpl &d;
        ~WaitMark()
        {
            std::lock_guard lock(d.mu);
            if (d.waiting)
                d.waited_ns.fetch_add(uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                   Clock::now() - d.waiting_since)
                                                   .count()),
                                      std::memory_order_relaxed);
            d.waiting = false;
        }
    } mark{d};
    for (;;) {
        if (d.interrupted.load(std::memory_order_acquire))
            return make_error(Errc::Busy, "acquire on channel '" + name() + "' was interrupted");
        std::optional<uint32_t> slot;
        uint32_t token;
        {
            std::lock_guard lock(d.mu);
            token = d.writer.prepare_wait();
            slot = d.writer.try_acquire();
            const auto now = Clock::now();
            if (!slot && d.blocked_since == Clock::time_point{})
                d.blocked_since = now;
            // The bound of lossless waiting: past it, the consumers holding
            // the producer back lose their place, worst first.
            const auto bound = d.options.max_wait;
            while (!slot && bound.count() > 0 && now - d.blocked_since >= bound &&
                   d.evict_worst("it held the producer back for more than " +
                                 std::to_string(bound.count() / 1000000) +
                                 " ms (max_wait); reattach to read on")) {
                slot = d.writer.try_acquire();
            }
            if (slot) {
                d.writer.finish_wait();
                return handle(*slot);
            }
            if (!d.waiting && timeout.count() != 0) {
                d.waiting = true;
                d.waiting_since = now;
            }
        }
        const auto now = Clock::now();
        if (timeout.count() == 0 || now >= deadline) {
            d.writer.finish_wait();
            if (timeout.count() == 0)
                return make_error(Errc::WouldBlock,
                                  "no free slot on channel '" + name() +
                                      "': every slot is unread by a lossless consumer or held");
            return make_error(Errc::Timeout, "no free slot on channel '" + name() +
                                                 "' in time: lossless consumers are too slow "
                                                 "or hold every slot");
        }
        auto slice = std::min<Clock::duration>(deadline - now, detail::kWaitSlice);
        d.writer.wait(token, std::chrono::duration_cast<std::chrono::nanoseconds>(slice).count());
        d.writer.finish_wait();
    }
}

Result<void> Producer::publish(const WriteSlot &slot, const FrameInfo &info,
                               std::span<const std::byte> meta)
{
    auto &d = *impl_;
    const auto &g = d.view.geometry();
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
    const auto cap = impl_->view.geometry().info_capacity;
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
    std::lock_guard lock(impl_->mu);
    impl_->writer.wake_space();
}

void Producer::resume() { impl_->interrupted.store(false, std::memory_order_release); }

uint32_t Producer::reap_dead_consumers()
{
    // Dead consumers are dropped by the service thread as soon as the
    // kernel reports them; wait for it to finish two rounds so that every
    // death that happened before this call has been handled, then report
    // the deaths since the previous call.
    auto &d = *impl_;
    const uint64_t target = d.cycles.load(std::memory_order_acquire) + 2;
    const auto give_up = Clock::now() + std::chrono::milliseconds(200);
    while (d.cycles.load(std::memory_order_acquire) < target && Clock::now() < give_up) {
        d.poke();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return d.dead_unreported.exchange(0, std::memory_order_relaxed);
}

std::vector<std::string> Producer::take_eviction_reports()
{
    std::lock_guard lock(impl_->mu);
    std::vector<std::string> out(std::make_move_iterator(impl_->eviction_reports.begin()),
                                 std::make_move_iterator(impl_->eviction_reports.end()));
    impl_->eviction_reports.clear();
    return out;
}

std::vector<ConsumerInfo> Producer::consumers()
{
    std::lock_guard lock(impl_->mu);
    return impl_->consumer_infos();
}

uint32_t Producer::consumer_count() { return impl_->consumer_total.load(std::memory_order_acquire); }

ChannelInfo Producer::info() const
{
    ChannelInfo out;
    out.name = impl_->name;
    out.producer_alive = true;
    detail::read_counters(impl_->view, out);
    std::lock_guard lock(impl_->mu);
    out.consumers = impl_->consumer_infos();
    out.producer_local_pid = out.producer_pid;
    impl_->fill_wait_figures(out);
    return out;
}

const std::string &Producer::name() const { return impl_->name; }
uint64_t Producer::epoch() const { return impl_->epoch; }
uint32_t Producer::slot_count() const { return impl_->view.geometry().slot_count; }
uint64_t Producer::slot_size() const { return impl_->view.geometry().slot_size; }
uint32_t Producer::meta_capacity() const { return impl_->view.geometry().meta_capacity; }
uint64_t Producer::published() const
{
    return detail::published_count(impl_->view);
}

std::byte *Producer::slot_data(uint32_t index) const
{
    if (index >= slot_count())
        return nullptr;
    return impl_->view.slot_data(index);
}

} // namespace bips
