// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the ring protocol (slot hand-out, publication, reading, reclaim).
#include "ring.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace bips::detail {

namespace {

constexpr uint64_t kSeqMask48 = (1ull << (64 - kPubSlotBits)) - 1;

uint64_t pub_entry(uint64_t seq, uint32_t slot)
{
    return ((seq & kSeqMask48) << kPubSlotBits) | slot;
}

inline void set_bit(std::basic_string<uint64_t> &bits, uint32_t i)
{
    bits[i / 64] |= 1ull << (i % 64);
}
inline void clear_bit(std::basic_string<uint64_t> &bits, uint32_t i)
{
    bits[i / 64] &= ~(1ull << (i % 64));
}
inline bool test_bit(const std::basic_string<uint64_t> &bits, uint32_t i)
{
    return bits[i / 64] & (1ull << (i % 64));
}

} // namespace

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
    InfoEntry *e = view.info(uint32_t(gen % kInfoEntries));
    // Seqlock read: a generation change during the copy means it was
    // overwritten; the entry's size is untrusted and clamped.
    for (int attempt = 0; attempt < 4; ++attempt) {
        uint64_t s1 = e->gen.load(std::memory_order_acquire);
        if (s1 != gen)
            return std::nullopt;
        uint32_t size = std::min(e->size.load(std::memory_order_relaxed), g.info_capacity);
        std::string out(size, '\0');
        std::memcpy(out.data(), view.info_data(uint32_t(gen % kInfoEntries)), size);
        std::atomic_thread_fence(std::memory_order_acquire);
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
    out.end_of_streams = h->eos_marker.load(std::memory_order_acquire) & 0xffff;
    out.producer_closed = h->producer_state.load(std::memory_order_acquire) == kProducerClosed;
    out.stream_info = read_stream_info(view, 0, nullptr).value_or(std::string());
    out.consumers.clear();
    for (uint32_t i = 0; i < g.max_consumers; ++i) {
        ConsumerEntry *c = view.consumer(i);
        if (c->state.load(std::memory_order_acquire) != kConsumerActive)
            continue;
        ConsumerInfo ci;
        ci.index = i;
        ci.policy = c->policy.load(std::memory_order_relaxed) == uint32_t(Policy::Latest)
                        ? Policy::Latest
                        : Policy::Lossless;
        ci.pid = c->pid;
        ci.received = c->received.load(std::memory_order_relaxed);
        ci.skipped = c->skipped.load(std::memory_order_relaxed);
        for (uint32_t w = 0; w < g.bitmap_words; ++w)
            ci.held += uint32_t(std::popcount(view.held(i)[w].load(std::memory_order_relaxed)));
        out.consumers.push_back(ci);
    }
}

// ---------------------------------------------------------------- writer

RingWriter::RingWriter(const RingView &view) : view_(view)
{
    const Geometry &g = view_.geometry();
    next_seq_ = view_.header()->write_seq.load(std::memory_order_acquire);
    eos_count_ = view_.header()->eos_marker.load(std::memory_order_acquire) & 0xffff;
    owned_.assign(g.bitmap_words, 0);
    scratch_.assign(g.bitmap_words, 0);
}

bool RingWriter::owns(uint32_t slot) const
{
    return slot < view_.geometry().slot_count && test_bit(owned_, slot);
}

