/*
 * expiry.c: a lease's lifetime. Time is the subject of this program, so it sleeps and polls (a
 * lease's expiry is the checker thread acting on a deadline: nothing to signal but the clock).
 * Every bound is generous, and all durations are stretched under valgrind (LP_TEST_SLOW, see
 * lp_test_scale): the assertions are "not before the deadline" and "eventually", never "exactly".
 *
 *  1. Renewal: a lease renewed before it expires outlives its original hard deadline, stays
 *     LP_LEASE_ACTIVE and takes work; lp_lease_renew counts in the stats.
 *  2. Grace: past soft expiry the lease is LP_LEASE_IN_GRACE and still takes work; renewing it
 *     then makes it active again.
 *  3. Revocation: past hard expiry (lease_ms + lease_grace_ms) the lease is LP_LEASE_REVOKED, not
 *     sooner; lp_submit returns LP_EXPIRED (drop_userdata ran once), lp_lease_renew LP_EXPIRED;
 *     its queued tasks resolve as LP_CANCELLED at the revocation (a completion notice fires with
 *     nobody waiting), never run, and their drop_userdata ran once; the task that was running
 *     finishes normally; the manager counts the revocation and grants new leases.
 */
#include "check.h"

#define QUEUED 3

/* Completion notice: a flag and a condition variable. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int called;
} notice;

static void notice_fn(void *userdata) {
    notice *n = (notice *)userdata;
    CHECK_PT(pthread_mutex_lock(&n->lock));
    n->called += 1;
    CHECK_PT(pthread_cond_broadcast(&n->cond));
    CHECK_PT(pthread_mutex_unlock(&n->lock));
}

static int notice_wait(notice *n, uint64_t ms) {
    struct timespec deadline = deadline_in(ms);
    CHECK_PT(pthread_mutex_lock(&n->lock));
    while (n->called == 0) {
        if (pthread_cond_timedwait(&n->cond, &n->lock, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    int called = n->called;
    CHECK_PT(pthread_mutex_unlock(&n->lock));
    return called;
}

static lp_manager *manager_with_grace(uint64_t grace_ms) {
    lp_config *config = lp_config_new();
    CHECK_OK(lp_config_set_max_pools(config, 2));
    CHECK_OK(lp_config_set_min_pools(config, 1));
    CHECK_OK(lp_config_set_workers_per_pool(config, 1));
    CHECK_OK(lp_config_set_check_interval_ms(config, 10));
    CHECK_OK(lp_config_set_lease_grace_ms(config, grace_ms));
    lp_manager *manager = NULL;
    CHECK_OK(lp_manager_new(config, &manager));
    lp_config_free(config);
    CHECK_OK(lp_manager_start(manager));
    return manager;
}

static lp_lease *acquire_for(const lp_manager *manager, uint64_t lease_ms) {
    lp_acquire_options *options = lp_acquire_options_new();
    CHECK_OK(lp_acquire_options_set_lease_ms(options, lease_ms));
    CHECK_OK(lp_acquire_options_set_owner(options, "expiry-test"));
    lp_lease *lease = NULL;
    CHECK_OK(lp_manager_acquire(manager, options, &lease));
    lp_acquire_options_free(options);
    return lease;
}

/* Submits a counting task and waits for it: the lease takes work. */
static void takes_work(const lp_lease *lease) {
    lp_executor *executor = lp_lease_executor(lease);
    counter c;
    counter_init(&c);
    lp_task *task = NULL;
    CHECK_OK(lp_submit(executor, counter_run, &c, counter_drop, &task));
    CHECK_OK(lp_task_wait(task));
    CHECK_COUNTER(&c, 1, 1);
    lp_task_free(task);
    lp_executor_free(executor);
}

static void renewal(uint64_t scale) {
    const uint64_t lease_ms = 300 * scale, grace_ms = 200 * scale;
    lp_manager *manager = manager_with_grace(grace_ms);
    uint64_t start = now_ms();
    lp_lease *lease = acquire_for(manager, lease_ms);
    CHECK(lease_state(lease) == LP_LEASE_ACTIVE);
    CHECK_OK(lp_lease_renew(lease, 600000));
    /* Well past the original hard deadline (the checker runs every 10 ms): still active. */
    uint64_t past_original_hard = start + lease_ms + grace_ms + 300 * scale;
    uint64_t now = now_ms();
    if (now < past_original_hard) {
        sleep_ms(past_original_hard - now);
    }
    CHECK(lease_state(lease) == LP_LEASE_ACTIVE);
    takes_work(lease);
    lp_stats s = manager_counts(manager);
    CHECK(s.leases_renewed == 1);
    CHECK(s.leases_revoked == 0);
    lp_lease_free(lease);
    lp_manager_free(manager);
}

