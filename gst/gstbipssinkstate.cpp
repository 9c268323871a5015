// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: the C++ state of bipssink (producer, allocator, counters, monitor).
//
// The streaming side (render, allocation) is in gstbipssinkrender.cpp.
#include "gstbipssinkstate.h"

#include "gstbipsutils.h"

#include <gst/audio/audio.h>

#include <algorithm>
#include <vector>

GST_DEBUG_CATEGORY_EXTERN(gst_bips_sink_debug);
#define GST_CAT_DEFAULT gst_bips_sink_debug

namespace gstbips {

namespace {

// The monitor thread polls the consumer table this often.
constexpr auto kMonitorPeriod = std::chrono::milliseconds(50);
// How long set_caps waits for the last buffers of an old channel to go
// when the slots must grow.
constexpr auto kRecreateGrace = std::chrono::seconds(1);

// The max-wait property (milliseconds, 0 = forever) as the core's bound.
std::chrono::nanoseconds max_wait_of(guint64 ms)
{
    if (ms == 0)
        return std::chrono::nanoseconds::zero(); // the core's "wait forever"
    return std::chrono::milliseconds(std::min<guint64>(ms, kMaxWaitLimitMs));
}

} // namespace

SinkState::SinkState(GstBaseSink *sink) : sink_(sink) {}

SinkState::~SinkState()
{
    // stop() always ran before finalize (GstBaseSink stops on READY).
    if (monitor_.joinable()) {
        {
            std::lock_guard<std::mutex> guard(mutex_);
            monitor_stop_ = true;
        }
        wake_.notify_all();
        monitor_.join();
    }
    if (allocator_) {
        gst_bips_allocator_retire(allocator_);
        gst_object_unref(allocator_);
    }
}

SinkSettings SinkState::snapshot_settings()
{
    ObjectLocker lock(sink_);
    return settings;
}

bool SinkState::flushing()
{
    std::lock_guard<std::mutex> guard(mutex_);
    return flushing_;
}

bool SinkState::start()
{
    SinkSettings s = snapshot_settings();
    if (s.channel.empty()) {
        GST_ELEMENT_ERROR(sink_, RESOURCE, SETTINGS,
                          ("bipssink needs a channel name; set channel=NAME (for example "
                           "channel=cam0)"),
                          ("the channel property is empty"));
        return false;
    }
    if (auto valid = bips::validate_channel_name(s.channel); !valid) {
        GST_ELEMENT_ERROR(sink_, RESOURCE, SETTINGS, ("%s", valid.error().message.c_str()),
                          ("invalid channel name '%s'", s.channel.c_str()));
        return false;
    }
    published_ = 0;
    zero_copy_ = 0;
    copied_ = 0;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        monitor_stop_ = false;
        flushing_ = false;
    }
    monitor_ = std::thread([this] { monitor_loop(); });
    return true;
}

void SinkState::stop()
{
    if (monitor_.joinable()) {
        {
            std::lock_guard<std::mutex> guard(mutex_);
            monitor_stop_ = true;
        }
        wake_.notify_all();
        monitor_.join();
    }
    drop_producer();
    forget_consumers();
}

// Retires the allocator and lets go of the producer. The Producer (and with
// it the channel's socket) goes away now unless buffers of its slots are
// still alive somewhere; their memories keep it until they are freed.
void SinkState::drop_producer()
{
    GstBipsAllocator *allocator;
    std::shared_ptr<bips::Producer> producer;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        allocator = std::exchange(allocator_, nullptr);
        producer = std::move(producer_);
        slot_count_ = 0;
    }
    if (allocator) {
        gst_bips_allocator_retire(allocator);
        gst_object_unref(allocator);
    }
    // `producer` is released here, outside the lock.
}

