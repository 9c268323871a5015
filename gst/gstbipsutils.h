// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: small RAII helpers shared by the elements.
#pragma once

#include <gst/gst.h>

#include <chrono>
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

} // namespace gstbips
