/*
 * drop_userdata.c: "a callback that is never run still gets drop_userdata", exactly once, on every
 * path (lp_submit's contract, and lp_grinder_enqueue's, and lp_config_set_size_provider's):
 *
 *   ran                          the task ran: dropped after it returned
 *   ran, handle freed first      lp_task_free does not cancel: it runs, then drops
 *   cancelled                    lp_task_cancel on a queued task: dropped on this thread, at once
 *   refused: released lease      lp_submit returns LP_RELEASED: dropped before it returns
 *   refused: task NULL           LP_INVALID_ARGUMENT: dropped before it returns (also out NULL,
 *                                executor NULL)
 *   drained                      queued on a lease released meanwhile: runs, then drops
 *   revoked                      queued on a lease revoked at hard expiry: dropped at the
 *                                revocation, also when nobody holds its handle
 *   manager stopped              queued when the manager stops: dropped by the stop, also when
 *                                nobody holds its handle
 *   grinder cancel               queued in a grinder stopped with LP_STOP_CANCEL, cancelled with
 *                                lp_task_cancel, or freed with the grinder
 *   size provider                dropped once the config and every manager built from it are freed
 *
 * Each path has its own userdata with a counter; at the end, after the managers stopped and every
 * pool thread exited, every counter says dropped exactly once (and ran once or never).
 */
#include "check.h"

/* Drops are also announced on a condition variable, for the paths where they happen on another
 * thread (the checker's revocation, the size provider's release). */
static pthread_mutex_t drops_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t drops_changed = PTHREAD_COND_INITIALIZER;

static void announced_drop(void *userdata) {
    CHECK_PT(pthread_mutex_lock(&drops_lock));
    counter_drop(userdata);
    CHECK_PT(pthread_cond_broadcast(&drops_changed));
    CHECK_PT(pthread_mutex_unlock(&drops_lock));
}

/* Blocks until `c` was dropped (fails the test after `ms`). */
static void wait_dropped(counter *c, uint64_t ms) {
    struct timespec deadline = deadline_in(ms);
    CHECK_PT(pthread_mutex_lock(&drops_lock));
    while (atomic_load(&c->dropped) == 0) {
        if (pthread_cond_timedwait(&drops_changed, &drops_lock, &deadline) == ETIMEDOUT) {
            fprintf(stderr, "drop_userdata did not run within %llu ms\n", (unsigned long long)ms);
            exit(1);
        }
    }
    CHECK_PT(pthread_mutex_unlock(&drops_lock));
}

enum {
    RAN,
    RAN_HANDLE_FREED,
    CANCELLED,
    REFUSED_RELEASED,
    REFUSED_TASK_NULL,
    REFUSED_OUT_NULL,
    REFUSED_EXECUTOR_NULL,
    DRAINED,
    REVOKED,
    REVOKED_HANDLE_FREED,
    STOPPED,
    STOPPED_HANDLE_FREED,
    GRINDER_STOP_CANCEL,
    GRINDER_TASK_CANCEL,
    GRINDER_FREED,
    SIZE_PROVIDER,
    PATHS
};

static const char *const path_names[PATHS] = {
    "ran", "ran (handle freed first)", "cancelled", "refused (released lease)", "refused (task NULL)",
    "refused (out NULL)", "refused (executor NULL)", "drained", "revoked", "revoked (handle freed)",
    "manager stopped", "manager stopped (handle freed)", "grinder LP_STOP_CANCEL",
    "grinder lp_task_cancel", "grinder freed", "size provider",
};

/* Whether the path's callback runs. */
static const int path_runs[PATHS] = {
    [RAN] = 1, [RAN_HANDLE_FREED] = 1, [DRAINED] = 1,
};

static counter data[PATHS];

