// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: GstBipsPool, the buffer pool bipssink proposes to upstream.
#include "gstbipspool.h"

#include <gst/video/video.h>

GST_DEBUG_CATEGORY_STATIC(gst_bips_pool_debug);
#define GST_CAT_DEFAULT gst_bips_pool_debug

namespace {

// How long one wait for a slot lasts before the pool looks at its flushing
// flag again. Flushing is noticed within this time.
constexpr auto kAcquireSlice = std::chrono::milliseconds(20);

} // namespace

struct _GstBipsPool {
    GstBufferPool parent;
    GstBipsAllocator *allocator; // owned ref, set at construction, constant

    // The configuration, written by set_config, which GstBufferPool only
    // allows while the pool is inactive, and read by acquire_buffer, which
    // only runs while it is active: no lock needed.
    guint size;
    gboolean add_video_meta;
    gboolean have_info;
    GstVideoInfo info;
    // Set (atomically) by the first fallback, so its warning is logged once.
    gint warned;
};

G_DEFINE_TYPE(GstBipsPool, gst_bips_pool, GST_TYPE_BUFFER_POOL)

static const gchar **gst_bips_pool_get_options(GstBufferPool *)
{
    static const gchar *options[] = {GST_BUFFER_POOL_OPTION_VIDEO_META, nullptr};
    return options;
}

static gboolean gst_bips_pool_set_config(GstBufferPool *pool, GstStructure *config)
{
    auto *self = GST_BIPS_POOL(pool);
    GstCaps *caps = nullptr;
    guint size = 0, min = 0, max = 0;
    if (!gst_buffer_pool_config_get_params(config, &caps, &size, &min, &max)) {
        GST_WARNING_OBJECT(self, "invalid pool configuration");
        return FALSE;
    }
    self->size = size;
    self->have_info = caps && gst_video_info_from_caps(&self->info, caps);
    self->add_video_meta =
        self->have_info &&
        gst_buffer_pool_config_has_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
    GST_DEBUG_OBJECT(self, "size %u, video meta %d (min %u, max %u are not used: the "
                     "allocator bounds unpublished slots)", size, self->add_video_meta, min,
                     max);
    // Whatever allocator upstream put in the config, memory comes from the
    // channel's: say so, for whoever reads the config back.
    GstAllocationParams params;
    gst_allocation_params_init(&params);
    gst_buffer_pool_config_set_allocator(config, GST_ALLOCATOR_CAST(self->allocator), &params);
    return GST_BUFFER_POOL_CLASS(gst_bips_pool_parent_class)->set_config(pool, config);
}

static gboolean gst_bips_pool_start(GstBufferPool *)
{
    // No preallocation: a buffer holds a slot only between acquire and
    // publish.
    return TRUE;
}

static void add_video_meta(GstBipsPool *self, GstBuffer *buffer)
{
    if (!self->add_video_meta)
        return;
    GstVideoInfo *info = &self->info;
    gst_buffer_add_video_meta_full(buffer, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_INFO_FORMAT(info),
                                   GST_VIDEO_INFO_WIDTH(info), GST_VIDEO_INFO_HEIGHT(info),
                                   GST_VIDEO_INFO_N_PLANES(info), info->offset, info->stride);
}

static GstFlowReturn gst_bips_pool_acquire_buffer(GstBufferPool *pool, GstBuffer **buffer,
                                                  GstBufferPoolAcquireParams *params)
{
    auto *self = GST_BIPS_POOL(pool);
    const bool dontwait = params && (params->flags & GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT);

    for (;;) {
        if (GST_BUFFER_POOL_IS_FLUSHING(pool))
            return GST_FLOW_FLUSHING;

        GstBipsAcquire status;
        std::string error;
        GstMemory *mem = gst_bips_allocator_acquire_slot(
            self->allocator, self->size, GstBipsSlotUser::Upstream,
            dontwait ? std::chrono::nanoseconds::zero() : kAcquireSlice, &status, &error);
        switch (status) {
        case GstBipsAcquire::Ok:
            *buffer = gst_buffer_new();
            gst_buffer_append_memory(*buffer, mem);
            add_video_meta(self, *buffer);
            return GST_FLOW_OK;
        case GstBipsAcquire::Timeout:
            if (dontwait)
                return GST_FLOW_EOS; // GstBufferPool's "nothing available now"
            continue;
        case GstBipsAcquire::Interrupted:
            return GST_FLOW_FLUSHING;
        case GstBipsAcquire::Retired:
        case GstBipsAcquire::TooBig:
            if (g_atomic_int_compare_and_exchange(&self->warned, 0, 1))
                GST_WARNING_OBJECT(self, "%s: handing out system memory, bipssink will copy",
                                   status == GstBipsAcquire::TooBig
                                       ? "buffer size exceeds the slot size"
                                       : "the channel was recreated");
            *buffer = gst_buffer_new_allocate(nullptr, self->size, nullptr);
            if (!*buffer)
                return GST_FLOW_ERROR;
            add_video_meta(self, *buffer);
            return GST_FLOW_OK;
        case GstBipsAcquire::Error:
            GST_ERROR_OBJECT(self, "cannot acquire a slot: %s", error.c_str());
            return GST_FLOW_ERROR;
        }
    }
}

static void gst_bips_pool_reset_buffer(GstBufferPool *, GstBuffer *)
{
    // Nothing to reset: the buffer is freed right after (release_buffer).
}

static void gst_bips_pool_release_buffer(GstBufferPool *pool, GstBuffer *buffer)
{
    // Never recycle (see the header). buffer->pool is already cleared, so
    // this unref really frees the buffer and its memory: an unpublished
    // slot is discarded, a published one is left to the channel.
    GST_BUFFER_POOL_CLASS(gst_bips_pool_parent_class)->free_buffer(pool, buffer);
}

static void gst_bips_pool_finalize(GObject *object)
{
    auto *self = GST_BIPS_POOL(object);
    gst_clear_object(&self->allocator);
    G_OBJECT_CLASS(gst_bips_pool_parent_class)->finalize(object);
}

static void gst_bips_pool_class_init(GstBipsPoolClass *klass)
{
    auto *pool_class = GST_BUFFER_POOL_CLASS(klass);
    G_OBJECT_CLASS(klass)->finalize = gst_bips_pool_finalize;
    pool_class->get_options = gst_bips_pool_get_options;
    pool_class->set_config = gst_bips_pool_set_config;
    pool_class->start = gst_bips_pool_start;
    pool_class->acquire_buffer = gst_bips_pool_acquire_buffer;
    pool_class->reset_buffer = gst_bips_pool_reset_buffer;
    pool_class->release_buffer = gst_bips_pool_release_buffer;
    GST_DEBUG_CATEGORY_INIT(gst_bips_pool_debug, "bipspool", 0, "bips slot buffer pool");
}

static void gst_bips_pool_init(GstBipsPool *self)
{
    gst_video_info_init(&self->info);
}

GstBufferPool *gst_bips_pool_new(GstBipsAllocator *allocator)
{
    auto *self = GST_BIPS_POOL(g_object_new(GST_TYPE_BIPS_POOL, nullptr));
    gst_object_ref_sink(self);
    self->allocator = GST_BIPS_ALLOCATOR(gst_object_ref(allocator));
    return GST_BUFFER_POOL_CAST(self);
}