bool SinkState::create_producer(const std::string &stream_info, guint64 frame_size)
{
    SinkSettings s = snapshot_settings();
    // Slots are page aligned anyway; a derived size uses the whole pages.
    guint64 slot_size = s.slot_size ? s.slot_size : bips::round_up_to_page(frame_size);
    if (slot_size == 0) {
        GST_ELEMENT_ERROR(sink_, RESOURCE, SETTINGS,
                          ("bipssink cannot derive a slot size for caps '%s'; set slot-size to "
                           "the largest buffer size in bytes",
                           stream_info.empty() ? "(none)" : stream_info.c_str()),
                          ("slot-size is 0 and the caps are not raw video"));
        return false;
    }

    bips::ProducerOptions options;
    options.slot_count = s.slots;
    options.slot_size = slot_size;
    options.meta_capacity = s.meta_size;
    options.mode = s.perms;
    options.max_wait = max_wait_of(s.max_wait_ms);
    options.max_consumers = s.max_consumers;
    auto created = bips::Producer::create(s.channel, options);
    if (!created) {
        const bips::Error &e = created.error();
        switch (e.code) {
        case bips::Errc::Busy:
            GST_ELEMENT_ERROR(sink_, RESOURCE, BUSY,
                              ("channel '%s' already has a live producer; stop it or choose "
                               "another channel name",
                               s.channel.c_str()),
                              ("%s", e.message.c_str()));
            break;
        case bips::Errc::NoSpace:
            GST_ELEMENT_ERROR(sink_, RESOURCE, NO_SPACE_LEFT, ("%s", e.message.c_str()),
                              ("%u slots of %" G_GUINT64_FORMAT " bytes", s.slots, slot_size));
            break;
        case bips::Errc::PermissionDenied:
            GST_ELEMENT_ERROR(sink_, RESOURCE, OPEN_WRITE, ("%s", e.message.c_str()),
                              ("channel '%s'", s.channel.c_str()));
            break;
        case bips::Errc::InvalidName:
        case bips::Errc::InvalidArgument:
            GST_ELEMENT_ERROR(sink_, RESOURCE, SETTINGS, ("%s", e.message.c_str()),
                              ("channel '%s', %u slots of %" G_GUINT64_FORMAT " bytes",
                               s.channel.c_str(), s.slots, slot_size));
            break;
        default:
            GST_ELEMENT_ERROR(sink_, RESOURCE, FAILED, ("%s", e.message.c_str()),
                              ("bips error %s creating channel '%s'", bips::errc_name(e.code),
                               s.channel.c_str()));
            break;
        }
        return false;
    }

    std::shared_ptr<bips::Producer> producer(std::move(created.value()));
    if (auto r = producer->set_stream_info(stream_info); !r) {
        GST_ELEMENT_ERROR(sink_, STREAM, FORMAT, ("%s", r.error().message.c_str()),
                          ("caps '%s'", stream_info.c_str()));
        return false;
    }
    // The pool may pin at most slots - 1 unpublished slots (see DESIGN).
    GstBipsAllocator *allocator = gst_bips_allocator_new_producer(producer, s.slots - 1);
    GST_INFO_OBJECT(sink_, "created channel '%s' (epoch %" G_GUINT64_FORMAT "): %u slots of %"
                    G_GUINT64_FORMAT " bytes", s.channel.c_str(), producer->epoch(), s.slots,
                    slot_size);
    {
        std::lock_guard<std::mutex> guard(mutex_);
        if (flushing_)
            producer->interrupt();
        producer_ = std::move(producer);
        allocator_ = allocator;
        slot_count_ = s.slots;
        channel_generation_++;
    }
    return true;
}