std::optional<uint32_t> RingWriter::try_acquire()
{
    const Geometry &g = view_.geometry();

    // Snapshot what consumers still need: the oldest unread sequence of any
    // lossless consumer, and the union of every entry's held slots.
    uint64_t min_cursor = UINT64_MAX;
    std::fill(scratch_.begin(), scratch_.end(), 0);
    for (uint32_t i = 0; i < g.max_consumers; ++i) {
        ConsumerEntry *c = view_.consumer(i);
        const uint32_t state = c->state.load(std::memory_order_seq_cst);
        if (state == kConsumerFree)
            continue;
        if (state == kConsumerActive &&
            c->policy.load(std::memory_order_seq_cst) == uint32_t(Policy::Lossless))
            min_cursor = std::min(min_cursor, c->cursor.load(std::memory_order_seq_cst));
        for (uint32_t w = 0; w < g.bitmap_words; ++w)
            scratch_[w] |= view_.held(i)[w].load(std::memory_order_seq_cst);
    }

    // Candidates, best first: the most recent publication nobody needs
    // except the newest frame (its pages are still in the CPU caches, so the
    // producer's working set stays at two or three slots instead of all of
    // them), then a never-used slot, then the newest frame, which is what
    // latest consumers want and so is reused last.
    const uint64_t newest = next_seq_ ? next_seq_ - 1 : kSeqFree;
    for (uint32_t attempt = 0; attempt < g.slot_count; ++attempt) {
        uint32_t recent = UINT32_MAX, unused = UINT32_MAX, latest = UINT32_MAX;
        uint64_t recent_seq = 0;
        for (uint32_t s = 0; s < g.slot_count; ++s) {
            if (test_bit(owned_, s) || test_bit(scratch_, s))
                continue;
            const uint64_t seq = view_.desc(s)->seq.load(std::memory_order_acquire);
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
        const uint64_t best_seq = view_.desc(best)->seq.load(std::memory_order_acquire);

        // Claim, then look again for a consumer that took the slot since the
        // snapshot. Consumers set their bit before checking the sequence, so
        // either we see the bit or they see kSeqWriting.
        SlotDesc *d = view_.desc(best);
        d->seq.store(kSeqWriting, std::memory_order_seq_cst);
        const uint32_t word = best / 64;
        const uint64_t bit = 1ull << (best % 64);
        bool held = false;
        for (uint32_t i = 0; i < g.max_consumers && !held; ++i)
            held = view_.held(i)[word].load(std::memory_order_seq_cst) & bit;
        if (held) {
            d->seq.store(best_seq, std::memory_order_seq_cst);
            scratch_[word] |= bit;
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
    view_.pubring(seq)->store(pub_entry(seq, slot), std::memory_order_release);
    h->write_seq.store(seq + 1, std::memory_order_seq_cst);
    clear_bit(owned_, slot);
    view_.frames().notify();
}

void RingWriter::discard(uint32_t slot)
{
    if (!owns(slot))
        return;
    // The old content is stale now; a reader that still finds this slot in
    // the pub ring sees the sequence mismatch and skips it.
    view_.desc(slot)->seq.store(kSeqFree, std::memory_order_seq_cst);
    clear_bit(owned_, slot);
    view_.space().notify();
}

void RingWriter::set_stream_info(std::string_view info)
{
    SegmentHeader *h = view_.header();
    const uint64_t gen = h->info_gen.load(std::memory_order_relaxed) + 1;
    const uint32_t k = uint32_t(gen % kInfoEntries);
    InfoEntry *e = view_.info(k);
    const uint32_t size = uint32_t(std::min<size_t>(info.size(), view_.geometry().info_capacity));
    e->gen.store(0, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(view_.info_data(k), info.data(), size);
    e->size.store(size, std::memory_order_relaxed);
    e->gen.store(gen, std::memory_order_release);
    h->info_gen.store(gen, std::memory_order_release);
}

void RingWriter::end_of_stream()
{
    ++eos_count_;
    const uint64_t marker = ((next_seq_ & kSeqMask48) << kEosCountBits) | (eos_count_ & 0xffff);
    view_.header()->eos_marker.store(marker, std::memory_order_seq_cst);
    view_.frames().notify();
}

void RingWriter::close()
{
    view_.header()->producer_state.store(kProducerClosed, std::memory_order_seq_cst);
    view_.frames().notify_always();
}

void RingWriter::reclaim_consumer(uint32_t i)
{
    const Geometry &g = view_.geometry();
    if (i >= g.max_consumers)
        return;
    for (uint32_t w = 0; w < g.bitmap_words; ++w)
        view_.held(i)[w].store(0, std::memory_order_seq_cst);
    view_.consumer(i)->state.store(kConsumerFree, std::memory_order_seq_cst);
    view_.space().notify();
}

// ---------------------------------------------------------------- reader

RingReader::RingReader(const RingView &view, uint32_t entry) : view_(view), entry_(entry) {}

void RingReader::join(Policy policy, int32_t pid)
{
    const Geometry &g = view_.geometry();
    SegmentHeader *h = view_.header();
    ConsumerEntry *c = view_.consumer(entry_);
    for (uint32_t w = 0; w < g.bitmap_words; ++w)
        view_.held(entry_)[w].store(0, std::memory_order_relaxed);
    policy_ = policy;
    c->policy.store(uint32_t(policy), std::memory_order_relaxed);
    c->pid = pid;
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->attached_realtime_ns = uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
    c->received.store(0, std::memory_order_relaxed);
    c->skipped.store(0, std::memory_order_relaxed);
    // Markers already published before we joined are not ours to report.
    eos_seen_ = h->eos_marker.load(std::memory_order_acquire) & 0xffff;
    cursor_ = h->write_seq.load(std::memory_order_seq_cst);
    c->cursor.store(cursor_, std::memory_order_seq_cst);
    c->state.store(kConsumerActive, std::memory_order_seq_cst);
}

void RingReader::leave()
{
    const Geometry &g = view_.geometry();
    for (uint32_t w = 0; w < g.bitmap_words; ++w)
        view_.held(entry_)[w].store(0, std::memory_order_seq_cst);
    view_.consumer(entry_)->state.store(kConsumerFree, std::memory_order_seq_cst);
    view_.space().notify();
}

void RingReader::detach()
{
    view_.consumer(entry_)->state.store(kConsumerDetached, std::memory_order_seq_cst);
    view_.space().notify();
}

RingReader::Poll RingReader::try_next(FrameCopy &out, std::string *why)
{
    const Geometry &g = view_.geometry();
    SegmentHeader *h = view_.header();
    ConsumerEntry *c = view_.consumer(entry_);

    for (;;) {
        // An end-of-stream marker is due once every frame before it is read.
        const uint64_t marker = h->eos_marker.load(std::memory_order_acquire);
        if (marker != 0 && (marker & 0xffff) != (eos_seen_ & 0xffff) &&
            (cursor_ & kSeqMask48) >= (marker >> kEosCountBits)) {
            eos_seen_ = marker & 0xffff;
            return Poll::EndOfStream;
        }

        const uint64_t w = h->write_seq.load(std::memory_order_seq_cst);
        if (cursor_ >= w) {
            if (h->producer_state.load(std::memory_order_seq_cst) == kProducerClosed &&
                cursor_ >= h->write_seq.load(std::memory_order_seq_cst))
                return Poll::Closed;
            return Poll::Empty;
        }

        const uint64_t s = policy_ == Policy::Latest ? w - 1 : cursor_;
        const uint64_t e = view_.pubring(s)->load(std::memory_order_acquire);
        uint32_t slot = uint32_t(e & ((1u << kPubSlotBits) - 1));
        bool gone = e == kPubEmpty || (e >> kPubSlotBits) != (s & kSeqMask48);
        if (!gone && slot >= g.slot_count) {
            if (why)
                *why = "pub ring names slot " + std::to_string(slot) + " of " +
                       std::to_string(g.slot_count);
            return Poll::Corrupt;
        }
        const uint32_t word = slot / 64;
        const uint64_t bit = 1ull << (slot % 64);
        if (!gone) {
            // Hold first, then check: pairs with RingWriter::try_acquire.
            view_.held(entry_)[word].fetch_or(bit, std::memory_order_seq_cst);
            if (view_.desc(slot)->seq.load(std::memory_order_seq_cst) != s) {
                view_.held(entry_)[word].fetch_and(~bit, std::memory_order_seq_cst);
                view_.space().notify();
                gone = true;
            }
        }
        if (gone) {
            // The frame was reused before we got it (a latest consumer losing
            // a race, or a lossless one joining mid-publication): skip it.
            move_past(s, s + 1 - cursor_);
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
            view_.held(entry_)[word].fetch_and(~bit, std::memory_order_seq_cst);
            if (why)
                *why = "frame " + std::to_string(s) + " claims " + std::to_string(out.info.size) +
                       " bytes and " + std::to_string(meta_size) + " bytes of metadata; slots hold " +
                       std::to_string(g.slot_size) + " and " + std::to_string(g.meta_capacity);
            return Poll::Corrupt;
        }
        out.meta.assign(view_.meta(slot), view_.meta(slot) + meta_size);

        move_past(s, s - cursor_);
        c->received.store(c->received.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
        if (policy_ == Policy::Lossless)
            view_.space().notify();
        return Poll::Frame;
    }
}

void RingReader::move_past(uint64_t seq, uint64_t skipped)
{
    // Only this reader writes its counters: plain load + store suffices.
    ConsumerEntry *c = view_.consumer(entry_);
    if (skipped)
        c->skipped.store(c->skipped.load(std::memory_order_relaxed) + skipped,
                         std::memory_order_relaxed);
    cursor_ = seq + 1;
    c->cursor.store(cursor_, std::memory_order_seq_cst);
}

void RingReader::release(uint32_t slot)
{
    if (slot >= view_.geometry().slot_count)
        return;
    view_.held(entry_)[slot / 64].fetch_and(~(1ull << (slot % 64)), std::memory_order_seq_cst);
    view_.space().notify();
}

uint64_t RingReader::received() const
{
    return view_.consumer(entry_)->received.load(std::memory_order_relaxed);
}

uint64_t RingReader::skipped() const
{
    return view_.consumer(entry_)->skipped.load(std::memory_order_relaxed);
}

} // namespace bips::detail
