/*
 * threads.c: many C threads using one manager at once, and the task handle's whole API.
 *
 *  1. 8 pthreads: the even ones acquire leases of their own (blocking: 4 pools for 4 of them plus
 *     a shared lease, so some wait), the odd ones share one lease's executor; each submits and
 *     waits TASKS tasks. Every task ran exactly once and its drop_userdata ran exactly once.
 *  2. lp_task_wait_timeout: LP_NOT_FINISHED while the task is blocked in a gate, then LP_OK.
 *  3. lp_task_cancel on a queued task (one worker, busy in a gate): LP_CANCELLED, never ran,
 *     drop_userdata ran once (at the cancel, on this thread); a running task cannot be cancelled.
 *  4. lp_task_on_complete: once per registration, in order, also when registered after completion,
 *     also for a cancelled task, also after the handle was freed.
 *  5. Stats: counts and counters add up (lp_manager_stats, lp_stats_snapshot_counts,
 *     lp_stats_snapshot_summary + lp_string_free).
 */
#include "check.h"

#define THREADS 8
#define TASKS 300
#define MAX_POOLS 4

static atomic_long total_runs;

typedef struct {
    counter c;
} task_data;

static void count_task(void *userdata) {
    counter_run(userdata);
    atomic_fetch_add(&total_runs, 1);
}

typedef struct {
    int index;
    const lp_manager *manager;
    const lp_executor *shared; /* odd threads submit through this one */
    task_data data[TASKS];
    int acquired; /* leases this thread acquired */
} worker_args;

static void *worker(void *arg) {
    worker_args *w = (worker_args *)arg;
    lp_task **tasks = calloc(TASKS, sizeof *tasks);
    CHECK(tasks != NULL);
    lp_lease *lease = NULL;
    lp_executor *own = NULL;
    const lp_executor *executor = w->shared;
    if (w->index % 2 == 0) {
        char owner[32];
        snprintf(owner, sizeof owner, "worker-%d", w->index);
        lp_acquire_options *options = lp_acquire_options_new();
        CHECK_OK(lp_acquire_options_set_owner(options, owner));
        CHECK_OK(lp_manager_acquire(w->manager, options, &lease));
        lp_acquire_options_free(options);
        w->acquired = 1;
        own = lp_lease_executor(lease);
        CHECK(own != NULL);
        executor = own;
    }
    for (int i = 0; i < TASKS; i++) {
        counter_init(&w->data[i].c);
    }
    /* Submit in two halves: the first half waited with lp_task_wait, the second polled with
     * lp_task_is_finished + lp_task_wait_timeout. */
    for (int i = 0; i < TASKS; i++) {
        CHECK_OK(lp_submit(executor, count_task, &w->data[i].c, counter_drop, &tasks[i]));
        CHECK(tasks[i] != NULL);
    }
    for (int i = 0; i < TASKS / 2; i++) {
        CHECK_OK(lp_task_wait(tasks[i]));
        CHECK(lp_task_is_finished(tasks[i]));
        /* Waiting again returns the same status. */
        CHECK_OK(lp_task_wait(tasks[i]));
    }
    for (int i = TASKS / 2; i < TASKS; i++) {
        lp_status status;
        while ((status = lp_task_wait_timeout(tasks[i], 5)) == LP_NOT_FINISHED) {
        }
        CHECK_STATUS(status, LP_OK);
        CHECK(lp_task_is_finished(tasks[i]));
    }
    for (int i = 0; i < TASKS; i++) {
        CHECK_COUNTER(&w->data[i].c, 1, 1);
        lp_task_free(tasks[i]);
    }
    free(tasks);
    lp_executor_free(own);
    lp_lease_free(lease);
    return NULL;
}

