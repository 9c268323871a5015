// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: the C++ state of bipssrc (consumer, caps tracking, counters).
//
// The streaming side (frames to buffers) is in gstbipssrcstream.cpp.
#include "gstbipssrcstate.h"

#include "gstbipsutils.h"

#include <algorithm>

GST_DEBUG_CATEGORY_EXTERN(gst_bips_src_debug);
#define GST_CAT_DEFAULT gst_bips_src_debug

namespace gstbips {

SrcState::SrcState(GstBaseSrc *src) : src_(src) {}

SrcState::~SrcState()
{
    consumer_.reset();
    drop_copy_pool();
    if (allocator_)
        gst_object_unref(allocator_);
    gst_clear_caps(&caps_);
}

SrcSettings SrcState::snapshot_settings()
{
    ObjectLocker lock(src_);
    return settings;
}

bool SrcState::flushing()
{
    std::lock_guard<std::mutex> guard(mutex_);
    return flushing_;
}

// Starts the `timeout` clock of a wait for a producer.
void SrcState::reset_deadline()
{
    const gint64 ms = snapshot_settings().timeout_ms;
    if (ms < 0)
        deadline_.reset();
    else
        deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
}

bool SrcState::deadline_passed() const
{
    return deadline_ && std::chrono::steady_clock::now() >= *deadline_;
}

// The next wait: one slice, or what is left of the timeout if less.
std::chrono::nanoseconds SrcState::slice() const
{
    std::chrono::nanoseconds s = kSrcWaitSlice;
    if (deadline_) {
        auto left = *deadline_ - std::chrono::steady_clock::now();
        if (left < s)
            s = std::max(std::chrono::nanoseconds::zero(),
                         std::chrono::duration_cast<std::chrono::nanoseconds>(left));
    }
    return s;
}

// Makes `consumer` current and records what queries need from it.
void SrcState::install(std::unique_ptr<bips::Consumer> consumer)
{
    const std::string info = consumer->stream_info();
    const bips::ChannelInfo ci = consumer->info();
    epoch_ = consumer->epoch();
    GST_INFO_OBJECT(src_, "attached to '%s' (epoch %" G_GUINT64_FORMAT ", %u slots, policy %s)",
                    consumer->name().c_str(), consumer->epoch(), ci.slot_count,
                    bips::policy_name(consumer->policy()));
    {
        ObjectLocker lock(src_);
        slot_count_ = ci.slot_count;
        policy_ = consumer->policy();
    }
    auto_max_held_ = bips::default_max_held(ci.slot_count);
    held_warned_ = false;
    record_info(info);
    {
        std::lock_guard<std::mutex> guard(mutex_);
        if (flushing_)
            consumer->interrupt();
        consumer_ = std::move(consumer);
    }
}

// Posts the error for a failed attach/reattach that is not worth waiting
// on. Returns false when the error means "no producer yet" (keep waiting).
bool SrcState::attach_failed(const bips::Error &error, const std::string &channel)
{
    switch (error.code) {
    case bips::Errc::Timeout:
    case bips::Errc::NotFound:
        return false;
    case bips::Errc::PermissionDenied:
        GST_ELEMENT_ERROR(src_, RESOURCE, OPEN_READ, ("%s", error.message.c_str()),
                          ("channel '%s'", channel.c_str()));
        return true;
    case bips::Errc::InvalidName:
    case bips::Errc::InvalidArgument:
        GST_ELEMENT_ERROR(src_, RESOURCE, SETTINGS, ("%s", error.message.c_str()),
                          ("channel '%s'", channel.c_str()));
        return true;
    default:
        GST_ELEMENT_ERROR(src_, RESOURCE, OPEN_READ, ("%s", error.message.c_str()),
                          ("bips error %s on channel '%s'", bips::errc_name(error.code),
                           channel.c_str()));
        return true;
    }
}

bool SrcState::start()
{
    const SrcSettings s = snapshot_settings();
    if (s.channel.empty()) {
        GST_ELEMENT_ERROR(src_, RESOURCE, SETTINGS,
                          ("bipssrc needs a channel name; set channel=NAME (for example "
                           "channel=cam0)"),
                          ("the channel property is empty"));
        return false;
    }
    if (auto valid = bips::validate_channel_name(s.channel); !valid) {
        GST_ELEMENT_ERROR(src_, RESOURCE, SETTINGS, ("%s", valid.error().message.c_str()),
                          ("invalid channel name '%s'", s.channel.c_str()));
        return false;
    }
    received_ = 0;
    skipped_ = 0;
    rejected_ = 0;
    reconnects_ = 0;
    copied_ = 0;
    stats_posted_ = false;
    last_skipped_ = 0;
    skipped_before_ = 0;
    have_last_seq_ = false;
    count_lost_ = false;
    held_warned_ = false;
    last_end_ = GST_CLOCK_TIME_NONE;
    gap_pending_ = false;
    caps_pushed_ = false;
    have_layout_ = false;
    reject_reported_ = false;
    discont_ = true;
    ts_offset_ = 0;
    last_info_.clear();
    {
        std::lock_guard<std::mutex> guard(mutex_);
        flushing_ = false;
    }
    {
        std::lock_guard<std::mutex> guard(mutex_);
        allocator_ = gst_bips_allocator_new_consumer();
    }
    reset_deadline();

    // Attach now if the producer is there, so the caps are known early.
    // Waiting for a producer happens in the streaming thread instead: a
    // state change cannot be interrupted, a streaming thread can.
    bips::ConsumerOptions options;
    options.policy = s.policy;
    options.anticipate = std::chrono::microseconds(s.anticipate_us);
    options.max_held = bips::kUnlimitedHeld; // bipssrc keeps its own limit (max-held)
    auto attached = bips::Consumer::attach(s.channel, options, std::chrono::nanoseconds::zero());
    if (attached) {
        install(std::move(attached.value()));
        return true;
    }
    if (attach_failed(attached.error(), s.channel))
        return false;
    if (s.timeout_ms == 0) {
        GST_ELEMENT_ERROR(src_, RESOURCE, NOT_FOUND,
                          ("no producer on channel '%s'; start the producer first or set "
                           "timeout (milliseconds, -1 = forever) to wait for it",
                           s.channel.c_str()),
                          ("%s", attached.error().message.c_str()));
        return false;
    }
    GST_INFO_OBJECT(src_, "no producer on '%s' yet, waiting in the streaming thread",
                    s.channel.c_str());
    return true;
}

void SrcState::stop()
{
    // A run that ended without EOS (an error, or the application stopping
    // the pipeline) gets its final counters too, while `held` can still be
    // read.
    post_stats();
    std::unique_ptr<bips::Consumer> consumer;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        consumer = std::move(consumer_);
    }
    // Destroying the Consumer detaches it; frames still held downstream
    // keep the mapping and give their slots back when freed.
    consumer.reset();
    GstBipsAllocator *allocator;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        allocator = allocator_;
        allocator_ = nullptr;
    }
    if (allocator)
        gst_object_unref(allocator); // live memories keep their own refs
    drop_copy_pool(); // buffers still downstream keep it until they are freed
    ObjectLocker lock(src_);
    gst_clear_caps(&caps_);
    fps_n_ = 0;
    fps_d_ = 1;
    slot_count_ = 0;
    producer_latency_ = 0;
    have_layout_ = false;
}

