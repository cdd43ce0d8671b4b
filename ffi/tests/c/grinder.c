/*
 * grinder.c: the WorkGrinder from C.
 *
 *  1. Enqueue before start: LP_GRINDER_NOT_STARTED (drop_userdata ran once).
 *  2. 4 threads enqueue JOBS jobs each into a started grinder (small batches, short max wait);
 *     every job runs once (LP_OK), its drop_userdata runs once; the stats count them.
 *  3. LP_STOP_DRAIN: jobs still pending (a huge threshold and max wait keep them queued) all run
 *     before lp_grinder_stop returns; enqueue after the stop: LP_GRINDER_NOT_STARTED. While a
 *     drain waits for a gate-blocked job, enqueue from another thread: LP_GRINDER_STOPPING.
 *  4. The grinder restarts after a stop.
 *  5. A second grinder stopped with LP_STOP_CANCEL: its queued jobs resolve LP_CANCELLED, never
 *     ran, their drop_userdata ran once; the stats count them.
 *  6. Bad stop mode: LP_INVALID_ARGUMENT. lp_grinder_free on a running grinder cancels what is
 *     queued (drop_userdata once).
 */
#include "check.h"

#define PRODUCERS 4
#define JOBS 250
#define PENDING 40

static atomic_long runs;

static void job(void *userdata) {
    counter_run(userdata);
    atomic_fetch_add(&runs, 1);
}

typedef struct {
    const lp_grinder *grinder;
    counter data[JOBS];
} producer_args;

static void *producer(void *arg) {
    producer_args *p = (producer_args *)arg;
    lp_task **tasks = calloc(JOBS, sizeof *tasks);
    CHECK(tasks != NULL);
    for (int i = 0; i < JOBS; i++) {
        counter_init(&p->data[i]);
        CHECK_OK(lp_grinder_enqueue(p->grinder, job, &p->data[i], counter_drop, &tasks[i]));
        CHECK(tasks[i] != NULL);
    }
    for (int i = 0; i < JOBS; i++) {
        CHECK_OK(lp_task_wait(tasks[i]));
        CHECK_COUNTER(&p->data[i], 1, 1);
        lp_task_free(tasks[i]);
    }
    free(tasks);
    return NULL;
}

static lp_grinder_stats grinder_stats(const lp_grinder *grinder) {
    lp_grinder_stats stats;
    memset(&stats, 0, sizeof stats);
    CHECK_OK(lp_grinder_get_stats(grinder, &stats));
    return stats;
}

static void many_producers(const lp_grinder *grinder) {
    static producer_args args[PRODUCERS];
    pthread_t threads[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        args[i].grinder = grinder;
        CHECK_PT(pthread_create(&threads[i], NULL, producer, &args[i]));
    }
    for (int i = 0; i < PRODUCERS; i++) {
        CHECK_PT(pthread_join(threads[i], NULL));
    }
    CHECK(atomic_load(&runs) == PRODUCERS * JOBS);
    lp_grinder_stats s = grinder_stats(grinder);
    CHECK(s.started && !s.stopping);
    CHECK(s.pending == 0);
    CHECK(s.jobs_completed == PRODUCERS * JOBS);
    CHECK(s.jobs_cancelled == 0 && s.jobs_failed == 0 && s.jobs_panicked == 0);
    /* A batch takes whatever is pending when it flushes: at least one batch, at most one per job. */
    CHECK(s.batches_run >= 1 && s.batches_run <= PRODUCERS * JOBS);
}

typedef struct {
    const lp_grinder *grinder;
    uint32_t mode;
    lp_status status;
} stop_call;

static void *stop_in_background(void *arg) {
    stop_call *call = (stop_call *)arg;
    call->status = lp_grinder_stop(call->grinder, call->mode, UINT64_MAX);
    return NULL;
}

/* A drain stop runs everything queued; a stop in progress refuses new jobs. */
static void drain_stop(lp_manager *manager) {
    lp_grinder_options options = lp_grinder_options_default();
    options.batch_size_threshold = 100000; /* never reached: jobs wait for the stop */
    options.max_wait_ms = 600000;
    lp_grinder *grinder = NULL;
    CHECK_OK(lp_grinder_new(manager, &options, &grinder));
    CHECK_OK(lp_grinder_start(grinder));
    CHECK_OK(lp_grinder_start(grinder)); /* a no-op */

    gate g;
    gate_init(&g);
    lp_task *blocked = NULL;
    CHECK_OK(lp_grinder_enqueue(grinder, gate_task, &g, NULL, &blocked));
    counter data[PENDING];
    lp_task *tasks[PENDING];
    for (int i = 0; i < PENDING; i++) {
        counter_init(&data[i]);
        CHECK_OK(lp_grinder_enqueue(grinder, counter_run, &data[i], counter_drop, &tasks[i]));
    }
    lp_grinder_stats s = grinder_stats(grinder);
    CHECK(s.pending == PENDING + 1);
    CHECK(atomic_load(&data[0].ran) == 0);

    /* The stop runs the batch: the gate job blocks it, so the stop is in progress meanwhile. */
    stop_call call = {grinder, LP_STOP_DRAIN, LP_PANIC};
    pthread_t stopper;
    CHECK_PT(pthread_create(&stopper, NULL, stop_in_background, &call));
    gate_wait_entered(&g, 1);
    WAIT_UNTIL(grinder_stats(grinder).stopping, 60000);
    counter late;
    counter_init(&late);
    lp_task *task = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_grinder_enqueue(grinder, counter_run, &late, counter_drop, &task), LP_GRINDER_STOPPING);
    CHECK(task == NULL);
    CHECK_COUNTER(&late, 0, 1);
    gate_open(&g);
    CHECK_PT(pthread_join(stopper, NULL));
    CHECK_OK(call.status);

    /* Everything queued ran, and had resolved when the stop returned. */
    CHECK(lp_task_is_finished(blocked));
    CHECK_OK(lp_task_wait(blocked));
    for (int i = 0; i < PENDING; i++) {
        CHECK(lp_task_is_finished(tasks[i]));
        CHECK_OK(lp_task_wait(tasks[i]));
        CHECK_COUNTER(&data[i], 1, 1);
        lp_task_free(tasks[i]);
    }
    lp_task_free(blocked);
    s = grinder_stats(grinder);
    CHECK(!s.started && !s.stopping);
    CHECK(s.jobs_completed == PENDING + 1);
    CHECK(s.jobs_rejected == 1);

    /* Stopped: refused; stopping again is a no-op. */
    CHECK_STATUS(lp_grinder_enqueue(grinder, counter_run, &late, counter_drop, &task), LP_GRINDER_NOT_STARTED);
    CHECK_COUNTER(&late, 0, 2);
    CHECK_OK(lp_grinder_stop(grinder, LP_STOP_DRAIN, 0));

    /* Restartable. */
    CHECK_OK(lp_grinder_start(grinder));
    counter again;
    counter_init(&again);
    CHECK_OK(lp_grinder_enqueue(grinder, counter_run, &again, counter_drop, &task));
    CHECK_OK(lp_grinder_stop(grinder, LP_STOP_DRAIN, UINT64_MAX));
    CHECK_OK(lp_task_wait(task));
    CHECK_COUNTER(&again, 1, 1);
    lp_task_free(task);

    lp_grinder_free(grinder);
    gate_destroy(&g);
}

