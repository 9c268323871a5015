// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: the consumer side of a channel.
#pragma once

#include <bips/channel.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>

namespace bips {

namespace detail {
class Attachment;
class ConsumerImpl;
}

struct ConsumerOptions {
    Policy policy = Policy::Lossless;
    // Busy-wait this long for a frame before sleeping on the futex. 0 sleeps
    // at once; a few microseconds trade CPU for wake-up latency.
    std::chrono::nanoseconds spin{0};
    // Wake this long before the next frame is due, judging by the interval
    // between recent frames, and busy-wait for it (for at most twice this
    // long; a frame due sooner is busy-waited for at once). A sleeping core
    // wakes slowly after an idle gap, and waking a sleeping reader costs
    // the producer a system call (tens of microseconds on some virtual
    // machines); this trades up to 2 x anticipate of CPU time per frame for
    // a reader that is awake when the frame lands. 0 disables it.
    std::chrono::nanoseconds anticipate{0};
    // How many frames this consumer may hold at once (Frames not yet
    // released). Each held frame keeps its slot from the producer, so a
    // program that keeps frames (a queue, a batch, a list of NumPy views)
    // would starve the ring: past this limit next() refuses with
    // TooManyHeld instead of taking another slot. 0 takes
    // default_max_held() of the channel's slot count, but at least 2, so
    // that a program may keep the previous frame while it reads the next
    // (`frame = next()` in a loop); kUnlimitedHeld disables the check (the
    // producer's max_wait still bounds the harm).
    uint32_t max_held = 0;
};

inline constexpr uint32_t kUnlimitedHeld = UINT32_MAX;

// The hold limit a consumer gets by default on a channel of `slot_count`
// slots: (slot_count - 2) / 3, at least 1. Two slots stay for the producer
// (the one it writes and the newest frame) and three consumers at their
// limit never take the rest: a 6-slot channel lets each hold 1, the
// default 8 slots 2.
BIPS_EXPORT uint32_t default_max_held(uint32_t slot_count) noexcept;

// A read-only view of one published frame. Move-only; the slot is given back
// when the Frame is released or destroyed, from any thread. The view stays
// valid until then, even if the producer exits or the Consumer is destroyed
// (the Frame keeps the producer's memory mapped).
class BIPS_EXPORT Frame {
public:
    Frame() = default;
    Frame(Frame &&other) noexcept;
    Frame &operator=(Frame &&other) noexcept;
    Frame(const Frame &) = delete;
    Frame &operator=(const Frame &) = delete;
    ~Frame();

    bool valid() const noexcept { return att_ != nullptr; }
    const std::byte *data() const noexcept { return data_; }
    uint64_t size() const noexcept { return info_.size; }
    const FrameInfo &info() const noexcept { return info_; }
    uint64_t sequence() const noexcept { return seq_; }
    uint32_t slot() const noexcept { return slot_; }
    // Per-frame metadata copied out of the slot descriptor (owned here).
    std::span<const std::byte> meta() const noexcept
    {
        return {meta_.data(), meta_.size()};
    }
    // Generation of the stream info this frame was published under.
    uint64_t stream_info_generation() const noexcept { return info_gen_; }

    // Gives the slot back to the producer. Idempotent.
    void release() noexcept;

private:
    friend class detail::ConsumerImpl;
    std::shared_ptr<detail::Attachment> att_;
    const std::byte *data_ = nullptr;
    FrameInfo info_{};
    uint64_t seq_ = 0;
    uint64_t info_gen_ = 0;
    uint32_t slot_ = 0;
    std::basic_string<std::byte> meta_;
};

// Reads one channel. One thread at a time may call next(), reattach(),
// stream_info(), stream_info_generation(), next_due() and info();
// interrupt(), resume(), received(), skipped(), epoch() and data_mapping()
// may be called from any thread as long as no reattach() runs concurrently. Frames may be released
// from any thread, also after the Consumer is destroyed.
class BIPS_EXPORT Consumer {
public:
    // Attaches to `name`, waiting up to `timeout` for a live producer.
    // Errors: InvalidName, Timeout (no producer in time), PermissionDenied,
    // Corrupt, Incompatible, TooManyConsumers, System. The caller owns it.
    static Result<std::unique_ptr<Consumer>> attach(std::string_view name,
                                                    const ConsumerOptions &options,
                                                    std::chrono::nanoseconds timeout);
    ~Consumer();
    Consumer(const Consumer &) = delete;
    Consumer &operator=(const Consumer &) = delete;

    // The next frame for this consumer's policy, waiting up to `timeout`.
    // Errors: Timeout; EndOfStream (once per marker, in order with frames);
    // ProducerGone (the producer exited or died and every frame it
    // published for us has been read, or it dropped this consumer for
    // holding it back longer than its max_wait: call reattach());
    // TooManyHeld (the program already holds max_held frames of this
    // attachment: release one first; nothing is taken). A frame whose
    // descriptor fails validation is skipped and counted in skipped(),
    // never returned.
    Result<Frame> next(std::chrono::nanoseconds timeout);

    // After ProducerGone: waits up to `timeout` for a producer on the same
    // name (a new epoch) and attaches to it. Frames of the old epoch stay
    // valid. Errors as attach().
    Result<void> reattach(std::chrono::nanoseconds timeout);

    // Makes a blocked next()/reattach() return Timeout promptly, and every
    // later one until resume() (for flushing and state changes).
    void interrupt();
    void resume();

    // The stream info of the most recent frame next() returned (before the
    // first frame: the channel's current stream info), and its generation.
    const std::string &stream_info() const;
    uint64_t stream_info_generation() const;

    // When the next frame is expected, for a consumer made with
    // ConsumerOptions::anticipate: the arrival of the last frame next()
    // returned plus the smoothed interval between returned frames (the
    // estimate anticipate wakes by), on steady_clock, which is
    // CLOCK_MONOTONIC on Linux. It may lie in the past when a frame is
    // late. std::nullopt until two frames of the current attachment have
    // arrived (reattach() forgets the pace: another producer may keep
    // another), and always without anticipate, since such a consumer does
    // not time its frames.
    std::optional<std::chrono::steady_clock::time_point> next_due() const;

    const std::string &name() const;
    uint64_t epoch() const;
    Policy policy() const;
    uint64_t received() const; // frames returned by next() (all epochs)
    uint64_t skipped() const;  // frames a latest consumer skipped (all epochs)

    // Channel snapshot of the current attachment.
    ChannelInfo info() const;

    // Where the channel's frame data is mapped in this process (to prove
    // that a frame's data() lies in shared memory).
    std::span<const std::byte> data_mapping() const;

private:
    BIPS_NO_EXPORT explicit Consumer(std::unique_ptr<detail::ConsumerImpl> impl);
    std::unique_ptr<detail::ConsumerImpl> impl_;
};

} // namespace bips
