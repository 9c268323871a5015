// SPDX-License-Identifier: LGPL-2.1-or-later
// Test: the Bips-1.0 GObject facade used from plain C (what the GIR describes).
#include <bips-gobject.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);       \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

static int test_errors(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(BipsConsumer) consumer = bips_consumer_new("no/slash", BIPS_POLICY_LATEST, 0, &error);
    CHECK(consumer == NULL);
    CHECK(g_error_matches(error, BIPS_ERROR, BIPS_ERROR_INVALID_NAME));
    CHECK(strcmp(bips_error_code_name(BIPS_ERROR_INVALID_NAME), "invalid-name") == 0);
    g_clear_error(&error);

    char name[64];
    snprintf(name, sizeof name, "c-test-missing-%d", (int)getpid());
    g_autoptr(BipsConsumer) missing = bips_consumer_new(name, BIPS_POLICY_LOSSLESS, 20, &error);
    CHECK(missing == NULL);
    CHECK(g_error_matches(error, BIPS_ERROR, BIPS_ERROR_TIMEOUT));
    return 0;
}

static int test_round_trip(void)
{
    char name[64];
    snprintf(name, sizeof name, "c-test-%d", (int)getpid());
    g_autoptr(GError) error = NULL;
    g_autoptr(BipsProducer) producer = bips_producer_new(name, 2, 4096, 0600, &error);
    CHECK(producer != NULL && error == NULL);
    CHECK(bips_producer_set_stream_info(producer, "application/x-c-test", &error));
    g_autoptr(BipsConsumer) consumer = bips_consumer_new(name, BIPS_POLICY_LOSSLESS, 1000, &error);
    CHECK(consumer != NULL);
    CHECK(bips_producer_get_consumer_count(producer) == 1);

    g_autoptr(BipsSlot) slot = bips_producer_acquire(producer, 1000, &error);
    CHECK(slot != NULL && bips_slot_get_capacity(slot) == 4096);
    guint8 *bytes = (guint8 *)(guintptr)bips_slot_get_data_address(slot);
    for (int i = 0; i < 100; ++i)
        bytes[i] = (guint8)i;
    CHECK(bips_producer_publish(producer, slot, 100, 5, BIPS_TIME_NONE, BIPS_TIME_NONE, 1,
                                &error));
    CHECK(!bips_producer_publish(producer, slot, 100, 5, 0, 0, 0, &error));
    CHECK(g_error_matches(error, BIPS_ERROR, BIPS_ERROR_INVALID_ARGUMENT));
    g_clear_error(&error);

    g_autoptr(BipsFrame) frame = bips_consumer_next(consumer, 1000, &error);
    CHECK(frame != NULL);
    guint64 address = 0, size = 0;
    CHECK(bips_frame_get_data_region(frame, &address, &size, &error));
    CHECK(size == 100 && bips_frame_get_pts(frame) == 5 && bips_frame_get_flags(frame) == 1);
    CHECK(bips_frame_get_dts(frame) == BIPS_TIME_NONE);
    CHECK(strcmp(bips_frame_get_stream_info(frame), "application/x-c-test") == 0);
    const guint8 *data = (const guint8 *)(guintptr)address;
    for (int i = 0; i < 100; ++i)
        CHECK(data[i] == (guint8)i);
    guint64 map_address = 0, map_size = 0;
    CHECK(bips_consumer_get_data_mapping(consumer, &map_address, &map_size));
    CHECK(map_address <= address && address + size <= map_address + map_size);

    // Closing the consumer and the producer keeps the held frame readable.
    bips_consumer_close(consumer);
    g_clear_object(&slot);
    CHECK(bips_producer_close(producer, &error));
    CHECK(data[99] == 99);
    bips_frame_release(frame);
    CHECK(bips_frame_get_data_address(frame) == 0 && bips_frame_get_size(frame) == 0);
    CHECK(!bips_frame_get_data_region(frame, NULL, NULL, &error));
    g_clear_error(&error);
    CHECK(bips_frame_get_pts(frame) == 5);

    g_autofree gchar *path = bips_channel_path(name);
    g_autofree gchar *suffix = g_strconcat("/bips-", name, NULL);
    CHECK(g_str_has_suffix(path, suffix));
    return 0;
}

