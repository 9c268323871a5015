// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: frame metadata (bips::FrameMeta) as GVariant, both
// ways. The variant forms are documented on bips_frame_get_metas().
#include "bips-private.h"

#include <type_traits>

namespace bips::gobject {

namespace {

GVariant *value_to_variant(const bips::MetaValue &value)
{
    return std::visit(
        [](const auto &v) -> GVariant * {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, bool>)
                return g_variant_new_boolean(v);
            else if constexpr (std::is_same_v<T, int32_t>)
                return g_variant_new_int32(v);
            else if constexpr (std::is_same_v<T, uint32_t>)
                return g_variant_new_uint32(v);
            else if constexpr (std::is_same_v<T, int64_t>)
                return g_variant_new_int64(v);
            else if constexpr (std::is_same_v<T, uint64_t>)
                return g_variant_new_uint64(v);
            else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
                return g_variant_new_double(v);
            else if constexpr (std::is_same_v<T, std::string>)
                return g_variant_new_string(v.c_str()); // UTF-8: the codec checked
            else
                return g_variant_new_string(v.text.c_str()); // GStreamer's text form
        },
        value);
}

// (sa{sv}): a structure's name and fields.
GVariant *structure_to_variant(const bips::MetaStructure &s)
{
    GVariantBuilder fields;
    g_variant_builder_init(&fields, G_VARIANT_TYPE("a{sv}"));
    for (const bips::MetaField &f : s.fields)
        g_variant_builder_add(&fields, "{sv}", f.name.c_str(), value_to_variant(f.value));
    return g_variant_new("(sa{sv})", s.name.c_str(), &fields);
}

GVariant *region_to_variant(const bips::RegionOfInterest &r)
{
    GVariantBuilder params;
    g_variant_builder_init(&params, G_VARIANT_TYPE("a(sa{sv})"));
    for (const bips::MetaStructure &p : r.params)
        g_variant_builder_add_value(&params, structure_to_variant(p));
    return g_variant_new("(suuuuiia(sa{sv}))", r.type.c_str(), r.x, r.y, r.w, r.h, r.id,
                         r.parent_id, &params);
}

// A field value from a variant of one of the basic types; false otherwise.
bool value_from_variant(GVariant *v, bips::MetaValue *out)
{
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN))
        *out = bool(g_variant_get_boolean(v));
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT32))
        *out = int32_t(g_variant_get_int32(v));
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
        *out = uint32_t(g_variant_get_uint32(v));
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT64))
        *out = int64_t(g_variant_get_int64(v));
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
        *out = uint64_t(g_variant_get_uint64(v));
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_DOUBLE))
        *out = g_variant_get_double(v);
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
        *out = std::string(g_variant_get_string(v, nullptr));
    else
        return false;
    return true;
}

bool structure_from_variant(GVariant *v, bips::MetaStructure *out, std::string *why)
{
    const gchar *name = nullptr;
    GVariantIter *iter = nullptr;
    g_variant_get(v, "(&sa{sv})", &name, &iter);
    out->name = name;
    const gchar *field = nullptr;
    GVariant *value = nullptr;
    bool ok = true;
    while (ok && g_variant_iter_next(iter, "{&sv}", &field, &value)) {
        bips::MetaField f{field, {}};
        ok = value_from_variant(value, &f.value);
        if (!ok)
            *why = std::string("field ") + name + "." + field + " is of variant type '" +
                   g_variant_get_type_string(value) + "'; use b, i, u, x, t, d or s";
        else
            out->fields.push_back(std::move(f));
        g_variant_unref(value);
    }
    g_variant_iter_free(iter);
    return ok;
}

bool region_from_variant(GVariant *v, bips::RegionOfInterest *r, std::string *why)
{
    const gchar *type = nullptr;
    GVariantIter *params = nullptr;
    g_variant_get(v, "(&suuuuiia(sa{sv}))", &type, &r->x, &r->y, &r->w, &r->h, &r->id,
                  &r->parent_id, &params);
    r->type = type;
    bool ok = true;
    while (GVariant *p = ok ? g_variant_iter_next_value(params) : nullptr) {
        bips::MetaStructure s;
        ok = structure_from_variant(p, &s, why);
        if (ok)
            r->params.push_back(std::move(s));
        g_variant_unref(p);
    }
    g_variant_iter_free(params);
    return ok;
}

