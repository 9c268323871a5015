// SPDX-License-Identifier: LGPL-2.1-or-later
// bips plugin: GstBipsAllocator and GstBipsMemory, GstMemory over channel slots.
#include "gstbipsallocator.h"

#include <atomic>
#include <condition_variable>
#include <mutex>

GST_DEBUG_CATEGORY_STATIC(gst_bips_allocator_debug);
#define GST_CAT_DEFAULT gst_bips_allocator_debug

namespace {

// What a top-level memory owns; sub-memories own nothing.
struct MemoryOwner {
    virtual ~MemoryOwner() = default;
};

struct AllocatorState;

// A slot acquired from a Producer (producer role). `published` changes
// under AllocatorState::lock only.
struct SlotOwner final : MemoryOwner {
    SlotOwner(AllocatorState *s, std::shared_ptr<bips::Producer> p, const bips::WriteSlot &w)
        : state(s), producer(std::move(p)), slot(w) {}
    ~SlotOwner() override;

    AllocatorState *state; // outlived by nothing: the memory refs the allocator
    std::shared_ptr<bips::Producer> producer; // keeps the slot mapped
    bips::WriteSlot slot;
    bool published = false;
};

// A frame of another process (consumer role); releases the slot and then
// drops AllocatorState::frames_alive when the memory is freed.
struct FrameOwner final : MemoryOwner {
    FrameOwner(AllocatorState *s, bips::Frame &&f) : state(s), frame(std::move(f)) {}
    ~FrameOwner() override;

    AllocatorState *state; // outlived by nothing: the memory refs the allocator
    bips::Frame frame;
};

enum class Role { Producer, Consumer };

struct AllocatorState {
    explicit AllocatorState(Role r) : role(r) {}

    const Role role;
    guint max_pending = 0;

    // Guards producer, pending and every SlotOwner::published. Never held
    // while waiting inside the core (Producer::acquire).
    std::mutex lock;
    // Signalled when `pending` drops or the allocator is retired.
    std::condition_variable changed;
    std::shared_ptr<bips::Producer> producer; // null once retired
    guint pending = 0; // slots acquired and not yet published or discarded

    // Consumer role: memories that wrap a frame and are not freed yet, i.e.
    // slots that this allocator's memories keep from the producer. Written
    // from whichever thread wraps or frees a memory; no lock.
    std::atomic<guint> frames_alive{0};
};

FrameOwner::~FrameOwner()
{
    frame.release(); // the slot first, so a count of 0 means none is held
    state->frames_alive.fetch_sub(1, std::memory_order_release);
}

SlotOwner::~SlotOwner()
{
    std::lock_guard<std::mutex> guard(state->lock);
    if (!published) {
        // Upstream dropped the buffer without it reaching bipssink: the
        // slot goes back to the free list (from any thread).
        producer->discard(slot);
        state->pending--;
        state->changed.notify_all();
    }
}

} // namespace

struct GstBipsMemory {
    GstMemory mem;
    guint8 *data;       // start of the slot; constant; shared with sub-memories
    MemoryOwner *owner; // null for sub-memories; deleted with the memory
};

struct _GstBipsAllocator {
    GstAllocator parent;
    AllocatorState *state; // new in the constructors below, delete in finalize
};

G_DEFINE_TYPE(GstBipsAllocator, gst_bips_allocator, GST_TYPE_ALLOCATOR)

static GstBipsMemory *bips_memory_new(GstBipsAllocator *self, GstMemoryFlags flags,
                                      GstMemory *parent, guint8 *data, gsize maxsize,
                                      gsize offset, gsize size, MemoryOwner *owner)
{
    auto *mem = g_new0(GstBipsMemory, 1);
    gst_memory_init(GST_MEMORY_CAST(mem), flags, GST_ALLOCATOR_CAST(self), parent, maxsize,
                    0, offset, size);
    mem->data = data;
    mem->owner = owner;
    return mem;
}

static GstMemory *bips_alloc(GstAllocator *allocator, gsize size, GstAllocationParams *params)
{
    auto *self = GST_BIPS_ALLOCATOR(allocator);
    if (self->state->role != Role::Producer)
        return nullptr;
    if (params && (params->prefix || params->padding)) {
        GST_DEBUG_OBJECT(self, "prefix/padding not supported on channel slots");
        return nullptr;
    }
    // Slots are page aligned, so any GStreamer alignment request holds.
    // Wait in slices until a slot is free, or give up when the channel is
    // flushing or gone; nothing can cancel gst_allocator_alloc otherwise.
    for (;;) {
        GstBipsAcquire status;
        std::string error;
        GstMemory *mem = gst_bips_allocator_acquire_slot(
            self, size, GstBipsSlotUser::Upstream, std::chrono::milliseconds(50), &status, &error);
        if (status == GstBipsAcquire::Ok)
            return mem;
        if (status != GstBipsAcquire::Timeout) {
            GST_DEBUG_OBJECT(self, "no slot for %" G_GSIZE_FORMAT " bytes: %s", size,
                             error.c_str());
            return nullptr;
        }
    }
}

