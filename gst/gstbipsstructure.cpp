// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: GstStructure <-> bips::MetaStructure.
#include "gstbipsstructure.h"

#include <atomic>
#include <mutex>
#include <type_traits>

namespace gstbips {

namespace {

void note(std::string *why, const std::string &what)
{
    if (!why->empty())
        *why += "; ";
    *why += what;
}

// Fills `out` from `v`; false when the value cannot travel.
bool to_meta_value(const GValue *v, bips::MetaValue *out)
{
    const GType type = G_VALUE_TYPE(v);
    switch (type) {
    case G_TYPE_BOOLEAN: *out = bool(g_value_get_boolean(v)); return true;
    case G_TYPE_INT: *out = int32_t(g_value_get_int(v)); return true;
    case G_TYPE_UINT: *out = uint32_t(g_value_get_uint(v)); return true;
    case G_TYPE_INT64: *out = int64_t(g_value_get_int64(v)); return true;
    case G_TYPE_UINT64: *out = uint64_t(g_value_get_uint64(v)); return true;
    case G_TYPE_FLOAT: *out = g_value_get_float(v); return true;
    case G_TYPE_DOUBLE: *out = g_value_get_double(v); return true;
    case G_TYPE_STRING:
        if (const gchar *s = g_value_get_string(v)) {
            *out = std::string(s);
            return true;
        }
        return false; // a NULL string has no text form
    default:
        break;
    }
    gchar *text = gst_value_serialize(v);
    if (!text)
        return false;
    *out = bips::SerializedValue{g_type_name(type), text};
    g_free(text);
    return true;
}

// Whether a serialized value of `type` from a peer may be parsed here:
// only types whose text cannot name new structures or caps (every name
// parsed becomes a GQuark, which is never freed, see may_intern()), i.e.
// numbers and ranges, fractions, dates, bitmasks, flag sets, enums and
// flags, and lists and arrays of plain values (no casts, no nesting).
bool deserializable(GType type, const std::string &text)
{
    if (!type || !G_TYPE_IS_VALUE_TYPE(type) || G_TYPE_IS_ABSTRACT(type))
        return false;
    if (G_TYPE_IS_ENUM(type) || G_TYPE_IS_FLAGS(type))
        return true;
    for (GType plain : {GST_TYPE_FRACTION, GST_TYPE_FRACTION_RANGE, GST_TYPE_INT_RANGE,
                        GST_TYPE_INT64_RANGE, GST_TYPE_DOUBLE_RANGE, GST_TYPE_BITMASK,
                        GST_TYPE_FLAG_SET, GST_TYPE_DATE_TIME, G_TYPE_DATE})
        if (type == plain)
            return true;
    if (type == GST_TYPE_LIST || type == GST_TYPE_ARRAY)
        return text.find_first_of("([\"") == std::string::npos;
    return false;
}

// Initialises `v` (G_VALUE_INIT) from `value`; false when it cannot be
// read here (v is then unset).
bool to_gvalue(const bips::MetaValue &value, GValue *v)
{
    return std::visit(
        [v](const auto &x) -> bool {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, bool>) {
                g_value_init(v, G_TYPE_BOOLEAN), g_value_set_boolean(v, x);
            } else if constexpr (std::is_same_v<T, int32_t>) {
                g_value_init(v, G_TYPE_INT), g_value_set_int(v, x);
            } else if constexpr (std::is_same_v<T, uint32_t>) {
                g_value_init(v, G_TYPE_UINT), g_value_set_uint(v, x);
            } else if constexpr (std::is_same_v<T, int64_t>) {
                g_value_init(v, G_TYPE_INT64), g_value_set_int64(v, x);
            } else if constexpr (std::is_same_v<T, uint64_t>) {
                g_value_init(v, G_TYPE_UINT64), g_value_set_uint64(v, x);
            } else if constexpr (std::is_same_v<T, float>) {
                g_value_init(v, G_TYPE_FLOAT), g_value_set_float(v, x);
            } else if constexpr (std::is_same_v<T, double>) {
                g_value_init(v, G_TYPE_DOUBLE), g_value_set_double(v, x);
            } else if constexpr (std::is_same_v<T, std::string>) {
                g_value_init(v, G_TYPE_STRING), g_value_set_string(v, x.c_str());
            } else {
                const GType type = g_type_from_name(x.type_name.c_str());
                if (!deserializable(type, x.text))
                    return false;
                g_value_init(v, type);
                if (!gst_value_deserialize(v, x.text.c_str())) {
                    g_value_unset(v);
                    return false;
                }
            }
            return true;
        },
        value);
}

} // namespace