GstCaps *parse_stream_info(const std::string &info)
{
    return gst_caps_from_string(info.empty() ? kUnknownCaps : info.c_str());
}

// Records the channel's caps for queries and negotiate(). Takes `caps`.
void SrcState::record_caps(GstCaps *caps)
{
    gint fps_n = 0, fps_d = 1;
    GstStructure *st = gst_caps_is_empty(caps) ? nullptr : gst_caps_get_structure(caps, 0);
    if (st && !gst_structure_get_fraction(st, "framerate", &fps_n, &fps_d))
        fps_n = 0;
    ObjectLocker lock(src_);
    gst_caps_take(&caps_, caps);
    fps_n_ = fps_n;
    fps_d_ = fps_d > 0 ? fps_d : 1;
}

// Records the caps a fresh attachment announces (before its first frame).
// Empty info (a producer between creating the channel and setting its
// caps) and info that does not parse are left to the first frame.
void SrcState::record_info(const std::string &info)
{
    if (info.empty())
        return;
    if (GstCaps *caps = parse_stream_info(info))
        record_caps(caps);
}

bool SrcState::negotiate()
{
    GstCaps *caps = nullptr;
    {
        ObjectLocker lock(src_);
        if (caps_)
            caps = gst_caps_ref(caps_);
    }
    if (!caps)
        return true; // not attached yet: create() sets the caps with the first frame
    bool ok = set_caps(caps, snapshot_settings().channel);
    if (ok && !caps_pushed_) {
        caps_pushed_ = true;
        std::lock_guard<std::mutex> guard(mutex_);
        if (consumer_) {
            last_info_ = consumer_->stream_info();
            last_generation_ = consumer_->stream_info_generation();
        }
    }
    gst_caps_unref(caps);
    return ok;
}

