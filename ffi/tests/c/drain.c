/*
 * drain.c: releasing a lease that still has work (lp_lease_release with a drain handle).
 *
 *  1. A lease with a gate-blocked task and a task queued behind it is released: the executor (which
 *     outlives the lease handle) refuses new work with LP_RELEASED (drop_userdata ran once), the
 *     drain is LP_LEASE_DRAINING with 2 pending, lp_drain_wait(small) is LP_TIMED_OUT; the pool
 *     is not back (max_pools 1: a fail-fast acquire is refused). The gate opens: lp_drain_wait
 *     (UINT64_MAX) returns LP_OK, the state is LP_LEASE_RELEASED, nothing is pending, both tasks ran
 *     (LP_OK), and the pool went back (the next acquire gets it at once).
 *  2. A lease with nothing pending: its drain is over at once.
 *  3. lp_lease_release(lease, NULL) and lp_lease_free with pending work also drain (the pool comes
 *     back once the work is done); a drain handle may be freed while the drain goes on.
 */
#include "check.h"

static lp_lease_state drain_state(const lp_drain *drain) {
    lp_lease_state state = LP_LEASE_UNKNOWN;
    CHECK_OK(lp_drain_get_state(drain, &state));
    return state;
}

static void drain_with_pending_work(lp_manager *manager) {
    lp_lease *lease = acquire(manager);
    lp_executor *executor = lp_lease_executor(lease);
    gate g;
    gate_init(&g);
    counter blocked_data, queued_data;
    counter_init(&blocked_data);
    counter_init(&queued_data);

    lp_task *blocked = NULL;
    lp_task *queued = NULL;
    CHECK_OK(lp_submit(executor, gate_task, &g, NULL, &blocked));
    gate_wait_entered(&g, 1);
    CHECK_OK(lp_submit(executor, counter_run, &queued_data, counter_drop, &queued));

    lp_drain *drain = NOT_NULL_SENTINEL;
    CHECK_OK(lp_lease_release(lease, &drain)); /* frees the lease handle */
    CHECK(drain != NULL && drain != NOT_NULL_SENTINEL);

    /* Draining: new work is refused at once, the pending work is counted. */
    counter refused;
    counter_init(&refused);
    lp_task *task = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_submit(executor, counter_run, &refused, counter_drop, &task), LP_RELEASED);
    CHECK(task == NULL);
    CHECK_COUNTER(&refused, 0, 1);
    CHECK_MESSAGE_HAS("release");
    CHECK(drain_state(drain) == LP_LEASE_DRAINING);
    CHECK(lp_drain_pending(drain) == 2);
    CHECK(!lp_drain_is_finished(drain));
    CHECK_STATUS(lp_drain_wait(drain, 0), LP_TIMED_OUT);
    CHECK_STATUS(lp_drain_wait(drain, 20), LP_TIMED_OUT);
    CHECK(drain_state(drain) == LP_LEASE_DRAINING);
    /* A draining lease can be renewed (its pending work is not revoked at hard expiry). */
    CHECK_OK(lp_drain_renew(drain, 60000));
    CHECK_STATUS(lp_drain_renew(NULL, 1), LP_INVALID_ARGUMENT);

    /* The pool is still the lease's: with max_pools 1 nothing else can be leased. */
    lp_lease *other = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_manager_try_acquire(manager, NULL, &other), LP_UNAVAILABLE);
    CHECK(other == NULL);
    lp_stats s = manager_counts(manager);
    CHECK(s.leased == 1 && s.available == 0);

    gate_open(&g);
    CHECK_OK(lp_drain_wait(drain, UINT64_MAX));
    CHECK(lp_drain_is_finished(drain));
    CHECK(drain_state(drain) == LP_LEASE_RELEASED);
    CHECK(lp_drain_pending(drain) == 0);
    /* Over: waiting again returns at once, and it can no longer be renewed. */
    CHECK_OK(lp_drain_wait(drain, 0));
    CHECK(lp_drain_renew(drain, 1) != LP_OK);

    /* The work submitted before the release ran normally. */
    CHECK_OK(lp_task_wait(blocked));
    CHECK_OK(lp_task_wait(queued));
    CHECK_COUNTER(&queued_data, 1, 1);

    /* The pool went back before the drain was reported over: it is idle now. */
    s = manager_counts(manager);
    CHECK(s.leased == 0 && s.available == 1);
    CHECK(s.leases_released == 1);
    CHECK_OK(lp_manager_try_acquire(manager, NULL, &other));
    lp_lease_free(other);

    /* The executor still refuses work (its lease is over). */
    CHECK_STATUS(lp_submit(executor, counter_run, &refused, counter_drop, &task), LP_RELEASED);
    CHECK_COUNTER(&refused, 0, 2);

    lp_drain_free(drain);
    lp_task_free(blocked);
    lp_task_free(queued);
    lp_executor_free(executor);
    gate_destroy(&g);
}

static void drain_with_nothing_pending(lp_manager *manager) {
    lp_lease *lease = acquire(manager);
    lp_drain *drain = NULL;
    CHECK_OK(lp_lease_release(lease, &drain));
    CHECK(drain != NULL);
    CHECK(lp_drain_pending(drain) == 0);
    CHECK_OK(lp_drain_wait(drain, 60000));
    CHECK(lp_drain_is_finished(drain));
    CHECK(drain_state(drain) == LP_LEASE_RELEASED);
    lp_drain_free(drain);
}

/* Releases without keeping a drain handle (free_lease: lp_lease_free; else lp_lease_release with a
 * NULL drain, or with a drain freed at once): the pool comes back once the blocked task is done. */
static void release_without_drain_handle(lp_manager *manager, int how) {
    lp_lease *lease = acquire(manager);
    lp_executor *executor = lp_lease_executor(lease);
    gate g;
    gate_init(&g);
    lp_task *blocked = NULL;
    CHECK_OK(lp_submit(executor, gate_task, &g, NULL, &blocked));
    gate_wait_entered(&g, 1);
    if (how == 0) {
        lp_lease_free(lease);
    } else if (how == 1) {
        CHECK_OK(lp_lease_release(lease, NULL));
    } else {
        lp_drain *drain = NULL;
        CHECK_OK(lp_lease_release(lease, &drain));
        lp_drain_free(drain);
    }
    lp_lease *other = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_manager_try_acquire(manager, NULL, &other), LP_UNAVAILABLE);
    gate_open(&g);
    CHECK_OK(lp_task_wait(blocked));
    /* The pool goes back right after the task resolves: a blocking acquire gets it. */
    other = acquire(manager);
    lp_lease_free(other);
    lp_task_free(blocked);
    lp_executor_free(executor);
    gate_destroy(&g);
}

int main(void) {
    lp_manager *manager = start_manager(1, 1, 1);
    drain_with_pending_work(manager);
    drain_with_nothing_pending(manager);
    for (int how = 0; how < 3; how++) {
        release_without_drain_handle(manager, how);
    }
    CHECK_OK(lp_manager_stop_graceful(manager, 60000));
    lp_manager_free(manager);
    printf("drain: ok\n");
    return 0;
}
