// SPDX-License-Identifier: LGPL-2.1-or-later
// bips: channel names, frame metadata and read-only inspection of channels.
#pragma once

#include <bips/result.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bips {

// Waits take a std::chrono::nanoseconds bound; kForever waits until the
// awaited thing happens (internally still in bounded slices, so liveness is
// rechecked), zero means "do not wait".
inline constexpr std::chrono::nanoseconds kForever = std::chrono::nanoseconds::max();

// "No timestamp", the same value as GStreamer's GST_CLOCK_TIME_NONE.
inline constexpr uint64_t kNoTime = UINT64_MAX;

// Frame flags understood by bips itself; the low 16 bits are free for the
// application (bipssink carries GstBufferFlags there).
inline constexpr uint32_t kFrameFlagUserMask = 0xffffu;

// Per-frame metadata published with a slot. Times are opaque 64-bit values
// to the core (bipssink sends absolute clock times in nanoseconds).
struct FrameInfo {
    uint64_t size = 0; // bytes of the slot that hold the frame
    uint64_t pts = kNoTime;
    uint64_t dts = kNoTime;
    uint64_t duration = kNoTime;
    uint32_t flags = 0;
};

// How a consumer reads. Each consumer picks its own on the same channel.
enum class Policy : uint32_t {
    Lossless = 0, // every frame, in order; the producer waits for it
    Latest = 1,   // the newest frame; never slows the producer, counts skips
};

BIPS_EXPORT const char *policy_name(Policy policy) noexcept;

// Checks a channel name: 1 to 200 characters from [A-Za-z0-9._-], not
// starting with '.'. The error message names the offending character.
BIPS_EXPORT Result<void> validate_channel_name(std::string_view name);

// Folder that holds the channels' sockets: $BIPS_DIR if set, else
// /dev/shm. Producers and consumers must agree on it; it is all that
// containers need to share (memory travels over the sockets).
BIPS_EXPORT std::string channel_directory();

// The system's page size (4, 16 or 64 KiB on arm64), read at run time,
// and `bytes` rounded up to a multiple of it. Slots are page aligned.
BIPS_EXPORT uint64_t page_size() noexcept;
BIPS_EXPORT uint64_t round_up_to_page(uint64_t bytes) noexcept;

// Path of the socket of a channel (no validation): <directory>/bips-<name>.
BIPS_EXPORT std::string channel_path(std::string_view name);

// One consumer entry as seen from outside.
struct ConsumerInfo {
    uint32_t index = 0;  // entry in the channel's consumer table
    Policy policy = Policy::Lossless;
    int32_t pid = 0;     // in the consumer's own PID namespace, as it reports it
    int32_t local_pid = 0; // the same process in the caller's PID namespace
                           // (from the kernel); 0 when not visible from here
    bool other_pid_namespace = false; // it runs in another PID namespace
                                      // than the caller
    bool alive = false;  // the producer still serves it (connected, process alive)
    uint64_t received = 0;
    uint64_t skipped = 0;
    uint32_t held = 0;   // frames it holds right now
    uint64_t cursor = 0; // the next sequence it reads (as it reports it)
    uint64_t release_age_ns = 0; // since it last gave a frame back (as it
                                 // reports it; coarse, ~4 ms)
    uint64_t blocking_ns = 0;    // how long the producer has been waiting on
                                 // it (lossless and behind, or holding
                                 // slots, while the producer found no free
                                 // slot); 0 when the producer is not waiting
};

// A snapshot of a channel's header and counters. Any process that may
// connect to the channel's socket can take one; counters are read without
// stopping anyone.
struct ChannelInfo {
    std::string name;
    uint32_t layout_version = 0;
    uint64_t epoch = 0;          // the producer's creation time in microseconds
                                 // (realtime clock): a new producer on the name
                                 // has another, normally greater, epoch
    bool producer_alive = false; // a producer listens on the channel's socket
    bool producer_closed = false;// the producer exited cleanly (seen by its
                                 // consumers; its name is gone by then)
    int32_t producer_pid = 0;    // in the producer's own PID namespace
    int32_t producer_local_pid = 0; // the producer in the caller's PID
                                 // namespace (from the kernel); 0 when not
                                 // visible from here
    bool producer_other_pid_namespace = false; // the producer runs in another
                                 // PID namespace than the caller
    uint32_t mode = 0;           // permission bits of the channel socket
    uint32_t slot_count = 0;
    uint64_t slot_size = 0;
    uint32_t max_consumers = 0;
    uint64_t segment_bytes = 0;  // bytes of the producer's shared memory
    uint64_t published = 0;      // frames published in this epoch
    uint64_t end_of_streams = 0; // end-of-stream markers published
    std::string stream_info;     // the current stream info (caps, format)
    uint64_t producer_waiting_ns = 0; // how long the producer's current wait
                                 // for a free slot has lasted (0 = not waiting)
    uint64_t producer_waited_ns = 0;  // all its waits for free slots, in total
    uint64_t evictions = 0;      // consumers dropped for holding the producer
                                 // back longer than max_wait
    uint64_t eviction_frames = 0;// frames those consumers had not read yet
                                 // when they were dropped
    std::vector<ConsumerInfo> consumers; // attached entries only
};

// Asks a channel's producer for its header and counters (bounded: a
// producer that does not answer within 2 s gives Timeout). A name left by
// a producer that died gives a ChannelInfo with producer_alive false and
// only name and mode set. Errors: NotFound (no such name), Corrupt (the name
// holds something else; the message says what), Incompatible,
// PermissionDenied, Timeout.
BIPS_EXPORT Result<ChannelInfo> inspect_channel(std::string_view name);

// Every channel in channel_directory(). A dead producer's name is listed
// with producer_alive false; names that cannot be read are listed in
// `problems` as "name: message" rather than failing the whole listing.
// Never blocks on what it finds (FIFOs, unresponsive producers).
struct ChannelList {
    std::vector<ChannelInfo> channels;
    std::vector<std::string> problems;
};
BIPS_EXPORT Result<ChannelList> list_channels();

// Removes the names whose producer is dead (and temporary names of
// crashed producers), and nothing else: never a live channel, even one
// that a new producer takes over meanwhile. Returns the names removed.
BIPS_EXPORT Result<std::vector<std::string>> clean_channels();

// Removes channel `name` under the same rule as clean_channels(). true
// when it was removed; false when there was nothing to remove any more
// (someone removed it, or a new producer took the name over meanwhile:
// then it is live and kept). Errors: InvalidName, NotFound (no such name),
// Busy (its producer is live), Corrupt (the name holds something that is
// not a bips socket; the message says what), PermissionDenied.
BIPS_EXPORT Result<bool> clean_channel(std::string_view name);

// What clean_channels() would remove now (channel names, and temporary
// names of crashed producers as they are in the folder), removing nothing.
BIPS_EXPORT Result<std::vector<std::string>> dead_channels();

} // namespace bips