static void thread_paths(uint64_t scale) {
    lp_config *config = lp_config_new();
    CHECK_OK(lp_config_set_max_pools(config, 2));
    CHECK_OK(lp_config_set_min_pools(config, 1));
    CHECK_OK(lp_config_set_workers_per_pool(config, 1));
    CHECK_OK(lp_config_set_check_interval_ms(config, 10));
    CHECK_OK(lp_config_set_lease_grace_ms(config, 100 * scale));
    lp_manager *manager = NULL;
    CHECK_OK(lp_manager_new(config, &manager));
    lp_config_free(config);
    CHECK_OK(lp_manager_start(manager));
    lp_lease *lease = acquire(manager);
    lp_executor *executor = lp_lease_executor(lease);
    lp_task *task = NULL;

    /* Ran. */
    CHECK_OK(lp_submit(executor, counter_run, &data[RAN], announced_drop, &task));
    CHECK_OK(lp_task_wait(task));
    CHECK_COUNTER(&data[RAN], 1, 1);
    lp_task_free(task);

    /* Refused before submitting anything. */
    CHECK_STATUS(lp_submit(executor, NULL, &data[REFUSED_TASK_NULL], announced_drop, &task), LP_INVALID_ARGUMENT);
    CHECK_COUNTER(&data[REFUSED_TASK_NULL], 0, 1);
    CHECK_STATUS(lp_submit(executor, counter_run, &data[REFUSED_OUT_NULL], announced_drop, NULL),
                 LP_INVALID_ARGUMENT);
    CHECK_COUNTER(&data[REFUSED_OUT_NULL], 0, 1);
    CHECK_STATUS(lp_submit(NULL, counter_run, &data[REFUSED_EXECUTOR_NULL], announced_drop, &task),
                 LP_INVALID_ARGUMENT);
    CHECK_COUNTER(&data[REFUSED_EXECUTOR_NULL], 0, 1);

    /* Queued behind a gate task: cancelled, handle freed before it runs, drained. */
    gate g;
    gate_init(&g);
    lp_task *blocker = NULL;
    CHECK_OK(lp_submit(executor, gate_task, &g, NULL, &blocker));
    gate_wait_entered(&g, 1);
    lp_task *cancelled = NULL;
    CHECK_OK(lp_submit(executor, counter_run, &data[CANCELLED], announced_drop, &cancelled));
    CHECK(lp_task_cancel(cancelled));
    CHECK_COUNTER(&data[CANCELLED], 0, 1); /* at once, on this thread */
    CHECK_STATUS(lp_task_wait(cancelled), LP_CANCELLED);
    lp_task_free(cancelled);
    CHECK_OK(lp_submit(executor, counter_run, &data[RAN_HANDLE_FREED], announced_drop, &task));
    lp_task_free(task);
    lp_task *drained = NULL;
    CHECK_OK(lp_submit(executor, counter_run, &data[DRAINED], announced_drop, &drained));
    lp_drain *drain = NULL;
    CHECK_OK(lp_lease_release(lease, &drain));
    CHECK_STATUS(lp_submit(executor, counter_run, &data[REFUSED_RELEASED], announced_drop, &task), LP_RELEASED);
    CHECK_COUNTER(&data[REFUSED_RELEASED], 0, 1);
    CHECK_COUNTER(&data[DRAINED], 0, 0);
    gate_open(&g);
    CHECK_OK(lp_drain_wait(drain, UINT64_MAX));
    CHECK_OK(lp_task_wait(drained));
    CHECK_COUNTER(&data[DRAINED], 1, 1);
    CHECK_COUNTER(&data[RAN_HANDLE_FREED], 1, 1); /* ran before the drain was over */
    lp_task_free(drained);
    lp_task_free(blocker);
    lp_drain_free(drain);
    lp_executor_free(executor);
    gate_destroy(&g);

    /* Revoked: a short lease, a gate task, two queued tasks (one handle freed at once). The
     * checker revokes the lease at its hard deadline, which is what this waits for (time is the
     * subject: generous bounds, stretched under valgrind). */
    lp_acquire_options *options = lp_acquire_options_new();
    CHECK_OK(lp_acquire_options_set_lease_ms(options, 500 * scale)); /* outlasts the setup */
    CHECK_OK(lp_manager_acquire(manager, options, &lease));
    lp_acquire_options_free(options);
    executor = lp_lease_executor(lease);
    gate_init(&g);
    CHECK_OK(lp_submit(executor, gate_task, &g, NULL, &blocker));
    gate_wait_entered(&g, 1);
    lp_task *revoked = NULL;
    CHECK_OK(lp_submit(executor, counter_run, &data[REVOKED], announced_drop, &revoked));
    CHECK_OK(lp_submit(executor, counter_run, &data[REVOKED_HANDLE_FREED], announced_drop, &task));
    lp_task_free(task);
    /* Nobody waits on the freed one: its drop comes from the revocation itself. */
    wait_dropped(&data[REVOKED_HANDLE_FREED], 60000 * scale);
    CHECK(lease_state(lease) == LP_LEASE_REVOKED);
    CHECK_STATUS(lp_task_wait(revoked), LP_CANCELLED);
    CHECK_COUNTER(&data[REVOKED], 0, 1);
    CHECK_COUNTER(&data[REVOKED_HANDLE_FREED], 0, 1);
    gate_open(&g);
    CHECK_OK(lp_task_wait(blocker));
    lp_task_free(blocker);
    lp_task_free(revoked);
    lp_executor_free(executor);
    lp_lease_free(lease);
    gate_destroy(&g);

    /* Manager stopped with queued tasks (one handle freed): the stop resolves them. */
    lease = acquire(manager);
    executor = lp_lease_executor(lease);
    gate_init(&g);
    CHECK_OK(lp_submit(executor, gate_task, &g, NULL, &blocker));
    gate_wait_entered(&g, 1);
    lp_task *stopped = NULL;
    CHECK_OK(lp_submit(executor, counter_run, &data[STOPPED], announced_drop, &stopped));
    CHECK_OK(lp_submit(executor, counter_run, &data[STOPPED_HANDLE_FREED], announced_drop, &task));
    lp_task_free(task);
    CHECK_OK(lp_manager_stop(manager));
    CHECK_COUNTER(&data[STOPPED_HANDLE_FREED], 0, 1); /* by the stop */
    CHECK_STATUS(lp_task_wait(stopped), LP_CANCELLED);
    CHECK_COUNTER(&data[STOPPED], 0, 1);
    gate_open(&g);
    CHECK_OK(lp_task_wait(blocker));
    lp_task_free(blocker);
    lp_task_free(stopped);
    lp_executor_free(executor);
    lp_lease_free(lease);
    CHECK_OK(lp_manager_stop_graceful(manager, 60000));
    lp_manager_free(manager);
    gate_destroy(&g);
}

