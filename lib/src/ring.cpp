// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the ring protocol (slot hand-out, publication, reading, waiting).
// The one module that touches the cross-process words of layout.h; every
// access below names its memory order, and the pairs are commented.
#include "ring.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <ctime>

namespace bips::detail {

namespace {

inline void set_bit(std::vector<uint64_t> &bits, uint32_t i) { bits[i / 64] |= 1ull << (i % 64); }
inline void clear_bit(std::vector<uint64_t> &bits, uint32_t i) { bits[i / 64] &= ~(1ull << (i % 64)); }
inline bool test_bit(const std::vector<uint64_t> &bits, uint32_t i)
{
    return bits[i / 64] & (1ull << (i % 64));
}

// The held bitmap that follows a consumer state.
inline const AtomicU64 *held_words(const ConsumerShared *c)
{
    return reinterpret_cast<const AtomicU64 *>(reinterpret_cast<const std::byte *>(c) +
                                               sizeof(ConsumerShared));
}
inline AtomicU64 *held_words(ConsumerShared *c)
{
    return reinterpret_cast<AtomicU64 *>(reinterpret_cast<std::byte *>(c) + sizeof(ConsumerShared));
}

// Bits of word w that name real slots (a consumer may set others).
inline uint64_t valid_bits(const Geometry &g, uint32_t w)
{
    const uint32_t rest = g.slot_count - w * 64;
    return rest >= 64 ? ~0ull : (1ull << rest) - 1;
}

// Slots whose bit is set in the held bitmap of `c` (bits beyond the slot
// count, which a consumer may set, do not count).
uint32_t count_held(const ConsumerShared *c, const Geometry &g)
{
    uint32_t n = 0;
    for (uint32_t w = 0; w < g.bitmap_words; ++w)
        n += uint32_t(std::popcount(held_words(c)[w].load(std::memory_order_relaxed) &
                                    valid_bits(g, w)));
    return n;
}

uint64_t clock_ns(clockid_t clock)
{
    timespec ts;
    clock_gettime(clock, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

} // namespace

// ------------------------------------------------------------ stream info

// Seqlock read without fences, in a form ThreadSanitizer checks: the
// producer stores every data word with release after zeroing gen with an
// acq_rel exchange; we load gen (acquire), every word (acquire), then gen
// again. A word written by a newer generation synchronises with its store,
// so the second gen load then sees 0 or the newer generation.
std::optional<std::string> read_stream_info(const RingView &view, uint64_t gen,
                                            uint64_t *gen_out)
{
    const Geometry &g = view.geometry();
    if (gen == 0)
        gen = view.header()->info_gen.load(std::memory_order_acquire);
    if (gen_out)
        *gen_out = gen;
    if (gen == 0)
        return std::string();
    const uint32_t k = uint32_t(gen % kInfoEntries);
    InfoEntry *e = view.info(k);
    for (int attempt = 0; attempt < 4; ++attempt) {
        const uint64_t s1 = e->gen.load(std::memory_order_acquire);
        if (s1 != gen)
            return std::nullopt;
        const uint32_t size = std::min(e->size.load(std::memory_order_acquire), g.info_capacity);
        std::string out((size + 7) / 8 * 8, '\0');
        const AtomicU64 *words = view.info_words(k);
        for (size_t w = 0; w < out.size() / 8; ++w) {
            const uint64_t v = words[w].load(std::memory_order_acquire);
            std::memcpy(out.data() + 8 * w, &v, 8);
        }
        out.resize(size);
        if (e->gen.load(std::memory_order_relaxed) == s1)
            return out;
    }
    return std::nullopt;
}

void read_counters(const RingView &view, ChannelInfo &out)
{
    const Geometry &g = view.geometry();
    SegmentHeader *h = view.header();
    out.layout_version = h->layout_version;
    out.epoch = h->epoch;
    out.producer_pid = h->producer_pid;
    out.mode = h->mode;
    out.slot_count = g.slot_count;
    out.slot_size = g.slot_size;
    out.max_consumers = g.max_consumers;
    out.segment_bytes = g.total_size;
    out.published = h->write_seq.load(std::memory_order_acquire);
    out.end_of_streams = EosMarker{h->eos_marker.load(std::memory_order_acquire)}.count();
    out.producer_closed = h->producer_state.load(std::memory_order_acquire) == kProducerClosed;
    out.stream_info = read_stream_info(view, 0, nullptr).value_or(std::string());
}

ConsumerSnapshot read_consumer(const ConsumerShared *c, const Geometry &g)
{
    ConsumerSnapshot s;
    s.detached = c->state.load(std::memory_order_acquire) != kConsumerActive;
    s.policy = c->policy.load(std::memory_order_acquire) == uint32_t(Policy::Lossless)
                   ? Policy::Lossless
                   : Policy::Latest;
    s.pid = c->pid;
    s.cursor = c->cursor.load(std::memory_order_acquire);
    s.received = c->received.load(std::memory_order_relaxed);
    s.skipped = c->skipped.load(std::memory_order_relaxed);
    const uint64_t released = c->released_ns.load(std::memory_order_relaxed);
    const uint64_t now = clock_ns(CLOCK_MONOTONIC_COARSE);
    s.release_age_ns = released <= now ? now - released : 0; // garbage reads as 0
    s.held = count_held(c, g);
    return s;
}

ConsumerInfo consumer_info(uint32_t index, const ConsumerSnapshot &s)
{
    ConsumerInfo ci;
    ci.index = index;
    ci.policy = s.policy;
    ci.pid = s.pid;
    ci.local_pid = s.pid;
    ci.alive = true;
    ci.received = s.received;
    ci.skipped = s.skipped;
    ci.held = s.held;
    ci.cursor = s.cursor;
    ci.release_age_ns = s.release_age_ns;
    return ci;
}

bool looks_like_consumer(const ConsumerShared *c) { return c->magic == kConsumerMagic; }

uint64_t published_count(const RingView &view)
{
    return view.header()->write_seq.load(std::memory_order_acquire);
}

// ---------------------------------------------------------------- writer

RingWriter::RingWriter(const RingView &view, Doorbell *bell) : view_(view), bell_(bell)
{
    const Geometry &g = view_.geometry();
    next_seq_ = view_.header()->write_seq.load(std::memory_order_acquire);
    eos_count_ = EosMarker{view_.header()->eos_marker.load(std::memory_order_acquire)}.count();
    owned_.assign(g.bitmap_words, 0);
    scratch_.assign(g.bitmap_words, 0);
    woken_.assign(g.max_consumers, 0);
}

void RingWriter::forget_consumer(uint32_t entry)
{
    if (entry < woken_.size())
        woken_[entry] = 0;
}

bool RingWriter::owns(uint32_t slot) const
{
    return slot < view_.geometry().slot_count && test_bit(owned_, slot);
}

bool RingWriter::held_by_anyone(uint32_t slot) const
{
    const uint32_t word = slot / 64;
    const uint64_t bit = 1ull << (slot % 64);
    for (const ConsumerShared *c : consumers_)
        if (c && (held_words(c)[word].load(std::memory_order_seq_cst) & bit))
            return true;
    return false;
}

std::optional<uint32_t> RingWriter::try_acquire()
{
    const Geometry &g = view_.geometry();

    // Snapshot what consumers still need: the oldest unread sequence of any
    // active lossless consumer (clamped: a cursor beyond what was published
    // needs nothing), and the union of every consumer's held slots.
    uint64_t min_cursor = UINT64_MAX;
    std::fill(scratch_.begin(), scratch_.end(), 0);
    for (const ConsumerShared *c : consumers_) {
        if (!c)
            continue;
        if (c->state.load(std::memory_order_seq_cst) == kConsumerActive &&
            c->policy.load(std::memory_order_seq_cst) == uint32_t(Policy::Lossless))
            min_cursor = std::min(min_cursor,
                                  std::min(c->cursor.load(std::memory_order_seq_cst), next_seq_));
        for (uint32_t w = 0; w < g.bitmap_words; ++w)
            scratch_[w] |= held_words(c)[w].load(std::memory_order_seq_cst) & valid_bits(g, w);
    }

    // Candidates, best first: the most recent publication nobody needs
    // except the newest frame (its pages are still in the CPU caches, so the
    // producer's working set stays at two or three slots), then a never-used
    // slot, then the newest frame, which latest consumers want.
    const uint64_t newest = next_seq_ ? next_seq_ - 1 : kSeqFree;
    for (uint32_t attempt = 0; attempt < g.slot_count; ++attempt) {
        uint32_t recent = UINT32_MAX, unused = UINT32_MAX, latest = UINT32_MAX;
        uint64_t recent_seq = 0;
        for (uint32_t s = 0; s < g.slot_count; ++s) {
            if (test_bit(owned_, s) || test_bit(scratch_, s))
                continue;
            // Only this process writes seq: relaxed suffices to read it back.
            const uint64_t seq = view_.desc(s)->seq.load(std::memory_order_relaxed);
            if (seq == kSeqFree) {
                if (unused == UINT32_MAX)
                    unused = s;
            } else if (seq == kSeqWriting || seq >= min_cursor) {
                continue;
            } else if (seq == newest) {
                latest = s;
            } else if (recent == UINT32_MAX || seq > recent_seq) {
                recent = s;
                recent_seq = seq;
            }
        }
        const uint32_t best = recent != UINT32_MAX ? recent : unused != UINT32_MAX ? unused : latest;
        if (best == UINT32_MAX)
            return std::nullopt;
        SlotDesc *d = view_.desc(best);
        const uint64_t best_seq = d->seq.load(std::memory_order_relaxed);

        // Claim, then look again for a consumer that took the slot since the
        // snapshot. Consumers set their bit before checking the sequence
        // (RingReader::try_next), so either we see the bit or they see
        // kSeqWriting.
        d->seq.store(kSeqWriting, std::memory_order_seq_cst);
        if (held_by_anyone(best)) {
            d->seq.store(best_seq, std::memory_order_seq_cst);
            set_bit(scratch_, best);
            continue;
        }
        set_bit(owned_, best);
        return best;
    }
    return std::nullopt;
}

void RingWriter::publish(uint32_t slot, const FrameInfo &info, std::span<const std::byte> meta)
{
    SegmentHeader *h = view_.header();
    SlotDesc *d = view_.desc(slot);
    d->size = info.size;
    d->pts = info.pts;
    d->dts = info.dts;
    d->duration = info.duration;
    d->flags = info.flags;
    d->info_gen = h->info_gen.load(std::memory_order_relaxed);
    d->meta_size = uint32_t(meta.size());
    if (!meta.empty())
        std::memcpy(view_.meta(slot), meta.data(), meta.size());

    const uint64_t seq = next_seq_++;
    d->seq.store(seq, std::memory_order_release);
    view_.pubring(seq)->store(PubEntry::make(seq, slot).raw, std::memory_order_release);
    // seq_cst: pairs with each consumer's waiting flag (RingReader::prepare_wait).
    h->write_seq.store(seq + 1, std::memory_order_seq_cst);
    clear_bit(owned_, slot);
    // Wake once per sleep: a consumer stays marked as sleeping until it
    // runs again, and further wake-ups meanwhile would be system calls for
    // nothing (a hostile number changing all the time costs us at most one
    // per publish).
    bool waiting = false;
    const size_t n = std::min(consumers_.size(), woken_.size());
    for (size_t i = 0; i < n; ++i) {
        const ConsumerShared *c = consumers_[i];
        if (!c)
            continue;
        const uint32_t sleep = c->waiting.load(std::memory_order_seq_cst);
        if (sleep != 0 && sleep != woken_[i]) {
            woken_[i] = sleep;
            waiting = true;
        }
    }
    if (waiting) {
        h->frame_futex.fetch_add(1, std::memory_order_seq_cst);
        futex_wake(&h->frame_futex);
    }
}

void RingWriter::discard(uint32_t slot)
{
    if (!owns(slot))
        return;
    // The old content is stale now; a reader that still finds this slot in
    // the pub ring sees the sequence mismatch and skips it.
    view_.desc(slot)->seq.store(kSeqFree, std::memory_order_seq_cst);
    clear_bit(owned_, slot);
    wake_space();
}

void RingWriter::set_stream_info(std::string_view info)
{
    SegmentHeader *h = view_.header();
    const uint64_t gen = h->info_gen.load(std::memory_order_relaxed) + 1;
    const uint32_t k = uint32_t(gen % kInfoEntries);
    InfoEntry *e = view_.info(k);
    const uint32_t size = uint32_t(std::min<size_t>(info.size(), view_.geometry().info_capacity));
    // Seqlock write, see read_stream_info: the exchange keeps the data
    // stores after it, each data store releases.
    e->gen.exchange(0, std::memory_order_acq_rel);
    AtomicU64 *words = view_.info_words(k);
    for (uint32_t w = 0; w < (size + 7) / 8; ++w) {
        uint64_t v = 0;
        std::memcpy(&v, info.data() + 8 * w, std::min<size_t>(8, size - 8 * w));
        words[w].store(v, std::memory_order_release);
    }
    e->size.store(size, std::memory_order_release);
    e->gen.store(gen, std::memory_order_release);
    h->info_gen.store(gen, std::memory_order_release);
}

void RingWriter::end_of_stream()
{
    ++eos_count_;
    view_.header()->eos_marker.store(EosMarker::make(next_seq_, eos_count_).raw,
                                     std::memory_order_seq_cst);
    view_.header()->frame_futex.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&view_.header()->frame_futex);
}

void RingWriter::close()
{
    view_.header()->producer_state.store(kProducerClosed, std::memory_order_seq_cst);
    view_.header()->frame_futex.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&view_.header()->frame_futex);
}

uint32_t RingWriter::pressure(const ConsumerShared *c) const
{
    if (!c)
        return 0;
    const ConsumerSnapshot s = read_consumer(c, view_.geometry());
    const bool behind = !s.detached && s.policy == Policy::Lossless && s.cursor < next_seq_;
    return s.held + (behind ? view_.geometry().slot_count : 0);
}

void RingWriter::mark_dropped(uint32_t entry)
{
    if (entry >= view_.geometry().max_consumers)
        return;
    view_.drop_word(entry)->fetch_add(1, std::memory_order_seq_cst);
    // A dropped reader may be asleep: wake it so it learns at once.
    view_.header()->frame_futex.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&view_.header()->frame_futex);
}

