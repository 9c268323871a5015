# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the scripts in pipelines/: sets `root` and `build`, and points
# GStreamer at the build tree's plugin (build/, or $BIPS_BUILD_DIR) when it
# exists, with a registry of its own; otherwise the installed plugin is used.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BIPS_BUILD_DIR:-$root/build}"
if [[ -f "$build/gst/libgstbips.so" ]]; then
  export GST_PLUGIN_PATH="$build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  export GST_REGISTRY="$build/gst-registry.bin"
fi