bips::MetaStructure to_meta_structure(const GstStructure *s, std::string *why)
{
    bips::MetaStructure m;
    m.name = gst_structure_get_name(s);
    const gint n = gst_structure_n_fields(s);
    for (gint i = 0; i < n; i++) {
        const gchar *field = gst_structure_nth_field_name(s, i);
        bips::MetaField f{field, {}};
        if (to_meta_value(gst_structure_get_value(s, field), &f.value))
            m.fields.push_back(std::move(f));
        else
            note(why, "field " + m.name + "." + field + " has no text form, left out");
    }
    return m;
}

bool may_intern(const std::string &name, std::string *why)
{
    static std::atomic<unsigned> learned{0};
    if (g_quark_try_string(name.c_str()))
        return true;
    unsigned n = learned.load(std::memory_order_relaxed);
    do {
        if (n >= kMaxPeerNames) {
            note(why, "name '" + name + "' left out: " + std::to_string(kMaxPeerNames) +
                          " names unknown to this process have been learned from producers "
                          "already");
            return false;
        }
    } while (!learned.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return true;
}

void set_fields(GstStructure *s, const bips::MetaStructure &m, std::string *why)
{
    for (const bips::MetaField &f : m.fields) {
        if (!may_intern(f.name, why))
            continue;
        GValue v = G_VALUE_INIT;
        if (to_gvalue(f.value, &v))
            gst_structure_take_value(s, f.name.c_str(), &v);
        else
            note(why, "field " + m.name + "." + f.name + " of a type unknown here, left out");
    }
}

GstStructure *to_gst_structure(const bips::MetaStructure &m, std::string *why)
{
    if (!may_intern(m.name, why))
        return nullptr;
    GstStructure *s = gst_structure_new_empty(m.name.c_str());
    set_fields(s, m, why);
    return s;
}

const GstMetaInfo *custom_meta_info(const std::string &name, std::string *why)
{
    static std::mutex lock;
    static unsigned registered = 0;
    std::lock_guard<std::mutex> guard(lock);
    const GstMetaInfo *info = gst_meta_get_info(name.c_str());
    if (!info && !may_intern(name, why))
        return nullptr;
    if (info) {
        if (gst_meta_info_is_custom(info))
            return info;
        note(why, "custom meta " + name + " has the name of another kind of meta here, left out");
        return nullptr;
    }
    // GStreamer names the meta's types `name` and `name`-api; either name
    // taken by another type would make the registration fail.
    const std::string api = name + "-api";
    if (g_type_from_name(name.c_str()) || g_type_from_name(api.c_str())) {
        note(why, "custom meta " + name + " has the name of another type here, left out");
        return nullptr;
    }
    if (registered >= kMaxRegisteredCustomMetas) {
        note(why, "custom meta " + name + " left out: " +
                      std::to_string(kMaxRegisteredCustomMetas) +
                      " custom metas unknown to this process have been registered already");
        return nullptr;
    }
    static const gchar *no_tags[] = {nullptr};
    info = gst_meta_register_custom(name.c_str(), no_tags, nullptr, nullptr, nullptr);
    if (info)
        registered++;
    else
        note(why, "custom meta " + name + " could not be registered, left out");
    return info;
}

} // namespace gstbips