// The slot size to start from when slot-size is 0: raw video's frame size;
// for raw audio 100 ms of samples (buffers are usually 10 to 40 ms); for
// other caps with a width and height (JPEG, encoded video) one byte per
// pixel; else 64 KiB. Buffers that turn out bigger grow the channel
// (grow_for). `exact` tells whether the caps fix the size (raw video).
static guint64 estimate_frame_size(GstCaps *caps, bool *exact)
{
    *exact = false;
    GstStructure *st = caps && !gst_caps_is_empty(caps) ? gst_caps_get_structure(caps, 0) : nullptr;
    if (!st)
        return 64 * 1024;
    GstVideoInfo vinfo;
    if (gst_structure_has_name(st, "video/x-raw") && gst_video_info_from_caps(&vinfo, caps)) {
        *exact = true;
        return GST_VIDEO_INFO_SIZE(&vinfo);
    }
    GstAudioInfo ainfo;
    if (gst_structure_has_name(st, "audio/x-raw") && gst_audio_info_from_caps(&ainfo, caps) &&
        GST_AUDIO_INFO_RATE(&ainfo) > 0 && GST_AUDIO_INFO_BPF(&ainfo) > 0)
        return std::max<guint64>(4096, guint64(GST_AUDIO_INFO_RATE(&ainfo)) *
                                           GST_AUDIO_INFO_BPF(&ainfo) / 10);
    gint width = 0, height = 0;
    if (gst_structure_get_int(st, "width", &width) && gst_structure_get_int(st, "height", &height) &&
        width > 0 && height > 0 && width <= 65536 && height <= 65536)
        return std::max<guint64>(64 * 1024, guint64(width) * guint64(height));
    return 64 * 1024;
}

bool SinkState::set_caps(GstCaps *caps)
{
    const std::string info = caps_to_string(caps);
    bool exact = false;
    const guint64 estimate = estimate_frame_size(caps, &exact);
    // Only raw video says how big every frame is; other streams grow the
    // channel on demand (grow_for) instead of at a caps change.
    const guint64 frame_size = exact ? estimate : 0;
    stream_info_ = info;

    if (!producer_)
        return create_producer(info, estimate);

    if (frame_size <= producer_->slot_size()) {
        // Frames published from now on carry the new caps.
        if (auto r = producer_->set_stream_info(info); !r) {
            GST_ELEMENT_ERROR(sink_, STREAM, FORMAT, ("%s", r.error().message.c_str()),
                              ("caps '%s'", info.c_str()));
            return false;
        }
        GST_DEBUG_OBJECT(sink_, "stream info now %s", info.c_str());
        return true;
    }

    const guint64 configured = snapshot_settings().slot_size;
    const std::string channel = producer_->name();
    if (configured) {
        GST_ELEMENT_ERROR(sink_, STREAM, FORMAT,
                          ("frames of %" G_GUINT64_FORMAT " bytes (caps %s) do not fit the %"
                           G_GUINT64_FORMAT "-byte slots of channel '%s'; set slot-size to at "
                           "least %" G_GUINT64_FORMAT " or 0 to derive it from the caps",
                           frame_size, info.c_str(), producer_->slot_size(), channel.c_str(),
                           frame_size),
                          ("caps change to a bigger frame"));
        return false;
    }

    GST_INFO_OBJECT(sink_, "frame size %" G_GUINT64_FORMAT " exceeds the slots of '%s', "
                    "recreating the channel", frame_size, channel.c_str());
    return recreate_producer(info, frame_size);
}