static void bips_free(GstAllocator *, GstMemory *memory)
{
    auto *mem = reinterpret_cast<GstBipsMemory *>(memory);
    delete mem->owner; // discards an unpublished slot or releases a frame
    g_free(mem);
}

static gpointer bips_mem_map(GstMemory *memory, gsize, GstMapFlags)
{
    // The slot stays mapped for the life of the memory: nothing to do. A
    // consumer-role memory is GST_MEMORY_FLAG_READONLY, so gst_memory_map
    // refuses GST_MAP_WRITE before we get here (the pages are PROT_READ).
    return reinterpret_cast<GstBipsMemory *>(memory)->data;
}

static void bips_mem_unmap(GstMemory *) {}

static GstMemory *bips_mem_share(GstMemory *memory, gssize offset, gssize size)
{
    auto *mem = reinterpret_cast<GstBipsMemory *>(memory);
    GstMemory *parent = memory->parent ? memory->parent : memory;
    if (size == -1)
        size = static_cast<gssize>(memory->size) - offset;
    // Shares are read-only (as gst_memory_share promises) and ref the
    // top-level memory, which keeps the slot.
    auto flags = static_cast<GstMemoryFlags>(GST_MINI_OBJECT_FLAGS(parent) |
                                             GST_MINI_OBJECT_FLAG_LOCK_READONLY);
    GstBipsMemory *sub = bips_memory_new(GST_BIPS_ALLOCATOR(memory->allocator), flags, parent,
                                         mem->data, memory->maxsize,
                                         memory->offset + offset, size, nullptr);
    return GST_MEMORY_CAST(sub);
}

static gboolean bips_mem_is_span(GstMemory *mem1, GstMemory *mem2, gsize *offset)
{
    // gst_memory_is_span already checked that both share the same parent.
    if (offset)
        *offset = mem1->offset - mem1->parent->offset;
    return mem1->offset + mem1->size == mem2->offset;
}

static void gst_bips_allocator_finalize(GObject *object)
{
    auto *self = GST_BIPS_ALLOCATOR(object);
    delete self->state;
    self->state = nullptr;
    G_OBJECT_CLASS(gst_bips_allocator_parent_class)->finalize(object);
}

static void gst_bips_allocator_class_init(GstBipsAllocatorClass *klass)
{
    auto *allocator_class = GST_ALLOCATOR_CLASS(klass);
    allocator_class->alloc = bips_alloc;
    allocator_class->free = bips_free;
    G_OBJECT_CLASS(klass)->finalize = gst_bips_allocator_finalize;
    GST_DEBUG_CATEGORY_INIT(gst_bips_allocator_debug, "bipsallocator", 0,
                            "bips shared-memory slot allocator");
}

static void gst_bips_allocator_init(GstBipsAllocator *self)
{
    auto *alloc = GST_ALLOCATOR_CAST(self);
    alloc->mem_type = GST_BIPS_MEMORY_TYPE;
    alloc->mem_map = bips_mem_map;
    alloc->mem_unmap = bips_mem_unmap;
    alloc->mem_share = bips_mem_share;
    alloc->mem_is_span = bips_mem_is_span;
    // mem_copy keeps GStreamer's fallback: a copy lands in system memory,
    // never in a slot.
    GST_OBJECT_FLAG_SET(self, GST_ALLOCATOR_FLAG_CUSTOM_ALLOC);
}

static GstBipsAllocator *new_allocator(AllocatorState *state)
{
    auto *self = GST_BIPS_ALLOCATOR(g_object_new(GST_TYPE_BIPS_ALLOCATOR, nullptr));
    gst_object_ref_sink(self);
    self->state = state;
    return self;
}

GstBipsAllocator *gst_bips_allocator_new_producer(std::shared_ptr<bips::Producer> producer,
                                                  guint max_pending)
{
    auto *state = new AllocatorState(Role::Producer);
    state->producer = std::move(producer);
    state->max_pending = max_pending ? max_pending : 1;
    return new_allocator(state);
}

GstBipsAllocator *gst_bips_allocator_new_consumer()
{
    return new_allocator(new AllocatorState(Role::Consumer));
}

gboolean gst_is_bips_memory(GstMemory *mem)
{
    return mem && mem->allocator && GST_IS_BIPS_ALLOCATOR(mem->allocator);
}

