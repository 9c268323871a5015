// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the producer side of a channel.
#pragma once

#include <bips/channel.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>

namespace bips {

// The ranges of ProducerOptions that Producer::create() accepts (it
// refuses others with InvalidArgument naming the range). Bindings and the
// elements take their property ranges from here.
inline constexpr uint32_t kMinSlotCount = 2;
inline constexpr uint32_t kMaxSlotCount = 1024;
inline constexpr uint32_t kMaxConsumerCount = 256;
inline constexpr uint32_t kMaxMetaCapacity = 65536;

struct ProducerOptions {
    uint32_t slot_count = 8;         // kMinSlotCount .. kMaxSlotCount
    uint64_t slot_size = 0;          // bytes per slot, required (> 0)
    uint32_t max_consumers = 16;     // 1 .. kMaxConsumerCount consumer entries
    uint32_t stream_info_capacity = 16384; // bytes of stream info (caps)
    uint32_t meta_capacity = 16384;  // bytes of per-frame metadata, 0 ..
                                     // kMaxMetaCapacity (see <bips/framemeta.h>)
    uint32_t mode = 0600;            // permission bits of the channel socket
    // How long the producer may wait for the consumers that hold it back
    // (lossless readers behind, slots held) before it drops the one that
    // holds it back most; that consumer gets ProducerGone with the reason
    // and may reattach. 0 waits forever (strict lossless).
    std::chrono::nanoseconds max_wait = std::chrono::seconds(2);
};

// A slot handed out by acquire(): writable memory the caller fills and then
// gives back with exactly one publish() or discard(). The struct is a plain
// handle; the Producer tracks ownership, so a second publish of the same
// handle is refused. `data` stays valid while the Producer lives.
struct WriteSlot {
    uint32_t index = UINT32_MAX;
    std::byte *data = nullptr;
    uint64_t capacity = 0;
};

namespace detail {
class ProducerImpl;
}

// Creates and owns one channel. If the channel's previous producer died, the
// new one takes the channel over under a new epoch; consumers re-attach.
//
// Thread-safety: every method may be called from any thread; acquire,
// publish and discard are serialised internally (a blocked acquire does not
// hold the lock, so discard/publish from other threads go on).
class BIPS_EXPORT Producer {
public:
    // Creates channel `name` with the given geometry: its memory (a sealed
    // memfd, all reserved now, so too little memory is a NoSpace error
    // naming the sizes) and its socket in channel_directory(), taking over
    // the name of a producer that died.
    // Errors: InvalidName, InvalidArgument, Busy (a live producer owns the
    // name), NoSpace, PermissionDenied, System. The caller owns the result.
    static Result<std::unique_ptr<Producer>> create(std::string_view name,
                                                    const ProducerOptions &options);

    // Marks the channel closed, wakes every consumer, discards unpublished
    // slots and removes the channel's name (consumers keep their mappings
    // until they let go of their frames).
    ~Producer();
    Producer(const Producer &) = delete;
    Producer &operator=(const Producer &) = delete;

    // Takes a free slot. timeout 0 never blocks (WouldBlock when none is
    // free); otherwise waits up to `timeout` for lossless consumers to catch
    // up (Timeout), reclaiming the slots of consumers that died meanwhile.
    // Errors: WouldBlock, Timeout, and Busy when interrupt() was called.
    Result<WriteSlot> acquire(std::chrono::nanoseconds timeout);

    // Publishes a slot: `info.size` bytes of it, with `meta` (up to
    // meta_capacity bytes) copied into the slot's descriptor. The slot then
    // belongs to the channel. Errors: InvalidArgument (not an acquired slot,
    // size or meta too large).
    Result<void> publish(const WriteSlot &slot, const FrameInfo &info,
                         std::span<const std::byte> meta = {});

    // Gives an acquired slot back unpublished. Unknown slots are ignored.
    void discard(const WriteSlot &slot);

    // Replaces the stream info (caps, format: opaque bytes up to
    // stream_info_capacity). Frames published after this call carry it.
    Result<void> set_stream_info(std::string_view info);

    // Publishes an end-of-stream marker after the frames published so far.
    void end_of_stream();

    // Makes a blocked acquire() return Busy promptly, and every later one
    // until resume(); used for flushing and state changes.
    void interrupt();
    void resume();

    // Consumers that die are dropped (their held slots freed) by the
    // producer's service thread as soon as the kernel reports the death.
    // This waits until every death before the call has been handled and
    // returns how many consumers died since the previous call.
    uint32_t reap_dead_consumers();

    // Why consumers were dropped for holding the producer back longer than
    // max_wait, one message per drop (naming the consumer's entry, pid and
    // what it held), oldest first, since the previous call. The most recent
    // 64 are kept. The caller owns the returned strings.
    std::vector<std::string> take_eviction_reports();

    // Consumers attached now (dead ones reaped first).
    std::vector<ConsumerInfo> consumers();
    // How many consumers are attached; cheap enough to call per frame (it
    // reaps dead consumers at most every 10 ms).
    uint32_t consumer_count();

    // Channel snapshot, the same as inspect_channel() gives other processes.
    ChannelInfo info() const;

    const std::string &name() const;
    uint64_t epoch() const;
    uint32_t slot_count() const;
    uint64_t slot_size() const;
    uint32_t meta_capacity() const; // bytes of metadata a frame may carry
    uint64_t published() const;

    // Writable memory of slot `index` (for allocators that wrap slots).
    std::byte *slot_data(uint32_t index) const;

private:
    BIPS_NO_EXPORT explicit Producer(std::unique_ptr<detail::ProducerImpl> impl);
    std::unique_ptr<detail::ProducerImpl> impl_;
};

} // namespace bips