namespace {

// What to put between bipssrc and a downstream that refuses `caps`.
const char *converter_hint(const GstCaps *caps)
{
    const GstStructure *st = gst_caps_is_empty(caps) ? nullptr : gst_caps_get_structure(caps, 0);
    if (st && gst_structure_has_name(st, "video/x-raw"))
        return "add videoconvert (and videoscale for another size) after bipssrc";
    if (st && gst_structure_has_name(st, "audio/x-raw"))
        return "add audioconvert (and audioresample for another rate) after bipssrc";
    return "add a decoder or converter for this media after bipssrc";
}

// Caps for a one-line message: a downstream such as a converter accepts
// dozens of structures, which would bury the rest of the message.
std::string caps_for_message(const GstCaps *caps)
{
    constexpr size_t kMaxChars = 400;
    if (gst_caps_is_empty(caps))
        return "no caps at all (EMPTY)";
    std::string s = caps_to_string(caps);
    if (s.size() > kMaxChars)
        s = s.substr(0, kMaxChars) + " ...";
    return s;
}

} // namespace

// Sends the channel's `caps` (not taken) downstream; on refusal posts an
// error naming the channel, its caps and what downstream accepts, and
// returns false. Streaming thread only.
//
// Downstream is asked first because gst_base_src_set_caps cannot tell:
// the caps event is sticky, so the pad stores it and reports success even
// when the peer refuses it, and the refusal surfaces only at the next
// buffer push, as basesrc's bare "streaming stopped, reason
// not-negotiated". The question is the one the peer's pad asks itself
// before it takes a caps event (ACCEPT_CAPS), so the answers agree.
bool SrcState::set_caps(GstCaps *caps, const std::string &channel)
{
    GstPad *pad = GST_BASE_SRC_PAD(src_);
    // Unlinked: nothing to ask, and nothing to push to (basesrc reports
    // not-linked itself).
    if (gst_pad_is_linked(pad) && !gst_pad_peer_query_accept_caps(pad, caps)) {
        GstCaps *accepted = gst_pad_peer_query_caps(pad, nullptr);
        const std::string theirs =
            accepted ? caps_for_message(accepted) : std::string("nothing (no answer)");
        GST_ELEMENT_ERROR(src_, CORE, NEGOTIATION,
                          ("downstream does not accept the caps of channel '%s': the channel "
                           "carries %s; downstream accepts %s; %s, or change the caps filter "
                           "to match the channel",
                           channel.c_str(), caps_for_message(caps).c_str(), theirs.c_str(),
                           converter_hint(caps)),
                          ("channel caps %" GST_PTR_FORMAT "; downstream accepts %" GST_PTR_FORMAT,
                           static_cast<gpointer>(caps), static_cast<gpointer>(accepted)));
        gst_clear_caps(&accepted);
        return false;
    }
    if (!gst_base_src_set_caps(src_, caps)) {
        GST_ELEMENT_ERROR(src_, CORE, NEGOTIATION,
                          ("cannot send the caps of channel '%s' downstream (is the pipeline "
                           "shutting down?)",
                           channel.c_str()),
                          ("caps %" GST_PTR_FORMAT, static_cast<gpointer>(caps)));
        return false;
    }
    note_layout(caps);
    return true;
}