GstMemory *gst_bips_allocator_acquire_slot(GstBipsAllocator *self, gsize size,
                                           GstBipsSlotUser user,
                                           std::chrono::nanoseconds timeout,
                                           GstBipsAcquire *status, std::string *error)
{
    AllocatorState *s = self->state;
    std::shared_ptr<bips::Producer> producer;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    {
        std::unique_lock<std::mutex> lock(s->lock);
        if (s->role != Role::Producer || !s->producer) {
            *status = GstBipsAcquire::Retired;
            return nullptr;
        }
        if (size > s->producer->slot_size()) {
            *status = GstBipsAcquire::TooBig;
            return nullptr;
        }
        const bool bounded = user == GstBipsSlotUser::Upstream;
        while (bounded && s->producer && s->pending >= s->max_pending) {
            if (s->changed.wait_until(lock, deadline) == std::cv_status::timeout &&
                s->pending >= s->max_pending) {
                *status = GstBipsAcquire::Timeout;
                return nullptr;
            }
        }
        if (!s->producer) {
            *status = GstBipsAcquire::Retired;
            return nullptr;
        }
        producer = s->producer;
        s->pending++; // reserved; undone below if the core has no slot
    }

    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left < std::chrono::nanoseconds::zero())
        left = std::chrono::nanoseconds::zero();
    auto slot = producer->acquire(left);
    if (!slot) {
        {
            std::lock_guard<std::mutex> guard(s->lock);
            s->pending--;
            s->changed.notify_all();
        }
        switch (slot.code()) {
        case bips::Errc::Timeout:
        case bips::Errc::WouldBlock:
            *status = GstBipsAcquire::Timeout;
            break;
        case bips::Errc::Busy:
            *status = GstBipsAcquire::Interrupted;
            break;
        default:
            *status = GstBipsAcquire::Error;
            if (error)
                *error = slot.error().message;
            break;
        }
        return nullptr;
    }

    const bips::WriteSlot &w = slot.value();
    auto *owner = new SlotOwner(s, producer, w);
    GstBipsMemory *mem = bips_memory_new(self, static_cast<GstMemoryFlags>(0), nullptr,
                                         reinterpret_cast<guint8 *>(w.data), w.capacity, 0,
                                         size, owner);
    *status = GstBipsAcquire::Ok;
    return GST_MEMORY_CAST(mem);
}

// The slot owner of `mem` if it is an unpublished top-level slot memory of
// this allocator's current channel. Caller holds state->lock.
static SlotOwner *publishable_owner(GstBipsAllocator *self, GstMemory *mem)
{
    AllocatorState *s = self->state;
    if (s->role != Role::Producer || !s->producer)
        return nullptr;
    if (mem->allocator != GST_ALLOCATOR_CAST(self) || mem->parent || mem->offset != 0)
        return nullptr;
    auto *owner = dynamic_cast<SlotOwner *>(reinterpret_cast<GstBipsMemory *>(mem)->owner);
    if (!owner || owner->published || owner->producer != s->producer)
        return nullptr;
    return owner;
}

bool gst_bips_allocator_can_publish(GstBipsAllocator *self, GstMemory *mem)
{
    std::lock_guard<std::mutex> guard(self->state->lock);
    return publishable_owner(self, mem) != nullptr;
}

bips::Result<void> gst_bips_allocator_publish(GstBipsAllocator *self, GstMemory *mem,
                                              const bips::FrameInfo &info,
                                              std::span<const std::byte> meta)
{
    AllocatorState *s = self->state;
    std::lock_guard<std::mutex> guard(s->lock);
    SlotOwner *owner = publishable_owner(self, mem);
    if (!owner)
        return bips::make_error(bips::Errc::InvalidArgument,
                                "memory is not an unpublished slot of this channel");
    // publish() does not wait, so holding the lock here is short; it makes
    // "published" and the pending count change together with the slot's
    // hand-over.
    auto result = owner->producer->publish(owner->slot, info, meta);
    if (result) {
        owner->published = true;
        s->pending--;
        s->changed.notify_all();
    }
    return result;
}

void gst_bips_allocator_retire(GstBipsAllocator *self)
{
    AllocatorState *s = self->state;
    std::lock_guard<std::mutex> guard(s->lock);
    s->producer.reset();
    s->changed.notify_all();
}

GstMemory *gst_bips_allocator_wrap_frame(GstBipsAllocator *self, bips::Frame &&frame)
{
    g_return_val_if_fail(self->state->role == Role::Consumer, nullptr);
    auto size = static_cast<gsize>(frame.size());
    // The data is const in the core (mapped PROT_READ); GstMemory has no
    // const pointer, and the READONLY flag makes sure nobody writes to it.
    auto *data = reinterpret_cast<guint8 *>(const_cast<std::byte *>(frame.data()));
    self->state->frames_alive.fetch_add(1, std::memory_order_relaxed);
    auto *owner = new FrameOwner(self->state, std::move(frame));
    GstBipsMemory *mem = bips_memory_new(self, GST_MEMORY_FLAG_READONLY, nullptr, data, size, 0,
                                         size, owner);
    return GST_MEMORY_CAST(mem);
}

guint gst_bips_allocator_frames_alive(GstBipsAllocator *self)
{
    return self->state->frames_alive.load(std::memory_order_acquire);
}