// The poll variants that bindings wait through in slices: outcomes in
// values, a wait that runs out is no failure, an interrupted one is.
static int test_poll(void)
{
    char name[64];
    snprintf(name, sizeof name, "c-test-poll-%d", (int)getpid());
    gint code = -1;
    g_autofree gchar *message = NULL;

    g_autoptr(BipsConsumer) consumer =
        g_object_new(BIPS_TYPE_CONSUMER, "name", name, "policy", BIPS_POLICY_LOSSLESS, NULL);
    CHECK(!bips_consumer_poll_attach(consumer, 20, &code, &message));
    CHECK(code == 0 && message != NULL && strstr(message, name) != NULL);
    g_clear_pointer(&message, g_free);

    g_autoptr(GError) error = NULL;
    g_autoptr(BipsProducer) producer = bips_producer_new(name, 2, 64, 0600, &error);
    CHECK(producer != NULL);
    CHECK(bips_consumer_poll_attach(consumer, 1000, &code, &message));
    CHECK(code == 0 && message == NULL);
    CHECK(g_initable_init(G_INITABLE(consumer), NULL, &error));
    CHECK(bips_consumer_poll_attach(consumer, 0, NULL, NULL)); // already attached

    CHECK(bips_consumer_poll_next(consumer, 10, &code, &message) == NULL);
    CHECK(code == 0 && message != NULL);
    g_clear_pointer(&message, g_free);
    bips_consumer_interrupt(consumer);
    CHECK(bips_consumer_poll_next(consumer, 1000, &code, &message) == NULL);
    CHECK(code == BIPS_ERROR_TIMEOUT && message != NULL);
    g_clear_pointer(&message, g_free);
    bips_consumer_resume(consumer);

    for (int i = 0; i < 2; ++i) {
        g_autoptr(BipsSlot) slot = bips_producer_poll_acquire(producer, 0, &code, &message);
        CHECK(slot != NULL && code == 0 && message == NULL);
        CHECK(bips_producer_publish(producer, slot, 8, 0, 0, 0, 0, &error));
    }
    CHECK(bips_producer_poll_acquire(producer, 0, &code, &message) == NULL);
    CHECK(code == BIPS_ERROR_WOULD_BLOCK);
    g_clear_pointer(&message, g_free);
    CHECK(bips_producer_poll_acquire(producer, 10, &code, &message) == NULL);
    CHECK(code == 0 && message != NULL);
    g_clear_pointer(&message, g_free);

    g_autoptr(BipsFrame) frame = bips_consumer_poll_next(consumer, 1000, &code, &message);
    CHECK(frame != NULL && code == 0 && message == NULL && bips_frame_get_size(frame) == 8);
    bips_frame_release(frame);
    CHECK(bips_producer_end_of_stream(producer, &error));
    g_autoptr(BipsFrame) second = bips_consumer_poll_next(consumer, 1000, NULL, NULL);
    CHECK(second != NULL);
    bips_frame_release(second);
    CHECK(bips_consumer_poll_next(consumer, 1000, &code, NULL) == NULL);
    CHECK(code == BIPS_ERROR_END_OF_STREAM);

    CHECK(bips_producer_close(producer, &error));
    CHECK(bips_consumer_poll_next(consumer, 1000, &code, NULL) == NULL);
    CHECK(code == BIPS_ERROR_PRODUCER_GONE);
    CHECK(!bips_consumer_poll_reattach(consumer, 10, &code, &message));
    CHECK(code == 0 && message != NULL);
    g_clear_pointer(&message, g_free);

    bips_consumer_close(consumer);
    CHECK(bips_consumer_poll_next(consumer, 0, &code, &message) == NULL);
    CHECK(code == BIPS_ERROR_INVALID_ARGUMENT && message != NULL);
    CHECK(!bips_consumer_poll_reattach(consumer, 0, &code, NULL));
    CHECK(code == BIPS_ERROR_INVALID_ARGUMENT);
    return 0;
}

int main(void)
{
    if (test_errors() != 0 || test_round_trip() != 0 || test_poll() != 0)
        return 1;
    printf("gobject C API: ok\n");
    return 0;
}