GstCaps *SrcState::get_caps(GstCaps *filter)
{
    GstCaps *caps = nullptr;
    {
        ObjectLocker lock(src_);
        if (caps_)
            caps = gst_caps_ref(caps_);
    }
    if (!caps)
        caps = gst_pad_get_pad_template_caps(GST_BASE_SRC_PAD(src_));
    if (filter) {
        GstCaps *both = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
        gst_caps_unref(caps);
        caps = both;
    }
    return caps;
}

void SrcState::latency(GstClockTime *min, GstClockTime *max)
{
    ObjectLocker lock(src_);
    // A frame is published up to the producer pipeline's latency after its
    // timestamp (bipssink sends that latency with the frames): a live
    // camera's is about one frame plus its sink's processing deadline.
    // Until a frame told us, assume one frame (from the caps framerate).
    const GstClockTime frame = fps_n_ > 0 ? gst_util_uint64_scale_int(GST_SECOND, fps_d_, fps_n_) : 0;
    *min = std::max(frame, producer_latency_);
    // Lossless: the producer waits for us, nothing is lost however late we
    // are. Latest: frames older than the ring are overwritten.
    if (policy_ == bips::Policy::Latest && frame > 0 && slot_count_ > 1)
        *max = *min + frame * (slot_count_ - 1);
    else
        *max = GST_CLOCK_TIME_NONE;
}

GstFlowReturn SrcState::ensure_attached()
{
    if (consumer_)
        return GST_FLOW_OK;
    const SrcSettings s = snapshot_settings();
    bips::ConsumerOptions options;
    options.policy = s.policy;
    options.anticipate = std::chrono::microseconds(s.anticipate_us);
    options.max_held = bips::kUnlimitedHeld; // bipssrc keeps its own limit (max-held)
    for (;;) {
        if (flushing())
            return GST_FLOW_FLUSHING;
        auto attached = bips::Consumer::attach(s.channel, options, slice());
        if (attached) {
            install(std::move(attached.value()));
            return GST_FLOW_OK;
        }
        if (attach_failed(attached.error(), s.channel))
            return GST_FLOW_ERROR;
        if (deadline_passed()) {
            GST_ELEMENT_ERROR(src_, RESOURCE, NOT_FOUND,
                              ("no producer on channel '%s' after %" G_GINT64_FORMAT " ms; start "
                               "the producer or raise timeout (milliseconds, -1 = forever)",
                               s.channel.c_str(), s.timeout_ms),
                              ("%s", attached.error().message.c_str()));
            return GST_FLOW_ERROR;
        }
    }
}

