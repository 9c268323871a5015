// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: bipssrc, which reads frames of a shared-memory channel without copying.
#pragma once

#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_BIPS_SRC (gst_bips_src_get_type())
G_DECLARE_FINAL_TYPE(GstBipsSrc, gst_bips_src, GST, BIPS_SRC, GstPushSrc)

// How a bipssrc reads the channel (mirrors bips::Policy).
typedef enum {
    GST_BIPS_POLICY_LOSSLESS = 0,
    GST_BIPS_POLICY_LATEST = 1,
} GstBipsPolicy;

#define GST_TYPE_BIPS_POLICY (gst_bips_policy_get_type())
GType gst_bips_policy_get_type(void);

GST_ELEMENT_REGISTER_DECLARE(bipssrc);

G_END_DECLS