uint32_t RingWriter::prepare_wait()
{
    // seq_cst: pairs with RingReader::ring_doorbell's load of space_waiting.
    view_.header()->space_waiting.fetch_add(1, std::memory_order_seq_cst);
    return bell_->space_futex.load(std::memory_order_seq_cst);
}

void RingWriter::wait(uint32_t token, int64_t rel_ns) { futex_wait(&bell_->space_futex, token, rel_ns); }

void RingWriter::finish_wait()
{
    view_.header()->space_waiting.fetch_sub(1, std::memory_order_seq_cst);
}

void RingWriter::wake_space()
{
    bell_->space_futex.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&bell_->space_futex);
}

// ---------------------------------------------------------------- reader

RingReader::RingReader(const RingView &view, ConsumerShared *own, Doorbell *bell)
    : view_(view), own_(own), bell_(bell) {}

void RingReader::init(Policy policy, int32_t pid)
{
    const Geometry &g = view_.geometry();
    own_->magic = kConsumerMagic;
    own_->bitmap_words = g.bitmap_words;
    own_->pid = pid;
    own_->attached_realtime_ns = clock_ns(CLOCK_REALTIME);
    own_->released_ns.store(clock_ns(CLOCK_MONOTONIC_COARSE), std::memory_order_relaxed);
    for (uint32_t w = 0; w < g.bitmap_words; ++w)
        held_words(own_)[w].store(0, std::memory_order_relaxed);
    policy_ = policy;
    own_->policy.store(uint32_t(policy), std::memory_order_relaxed);
    own_->received.store(0, std::memory_order_relaxed);
    own_->skipped.store(0, std::memory_order_relaxed);
    own_->waiting.store(0, std::memory_order_relaxed);
    cursor_ = view_.header()->write_seq.load(std::memory_order_seq_cst);
    own_->cursor.store(cursor_, std::memory_order_relaxed);
    own_->state.store(kConsumerActive, std::memory_order_release);
}