static void many_threads(lp_manager *manager) {
    atomic_init(&total_runs, 0);
    lp_lease *shared_lease = acquire(manager);
    lp_executor *shared = lp_lease_executor(shared_lease);
    CHECK(shared != NULL);

    static worker_args args[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i].index = i;
        args[i].manager = manager;
        args[i].shared = shared;
        args[i].acquired = 0;
        CHECK_PT(pthread_create(&threads[i], NULL, worker, &args[i]));
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK_PT(pthread_join(threads[i], NULL));
    }
    CHECK(atomic_load(&total_runs) == (long)THREADS * TASKS);

    lp_executor_free(shared);
    lp_lease_free(shared_lease);

    lp_stats s = manager_counts(manager);
    CHECK(s.running);
    CHECK(s.max_pools == MAX_POOLS);
    CHECK(s.workers_per_pool == 2);
    CHECK(s.total <= MAX_POOLS);
    CHECK(s.leased == 0);
    CHECK(s.tasks_submitted == (uint64_t)THREADS * TASKS);
    CHECK(s.tasks_completed == (uint64_t)THREADS * TASKS);
    CHECK(s.tasks_cancelled == 0 && s.tasks_panicked == 0 && s.tasks_pool_broken == 0);
    /* 1 shared lease + one per even thread, every one released. */
    CHECK(s.leases_immediate + s.leases_after_wait == 1 + THREADS / 2);
    CHECK(s.leases_released == 1 + THREADS / 2);
    /* Idle pools above min_pools may be retired by the checker and built again later: more pools
     * may have been created than max_pools, never fewer than exist. min_pools is kept counting
     * pools still being built: a demand build whose waiter was served by a released pool is still
     * in flight, and a pool released meanwhile is retired as surplus (seen under valgrind), so
     * for a moment the one pool may be the one being created. */
    CHECK(s.pools_created >= s.total);
    CHECK(s.total + s.creating >= 1);
}

static void wait_timeout(lp_manager *manager) {
    lp_lease *lease = acquire(manager);
    lp_executor *executor = lp_lease_executor(lease);
    gate g;
    gate_init(&g);
    lp_task *task = NULL;
    CHECK_OK(lp_submit(executor, gate_task, &g, NULL, &task));
    gate_wait_entered(&g, 1);
    /* Blocked in the gate: not finished, whatever the wait. */
    CHECK_STATUS(lp_task_wait_timeout(task, 0), LP_NOT_FINISHED);
    CHECK_STATUS(lp_task_wait_timeout(task, 30), LP_NOT_FINISHED);
    CHECK(!lp_task_is_finished(task));
    lp_buffer output = {0};
    CHECK_STATUS(lp_task_take_output(task, &output), LP_NOT_FINISHED);
    CHECK(output.data == NULL && output.len == 0);
    gate_open(&g);
    CHECK_OK(lp_task_wait_timeout(task, 60000));
    CHECK(lp_task_is_finished(task));
    /* A callback task has no output: LP_OK and an empty buffer. */
    CHECK_OK(lp_task_take_output(task, &output));
    CHECK(output.data == NULL && output.len == 0);
    lp_buffer_free(&output);
    lp_task_free(task);
    lp_executor_free(executor);
    lp_lease_free(lease);
    gate_destroy(&g);
}

/* on_complete records: how often, and in which order (a sequence number per registration). */
typedef struct {
    atomic_int calls;
    atomic_int order;
    atomic_int *sequence;
    pthread_mutex_t lock;
    pthread_cond_t called;
} notice;

static atomic_int notice_sequence;

static void notice_init(notice *n) {
    atomic_init(&n->calls, 0);
    atomic_init(&n->order, 0);
    n->sequence = &notice_sequence;
    CHECK_PT(pthread_mutex_init(&n->lock, NULL));
    CHECK_PT(pthread_cond_init(&n->called, NULL));
}

static void notice_destroy(notice *n) {
    CHECK_PT(pthread_cond_destroy(&n->called));
    CHECK_PT(pthread_mutex_destroy(&n->lock));
}