static void cancel_stop(lp_manager *manager) {
    lp_grinder_options options = lp_grinder_options_default();
    options.batch_size_threshold = 100000;
    options.max_wait_ms = 600000;
    lp_grinder *grinder = NULL;
    CHECK_OK(lp_grinder_new(manager, &options, &grinder));
    CHECK_OK(lp_grinder_start(grinder));
    counter data[PENDING];
    lp_task *tasks[PENDING];
    for (int i = 0; i < PENDING; i++) {
        counter_init(&data[i]);
        CHECK_OK(lp_grinder_enqueue(grinder, counter_run, &data[i], counter_drop, &tasks[i]));
    }
    CHECK_STATUS(lp_grinder_stop(grinder, 7, 0), LP_INVALID_ARGUMENT);
    CHECK_MESSAGE_HAS("mode");
    CHECK(grinder_stats(grinder).started);
    CHECK_OK(lp_grinder_stop(grinder, LP_STOP_CANCEL, 0));
    for (int i = 0; i < PENDING; i++) {
        CHECK(lp_task_is_finished(tasks[i]));
        CHECK_STATUS(lp_task_wait(tasks[i]), LP_CANCELLED);
        CHECK_COUNTER(&data[i], 0, 1);
        lp_task_free(tasks[i]);
    }
    lp_grinder_stats s = grinder_stats(grinder);
    CHECK(s.jobs_cancelled == PENDING);
    CHECK(s.jobs_completed == 0);
    counter late;
    counter_init(&late);
    lp_task *task = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_grinder_enqueue(grinder, counter_run, &late, counter_drop, &task), LP_GRINDER_NOT_STARTED);
    CHECK(task == NULL);
    CHECK_COUNTER(&late, 0, 1);

    /* Freed while running with queued jobs: they are cancelled. */
    CHECK_OK(lp_grinder_start(grinder));
    CHECK_OK(lp_grinder_enqueue(grinder, counter_run, &late, counter_drop, &task));
    lp_grinder_free(grinder);
    CHECK_STATUS(lp_task_wait(task), LP_CANCELLED);
    CHECK_COUNTER(&late, 0, 2);
    lp_task_free(task);
}

int main(void) {
    atomic_init(&runs, 0);
    lp_manager *manager = start_manager(2, 1, 2);

    lp_grinder_options options = lp_grinder_options_default();
    CHECK(options.batch_size_threshold == 0 && options.max_wait_ms == 0 && options.lease_ms == 0);
    options.batch_size_threshold = 16;
    options.max_wait_ms = 5;
    options.max_concurrent_batches = 2;
    lp_grinder *grinder = NOT_NULL_SENTINEL;
    CHECK_OK(lp_grinder_new(manager, &options, &grinder));
    CHECK(grinder != NULL && grinder != NOT_NULL_SENTINEL);

    counter early;
    counter_init(&early);
    lp_task *task = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_grinder_enqueue(grinder, counter_run, &early, counter_drop, &task), LP_GRINDER_NOT_STARTED);
    CHECK(task == NULL);
    CHECK_COUNTER(&early, 0, 1);
    CHECK(!grinder_stats(grinder).started);
    CHECK(grinder_stats(grinder).jobs_rejected == 1);

    CHECK_OK(lp_grinder_start(grinder));
    many_producers(grinder);
    CHECK_OK(lp_grinder_stop(grinder, LP_STOP_DRAIN, UINT64_MAX));
    lp_grinder_free(grinder);

    drain_stop(manager);
    cancel_stop(manager);

    /* A grinder with default options (NULL) builds too. */
    CHECK_OK(lp_grinder_new(manager, NULL, &grinder));
    lp_grinder_free(grinder);

    CHECK_OK(lp_manager_stop_graceful(manager, 60000));
    lp_manager_free(manager);
    printf("grinder: ok\n");
    return 0;
}