void RingReader::join(uint32_t entry, uint64_t start, uint32_t eos_before)
{
    SegmentHeader *h = view_.header();
    entry_ = entry < view_.geometry().max_consumers ? entry : UINT32_MAX;
    if (entry_ != UINT32_MAX)
        drop_gen_ = view_.drop_word(entry_)->load(std::memory_order_seq_cst);
    // Markers published before the producer accepted us are not ours to
    // report; one published since (even before we got here) is.
    eos_seen_ = eos_before & 0xffff;
    // Frames from `start` on were protected by our cursor since the producer
    // accepted us; before init() nothing was. A start outside that range is
    // the producer's bug: take the nearest plausible value.
    cursor_ = std::clamp(start, cursor_, std::max(cursor_, h->write_seq.load(std::memory_order_seq_cst)));
    own_->cursor.store(cursor_, std::memory_order_seq_cst);
}

bool RingReader::dropped() const
{
    return entry_ != UINT32_MAX &&
           view_.drop_word(entry_)->load(std::memory_order_seq_cst) != drop_gen_;
}

void RingReader::leave()
{
    const Geometry &g = view_.geometry();
    for (uint32_t w = 0; w < g.bitmap_words; ++w)
        held_words(own_)[w].store(0, std::memory_order_seq_cst);
    ring_doorbell();
}