static void on_done(void *userdata) {
    notice *n = (notice *)userdata;
    CHECK_PT(pthread_mutex_lock(&n->lock));
    atomic_store(&n->order, atomic_fetch_add(n->sequence, 1) + 1);
    atomic_fetch_add(&n->calls, 1);
    CHECK_PT(pthread_cond_broadcast(&n->called));
    CHECK_PT(pthread_mutex_unlock(&n->lock));
}

/* Blocks until the notice was called (fails after 60 s). */
static void notice_wait(notice *n) {
    struct timespec deadline = deadline_in(60000);
    CHECK_PT(pthread_mutex_lock(&n->lock));
    while (atomic_load(&n->calls) == 0) {
        CHECK(pthread_cond_timedwait(&n->called, &n->lock, &deadline) != ETIMEDOUT);
    }
    CHECK_PT(pthread_mutex_unlock(&n->lock));
}

/* One worker, busy in a gate: a second task stays queued and can be cancelled. */
static void cancel_and_notify(void) {
    lp_manager *manager = start_manager(1, 1, 1);
    lp_lease *lease = acquire(manager);
    lp_executor *executor = lp_lease_executor(lease);
    gate g;
    gate_init(&g);
    counter blocker_data, queued_data, later_data;
    counter_init(&blocker_data);
    counter_init(&queued_data);
    counter_init(&later_data);
    atomic_init(&notice_sequence, 0);

    lp_task *blocker = NULL;
    CHECK_OK(lp_submit(executor, gate_task, &g, NULL, &blocker));
    gate_wait_entered(&g, 1);

    /* The only worker is in the gate: these two are queued. */
    lp_task *queued = NULL;
    lp_task *later = NULL;
    CHECK_OK(lp_submit(executor, counter_run, &queued_data, counter_drop, &queued));
    CHECK_OK(lp_submit(executor, counter_run, &later_data, counter_drop, &later));

    /* Notices on the running task (before it completes: two, run in order) and on the queued one. */
    notice blocker_first, blocker_second, queued_notice, later_notice;
    notice_init(&blocker_first);
    notice_init(&blocker_second);
    notice_init(&queued_notice);
    notice_init(&later_notice);
    CHECK_OK(lp_task_on_complete(blocker, on_done, &blocker_first));
    CHECK_OK(lp_task_on_complete(blocker, on_done, &blocker_second));
    CHECK_OK(lp_task_on_complete(queued, on_done, &queued_notice));
    CHECK_OK(lp_task_on_complete(later, on_done, &later_notice));
    CHECK(atomic_load(&blocker_first.calls) == 0);
    CHECK(atomic_load(&queued_notice.calls) == 0);

    /* Cancel the queued task: it resolves as cancelled at once; its drop_userdata and its
     * completion notice ran on this thread, before lp_task_cancel returned. */
    CHECK(lp_task_cancel(queued));
    CHECK(lp_task_is_finished(queued));
    CHECK(atomic_load(&queued_notice.calls) == 1);
    CHECK_COUNTER(&queued_data, 0, 1);
    CHECK_STATUS(lp_task_wait(queued), LP_CANCELLED);
    CHECK_MESSAGE_HAS("cancel");
    CHECK_STATUS(lp_task_wait_timeout(queued, 10), LP_CANCELLED);
    lp_buffer output = {0};
    CHECK_STATUS(lp_task_take_output(queued, &output), LP_CANCELLED);
    /* Cancelling again, or cancelling the running task, does nothing. */
    CHECK(!lp_task_cancel(queued));
    CHECK(!lp_task_cancel(blocker));
    CHECK(!lp_task_is_finished(blocker));

    /* The later task's handle is freed before it runs: it still runs, and its notice fires. */
    lp_task_free(later);

    gate_open(&g);
    CHECK_OK(lp_task_wait(blocker));
    notice_wait(&blocker_first);
    notice_wait(&blocker_second);
    notice_wait(&later_notice);
    CHECK(atomic_load(&blocker_first.calls) == 1);
    CHECK(atomic_load(&blocker_second.calls) == 1);
    /* In registration order. */
    CHECK(atomic_load(&blocker_first.order) < atomic_load(&blocker_second.order));
    CHECK(!lp_task_cancel(blocker));

    /* Registered after completion: called before lp_task_on_complete returns, on this thread. */
    notice after;
    notice_init(&after);
    CHECK_OK(lp_task_on_complete(blocker, on_done, &after));
    CHECK(atomic_load(&after.calls) == 1);
    CHECK_OK(lp_task_on_complete(queued, on_done, &after));
    CHECK(atomic_load(&after.calls) == 2);

    /* The later task's handle is gone; its notice (waited for above) says it resolved, and it
     * ran and dropped its userdata before resolving. */
    CHECK(atomic_load(&later_notice.calls) == 1);
    CHECK_COUNTER(&later_data, 1, 1);

    lp_stats s = manager_counts(manager);
    CHECK(s.tasks_submitted == 3);
    CHECK(s.tasks_cancelled == 1);
    CHECK(s.tasks_completed == 2);

    lp_task_free(blocker);
    lp_task_free(queued);
    lp_executor_free(executor);
    lp_lease_free(lease);
    CHECK_OK(lp_manager_stop_graceful(manager, 60000));
    lp_manager_free(manager);

    /* Everything has resolved and every pool thread has exited: the final counts. */
    CHECK_COUNTER(&blocker_data, 0, 0);
    CHECK_COUNTER(&queued_data, 0, 1);
    CHECK_COUNTER(&later_data, 1, 1);
    CHECK(atomic_load(&blocker_first.calls) == 1);
    CHECK(atomic_load(&blocker_second.calls) == 1);
    CHECK(atomic_load(&queued_notice.calls) == 1);
    CHECK(atomic_load(&later_notice.calls) == 1);
    notice_destroy(&blocker_first);
    notice_destroy(&blocker_second);
    notice_destroy(&queued_notice);
    notice_destroy(&later_notice);
    notice_destroy(&after);
    gate_destroy(&g);
}

