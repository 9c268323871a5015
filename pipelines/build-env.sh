# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the scripts in pipelines/: sets `root` and `build`, and points
# GStreamer at the build tree's plugin (build/, or $BIPS_BUILD_DIR) when it
# exists, with a registry of its own, and Python at the build's Bips-1.0
# typelib and the bips package in python/ (what `meson devenv` sets);
# otherwise the installed plugin and package are used.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BIPS_BUILD_DIR:-$root/build}"
if [[ -f "$build/gst/libgstbips.so" ]]; then
  export GST_PLUGIN_PATH="$build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  export GST_REGISTRY="$build/gst-registry.bin"
fi
if [[ -f "$build/lib/gobject/Bips-1.0.typelib" ]]; then
  export GI_TYPELIB_PATH="$build/lib/gobject${GI_TYPELIB_PATH:+:$GI_TYPELIB_PATH}"
  export LD_LIBRARY_PATH="$build/lib/gobject:$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}"
fi
