/*
 * check.h: the small toolkit the C API test programs share (the .c files next to it, compiled and run by
 * ffi/tests/c_api.rs, natively and under valgrind).
 *
 *  - CHECK(expr) / CHECK_STATUS(call, expected) / CHECK_OK(call): on failure, print file:line,
 *    the expression, the status names and lp_last_error_message(), then exit(1).
 *  - gate: a latch a test opens to let blocked tasks finish (mutex + condition variable), with a
 *    count of the tasks that entered it, so a test knows "the worker is now busy" without sleeping.
 *  - counter: an atomic per-userdata record of how often a task ran and its drop_userdata ran.
 *  - time helpers (monotonic milliseconds) and lp_test_scale(): 1 normally, larger when the harness
 *    sets LP_TEST_SLOW=1 (under valgrind), for the few tests where time itself is the subject.
 *
 * Every helper is `static` so each program is one translation unit; unused ones are marked
 * LP_TEST_UNUSED to keep -Wall -Wextra -Werror quiet.
 */
#ifndef LP_TEST_CHECK_H
#define LP_TEST_CHECK_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leasepool.h"

#if defined(__GNUC__)
#define LP_TEST_UNUSED __attribute__((unused))
#else
#define LP_TEST_UNUSED
#endif

#define CHECK(expr)                                                                               \
    do {                                                                                          \
        if (!(expr)) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n  lp_last_error_message: \"%s\"\n", __FILE__, \
                    __LINE__, #expr, lp_last_error_message());                                    \
            fflush(stderr);                                                                       \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

/* A call's status must be `expected` (an lp_status); prints both names on failure. */
#define CHECK_STATUS(call, expected)                                                              \
    do {                                                                                          \
        lp_status check_got_ = (call);                                                            \
        lp_status check_want_ = (expected);                                                       \
        if (check_got_ != check_want_) {                                                          \
            fprintf(stderr, "%s:%d: %s\n  returned %s (%d), expected %s (%d)\n"                   \
                            "  lp_last_error_message: \"%s\"\n",                                  \
                    __FILE__, __LINE__, #call, lp_status_name((uint32_t)check_got_),              \
                    (int)check_got_, lp_status_name((uint32_t)check_want_), (int)check_want_,     \
                    lp_last_error_message());                                                     \
            fflush(stderr);                                                                       \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, LP_OK)

/* The last error message on this thread contains `needle`. */
#define CHECK_MESSAGE_HAS(needle)                                                                 \
    do {                                                                                          \
        const char *check_msg_ = lp_last_error_message();                                        \
        if (check_msg_ == NULL || strstr(check_msg_, (needle)) == NULL) {                         \
            fprintf(stderr, "%s:%d: lp_last_error_message \"%s\" does not contain \"%s\"\n",      \
                    __FILE__, __LINE__, check_msg_ ? check_msg_ : "(NULL)", (needle));            \
            fflush(stderr);                                                                       \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

/* A pthread call (returns 0 or an errno value). */
#define CHECK_PT(call)                                                                            \
    do {                                                                                          \
        int check_rc_ = (call);                                                                   \
        if (check_rc_ != 0) {                                                                     \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,                  \
                    strerror(check_rc_));                                                         \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

/* ---- time ---------------------------------------------------------------------------------- */

/* Monotonic milliseconds. */
static LP_TEST_UNUSED uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static LP_TEST_UNUSED void sleep_ms(uint64_t ms) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000u);
    ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* How much to stretch the durations of time-based tests: 1 natively, 5 when LP_TEST_SLOW is set
 * (the harness sets it under valgrind, which runs the program tens of times slower). */
static LP_TEST_UNUSED uint64_t lp_test_scale(void) {
    const char *slow = getenv("LP_TEST_SLOW");
    return (slow != NULL && slow[0] != '\0' && strcmp(slow, "0") != 0) ? 5u : 1u;
}

/* An absolute CLOCK_REALTIME deadline `ms` from now, for pthread_cond_timedwait. */
static LP_TEST_UNUSED struct timespec deadline_in(uint64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000u);
    ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Waits (polling every 2 ms) until `cond` holds, failing the test after `ms` milliseconds. Only
 * for conditions nothing can signal (a manager's stats, a lease state changed by the checker). */
#define WAIT_UNTIL(cond, ms)                                                                      \
    do {                                                                                          \
        uint64_t wait_until_end_ = now_ms() + (ms);                                               \
        while (!(cond)) {                                                                         \
            if (now_ms() > wait_until_end_) {                                                     \
                fprintf(stderr, "%s:%d: timed out after %llu ms waiting for %s\n"                 \
                                "  lp_last_error_message: \"%s\"\n",                              \
                        __FILE__, __LINE__, (unsigned long long)(ms), #cond,                      \
                        lp_last_error_message());                                                 \
                exit(1);                                                                          \
            }                                                                                     \
            sleep_ms(2);                                                                          \
        }                                                                                         \
    } while (0)

/* ---- gate ---------------------------------------------------------------------------------- */

/* A latch: tasks that run gate_task block in it until the test opens it. `entered` counts the
 * tasks that reached it, so the test can wait for "the worker is busy" instead of sleeping. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int open;
    int entered;
    int left;
} gate;

static LP_TEST_UNUSED void gate_init(gate *g) {
    CHECK_PT(pthread_mutex_init(&g->lock, NULL));
    CHECK_PT(pthread_cond_init(&g->changed, NULL));
    g->open = 0;
    g->entered = 0;
    g->left = 0;
}

static LP_TEST_UNUSED void gate_destroy(gate *g) {
    CHECK_PT(pthread_cond_destroy(&g->changed));
    CHECK_PT(pthread_mutex_destroy(&g->lock));
}

static LP_TEST_UNUSED void gate_open(gate *g) {
    CHECK_PT(pthread_mutex_lock(&g->lock));
    g->open = 1;
    CHECK_PT(pthread_cond_broadcast(&g->changed));
    CHECK_PT(pthread_mutex_unlock(&g->lock));
}

/* Blocks until at least `n` tasks entered the gate (fails the test after 60 s). */
static LP_TEST_UNUSED void gate_wait_entered(gate *g, int n) {
    struct timespec deadline = deadline_in(60000);
    CHECK_PT(pthread_mutex_lock(&g->lock));
    while (g->entered < n) {
        int rc = pthread_cond_timedwait(&g->changed, &g->lock, &deadline);
        if (rc == ETIMEDOUT) {
            fprintf(stderr, "gate: only %d of %d tasks entered within 60 s\n", g->entered, n);
            exit(1);
        }
    }
    CHECK_PT(pthread_mutex_unlock(&g->lock));
}

static LP_TEST_UNUSED int gate_entered(gate *g) {
    CHECK_PT(pthread_mutex_lock(&g->lock));
    int n = g->entered;
    CHECK_PT(pthread_mutex_unlock(&g->lock));
    return n;
}

/* An lp_callback: enter the gate, wait until it is open. */
static LP_TEST_UNUSED void gate_task(void *userdata) {
    gate *g = (gate *)userdata;
    CHECK_PT(pthread_mutex_lock(&g->lock));
    g->entered += 1;
    CHECK_PT(pthread_cond_broadcast(&g->changed));
    while (!g->open) {
        CHECK_PT(pthread_cond_wait(&g->changed, &g->lock));
    }
    g->left += 1;
    CHECK_PT(pthread_mutex_unlock(&g->lock));
}

/* ---- counters ------------------------------------------------------------------------------ */

/* One userdata's record: how often its task ran and how often its drop_userdata ran. */
typedef struct {
    atomic_int ran;
    atomic_int dropped;
} counter;

static LP_TEST_UNUSED void counter_init(counter *c) {
    atomic_init(&c->ran, 0);
    atomic_init(&c->dropped, 0);
}

/* An lp_callback task: count a run. */
static LP_TEST_UNUSED void counter_run(void *userdata) {
    atomic_fetch_add(&((counter *)userdata)->ran, 1);
}

/* An lp_callback drop_userdata: count a drop. */
static LP_TEST_UNUSED void counter_drop(void *userdata) {
    atomic_fetch_add(&((counter *)userdata)->dropped, 1);
}

/* The record says: ran `r` times, dropped `d` times. */
#define CHECK_COUNTER(c, r, d)                                                                    \
    do {                                                                                          \
        int check_ran_ = atomic_load(&(c)->ran);                                                  \
        int check_dropped_ = atomic_load(&(c)->dropped);                                          \
        if (check_ran_ != (r) || check_dropped_ != (d)) {                                         \
            fprintf(stderr, "%s:%d: %s: ran %d times (expected %d), dropped %d times (expected %d)\n", \
                    __FILE__, __LINE__, #c, check_ran_, (r), check_dropped_, (d));                \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

/* ---- managers ------------------------------------------------------------------------------ */

/* A started thread-backend manager with these sizes (and a short checker interval). */
static LP_TEST_UNUSED lp_manager *start_manager(size_t max_pools, size_t min_pools, size_t workers) {
    lp_config *config = lp_config_new();
    CHECK(config != NULL);
    CHECK_OK(lp_config_set_max_pools(config, max_pools));
    CHECK_OK(lp_config_set_min_pools(config, min_pools));
    CHECK_OK(lp_config_set_workers_per_pool(config, workers));
    CHECK_OK(lp_config_set_check_interval_ms(config, 20));
    lp_manager *manager = NULL;
    CHECK_OK(lp_manager_new(config, &manager));
    CHECK(manager != NULL);
    lp_config_free(config);
    CHECK_OK(lp_manager_start(manager));
    return manager;
}

/* The manager's counts now. */
static LP_TEST_UNUSED lp_stats manager_counts(const lp_manager *manager) {
    lp_stats_snapshot *snapshot = NULL;
    CHECK_OK(lp_manager_stats(manager, &snapshot));
    lp_stats counts;
    memset(&counts, 0, sizeof counts);
    CHECK_OK(lp_stats_snapshot_counts(snapshot, &counts));
    lp_stats_snapshot_free(snapshot);
    return counts;
}

/* A lease with default options (blocking). */
static LP_TEST_UNUSED lp_lease *acquire(const lp_manager *manager) {
    lp_lease *lease = NULL;
    CHECK_OK(lp_manager_acquire(manager, NULL, &lease));
    CHECK(lease != NULL);
    return lease;
}

static LP_TEST_UNUSED lp_lease_state lease_state(const lp_lease *lease) {
    lp_lease_state state = LP_LEASE_UNKNOWN;
    CHECK_OK(lp_lease_get_state(lease, &state));
    return state;
}

/* A pointer that is not NULL and not a handle: written into `out` parameters before a call that
 * must fail, to check that the failure resets them to NULL. */
#define NOT_NULL_SENTINEL ((void *)(uintptr_t)0x1)

#endif /* LP_TEST_CHECK_H */
