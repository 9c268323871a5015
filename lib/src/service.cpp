// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the producer's service thread: accepts consumers on the channel
// socket, hands them the segment, maps their states, and drops them when
// they leave, die (socket hang-up or pidfd exit) or are evicted.
//
// Everything a peer sends is hostile input: a peer that does not finish
// its handshake in time, sends a malformed message, a descriptor that is
// not a sealed memfd of the right size, or anything after joining, is
// dropped; nothing it does blocks this thread (non-blocking sockets, every
// wait bounded) or the producer's publishing.
#include "guards.h"
#include "producer_core.h"
#include "shm.h"
#include "wire.h"

#include <algorithm>
#include <cstring>
#include <cerrno>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

namespace bips::detail {

namespace {

constexpr auto kHandshakeTime = std::chrono::seconds(2);
constexpr size_t kMaxPending = 64; // connections still in their handshake

Message make(MsgType type)
{
    Message m;
    m.type = type;
    return m;
}

void refuse(Link &l, Errc code, const std::string &text)
{
    Message m = make(MsgType::Refused);
    m.arg0 = uint32_t(code);
    m.set_text(text);
    (void)send_message(l.sock.get(), m);
}

// The refusal of a consumer that finds every place taken. The reader may
// use any of the APIs, so it names the setting in each. Fits a message's
// text even with a 200-character channel name.
std::string too_many_consumers(const std::string &name, size_t places)
{
    const std::string taken =
        places == 1 ? "the only consumer place of channel '" + name + "' is taken"
                    : "all " + std::to_string(places) + " consumer places of channel '" + name +
                          "' are taken";
    return taken + "; stop a consumer, or have the producer create the channel with more: "
           "max-consumers on bipssink or BipsProducer, ProducerOptions::max_consumers in C++, "
           "max_consumers= in Python";
}

class Service {
public:
    explicit Service(ProducerImpl &p) : p_(p) {}
    void run();

private:
    void accept_new();
    // Returns false when the link must be dropped.
    bool handle(Link &l);
    bool on_hello(Link &l, const Received &r);
    bool on_join(Link &l, Received &r);
    void drop(size_t i, const std::string &notice = {});
    ConsumerRecord record(const ConsumerInfo &ci) const;

