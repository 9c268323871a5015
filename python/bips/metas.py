# SPDX-License-Identifier: LGPL-2.1-or-later
"""What travels with a frame besides its bytes, as plain Python objects.

A producer publishes, with each frame, regions of interest (a detection's
box, type, id, parent and parameter structures such as its label and
confidence) and custom metas (a name and its fields); every consumer reads
them back: a GStreamer consumer as GstVideoRegionOfInterestMeta and
GstCustomMeta on its buffers, a Python consumer from Frame.regions and
Frame.custom_metas. The library owns the format (lib/include/bips/
framemeta.h); this module only converts between these objects and the
GVariant forms of the Bips-1.0 typelib (bips_frame_get_metas()).

Field values are bool, int, float or str. An int travels as a 32-bit int
when it fits (GStreamer's G_TYPE_INT), else as a 64-bit one; a float as a
double. GStreamer values of other types (a fraction, a list) come to Python
as their serialized text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from ._gi import GLib

__all__ = ["Region", "Fields"]

# A structure's fields: name -> bool, int, float or str.
Fields = Dict[str, Any]


@dataclass
class Region:
    """A region of interest in pixels: (x, y) is its top-left corner.

    `type` names what it is ("person", "face"); `id` identifies it within
    the frame and `parent_id` names the region it belongs to (-1: none).
    `params` maps a structure name to its fields, e.g.
    {"detection": {"label": "person", "confidence": 0.93}}.
    """

    type: str
    x: int
    y: int
    w: int
    h: int
    id: int = 0
    parent_id: int = -1
    params: Dict[str, Fields] = field(default_factory=dict)


_I32 = (-(2**31), 2**31 - 1)
_I64 = (-(2**63), 2**63 - 1)


def _value(name: str, value: Any) -> GLib.Variant:
    # bool first: it is an int too.
    if isinstance(value, bool):
        return GLib.Variant("b", value)
    if isinstance(value, int):
        if _I32[0] <= value <= _I32[1]:
            return GLib.Variant("i", value)
        if _I64[0] <= value <= _I64[1]:
            return GLib.Variant("x", value)
        if 0 <= value < 2**64:
            return GLib.Variant("t", value)
        raise ValueError(f"field {name}: {value} does not fit 64 bits")
    if isinstance(value, float):
        return GLib.Variant("d", value)
    if isinstance(value, str):
        return GLib.Variant("s", value)
    raise TypeError(f"field {name}: a {type(value).__name__} cannot travel; "
                    "use bool, int, float or str")


def _structure(name: str, fields: Mapping[str, Any]):
    return (name, {k: _value(f"{name}.{k}", v) for k, v in fields.items()})


def to_variant(regions: Optional[List[Region]] = None,
               custom: Optional[Mapping[str, Mapping[str, Any]]] = None,
               offset: Optional[int] = None,
               offset_end: Optional[int] = None) -> Optional[GLib.Variant]:
    """The a{sv} that Bips.Producer.publish_with_metas() takes, or None
    when there is nothing to send. Raises TypeError or ValueError for a
    value that cannot travel."""
    d = {}
    if regions:
        d["regions"] = GLib.Variant("a(suuuuiia(sa{sv}))", [
            (r.type, r.x, r.y, r.w, r.h, r.id, r.parent_id,
             [_structure(n, f) for n, f in r.params.items()])
            for r in regions])
    if custom:
        d["custom"] = GLib.Variant("a(sa{sv})", [_structure(n, f) for n, f in custom.items()])
    if offset is not None:
        d["offset"] = GLib.Variant("t", offset)
    if offset_end is not None:
        d["offset-end"] = GLib.Variant("t", offset_end)
    return GLib.Variant("a{sv}", d) if d else None


def _params(structures) -> Dict[str, Fields]:
    out: Dict[str, Fields] = {}
    for name, fields in structures:
        out.setdefault(name, fields)  # the first of a name, as GStreamer finds it
    return out


def regions_from(metas: Dict[str, Any]) -> List[Region]:
    """The regions of an unpacked bips_frame_get_metas()."""
    return [Region(t, x, y, w, h, i, p, _params(params))
            for t, x, y, w, h, i, p, params in metas.get("regions", ())]


def custom_from(metas: Dict[str, Any]) -> Dict[str, Fields]:
    """The custom metas of an unpacked bips_frame_get_metas()."""
    return _params(metas.get("custom", ()))