static void stats_summary(lp_manager *manager) {
    lp_acquire_options *options = lp_acquire_options_new();
    CHECK_OK(lp_acquire_options_set_owner(options, "summary-owner"));
    lp_lease *lease = NULL;
    CHECK_OK(lp_manager_acquire(manager, options, &lease));
    lp_acquire_options_free(options);

    lp_stats_snapshot *snapshot = NULL;
    CHECK_OK(lp_manager_stats(manager, &snapshot));
    CHECK(snapshot != NULL);
    lp_stats s;
    memset(&s, 0, sizeof s);
    CHECK_OK(lp_stats_snapshot_counts(snapshot, &s));
    CHECK(s.leased == 1);
    CHECK(s.available + s.leased == s.total);
    char *summary = lp_stats_snapshot_summary(snapshot);
    CHECK(summary != NULL);
    CHECK(strstr(summary, "running") != NULL);
    CHECK(strstr(summary, "owner=summary-owner") != NULL);
    lp_string_free(summary);
    /* The snapshot is a snapshot: reading it twice gives the same text. */
    char *again = lp_stats_snapshot_summary(snapshot);
    CHECK(again != NULL && strstr(again, "owner=summary-owner") != NULL);
    lp_string_free(again);
    lp_stats_snapshot_free(snapshot);
    lp_lease_free(lease);
}

int main(void) {
    lp_manager *manager = start_manager(MAX_POOLS, 1, 2);
    many_threads(manager);
    wait_timeout(manager);
    stats_summary(manager);
    CHECK_OK(lp_manager_stop_graceful(manager, 60000));
    CHECK(!lp_manager_is_running(manager));
    lp_manager_free(manager);

    cancel_and_notify();
    printf("threads: ok\n");
    return 0;
}
