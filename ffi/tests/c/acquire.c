/*
 * acquire.c: how acquires fail, and what they leave behind.
 *
 *  1. Timeout: max_pools 1, the lease held; a second acquire with a 200 ms timeout returns
 *     LP_TIMED_OUT no sooner than its timeout (and, generously, within seconds), *out NULL.
 *  2. Fail-fast: lp_manager_try_acquire returns LP_UNAVAILABLE at max_pools, LP_STARTING below
 *     it (a pool is then built in the background, and the next blocking acquire gets it).
 *  3. Interrupt: a thread blocked in lp_manager_acquire gives up with LP_INTERRUPTED when another
 *     thread fires the lp_interrupt set on its options; options keep working after the interrupt
 *     handle is freed; an acquire started after the interrupt fired gives up at once.
 *  4. Not running: acquires on a manager never started, and on a stopped one, return
 *     LP_NOT_RUNNING; a thread blocked in an acquire when the manager stops gets LP_NOT_RUNNING;
 *     the lease it held reports LP_LEASE_STOPPED and refuses work with LP_MANAGER_STOPPED.
 *  5. Invalid options: lease_ms 0 → LP_INVALID_ARGUMENT at acquire.
 */
#include "check.h"

/* The acquire timeout of part 1, and a generous ceiling for when it must have fired. */
#define ACQUIRE_TIMEOUT_MS 200
#define GENEROUS_MS 20000

typedef struct {
    const lp_manager *manager;
    const lp_acquire_options *options; /* may be NULL */
    lp_status status;
    lp_lease *lease;
} acquire_call;

static void *blocked_acquire(void *arg) {
    acquire_call *call = (acquire_call *)arg;
    call->lease = NOT_NULL_SENTINEL;
    call->status = lp_manager_acquire(call->manager, call->options, &call->lease);
    return NULL;
}

static size_t waiting(const lp_manager *manager) {
    return manager_counts(manager).waiting;
}

static void timeout_and_fail_fast(void) {
    lp_manager *manager = start_manager(1, 1, 1);
    lp_lease *held = acquire(manager);

    /* 1. A blocking acquire with a timeout. */
    lp_acquire_options *options = lp_acquire_options_new();
    CHECK(options != NULL);
    CHECK_OK(lp_acquire_options_set_timeout_ms(options, ACQUIRE_TIMEOUT_MS));
    CHECK_OK(lp_acquire_options_set_owner(options, "second"));
    lp_lease *second = NOT_NULL_SENTINEL;
    uint64_t start = now_ms();
    CHECK_STATUS(lp_manager_acquire(manager, options, &second), LP_TIMED_OUT);
    uint64_t elapsed = now_ms() - start;
    CHECK(second == NULL);
    CHECK(strlen(lp_last_error_message()) > 0);
    /* Time is the subject here: the acquire must not give up before its timeout, and must give up
     * eventually; the upper bound is loose so a loaded machine (or valgrind) does not fail it. */
    CHECK(elapsed >= ACQUIRE_TIMEOUT_MS - 5);
    CHECK(elapsed < GENEROUS_MS);

    /* A timeout of 0 fails at once when nothing is idle. */
    CHECK_OK(lp_acquire_options_set_timeout_ms(options, 0));
    CHECK_STATUS(lp_manager_acquire(manager, options, &second), LP_TIMED_OUT);
    CHECK(second == NULL);

    /* 2. Fail-fast at max_pools. */
    CHECK_STATUS(lp_manager_try_acquire(manager, NULL, &second), LP_UNAVAILABLE);
    CHECK(second == NULL);
    CHECK_STATUS(lp_manager_try_acquire(manager, options, &second), LP_UNAVAILABLE);

    lp_stats s = manager_counts(manager);
    CHECK(s.acquire_timeouts == 2);
    CHECK(s.acquire_unavailable == 2);
    CHECK(s.leased == 1 && s.total == 1 && s.waiting == 0);

    /* Released: the same options now get the pool at once. */
    lp_lease_free(held);
    CHECK_OK(lp_manager_try_acquire(manager, options, &second));
    CHECK(second != NULL);
    lp_lease_free(second);
    lp_acquire_options_free(options);
    lp_manager_free(manager);

    /* Below max_pools: the one pool is leased, a second one is not built yet. */
    manager = start_manager(2, 1, 1);
    held = acquire(manager);
    lp_status status = lp_manager_try_acquire(manager, NULL, &second);
    CHECK(status == LP_STARTING || status == LP_OK);
    if (status == LP_STARTING) {
        CHECK(second == NULL);
        /* The pool being built goes to the next acquire. */
        second = acquire(manager);
    }
    CHECK(second != NULL);
    CHECK(lp_lease_id(second) != lp_lease_id(held));
    CHECK(lp_lease_id(second) != 0);
    /* Now both pools are leased: unavailable. */
    lp_lease *third = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_manager_try_acquire(manager, NULL, &third), LP_UNAVAILABLE);
    CHECK(third == NULL);
    lp_lease_free(second);
    lp_lease_free(held);
    CHECK_OK(lp_manager_stop(manager));
    lp_manager_free(manager);
}