static void grace(uint64_t scale) {
    /* A long grace: the lease sits in it until renewed. */
    lp_manager *manager = manager_with_grace(600000);
    uint64_t start = now_ms();
    const uint64_t lease_ms = 100 * scale;
    lp_lease *lease = acquire_for(manager, lease_ms);
    WAIT_UNTIL(lease_state(lease) == LP_LEASE_IN_GRACE, 30000 * scale);
    CHECK(now_ms() - start >= lease_ms);
    takes_work(lease);
    CHECK(lease_state(lease) == LP_LEASE_IN_GRACE);
    CHECK_OK(lp_lease_renew(lease, 600000));
    CHECK(lease_state(lease) == LP_LEASE_ACTIVE);
    lp_lease_free(lease);
    lp_manager_free(manager);
}

static void revocation(uint64_t scale) {
    /* Long enough for the setup below (a few submits) to finish before the lease expires. */
    const uint64_t lease_ms = 600 * scale, grace_ms = 200 * scale;
    lp_manager *manager = manager_with_grace(grace_ms);
    uint64_t start = now_ms();
    lp_lease *lease = acquire_for(manager, lease_ms);
    lp_executor *executor = lp_lease_executor(lease);

    /* The only worker blocks in the gate; the other tasks queue behind it. */
    gate g;
    gate_init(&g);
    lp_task *running = NULL;
    CHECK_OK(lp_submit(executor, gate_task, &g, NULL, &running));
    gate_wait_entered(&g, 1);
    counter queued_data[QUEUED];
    lp_task *queued[QUEUED];
    for (int i = 0; i < QUEUED; i++) {
        counter_init(&queued_data[i]);
        lp_status status = lp_submit(executor, counter_run, &queued_data[i], counter_drop, &queued[i]);
        if (status != LP_OK) {
            fprintf(stderr, "setup took longer than the lease (%llu ms): %s\n", (unsigned long long)lease_ms,
                    lp_status_name(status));
            exit(1);
        }
    }
    notice first;
    CHECK_PT(pthread_mutex_init(&first.lock, NULL));
    CHECK_PT(pthread_cond_init(&first.cond, NULL));
    first.called = 0;
    CHECK_OK(lp_task_on_complete(queued[0], notice_fn, &first));
    CHECK(lease_state(lease) != LP_LEASE_REVOKED || now_ms() - start >= lease_ms + grace_ms);

    /* Wait for the checker to revoke it (generously), and not before its hard deadline. */
    WAIT_UNTIL(lease_state(lease) == LP_LEASE_REVOKED, 30000 * scale);
    CHECK(now_ms() - start >= lease_ms + grace_ms);

    /* The queued tasks were resolved by the revocation: the notice fires although nobody waits. */
    CHECK(notice_wait(&first, 30000 * scale) == 1);

    /* A revoked lease takes no work, cannot be renewed. */
    counter refused;
    counter_init(&refused);
    lp_task *task = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_submit(executor, counter_run, &refused, counter_drop, &task), LP_EXPIRED);
    CHECK(task == NULL);
    CHECK_COUNTER(&refused, 0, 1);
    CHECK_STATUS(lp_lease_renew(lease, 1000), LP_EXPIRED);

    /* Queued tasks: cancelled, never ran, dropped once, whatever the order we look at them. */
    for (int i = QUEUED - 1; i >= 0; i--) {
        CHECK_STATUS(lp_task_wait(queued[i]), LP_CANCELLED);
        CHECK(lp_task_is_finished(queued[i]));
        CHECK_COUNTER(&queued_data[i], 0, 1);
    }

    /* The running task cannot be stopped (a thread): it finishes when the gate opens. */
    CHECK(!lp_task_is_finished(running));
    gate_open(&g);
    CHECK_OK(lp_task_wait(running));

    lp_stats s = manager_counts(manager);
    CHECK(s.leases_revoked == 1);
    CHECK(s.tasks_cancelled == QUEUED);
    CHECK(s.tasks_completed == 1);
    CHECK(s.tasks_submitted == 1 + QUEUED);

    /* The manager goes on: a new lease (on a new pool or the returned one) takes work. */
    lp_lease *next = acquire_for(manager, 600000);
    takes_work(next);
    lp_lease_free(next);

    for (int i = 0; i < QUEUED; i++) {
        lp_task_free(queued[i]);
    }
    lp_task_free(running);
    lp_executor_free(executor);
    lp_lease_free(lease);
    CHECK_OK(lp_manager_stop_graceful(manager, 60000));
    lp_manager_free(manager);
    for (int i = 0; i < QUEUED; i++) {
        CHECK_COUNTER(&queued_data[i], 0, 1);
    }
    CHECK(first.called == 1);
    CHECK_PT(pthread_cond_destroy(&first.cond));
    CHECK_PT(pthread_mutex_destroy(&first.lock));
    gate_destroy(&g);
}

int main(void) {
    uint64_t scale = lp_test_scale();
    renewal(scale);
    grace(scale);
    revocation(scale);
    printf("expiry: ok\n");
    return 0;
}
