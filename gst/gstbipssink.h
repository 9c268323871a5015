// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: bipssink, which publishes buffers on a shared-memory channel.
#pragma once

#include <gst/base/gstbasesink.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_BIPS_SINK (gst_bips_sink_get_type())
G_DECLARE_FINAL_TYPE(GstBipsSink, gst_bips_sink, GST, BIPS_SINK, GstBaseSink)

GST_ELEMENT_REGISTER_DECLARE(bipssink);

G_END_DECLS
