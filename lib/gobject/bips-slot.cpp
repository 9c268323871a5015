// SPDX-License-Identifier: LGPL-2.1-or-later
// bips GObject facade: BipsSlot, a writable slot acquired from a producer.
#include "bips-private.h"

#include <atomic>

/**
 * BipsSlot:
 *
 * A slot that bips_producer_acquire() handed out: writable shared memory of
 * bips_slot_get_capacity() bytes at bips_slot_get_data_address(). Fill it,
 * then give it back with exactly one bips_producer_publish() or
 * bips_producer_discard().
 *
 * Ownership: the slot holds a reference on its #BipsProducer, so the
 * channel stays mapped (and the memory writable) while the slot object
 * lives. Finalizing a slot that is still pending discards it. Once
 * published, the memory belongs to the channel's consumers: do not write
 * to it any more.
 *
 * Thread-safety: any thread; the pending/published state is atomic, so two
 * threads racing to publish the same slot see one success and one error.
 */

namespace {

enum SlotState : int {
    kPending = 0, // acquired, not yet published or discarded
    kInUse = 1,   // a publish or discard is under way
    kDone = 2,    // published or discarded
};

} // namespace

struct _BipsSlot {
    GObject parent_instance;
    BipsProducer *producer; // strong reference
    bips::WriteSlot *slot;  // owned: new in init, delete in finalize
    std::atomic<int> *state;
};

G_DEFINE_TYPE(BipsSlot, bips_slot, G_TYPE_OBJECT)

static void bips_slot_finalize(GObject *object)
{
    BipsSlot *self = BIPS_SLOT(object);
    if (self->producer) {
        const bool pending = self->state->load(std::memory_order_acquire) == kPending;
        bips_producer_forget_slot(self->producer, *self->slot, pending);
        g_object_unref(self->producer);
        self->producer = nullptr;
    }
    delete self->slot;
    delete self->state;
    G_OBJECT_CLASS(bips_slot_parent_class)->finalize(object);
}

static void bips_slot_class_init(BipsSlotClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = bips_slot_finalize;
}

static void bips_slot_init(BipsSlot *self)
{
    self->producer = nullptr;
    self->slot = new bips::WriteSlot();
    self->state = new std::atomic<int>(kDone);
}

BipsSlot *bips_slot_new_internal(BipsProducer *producer, const bips::WriteSlot &slot)
{
    auto *self = static_cast<BipsSlot *>(g_object_new(BIPS_TYPE_SLOT, nullptr));
    self->producer = static_cast<BipsProducer *>(g_object_ref(producer));
    *self->slot = slot;
    self->state->store(kPending, std::memory_order_release);
    return self;
}

gboolean bips_slot_begin_use(BipsSlot *slot, BipsProducer *producer, bips::WriteSlot *out)
{
    if (slot->producer != producer)
        return FALSE;
    int expected = kPending;
    if (!slot->state->compare_exchange_strong(expected, kInUse, std::memory_order_acq_rel))
        return FALSE;
    *out = *slot->slot;
    return TRUE;
}

void bips_slot_end_use(BipsSlot *slot, gboolean done)
{
    slot->state->store(done ? kDone : kPending, std::memory_order_release);
}

/**
 * bips_slot_get_data_address:
 * @self: a #BipsSlot
 *
 * Where the slot's writable memory is mapped in this process, for bindings
 * that wrap it without a copy.
 *
 * Returns: the address while the slot is pending; 0 once it was published
 *   or discarded
 */
guint64 bips_slot_get_data_address(BipsSlot *self)
{
    g_return_val_if_fail(BIPS_IS_SLOT(self), 0);
    if (self->state->load(std::memory_order_acquire) != kPending)
        return 0;
    return reinterpret_cast<guintptr>(self->slot->data);
}

/**
 * bips_slot_get_capacity:
 * @self: a #BipsSlot
 *
 * How many bytes the slot holds.
 *
 * Returns: the slot's size in bytes (the channel's slot size)
 */
guint64 bips_slot_get_capacity(BipsSlot *self)
{
    g_return_val_if_fail(BIPS_IS_SLOT(self), 0);
    return self->slot->capacity;
}

/**
 * bips_slot_get_index:
 * @self: a #BipsSlot
 *
 * The slot's index in the channel.
 *
 * Returns: the slot's index in the channel
 */
guint bips_slot_get_index(BipsSlot *self)
{
    g_return_val_if_fail(BIPS_IS_SLOT(self), 0);
    return self->slot->index;
}

/**
 * bips_slot_is_pending:
 * @self: a #BipsSlot
 *
 * Whether the slot still waits for publish or discard.
 *
 * Returns: %TRUE while the slot is acquired and neither published nor
 *   discarded
 */
gboolean bips_slot_is_pending(BipsSlot *self)
{
    g_return_val_if_fail(BIPS_IS_SLOT(self), FALSE);
    return self->state->load(std::memory_order_acquire) == kPending;
}