void RingReader::detach()
{
    own_->state.store(kConsumerDetached, std::memory_order_seq_cst);
    ring_doorbell();
}

void RingReader::ring_doorbell()
{
    // seq_cst: pairs with RingWriter::prepare_wait. Only a waiting
    // producer is woken, so the common case makes no system call.
    if (view_.header()->space_waiting.load(std::memory_order_seq_cst) == 0)
        return;
    bell_->space_futex.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&bell_->space_futex);
}

RingReader::Poll RingReader::try_next(FrameCopy &out, std::string *why)
{
    const Geometry &g = view_.geometry();
    SegmentHeader *h = view_.header();
    AtomicU64 *held = held_words(own_);

    for (;;) {
        if (dropped())
            return Poll::Dropped;
        // An end-of-stream marker is due once every frame before it is read.
        const EosMarker marker{h->eos_marker.load(std::memory_order_acquire)};
        if (marker.raw != 0 && marker.count() != (eos_seen_ & 0xffff) &&
            (cursor_ & PubEntry::kSeqMask) >= marker.seq()) {
            eos_seen_ = marker.count();
            return Poll::EndOfStream;
        }

        const uint64_t w = h->write_seq.load(std::memory_order_seq_cst);
        if (cursor_ > w) {
            // Ahead of the producer (its counter went back or was garbage
            // before): resynchronise instead of waiting forever.
            cursor_ = w;
            own_->cursor.store(cursor_, std::memory_order_seq_cst);
        }
        if (cursor_ >= w) {
            if (h->producer_state.load(std::memory_order_seq_cst) == kProducerClosed)
                return Poll::Closed;
            return Poll::Empty;
        }
        // Anything older than slot_count frames is gone for sure: jump over
        // it at once rather than one sequence at a time.
        if (w - cursor_ > g.slot_count)
            move_past(w - g.slot_count - 1, w - g.slot_count - cursor_);

        const uint64_t s = policy_ == Policy::Latest ? w - 1 : cursor_;
        const PubEntry e{view_.pubring(s)->load(std::memory_order_acquire)};
        const uint32_t slot = e.slot();
        bool gone = !e.names(s);
        if (!gone && slot >= g.slot_count) {
            ++corrupt_;
            if (why)
                *why = "pub ring names slot " + std::to_string(slot) + " of " +
                       std::to_string(g.slot_count);
            gone = true;
        }
        const uint32_t word = slot / 64;
        const uint64_t bit = 1ull << (slot % 64);
        if (!gone) {
            // Hold first, then check: pairs with RingWriter::try_acquire.
            held[word].fetch_or(bit, std::memory_order_seq_cst);
            if (view_.desc(slot)->seq.load(std::memory_order_seq_cst) != s) {
                held[word].fetch_and(~bit, std::memory_order_seq_cst);
                ring_doorbell();
                gone = true;
            } else if (dropped()) {
                // Our bit no longer protects the slot: the frame is not ours.
                held[word].fetch_and(~bit, std::memory_order_seq_cst);
                return Poll::Dropped;
            }
        }
        if (gone) {
            // Reused before we got it (a latest consumer losing a race, a
            // lossless one joining mid-publication) or unreadable: skip it.
            // A lossless cursor moving on may free a slot the producer waits for.
            move_past(s, s + 1 - cursor_);
            if (policy_ == Policy::Lossless)
                ring_doorbell();
            continue;
        }

        // Copy the descriptor out, then validate the copy.
        const SlotDesc *d = view_.desc(slot);
        out.slot = slot;
        out.seq = s;
        out.info.size = d->size;
        out.info.pts = d->pts;
        out.info.dts = d->dts;
        out.info.duration = d->duration;
        out.info.flags = d->flags;
        out.info_gen = d->info_gen;
        const uint32_t meta_size = d->meta_size;
        if (out.info.size > g.slot_size || meta_size > g.meta_capacity) {
            held[word].fetch_and(~bit, std::memory_order_seq_cst);
            ring_doorbell();
            ++corrupt_;
            if (why)
                *why = "frame " + std::to_string(s) + " claims " + std::to_string(out.info.size) +
                       " bytes and " + std::to_string(meta_size) +
                       " bytes of metadata; slots hold " + std::to_string(g.slot_size) + " and " +
                       std::to_string(g.meta_capacity);
            move_past(s, s + 1 - cursor_);
            continue;
        }
        out.meta.assign(view_.meta(slot), view_.meta(slot) + meta_size);

        // Moving the cursor past s frees nothing a waiting producer could
        // take: we hold s now. Its release rings the doorbell.
        move_past(s, s - cursor_);
        own_->received.store(own_->received.load(std::memory_order_relaxed) + 1,
                             std::memory_order_relaxed);
        return Poll::Frame;
    }
}