static void interrupt(void) {
    lp_manager *manager = start_manager(1, 1, 1);
    lp_lease *held = acquire(manager);

    lp_interrupt *fire = lp_interrupt_new();
    CHECK(fire != NULL);
    CHECK(!lp_interrupt_is_fired(fire));
    lp_acquire_options *options = lp_acquire_options_new();
    CHECK_OK(lp_acquire_options_set_interrupt(options, fire));

    acquire_call call = {manager, options, LP_OK, NULL};
    pthread_t thread;
    CHECK_PT(pthread_create(&thread, NULL, blocked_acquire, &call));
    /* The thread is blocked once the manager counts it as waiting. */
    WAIT_UNTIL(waiting(manager) == 1, 60000);
    CHECK_OK(lp_interrupt_fire(fire));
    CHECK(lp_interrupt_is_fired(fire));
    CHECK_PT(pthread_join(thread, NULL));
    CHECK_STATUS(call.status, LP_INTERRUPTED);
    CHECK(call.lease == NULL);
    CHECK(waiting(manager) == 0);

    /* Already fired when the acquire starts: it gives up at once (the pool is still leased, so
     * without the interrupt it would wait forever). */
    CHECK_STATUS(lp_manager_acquire(manager, options, &call.lease), LP_INTERRUPTED);
    CHECK_MESSAGE_HAS("interrupt");

    /* The options keep their own reference to the interrupt: its handle may be freed first. */
    lp_interrupt *second = lp_interrupt_new();
    lp_acquire_options *options2 = lp_acquire_options_new();
    CHECK_OK(lp_acquire_options_set_interrupt(options2, second));
    CHECK_OK(lp_interrupt_fire(second));
    lp_interrupt_free(second);
    CHECK_STATUS(lp_manager_acquire(manager, options2, &call.lease), LP_INTERRUPTED);
    lp_acquire_options_free(options2);

    /* An unfired interrupt set on options, freed before use: the acquire works normally. */
    lp_interrupt *third = lp_interrupt_new();
    lp_acquire_options *options3 = lp_acquire_options_new();
    CHECK_OK(lp_acquire_options_set_interrupt(options3, third));
    CHECK_OK(lp_acquire_options_set_timeout_ms(options3, 10));
    lp_interrupt_free(third);
    CHECK_STATUS(lp_manager_acquire(manager, options3, &call.lease), LP_TIMED_OUT);
    lp_lease_free(held);
    CHECK_OK(lp_manager_acquire(manager, options3, &call.lease));
    CHECK(call.lease != NULL);
    lp_lease_free(call.lease);
    lp_acquire_options_free(options3);

    lp_acquire_options_free(options);
    lp_interrupt_free(fire);
    lp_manager_free(manager);
}