static void grinder_paths(void) {
    lp_manager *manager = start_manager(1, 1, 1);
    lp_grinder_options options = lp_grinder_options_default();
    options.batch_size_threshold = 100000; /* jobs stay queued until the grinder stops */
    options.max_wait_ms = 600000;
    lp_grinder *grinder = NULL;
    CHECK_OK(lp_grinder_new(manager, &options, &grinder));
    CHECK_OK(lp_grinder_start(grinder));
    lp_task *stop_cancelled = NULL;
    lp_task *task_cancelled = NULL;
    CHECK_OK(lp_grinder_enqueue(grinder, counter_run, &data[GRINDER_STOP_CANCEL], announced_drop, &stop_cancelled));
    CHECK_OK(lp_grinder_enqueue(grinder, counter_run, &data[GRINDER_TASK_CANCEL], announced_drop, &task_cancelled));
    CHECK(lp_task_cancel(task_cancelled));
    CHECK_COUNTER(&data[GRINDER_TASK_CANCEL], 0, 1); /* at once, on this thread */
    CHECK_OK(lp_grinder_stop(grinder, LP_STOP_CANCEL, 0));
    CHECK_STATUS(lp_task_wait(stop_cancelled), LP_CANCELLED);
    CHECK_COUNTER(&data[GRINDER_STOP_CANCEL], 0, 1);
    CHECK_STATUS(lp_task_wait(task_cancelled), LP_CANCELLED);
    lp_task_free(stop_cancelled);
    lp_task_free(task_cancelled);

    /* Freed while running, with a job queued (its handle freed first). */
    CHECK_OK(lp_grinder_start(grinder));
    lp_task *task = NULL;
    CHECK_OK(lp_grinder_enqueue(grinder, counter_run, &data[GRINDER_FREED], announced_drop, &task));
    lp_task_free(task);
    lp_grinder_free(grinder);
    CHECK_COUNTER(&data[GRINDER_FREED], 0, 1);
    CHECK_OK(lp_manager_stop_graceful(manager, 60000));
    lp_manager_free(manager);
}

static size_t one_unit(void *userdata) {
    (void)userdata;
    return 1;
}

static void size_provider_path(void) {
    counter *c = &data[SIZE_PROVIDER];
    lp_config *config = lp_config_new();
    CHECK_OK(lp_config_set_max_pools(config, 1));
    CHECK_OK(lp_config_set_size_provider(config, one_unit, c, announced_drop));
    lp_manager *first = NULL;
    lp_manager *second = NULL;
    CHECK_OK(lp_manager_new(config, &first));
    CHECK_OK(lp_manager_new(config, &second));
    lp_config_free(config);
    CHECK_OK(lp_manager_start(first));
    CHECK_OK(lp_manager_notify_scale_changed(first));
    lp_manager_free(second);
    CHECK_COUNTER(c, 0, 0); /* the first manager still uses it */
    lp_manager_free(first);
    /* The checker thread lets go of it as it exits. */
    wait_dropped(c, 60000);
}

int main(void) {
    for (int i = 0; i < PATHS; i++) {
        counter_init(&data[i]);
    }
    thread_paths(lp_test_scale());
    grinder_paths();
    size_provider_path();

    /* Every path: dropped exactly once, ran as expected. */
    int failed = 0;
    for (int i = 0; i < PATHS; i++) {
        int ran = atomic_load(&data[i].ran);
        int dropped = atomic_load(&data[i].dropped);
        if (dropped != 1 || ran != path_runs[i]) {
            fprintf(stderr, "%s: ran %d times (expected %d), dropped %d times (expected 1)\n", path_names[i], ran,
                    path_runs[i], dropped);
            failed = 1;
        }
    }
    if (failed) {
        return 1;
    }
    printf("drop_userdata: ok (%d paths)\n", PATHS);
    return 0;
}