    ProducerImpl &p_;
};

void Service::run()
{
    std::vector<pollfd> fds;
    while (!p_.stopping.load(std::memory_order_acquire)) {
        fds.clear();
        fds.push_back({p_.wake.get(), POLLIN, 0});
        fds.push_back({p_.sock.fd.get(), POLLIN, 0});
        auto next_deadline = Clock::now() + std::chrono::seconds(1);
        for (auto &l : p_.links) {
            fds.push_back({l->sock.get(), POLLIN, 0});
            fds.push_back({l->pidfd.get(), POLLIN, 0}); // -1 is ignored by poll
            if (l->phase != Link::Phase::Joined)
                next_deadline = std::min(next_deadline, l->deadline);
        }
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
            next_deadline - Clock::now());
        int n = poll(fds.data(), fds.size(), int(std::max<int64_t>(wait.count(), 0)) + 1);
        if (n < 0 && errno != EINTR)
            break;
        if (fds[0].revents & POLLIN) {
            uint64_t v;
            (void)!read(p_.wake.get(), &v, sizeof(v));
        }
        // Evictions asked for by the producer thread.
        std::vector<std::pair<uint32_t, std::string>> evict;
        {
            std::lock_guard lock(p_.mu);
            for (uint32_t i = 0; i < p_.evictions.size(); ++i)
                if (!p_.evictions[i].empty())
                    evict.emplace_back(i, std::exchange(p_.evictions[i], std::string()));
        }
        for (auto &[index, why] : evict)
            for (size_t i = 0; i < p_.links.size(); ++i)
                if (p_.links[i]->index == index) {
                    drop(i, why);
                    break;
                }
        // Links that are gone, spoke or ran out of time. fds was built
        // before the evictions: match by descriptor, not by position.
        const auto now = Clock::now();
        for (size_t i = p_.links.size(); i-- > 0;) {
            Link &l = *p_.links[i];
            short sock_ev = 0, pid_ev = 0;
            for (size_t k = 2; k + 1 < fds.size(); k += 2)
                if (fds[k].fd == l.sock.get()) {
                    sock_ev = fds[k].revents;
                    pid_ev = fds[k + 1].revents;
                    break;
                }
            bool keep = !(pid_ev & (POLLIN | POLLHUP | POLLERR));
            if (keep && (sock_ev & (POLLIN | POLLHUP | POLLERR)))
                keep = handle(l);
            if (keep && l.phase != Link::Phase::Joined && now >= l.deadline)
                keep = false;
            if (!keep)
                drop(i);
        }
        if (fds[1].revents & POLLIN)
            accept_new();
        p_.cycles.fetch_add(1, std::memory_order_release);
    }
    while (!p_.links.empty())
        drop(p_.links.size() - 1);
}

void Service::accept_new()
{
    for (;;) {
        int fd = accept4(p_.sock.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        auto l = std::make_unique<Link>();
        l->sock.reset(fd);
        const size_t pending = size_t(std::count_if(
            p_.links.begin(), p_.links.end(),
            [](const auto &x) { return x->phase != Link::Phase::Joined; }));
        if (pending >= kMaxPending)
            continue; // a flood of idle connections: refuse by closing
        l->deadline = Clock::now() + kHandshakeTime;
        l->fork_token = register_fork_fd(fd);
        p_.links.push_back(std::move(l));
    }
}

bool Service::handle(Link &l)
{
    auto r = receive_message(l.sock.get(), std::chrono::milliseconds(0));
    if (!r)
        return r.code() == Errc::Timeout; // spurious wake-up: keep
    switch (l.phase) {
    case Link::Phase::Greeting:
        return r->msg.type == MsgType::Hello && on_hello(l, r.value());
    case Link::Phase::Welcomed:
        return r->msg.type == MsgType::Join && on_join(l, r.value());
    case Link::Phase::Joined:
        l.left = r->msg.type == MsgType::Leave;
        return false; // nothing else is expected after joining
    }
    return false;
}

ConsumerRecord Service::record(const ConsumerInfo &ci) const
{
    ConsumerRecord rec{};
    rec.index = ci.index;
    rec.policy = uint32_t(ci.policy);
    rec.pid = ci.pid;
    rec.held = ci.held;
    rec.received = ci.received;
    rec.skipped = ci.skipped;
    rec.cursor = ci.cursor;
    rec.peer_pid = ci.local_pid;
    rec.pid_ns = p_.peers[ci.index].pid_ns;
    rec.release_age_ns = ci.release_age_ns;
    rec.blocking_ns = ci.blocking_ns;
    return rec;
}

bool Service::on_hello(Link &l, const Received &r)
{
    if (r.msg.arg0 == uint32_t(Role::Inspect)) {
        ChannelInfo figures;
        std::vector<ConsumerRecord> recs;
        {
            std::lock_guard lock(p_.mu);
            p_.fill_wait_figures(figures);
            for (const ConsumerInfo &ci : p_.consumer_infos())
                recs.push_back(record(ci));
        }
        ProducerRecord prec{};
        prec.waiting_ns = figures.producer_waiting_ns;
        prec.waited_ns = figures.producer_waited_ns;
        prec.evictions = figures.evictions;
        prec.eviction_frames = figures.eviction_frames;
        std::vector<std::byte> extra(sizeof(prec) + recs.size() * sizeof(ConsumerRecord));
        std::memcpy(extra.data(), &prec, sizeof(prec));
        if (!recs.empty())
            std::memcpy(extra.data() + sizeof(prec), recs.data(), recs.size() * sizeof(ConsumerRecord));
        Message m = make(MsgType::Welcome);
        m.value = p_.epoch;
        m.arg0 = uint32_t(recs.size());
        m.pid_ns = p_.pid_ns;
        const int fds[] = {p_.seg_ro.get()};
        (void)send_message(l.sock.get(), m, fds, extra);
        return false; // one answer, then close
    }
    if (r.msg.arg0 != uint32_t(Role::Consumer))
        return false;
    const size_t joined = p_.consumer_total.load();
    const size_t welcomed = size_t(std::count_if(
        p_.links.begin(), p_.links.end(),
        [](const auto &x) { return x->phase == Link::Phase::Welcomed; }));
    if (joined + welcomed >= p_.joined.size()) {
        refuse(l, Errc::TooManyConsumers, too_many_consumers(p_.name, p_.joined.size()));
        return false;
    }
    Message m = make(MsgType::Welcome);
    m.value = p_.epoch;
    std::vector<int> fds = {p_.seg_ro.get(), p_.bell_fd.get()};
    if (p_.pidfd.valid())
        fds.push_back(p_.pidfd.get());
    if (!send_message(l.sock.get(), m, fds))
        return false;
    l.phase = Link::Phase::Welcomed;
    return true;
}

bool Service::on_join(Link &l, Received &r)
{
    const Geometry &g = p_.view.geometry();
    if (r.fds.empty()) {
        refuse(l, Errc::Corrupt, "join without a consumer state");
        return false;
    }
    const uint64_t need = g.consumer_state_size();
    auto size = check_memfd(r.fds[0].get(), kSealsNoResize, need, "the consumer's state");
    if (!size) {
        refuse(l, Errc::Corrupt, size.error().message);
        return false;
    }
    auto map = map_shared(r.fds[0].get(), need, false, "the consumer's state");
    if (!map) {
        refuse(l, map.code(), map.error().message);
        return false;
    }
    auto *state = reinterpret_cast<const ConsumerShared *>(map->data());
    if (!looks_like_consumer(state)) {
        refuse(l, Errc::Corrupt, "the consumer's state is not a bips consumer state");
        return false;
    }
    uint32_t index = UINT32_MAX;
    uint64_t start = 0, eos_before = 0;
    {
        std::lock_guard lock(p_.mu);
        for (uint32_t i = 0; i < p_.joined.size() && index == UINT32_MAX; ++i)
            if (!p_.joined[i] && p_.evictions[i].empty())
                index = i;
        if (index != UINT32_MAX) {
            p_.joined[index] = state;
            p_.writer.forget_consumer(index);
            p_.peers[index] = {peer_pid(l.sock.get()), r.msg.pid_ns};
            p_.consumer_total.fetch_add(1);
            start = p_.writer.published(); // honoured from here on
            eos_before = p_.writer.eos_count();
        }
    }
    if (index == UINT32_MAX) {
        refuse(l, Errc::TooManyConsumers, too_many_consumers(p_.name, p_.joined.size()));
        return false;
    }
    l.state = std::move(map.value());
    if (r.fds.size() > 1)
        l.pidfd = std::move(r.fds[1]);
    l.index = index;
    l.phase = Link::Phase::Joined;
    Message m = make(MsgType::Joined);
    m.arg0 = index;
    m.value = start;
    m.arg1 = int32_t(eos_before & 0xffff);
    return send_message(l.sock.get(), m).ok();
}

void Service::drop(size_t i, const std::string &notice)
{
    Link &l = *p_.links[i];
    if (!notice.empty()) {
        Message m = make(MsgType::Notice);
        m.set_text(notice);
        (void)send_message(l.sock.get(), m);
    }
    if (l.phase == Link::Phase::Joined) {
        std::lock_guard lock(p_.mu);
        if (p_.joined[l.index] == reinterpret_cast<const ConsumerShared *>(l.state.data())) {
            p_.joined[l.index] = nullptr;
            p_.consumer_total.fetch_sub(1);
        }
        p_.writer.wake_space();
    }
    if (l.phase == Link::Phase::Joined && !l.left && notice.empty())
        p_.dead_unreported.fetch_add(1, std::memory_order_relaxed);
    unregister_fork_fd(l.fork_token);
    p_.dropped.fetch_add(1, std::memory_order_release);
    p_.links.erase(p_.links.begin() + std::ptrdiff_t(i));
}

} // namespace

void ProducerImpl::poke()
{
    const uint64_t one = 1;
    (void)!write(wake.get(), &one, sizeof(one));
}

bool ProducerImpl::evict_worst(const std::string &why)
{
    uint32_t worst = UINT32_MAX, worst_pressure = 0;
    for (uint32_t i = 0; i < joined.size(); ++i) {
        const uint32_t pr = writer.pressure(joined[i]);
        if (pr > worst_pressure) {
            worst = i;
            worst_pressure = pr;
        }
    }
    if (worst == UINT32_MAX)
        return false;
    const ConsumerSnapshot s = read_consumer(joined[worst], view.geometry());
    joined[worst] = nullptr;
    writer.mark_dropped(worst);
    consumer_total.fetch_sub(1);
    evicted_total.fetch_add(1);
    const uint64_t published = writer.published();
    std::string state = "holding " + std::to_string(s.held) + " slots";
    if (!s.detached && s.policy == Policy::Lossless && s.cursor < published) {
        eviction_frames.fetch_add(published - s.cursor, std::memory_order_relaxed);
        state += ", reading lossless " + std::to_string(published - s.cursor) + " frames behind";
    }
    evictions[worst] = "the producer of channel '" + name + "' dropped this consumer (entry " +
                       std::to_string(worst) + ", which reports pid " + std::to_string(s.pid) +
                       "; " + state + "): " + why;
    constexpr size_t kKeptReports = 64;
    if (eviction_reports.size() == kKeptReports)
        eviction_reports.pop_front();
    eviction_reports.push_back(evictions[worst]);
    poke();
    return true;
}

std::vector<ConsumerInfo> ProducerImpl::consumer_infos() const
{
    const auto now = Clock::now();
    std::vector<ConsumerInfo> out;
    for (uint32_t i = 0; i < joined.size(); ++i) {
        if (!joined[i])
            continue;
        const ConsumerSnapshot s = read_consumer(joined[i], view.geometry());
        if (s.detached)
            continue;
        ConsumerInfo ci = consumer_info(i, s);
        ci.local_pid = peers[i].pid_here;
        ci.other_pid_namespace = peers[i].pid_ns != pid_ns;
        if (waiting && writer.pressure(joined[i]) > 0)
            ci.blocking_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          now - blocked_since)
                                          .count());
        out.push_back(ci);
    }
    return out;
}

void ProducerImpl::fill_wait_figures(ChannelInfo &out) const
{
    const auto now = Clock::now();
    const auto ns = [](Clock::duration d) {
        return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
    };
    out.producer_waiting_ns = waiting ? ns(now - blocked_since) : 0;
    out.producer_waited_ns =
        waited_ns.load(std::memory_order_relaxed) + (waiting ? ns(now - waiting_since) : 0);
    out.evictions = evicted_total.load(std::memory_order_relaxed);
    out.eviction_frames = eviction_frames.load(std::memory_order_relaxed);
}

void start_service(ProducerImpl &p)
{
    p.service = std::thread([&p] { Service(p).run(); });
}

void stop_service(ProducerImpl &p)
{
    p.stopping.store(true, std::memory_order_release);
    p.poke();
    if (p.service.joinable())
        p.service.join();
}

} // namespace bips::detail