static void not_running(void) {
    /* Never started. */
    lp_config *config = lp_config_new();
    CHECK_OK(lp_config_set_max_pools(config, 1));
    lp_manager *manager = NULL;
    CHECK_OK(lp_manager_new(config, &manager));
    lp_config_free(config);
    CHECK(!lp_manager_is_running(manager));
    lp_lease *lease = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_manager_acquire(manager, NULL, &lease), LP_NOT_RUNNING);
    CHECK(lease == NULL);
    CHECK_STATUS(lp_manager_try_acquire(manager, NULL, &lease), LP_NOT_RUNNING);
    CHECK_OK(lp_manager_start(manager));
    CHECK(lp_manager_is_running(manager));
    /* Starting twice does nothing. */
    CHECK_OK(lp_manager_start(manager));

    /* A lease held, a second acquire blocked, then the manager stops. */
    lp_lease *held = acquire(manager);
    lp_executor *executor = lp_lease_executor(held);
    acquire_call call = {manager, NULL, LP_OK, NULL};
    pthread_t thread;
    CHECK_PT(pthread_create(&thread, NULL, blocked_acquire, &call));
    WAIT_UNTIL(waiting(manager) == 1, 60000);
    CHECK_OK(lp_manager_stop(manager));
    CHECK_PT(pthread_join(thread, NULL));
    CHECK_STATUS(call.status, LP_NOT_RUNNING);
    CHECK(call.lease == NULL);
    CHECK(!lp_manager_is_running(manager));

    /* The held lease ended with the manager. */
    CHECK(lease_state(held) == LP_LEASE_STOPPED);
    counter refused;
    counter_init(&refused);
    lp_task *task = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_submit(executor, counter_run, &refused, counter_drop, &task), LP_MANAGER_STOPPED);
    CHECK(task == NULL);
    CHECK_COUNTER(&refused, 0, 1);
    CHECK_STATUS(lp_lease_renew(held, 1000), LP_MANAGER_STOPPED);

    /* Stopped: every acquire is refused; stopping again is fine. */
    CHECK_STATUS(lp_manager_acquire(manager, NULL, &lease), LP_NOT_RUNNING);
    CHECK(lease == NULL);
    CHECK_STATUS(lp_manager_try_acquire(manager, NULL, &lease), LP_NOT_RUNNING);
    CHECK_OK(lp_manager_stop(manager));
    CHECK_OK(lp_manager_stop_graceful(manager, 60000));

    lp_executor_free(executor);
    lp_lease_free(held);
    lp_manager_free(manager);
}

static void invalid_options(void) {
    lp_manager *manager = start_manager(1, 1, 1);
    lp_acquire_options *options = lp_acquire_options_new();
    CHECK_OK(lp_acquire_options_set_lease_ms(options, 0));
    lp_lease *lease = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_manager_acquire(manager, options, &lease), LP_INVALID_ARGUMENT);
    CHECK(lease == NULL);
    CHECK_STATUS(lp_manager_try_acquire(manager, options, &lease), LP_INVALID_ARGUMENT);
    /* A sensible lease duration works, and a clone of the manager handle acquires too. */
    CHECK_OK(lp_acquire_options_set_lease_ms(options, 60000));
    lp_manager *clone = lp_manager_clone(manager);
    CHECK(clone != NULL);
    CHECK_OK(lp_manager_acquire(clone, options, &lease));
    CHECK(lease_state(lease) == LP_LEASE_ACTIVE);
    lp_lease_free(lease);
    lp_acquire_options_free(options);
    /* Freeing one handle does not stop the manager; freeing the last one does. */
    lp_manager_free(manager);
    CHECK(lp_manager_is_running(clone));
    lease = acquire(clone);
    lp_lease_free(lease);
    lp_manager_free(clone);
}

int main(void) {
    timeout_and_fail_fast();
    interrupt();
    not_running();
    invalid_options();
    printf("acquire: ok\n");
    return 0;
}