// After ProducerGone (`why` is the core's reason): waits for a producer on
// the channel again, which is the same one if it only dropped us.
GstFlowReturn SrcState::reattach(const std::string &why)
{
    const SrcSettings s = snapshot_settings();
    if (!s.reconnect) {
        GST_ELEMENT_ERROR(src_, RESOURCE, READ,
                          ("producer of channel '%s' is gone; set reconnect=true to wait for "
                           "it to come back",
                           s.channel.c_str()),
                          ("ProducerGone with reconnect=false: %s", why.c_str()));
        return GST_FLOW_ERROR;
    }
    GST_INFO_OBJECT(src_, "left channel '%s' (%s); waiting for its producer", s.channel.c_str(),
                    why.c_str());
    const uint64_t old_epoch = consumer_->epoch();
    skipped_before_ += consumer_->skipped(); // the new attachment counts from 0
    reset_deadline();
    for (;;) {
        if (flushing())
            return GST_FLOW_FLUSHING;
        auto r = consumer_->reattach(slice());
        if (r) {
            reconnects_++;
            // Every producer has its own epoch: the same one means that the
            // producer is still there and dropped us for holding it back
            // (its max-wait), and the frames in between are lost.
            if (consumer_->epoch() == old_epoch) {
                GST_WARNING_OBJECT(src_, "the producer of '%s' dropped this consumer and frames "
                                   "were lost; read faster or raise max-wait on its "
                                   "bipssink (%s)", s.channel.c_str(), why.c_str());
                // Tell downstream that the time up to the next frame has no
                // data (audio sinks fill it, muxers note it), and count the
                // frames in between as skipped.
                gap_pending_ = true;
                count_lost_ = have_last_seq_;
            }
            new_attachment();
            reject_reported_ = false;
            epoch_ = consumer_->epoch();
            discont_ = true;
            ts_offset_ = 0;
            last_skipped_ = consumer_->skipped();
            const bips::ChannelInfo ci = consumer_->info();
            {
                ObjectLocker lock(src_);
                slot_count_ = ci.slot_count;
            }
            auto_max_held_ = bips::default_max_held(ci.slot_count);
            record_info(consumer_->stream_info());
            // The new producer numbers its stream info afresh: compare the
            // text of the next frame's info instead of its generation.
            last_generation_ = UINT64_MAX;
            GST_INFO_OBJECT(src_, "reattached to '%s' (epoch %" G_GUINT64_FORMAT ")",
                            s.channel.c_str(), consumer_->epoch());
            return GST_FLOW_OK;
        }
        if (attach_failed(r.error(), s.channel))
            return GST_FLOW_ERROR;
        if (deadline_passed()) {
            GST_ELEMENT_ERROR(src_, RESOURCE, READ,
                              ("producer of channel '%s' did not come back within %"
                               G_GINT64_FORMAT " ms; raise timeout (milliseconds, -1 = "
                               "forever) or restart it sooner",
                               s.channel.c_str(), s.timeout_ms),
                              ("%s", r.error().message.c_str()));
            return GST_FLOW_ERROR;
        }
    }
}

// A reattach made a new attachment: count its frames afresh. Frames of the
// old one stay valid (each memory refs the allocator that made it), but the
// producer no longer keeps their slots for us, so they do not count.
void SrcState::new_attachment()
{
    GstBipsAllocator *fresh = gst_bips_allocator_new_consumer();
    GstBipsAllocator *old;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        old = allocator_;
        allocator_ = fresh;
    }
    if (old)
        gst_object_unref(old);
    held_warned_ = false;
}

void SrcState::unlock()
{
    std::lock_guard<std::mutex> guard(mutex_);
    flushing_ = true;
    if (consumer_)
        consumer_->interrupt();
}

void SrcState::unlock_stop()
{
    std::lock_guard<std::mutex> guard(mutex_);
    flushing_ = false;
    if (consumer_)
        consumer_->resume();
}

void SrcState::post_stats()
{
    if (stats_posted_.exchange(true))
        return;
    gst_element_post_message(GST_ELEMENT(src_), gst_message_new_element(GST_OBJECT(src_), stats()));
}

GstStructure *SrcState::stats()
{
    const SrcSettings s = snapshot_settings();
    guint held = 0;
    {
        std::lock_guard<std::mutex> guard(mutex_);
        if (allocator_)
            held = gst_bips_allocator_frames_alive(allocator_);
    }
    const guint max_held = s.max_held ? s.max_held : auto_max_held_.load();
    return gst_structure_new("GstBipsSrcStats", "received", G_TYPE_UINT64, received_.load(),
                             "skipped", G_TYPE_UINT64, skipped_.load(), "rejected",
                             G_TYPE_UINT64, rejected_.load(), "reconnects", G_TYPE_UINT64,
                             reconnects_.load(), "copied", G_TYPE_UINT64, copied_.load(),
                             "held", G_TYPE_UINT, held, "max-held", G_TYPE_UINT, max_held,
                             "epoch", G_TYPE_UINT64, epoch_.load(), "channel", G_TYPE_STRING,
                             s.channel.c_str(), "policy", G_TYPE_STRING,
                             bips::policy_name(s.policy), nullptr);
}

} // namespace gstbips
