// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: small RAII helpers shared by the elements.
#pragma once

#include <gst/gst.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

namespace gstbips {

// Holds GST_OBJECT_LOCK of an object for one scope. The object lock guards
// element properties only; never call out (signals, core calls that wait)
// while holding it.
class ObjectLocker {
public:
    explicit ObjectLocker(gpointer object) : object_(GST_OBJECT(object))
    {
        GST_OBJECT_LOCK(object_);
    }
    ~ObjectLocker() { GST_OBJECT_UNLOCK(object_); }
    ObjectLocker(const ObjectLocker &) = delete;
    ObjectLocker &operator=(const ObjectLocker &) = delete;

private:
    GstObject *object_;
};

// A caps string owned by std::string (gst_caps_to_string returns g_malloc'd
// memory).
inline std::string caps_to_string(const GstCaps *caps)
{
    gchar *s = gst_caps_to_string(caps);
    std::string out = s ? s : "";
    g_free(s);
    return out;
}

// Milliseconds of a GstClockTime-like duration, for messages.
inline long long to_ms(std::chrono::nanoseconds d)
{
    return static_cast<long long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// Frame times cross a channel on one time base, CLOCK_MONOTONIC, whatever
// clock each pipeline runs (a realtime system clock, a network clock, an
// audio sink's clock). This is what to add to a time of `clock` to get
// that time base, sampled now (both clocks read back to back): 0 for the
// monotonic system clock, GStreamer's default, or without a clock.
inline int64_t monotonic_offset(GstElement *element)
{
    GstClock *clock = gst_element_get_clock(element);
    if (!clock)
        return 0;
    int64_t offset = 0;
    GstClockType type = GST_CLOCK_TYPE_REALTIME;
    if (GST_IS_SYSTEM_CLOCK(clock))
        g_object_get(clock, "clock-type", &type, nullptr);
    if (!GST_IS_SYSTEM_CLOCK(clock) || type != GST_CLOCK_TYPE_MONOTONIC) {
        const GstClockTime now = gst_clock_get_time(clock);
        timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        const int64_t mono = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
        if (GST_CLOCK_TIME_IS_VALID(now))
            offset = mono - int64_t(now);
    }
    gst_object_unref(clock);
    return offset;
}

// `t` moved by `offset` (see monotonic_offset), none staying none and
// times before the epoch of the target clock clamped to 0.
inline uint64_t shift_time(uint64_t t, int64_t offset, uint64_t none)
{
    if (t == none)
        return none;
    const int64_t v = int64_t(t) + offset;
    return v < 0 ? 0 : uint64_t(v);
}

} // namespace gstbips