// Recreates the channel with slots of at least `frame_size` bytes. Consumers
// see the old producer go (after reading what it published) and attach to
// the new one; the new one waits (bounded) until as many consumers are
// back, so that lossless readers lose nothing. Streaming thread.
bool SinkState::recreate_producer(const std::string &info, guint64 frame_size)
{
    const std::string channel = producer_->name();
    const guint consumers_before = producer_->consumer_count();
    std::weak_ptr<bips::Producer> old = producer_;
    drop_producer();
    const auto deadline = std::chrono::steady_clock::now() + kRecreateGrace;
    while (!old.expired() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!old.expired()) {
        GST_ELEMENT_ERROR(sink_, RESOURCE, BUSY,
                          ("cannot resize channel '%s' for caps %s while buffers of the old "
                           "size are still in use upstream; set slot-size to the largest frame "
                           "size (%" G_GUINT64_FORMAT " bytes or more)",
                           channel.c_str(), info.c_str(), frame_size),
                          ("the old producer is still referenced by live GstMemory"));
        return false;
    }
    if (!create_producer(info, frame_size))
        return false;
    // Give the consumers of the old channel time to come over before the
    // first frame, as long as max-wait would have let them hold us up.
    const SinkSettings s = snapshot_settings();
    const auto bound = std::chrono::milliseconds(s.max_wait_ms ? s.max_wait_ms : kMaxWaitLimitMs);
    const auto until = std::chrono::steady_clock::now() + bound;
    while (producer_->consumer_count() < consumers_before &&
           std::chrono::steady_clock::now() < until && !flushing())
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return true;
}

// A buffer of `size` bytes does not fit the slots: with slot-size 0 the
// channel grows (to the buffer, and by half at least, so a stream of
// growing buffers recreates it only a few times); with an explicit
// slot-size it is an error. Streaming thread, before render takes its
// reference to the producer.
bool SinkState::grow_for(gsize size)
{
    const SinkSettings s = snapshot_settings();
    const guint64 slot_size = producer_->slot_size();
    if (s.slot_size != 0) {
        GST_ELEMENT_ERROR(sink_, RESOURCE, NO_SPACE_LEFT,
                          ("buffer of %" G_GSIZE_FORMAT " bytes does not fit the %"
                           G_GUINT64_FORMAT "-byte slots of channel '%s'; set slot-size=%"
                           G_GSIZE_FORMAT " (or larger) on bipssink, or 0 to let the channel grow",
                           size, slot_size, producer_->name().c_str(), size),
                          ("slot-size %" G_GUINT64_FORMAT, s.slot_size));
        return false;
    }
    const guint64 want = std::max<guint64>(size, slot_size + slot_size / 2);
    if (grown_.fetch_add(1) == 0)
        GST_WARNING_OBJECT(sink_, "a buffer of %" G_GSIZE_FORMAT " bytes does not fit the %"
                           G_GUINT64_FORMAT "-byte slots of channel '%s': recreating it with "
                           "slots of %" G_GUINT64_FORMAT " bytes (consumers follow; counted in "
                           "stats as grown; set slot-size to the largest buffer to avoid it)",
                           size, slot_size, producer_->name().c_str(), want);
    else
        GST_INFO_OBJECT(sink_, "growing channel '%s' to %" G_GUINT64_FORMAT "-byte slots",
                        producer_->name().c_str(), want);
    return recreate_producer(stream_info_, want);
}

void SinkState::end_of_stream()
{
    if (producer_)
        producer_->end_of_stream();
}

void SinkState::unlock()
{
    std::lock_guard<std::mutex> guard(mutex_);
    flushing_ = true;
    if (producer_)
        producer_->interrupt();
    wake_.notify_all();
}

void SinkState::unlock_stop()
{
    std::lock_guard<std::mutex> guard(mutex_);
    flushing_ = false;
    if (producer_)
        producer_->resume();
}

guint SinkState::consumers()
{
    std::lock_guard<std::mutex> guard(mutex_);
    return producer_ ? producer_->consumer_count() : 0;
}

