// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: GstStructure <-> bips::MetaStructure, for the metas that carry
// structures (region-of-interest parameters, custom metas).
#pragma once

#include <bips/framemeta.h>
#include <gst/gst.h>

#include <string>

namespace gstbips {

// `s` as a MetaStructure. Fields of GStreamer's fundamental types keep
// their type; any other value travels as its serialized text with its
// type's name. A field whose value GStreamer cannot serialize is left out
// and named in *why (appended). Does not take `s`.
bips::MetaStructure to_meta_structure(const GstStructure *s, std::string *why);

// Sets on `s` (writable, not taken) the fields of `m`, which came from
// another process (names already checked by the codec). A serialized value
// of a type unknown in this process, or whose text does not parse, is left
// out and named in *why (appended).
void set_fields(GstStructure *s, const bips::MetaStructure &m, std::string *why);

// A new structure (owned by the caller) named and filled after `m`; null,
// with *why appended, when its name may not be interned (may_intern()).
GstStructure *to_gst_structure(const bips::MetaStructure &m, std::string *why);

// Whether a name that came from a peer (a structure, field or region
// type name) may become a GQuark here. GLib never frees quarks, so a peer
// that sent new names frame after frame would grow this process without
// end: names this process knows already are always fine, and at most
// kMaxPeerNames new ones are learned from peers; past that a name is
// refused and named in *why (appended). Thread-safe.
bool may_intern(const std::string &name, std::string *why);
inline constexpr unsigned kMaxPeerNames = 4096;

// The custom meta `name`, registered here if no meta of that name exists
// in this process yet (another process named it, so this one may not
// have). Null, with *why set, when the name belongs to something else here
// (a meta that is not custom, any other type) or when this process has
// already registered kMaxRegisteredCustomMetas names for peers: each
// registration is a type that lives until the process exits, so a peer
// must not be able to make them without end. Thread-safe.
const GstMetaInfo *custom_meta_info(const std::string &name, std::string *why);
inline constexpr unsigned kMaxRegisteredCustomMetas = 64;

} // namespace gstbips