// Reads every child of the array `v` with `read` into `out`; false, with
// *why set by `read`, at the first it cannot.
template <typename T>
bool each_child(GVariant *v, std::vector<T> *out,
                bool (*read)(GVariant *, T *, std::string *), std::string *why)
{
    const gsize n = g_variant_n_children(v);
    bool ok = true;
    for (gsize i = 0; ok && i < n; i++) {
        GVariant *child = g_variant_get_child_value(v, i);
        T item;
        ok = read(child, &item, why);
        if (ok)
            out->push_back(std::move(item));
        g_variant_unref(child);
    }
    return ok;
}

} // namespace

GVariant *video_to_variant(const bips::VideoLayoutMeta &v)
{
    GVariantBuilder offsets, strides;
    g_variant_builder_init(&offsets, G_VARIANT_TYPE("at"));
    g_variant_builder_init(&strides, G_VARIANT_TYPE("ai"));
    for (uint32_t i = 0; i < v.n_planes; i++) {
        g_variant_builder_add(&offsets, "t", guint64(v.offset[i]));
        g_variant_builder_add(&strides, "i", gint32(v.stride[i]));
    }
    return g_variant_new("(suuuatai)", v.format.c_str(), v.flags, v.width, v.height, &offsets,
                         &strides);
}

GVariant *metas_to_variant(const bips::FrameMeta &m)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    if (m.video)
        g_variant_builder_add(&b, "{sv}", "video", video_to_variant(*m.video));
    if (m.offset != bips::kNoOffset)
        g_variant_builder_add(&b, "{sv}", "offset", g_variant_new_uint64(m.offset));
    if (m.offset_end != bips::kNoOffset)
        g_variant_builder_add(&b, "{sv}", "offset-end", g_variant_new_uint64(m.offset_end));
    if (m.producer_latency != bips::kNoTime && m.producer_latency != 0)
        g_variant_builder_add(&b, "{sv}", "producer-latency",
                              g_variant_new_uint64(m.producer_latency));
    if (!m.regions.empty()) {
        GVariantBuilder regions;
        g_variant_builder_init(&regions, G_VARIANT_TYPE("a(suuuuiia(sa{sv}))"));
        for (const bips::RegionOfInterest &r : m.regions)
            g_variant_builder_add_value(&regions, region_to_variant(r));
        g_variant_builder_add(&b, "{sv}", "regions", g_variant_builder_end(&regions));
    }
    if (!m.custom.empty()) {
        GVariantBuilder custom;
        g_variant_builder_init(&custom, G_VARIANT_TYPE("a(sa{sv})"));
        for (const bips::MetaStructure &s : m.custom)
            g_variant_builder_add_value(&custom, structure_to_variant(s));
        g_variant_builder_add(&b, "{sv}", "custom", g_variant_builder_end(&custom));
    }
    return g_variant_builder_end(&b);
}

bool metas_from_variant(GVariant *v, bips::FrameMeta *m, std::string *why)
{
    GVariantIter iter;
    g_variant_iter_init(&iter, v);
    const gchar *key = nullptr;
    GVariant *value = nullptr;
    bool ok = true;
    while (ok && g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
        const std::string k = key;
        const auto is = [value](const char *type) {
            return g_variant_is_of_type(value, G_VARIANT_TYPE(type));
        };
        if ((k == "offset" || k == "offset-end") && is("t")) {
            (k == "offset" ? m->offset : m->offset_end) = g_variant_get_uint64(value);
        } else if (k == "regions" && is("a(suuuuiia(sa{sv}))")) {
            ok = each_child(value, &m->regions, region_from_variant, why);
        } else if (k == "custom" && is("a(sa{sv})")) {
            ok = each_child(value, &m->custom, structure_from_variant, why);
        } else {
            ok = false;
            *why = "metas key '" + k + "' of type '" + g_variant_get_type_string(value) +
                   "' is not one of offset (t), offset-end (t), regions "
                   "(a(suuuuiia(sa{sv}))), custom (a(sa{sv}))";
        }
        g_variant_unref(value);
    }
    return ok;
}

} // namespace bips::gobject