GstStructure *SinkState::stats()
{
    guint slots = 0;
    guint64 slot_size = 0, epoch = 0;
    guint consumers = 0;
    std::string channel;
    bips::ChannelInfo info;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        if (producer_) {
            slots = producer_->slot_count();
            slot_size = producer_->slot_size();
            epoch = producer_->epoch();
            channel = producer_->name();
            consumers = producer_->consumer_count();
            info = producer_->info();
        }
    }
    GstStructure *st = gst_structure_new(
        "GstBipsSinkStats", "published", G_TYPE_UINT64, published_.load(), "zero-copy",
        G_TYPE_UINT64, zero_copy_.load(), "copied", G_TYPE_UINT64, copied_.load(), "consumers",
        G_TYPE_UINT, consumers, "channel", G_TYPE_STRING, channel.c_str(), "epoch",
        G_TYPE_UINT64, epoch, "slots", G_TYPE_UINT, slots, "slot-size", G_TYPE_UINT64,
        slot_size, "waited-ns", G_TYPE_UINT64, guint64(info.producer_waited_ns), "waiting-ns",
        G_TYPE_UINT64, guint64(info.producer_waiting_ns), "grown", G_TYPE_UINT64, grown_.load(),
        "evicted", G_TYPE_UINT64,
        guint64(info.evictions), "evicted-frames", G_TYPE_UINT64, guint64(info.eviction_frames),
        nullptr);
    // GstBaseSink's own counters (rendered, dropped, average-rate).
    if (GstStructure *base = gst_base_sink_get_stats(sink_)) {
        gst_structure_foreach(
            base,
            [](GQuark field, const GValue *value, gpointer user_data) -> gboolean {
                gst_structure_id_set_value(static_cast<GstStructure *>(user_data), field, value);
                return TRUE;
            },
            st);
        gst_structure_free(base);
    }
    return st;
}

void SinkState::monitor_loop()
{
    std::unique_lock<std::mutex> lock(mutex_);
    while (!monitor_stop_) {
        lock.unlock();
        poll_consumers();
        lock.lock();
        wake_.wait_for(lock, kMonitorPeriod, [this] { return monitor_stop_; });
    }
}

// Compares the channel's consumer table with what was reported last and
// emits the differences. Monitor thread only.
void SinkState::poll_consumers()
{
    std::set<std::pair<uint32_t, int32_t>> now;
    std::vector<std::string> evicted;
    guint64 generation;
    {
        // Under the lock so that set_caps never sees this thread keep an
        // old Producer alive; consumers() does not wait.
        std::lock_guard<std::mutex> guard(mutex_);
        generation = producer_ ? channel_generation_ : 0;
        if (producer_) {
            for (const bips::ConsumerInfo &c : producer_->consumers())
                now.emplace(c.index, c.pid);
            evicted = producer_->take_eviction_reports();
        }
    }
    // A consumer that held the producer back past max-wait lost its place:
    // the application hears of it on the bus, naming the consumer.
    for (const std::string &why : evicted)
        GST_ELEMENT_WARNING(sink_, RESOURCE, BUSY, ("%s", why.c_str()),
                            ("a consumer held the producer back longer than max-wait (%" G_GUINT64_FORMAT
                             " ms); raise max-wait, or let that consumer read faster or hold fewer "
                             "buffers",
                             snapshot_settings().max_wait_ms));
    if (generation != known_generation_) {
        forget_consumers(); // the channel was recreated: every entry is new
        known_generation_ = generation;
    }
    std::vector<guint> removed, added;
    for (const auto &k : known_)
        if (!now.count(k))
            removed.push_back(k.first);
    for (const auto &k : now)
        if (!known_.count(k))
            added.push_back(k.first);
    if (removed.empty() && added.empty())
        return;
    known_ = std::move(now);
    for (guint index : removed)
        gst_bips_sink_emit_consumer_removed(sink_, index);
    for (guint index : added)
        gst_bips_sink_emit_consumer_added(sink_, index);
    gst_bips_sink_notify_consumers(sink_);
}

// Reports every known consumer as removed (channel gone or recreated).
void SinkState::forget_consumers()
{
    if (known_.empty())
        return;
    auto gone = std::move(known_);
    known_.clear();
    for (const auto &k : gone)
        gst_bips_sink_emit_consumer_removed(sink_, k.first);
    gst_bips_sink_notify_consumers(sink_);
}

} // namespace gstbips
