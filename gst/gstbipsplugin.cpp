// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: the plugin entry point, registering bipssink and bipssrc.
#include "gstbipssink.h"
#include "gstbipssrc.h"

#include <gst/gst.h>

#define PACKAGE "bips"

static gboolean plugin_init(GstPlugin *plugin)
{
    gboolean ok = FALSE;
    ok |= GST_ELEMENT_REGISTER(bipssink, plugin);
    ok |= GST_ELEMENT_REGISTER(bipssrc, plugin);
    return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, bips,
                  "Zero-copy shared-memory frame channels between processes", plugin_init,
                  BIPS_PLUGIN_VERSION, "LGPL", "bips", "bips project")