void RingReader::move_past(uint64_t seq, uint64_t skipped)
{
    // Only this reader writes its counters: plain load + store suffices.
    if (skipped)
        own_->skipped.store(own_->skipped.load(std::memory_order_relaxed) + skipped,
                            std::memory_order_relaxed);
    cursor_ = seq + 1;
    // seq_cst: the producer's snapshot of cursors (RingWriter::try_acquire).
    own_->cursor.store(cursor_, std::memory_order_seq_cst);
}

void RingReader::release(uint32_t slot)
{
    if (slot >= view_.geometry().slot_count)
        return;
    held_words(own_)[slot / 64].fetch_and(~(1ull << (slot % 64)), std::memory_order_seq_cst);
    // Coarse clock: a few nanoseconds from the vDSO, on a line this
    // consumer writes anyway.
    own_->released_ns.store(clock_ns(CLOCK_MONOTONIC_COARSE), std::memory_order_relaxed);
    ring_doorbell();
}

uint32_t RingReader::prepare_wait()
{
    // seq_cst: pairs with RingWriter::publish's store of write_seq and its
    // scan of waiting words: either it sees this sleep or we see its frame.
    if (++sleep_ == 0)
        sleep_ = 1;
    own_->waiting.store(sleep_, std::memory_order_seq_cst);
    return view_.header()->frame_futex.load(std::memory_order_seq_cst);
}

void RingReader::wait(uint32_t token, int64_t rel_ns)
{
    futex_wait(&view_.header()->frame_futex, token, rel_ns);
}

void RingReader::finish_wait() { own_->waiting.store(0, std::memory_order_relaxed); }

void RingReader::wake_frames() { futex_wake(&view_.header()->frame_futex); }

uint32_t RingReader::held() const
{
    return count_held(own_, view_.geometry());
}

uint64_t RingReader::received() const { return own_->received.load(std::memory_order_relaxed); }
uint64_t RingReader::skipped() const { return own_->skipped.load(std::memory_order_relaxed); }

} // namespace bips::detail
