/*
 * bad_args.c: the boundary's rules (header, "Rules that hold for every function").
 *
 *  1. NULL for every handle and out-pointer of every function → LP_INVALID_ARGUMENT with a message
 *     naming the argument (or the documented NULL / 0 / false for functions that return a value),
 *     never a crash; a failed call leaves NULL in its out handle; drop_userdata still runs once.
 *  2. Strings that are not UTF-8 ("\xff\xfe") for owner, name_prefix, backend and task names →
 *     LP_INVALID_ARGUMENT.
 *  3. Configuration: an unknown backend ("fibers") → LP_CONFIG_UNSUPPORTED_BACKEND at once;
 *     "interpreter" → lp_manager_new fails with LP_CONFIG_UNSUPPORTED_BACKEND; values out of range,
 *     zero where > 0 is required, min_pools > max_pools, process-only options on a thread backend
 *     → their LP_CONFIG_* status with the field named in the message; the config stays usable and
 *     builds several managers; the documented defaults.
 *  4. Freeing NULL with every *_free is a no-op.
 *  5. lp_status_name for every status and for values that are none; lp_version() is the header's
 *     LP_VERSION_*; the last error message is per thread and survives successful calls.
 *  6. lp_set_logger: NULL callback and a bad level → LP_INVALID_ARGUMENT; a real logger receives
 *     records at or above its level (well-formed strings); a second one → LP_LOGGER_ALREADY_SET.
 */
#include "check.h"

/* ---- helpers ------------------------------------------------------------------------------- */

/* A call that must fail with LP_INVALID_ARGUMENT and a message containing `needle`. */
#define CHECK_INVALID(call, needle)                                                               \
    do {                                                                                          \
        CHECK_STATUS(call, LP_INVALID_ARGUMENT);                                                  \
        CHECK_MESSAGE_HAS(needle);                                                                \
    } while (0)

static void noop(void *userdata) {
    (void)userdata;
}

static int byte_task(const uint8_t *input, size_t len, lp_buffer *output, void *userdata) {
    (void)input, (void)len, (void)output, (void)userdata;
    return 0;
}

static size_t size_signal(void *userdata) {
    (void)userdata;
    return 1;
}

static const char NOT_UTF8[] = "\xff\xfe";

/* ---- 1 and 2: NULL and non-UTF-8 arguments -------------------------------------------------- */

static void acquire_options_and_interrupts(void) {
    lp_acquire_options *options = lp_acquire_options_new();
    lp_interrupt *interrupt = lp_interrupt_new();
    CHECK(options != NULL && interrupt != NULL);
    CHECK_INVALID(lp_acquire_options_set_owner(NULL, "owner"), "options");
    CHECK_INVALID(lp_acquire_options_set_owner(options, NULL), "owner");
    CHECK_INVALID(lp_acquire_options_set_owner(options, NOT_UTF8), "UTF-8");
    CHECK_OK(lp_acquire_options_set_owner(options, "fine"));
    CHECK_INVALID(lp_acquire_options_set_timeout_ms(NULL, 1), "options");
    CHECK_INVALID(lp_acquire_options_set_lease_ms(NULL, 1), "options");
    CHECK_INVALID(lp_acquire_options_set_interrupt(NULL, interrupt), "options");
    CHECK_INVALID(lp_acquire_options_set_interrupt(options, NULL), "interrupt");
    CHECK_INVALID(lp_interrupt_fire(NULL), "interrupt");
    CHECK(!lp_interrupt_is_fired(NULL));
    CHECK(!lp_interrupt_is_fired(interrupt));
    lp_interrupt_free(interrupt);
    lp_acquire_options_free(options);
}

static void config_setters(void) {
    lp_config *config = lp_config_new();
    CHECK_INVALID(lp_config_set_backend(NULL, "thread"), "config");
    CHECK_INVALID(lp_config_set_backend(config, NULL), "name");
    CHECK_INVALID(lp_config_set_backend(config, NOT_UTF8), "UTF-8");
    CHECK_INVALID(lp_config_set_max_pools(NULL, 1), "config");
    CHECK_INVALID(lp_config_set_min_pools(NULL, 1), "config");
    CHECK_INVALID(lp_config_set_units_per_pool(NULL, 1), "config");
    CHECK_INVALID(lp_config_set_workers_per_pool(NULL, 1), "config");
    CHECK_INVALID(lp_config_set_check_interval_ms(NULL, 1), "config");
    CHECK_INVALID(lp_config_set_default_lease_ms(NULL, 1), "config");
    CHECK_INVALID(lp_config_set_lease_grace_ms(NULL, 1), "config");
    CHECK_INVALID(lp_config_set_fairness_bound_us(NULL, 1), "config");
    CHECK_INVALID(lp_config_set_thread_stack_size(NULL, 1 << 20), "config");
    CHECK_INVALID(lp_config_set_max_tasks_per_worker(NULL, 1), "config");
    CHECK_INVALID(lp_config_set_forward_process_logs(NULL, true), "config");
    CHECK_INVALID(lp_config_set_name_prefix(NULL, "x"), "config");
    CHECK_INVALID(lp_config_set_name_prefix(config, NULL), "prefix");
    CHECK_INVALID(lp_config_set_name_prefix(config, NOT_UTF8), "UTF-8");

    /* A size provider refused: its drop_userdata runs at once. */
    counter c;
    counter_init(&c);
    CHECK_INVALID(lp_config_set_size_provider(NULL, size_signal, &c, counter_drop), "config");
    CHECK_COUNTER(&c, 0, 1);
    CHECK_INVALID(lp_config_set_size_provider(config, NULL, &c, counter_drop), "size");
    CHECK_COUNTER(&c, 0, 2);

    /* The refused calls changed nothing: the config still builds. */
    lp_manager *manager = NULL;
    CHECK_OK(lp_manager_new(config, &manager));
    lp_manager_free(manager);
    lp_config_free(config);
}

static void manager_functions(void) {
    lp_config *config = lp_config_new();
    lp_manager *manager = NOT_NULL_SENTINEL;
    CHECK_INVALID(lp_manager_new(NULL, &manager), "config");
    CHECK(manager == NULL);
    CHECK_INVALID(lp_manager_new(config, NULL), "out");
    CHECK_OK(lp_manager_new(config, &manager));
    lp_config_free(config);

    CHECK(lp_manager_clone(NULL) == NULL);
    CHECK_INVALID(lp_manager_start(NULL), "manager");
    CHECK_INVALID(lp_manager_stop(NULL), "manager");
    CHECK_INVALID(lp_manager_stop_graceful(NULL, 0), "manager");
    CHECK(!lp_manager_is_running(NULL));
    CHECK_INVALID(lp_manager_notify_scale_changed(NULL), "manager");

    lp_lease *lease = NOT_NULL_SENTINEL;
    CHECK_INVALID(lp_manager_acquire(NULL, NULL, &lease), "manager");
    CHECK(lease == NULL);
    CHECK_INVALID(lp_manager_acquire(manager, NULL, NULL), "out");
    lease = NOT_NULL_SENTINEL;
    CHECK_INVALID(lp_manager_try_acquire(NULL, NULL, &lease), "manager");
    CHECK(lease == NULL);
    CHECK_INVALID(lp_manager_try_acquire(manager, NULL, NULL), "out");

    lp_stats_snapshot *snapshot = NOT_NULL_SENTINEL;
    CHECK_INVALID(lp_manager_stats(NULL, &snapshot), "manager");
    CHECK(snapshot == NULL);
    CHECK_INVALID(lp_manager_stats(manager, NULL), "out");
    CHECK_OK(lp_manager_stats(manager, &snapshot));
    lp_stats counts;
    CHECK_INVALID(lp_stats_snapshot_counts(NULL, &counts), "snapshot");
    CHECK_INVALID(lp_stats_snapshot_counts(snapshot, NULL), "out");
    CHECK(lp_stats_snapshot_summary(NULL) == NULL);
    lp_stats_snapshot_free(snapshot);

    CHECK_OK(lp_manager_start(manager));
    CHECK_OK(lp_manager_notify_scale_changed(manager));

    /* Leases, executors, drains. */
    lp_drain *drain = NOT_NULL_SENTINEL;
    CHECK_INVALID(lp_lease_release(NULL, &drain), "lease");
    CHECK(drain == NULL);
    CHECK_INVALID(lp_lease_release(NULL, NULL), "lease");
    CHECK(lp_lease_executor(NULL) == NULL);
    CHECK(lp_lease_id(NULL) == 0);
    lp_lease_state state;
    CHECK_INVALID(lp_lease_get_state(NULL, &state), "lease");
    CHECK_INVALID(lp_lease_renew(NULL, 1000), "lease");
    lease = acquire(manager);
    CHECK_INVALID(lp_lease_get_state(lease, NULL), "state");
    /* A renewal so large the deadline would overflow is refused, not a crash. */
    CHECK_INVALID(lp_lease_renew(lease, UINT64_MAX), "overflow");
    CHECK(lease_state(lease) == LP_LEASE_ACTIVE);

    CHECK(lp_drain_pending(NULL) == 0);
    CHECK(!lp_drain_is_finished(NULL));
    CHECK_INVALID(lp_drain_get_state(NULL, &state), "drain");
    CHECK_INVALID(lp_drain_wait(NULL, 0), "drain");

    /* lp_submit: every refusal still runs drop_userdata, exactly once. */
    lp_executor *executor = lp_lease_executor(lease);
    counter c;
    counter_init(&c);
    lp_task *task = NOT_NULL_SENTINEL;
    CHECK_INVALID(lp_submit(NULL, counter_run, &c, counter_drop, &task), "executor");
    CHECK(task == NULL);
    CHECK_COUNTER(&c, 0, 1);
    task = NOT_NULL_SENTINEL;
    CHECK_INVALID(lp_submit(executor, NULL, &c, counter_drop, &task), "task");
    CHECK(task == NULL);
    CHECK_COUNTER(&c, 0, 2);
    CHECK_INVALID(lp_submit(executor, counter_run, &c, counter_drop, NULL), "out");
    CHECK_COUNTER(&c, 0, 3);
    /* Without drop_userdata, a refusal is just a refusal. */
    CHECK_INVALID(lp_submit(executor, NULL, &c, NULL, &task), "task");
    CHECK_COUNTER(&c, 0, 3);

    /* lp_submit_bytes. */
    task = NOT_NULL_SENTINEL;
    CHECK_INVALID(lp_submit_bytes(NULL, "echo", NULL, 0, 0, &task), "executor");
    CHECK(task == NULL);
    CHECK_INVALID(lp_submit_bytes(executor, NULL, NULL, 0, 0, &task), "name");
    CHECK_INVALID(lp_submit_bytes(executor, NOT_UTF8, NULL, 0, 0, &task), "UTF-8");
    CHECK_INVALID(lp_submit_bytes(executor, "echo", NULL, 5, 0, &task), "input");
    CHECK_INVALID(lp_submit_bytes(executor, "echo", NULL, 0, 0, NULL), "out");
    /* Valid arguments on a thread lease: the backend is wrong. */
    CHECK_STATUS(lp_submit_bytes(executor, "echo", NULL, 0, 0, &task), LP_WRONG_BACKEND);

    /* Task functions. */
    CHECK_INVALID(lp_task_wait(NULL), "task");
    CHECK_INVALID(lp_task_wait_timeout(NULL, 0), "task");
    CHECK(!lp_task_is_finished(NULL));
    CHECK(!lp_task_cancel(NULL));
    CHECK_INVALID(lp_task_on_complete(NULL, noop, NULL), "task");
    lp_buffer buffer = {0};
    CHECK_INVALID(lp_task_take_output(NULL, &buffer), "task");
    counter ran;
    counter_init(&ran);
    CHECK_OK(lp_submit(executor, counter_run, &ran, counter_drop, &task));
    CHECK_INVALID(lp_task_on_complete(task, NULL, NULL), "callback");
    CHECK_INVALID(lp_task_take_output(task, NULL), "output");
    CHECK_OK(lp_task_wait(task));
    CHECK_COUNTER(&ran, 1, 1);
    lp_task_free(task);

    /* Buffers. */
    CHECK_INVALID(lp_buffer_write(NULL, (const uint8_t *)"x", 1), "buffer");
    CHECK_INVALID(lp_buffer_write(&buffer, NULL, 3), "data");
    CHECK_OK(lp_buffer_write(&buffer, NULL, 0));
    CHECK_OK(lp_buffer_write(&buffer, (const uint8_t *)"ab", 2));
    CHECK_OK(lp_buffer_write(&buffer, (const uint8_t *)"cd", 2));
    CHECK(buffer.len == 4 && memcmp(buffer.data, "abcd", 4) == 0 && buffer.capacity >= 4);
    lp_buffer_free(&buffer);
    CHECK(buffer.data == NULL && buffer.len == 0 && buffer.capacity == 0);

    /* Grinders. */
    lp_grinder *grinder = NOT_NULL_SENTINEL;
    CHECK_INVALID(lp_grinder_new(NULL, NULL, &grinder), "manager");
    CHECK(grinder == NULL);
    CHECK_INVALID(lp_grinder_new(manager, NULL, NULL), "out");
    CHECK_INVALID(lp_grinder_start(NULL), "grinder");
    CHECK_INVALID(lp_grinder_stop(NULL, LP_STOP_DRAIN, 0), "grinder");
    lp_grinder_stats grinder_stats;
    CHECK_INVALID(lp_grinder_get_stats(NULL, &grinder_stats), "grinder");
    counter_init(&c);
    task = NOT_NULL_SENTINEL;
    CHECK_INVALID(lp_grinder_enqueue(NULL, counter_run, &c, counter_drop, &task), "grinder");
    CHECK(task == NULL);
    CHECK_COUNTER(&c, 0, 1);
    CHECK_OK(lp_grinder_new(manager, NULL, &grinder));
    CHECK_INVALID(lp_grinder_get_stats(grinder, NULL), "stats");
    CHECK_OK(lp_grinder_start(grinder));
    CHECK_INVALID(lp_grinder_enqueue(grinder, NULL, &c, counter_drop, &task), "job");
    CHECK_COUNTER(&c, 0, 2);
    CHECK_INVALID(lp_grinder_enqueue(grinder, counter_run, &c, counter_drop, NULL), "out");
    CHECK_COUNTER(&c, 0, 3);
    CHECK_INVALID(lp_grinder_stop(grinder, 2, 0), "mode");
    CHECK_INVALID(lp_grinder_stop(grinder, UINT32_MAX, 0), "mode");
    lp_grinder_free(grinder);

    /* Registries. */
    lp_registry *registry = lp_registry_new();
    CHECK_INVALID(lp_registry_register(NULL, "x", byte_task, NULL), "registry");
    CHECK_INVALID(lp_registry_register(registry, NULL, byte_task, NULL), "name");
    CHECK_INVALID(lp_registry_register(registry, NOT_UTF8, byte_task, NULL), "UTF-8");
    CHECK_INVALID(lp_registry_register(registry, "x", NULL, NULL), "task");
    CHECK_INVALID(lp_run_if_worker(NULL), "registry");
    lp_registry_free(registry);

    lp_executor_free(executor);
    lp_lease_free(lease);
    lp_manager_free(manager);
}

/* ---- 3: configuration errors ---------------------------------------------------------------- */

/* lp_manager_new(config) fails with `status`, naming `field`; *out is NULL. */
static void check_config_error(const lp_config *config, lp_status status, const char *field) {
    lp_manager *manager = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_manager_new(config, &manager), status);
    CHECK(manager == NULL);
    CHECK_MESSAGE_HAS(field);
}

/* The field the last failure was about, as lp_last_error_field() names it. */
#define CHECK_FIELD(name)                                                                        \
    do {                                                                                         \
        if (strcmp(lp_last_error_field(), (name)) != 0) {                                        \
            fprintf(stderr, "%s:%d: lp_last_error_field() is \"%s\", expected \"%s\"\n", __FILE__, \
                    __LINE__, lp_last_error_field(), (name));                                    \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

/* lp_manager_new(config) works. */
static void check_config_ok(const lp_config *config) {
    lp_manager *manager = NULL;
    CHECK_OK(lp_manager_new(config, &manager));
    CHECK(manager != NULL);
    lp_manager_free(manager);
}

static void config_errors(void) {
    lp_config *config = lp_config_new();

    /* The documented defaults: a new config builds as is. */
    lp_manager *manager = NULL;
    CHECK_OK(lp_manager_new(config, &manager));
    lp_stats s = manager_counts(manager);
    CHECK(s.max_pools == 4 && s.min_pools == 1 && s.workers_per_pool == 4 && !s.running);
    lp_manager_free(manager);

    /* Backends. */
    CHECK_STATUS(lp_config_set_backend(config, "fibers"), LP_CONFIG_UNSUPPORTED_BACKEND);
    CHECK_MESSAGE_HAS("fibers");
    check_config_ok(config); /* unchanged by the refusal */
    CHECK_OK(lp_config_set_backend(config, "interpreter"));
    check_config_error(config, LP_CONFIG_UNSUPPORTED_BACKEND, "nterpreter");
    CHECK_FIELD("backend");
    CHECK_OK(lp_config_set_backend(config, "thread"));
    check_config_ok(config);

    /* Counts. */
    CHECK_OK(lp_config_set_max_pools(config, 0));
    lp_manager *refused = NOT_NULL_SENTINEL;
    lp_status status = lp_manager_new(config, &refused);
    CHECK(status == LP_CONFIG_MUST_BE_POSITIVE || status == LP_CONFIG_OUT_OF_RANGE);
    CHECK(refused == NULL);
    CHECK_MESSAGE_HAS("max_pools");
    CHECK_OK(lp_config_set_max_pools(config, 70000));
    check_config_error(config, LP_CONFIG_OUT_OF_RANGE, "max_pools");
    CHECK_FIELD("max_pools");
    CHECK_OK(lp_config_set_max_pools(config, 2));
    CHECK_OK(lp_config_set_min_pools(config, 3));
    check_config_error(config, LP_CONFIG_MIN_ABOVE_MAX, "min_pools");
    CHECK_FIELD("min_pools");
    CHECK_OK(lp_config_set_min_pools(config, 0));
    check_config_error(config, LP_CONFIG_MUST_BE_POSITIVE, "min_pools");
    CHECK_OK(lp_config_set_min_pools(config, 2));
    check_config_ok(config);
    CHECK_OK(lp_config_set_workers_per_pool(config, 5000));
    check_config_error(config, LP_CONFIG_OUT_OF_RANGE, "workers_per_pool");
    CHECK_FIELD("workers_per_pool");
    /* A failure that is not about a field clears it. */
    CHECK_STATUS(lp_manager_start(NULL), LP_INVALID_ARGUMENT);
    CHECK_FIELD("");
    CHECK_OK(lp_config_set_workers_per_pool(config, 0));
    check_config_error(config, LP_CONFIG_MUST_BE_POSITIVE, "workers_per_pool");
    CHECK_OK(lp_config_set_workers_per_pool(config, 1));
    CHECK_OK(lp_config_set_units_per_pool(config, 0));
    check_config_error(config, LP_CONFIG_MUST_BE_POSITIVE, "units_per_pool");
    CHECK_OK(lp_config_set_units_per_pool(config, 1));

    /* Durations and sizes. */
    CHECK_OK(lp_config_set_check_interval_ms(config, 0));
    check_config_error(config, LP_CONFIG_MUST_BE_POSITIVE, "check_interval");
    CHECK_FIELD("check_interval");
    CHECK_OK(lp_config_set_check_interval_ms(config, 1000));
    CHECK_OK(lp_config_set_default_lease_ms(config, 0));
    check_config_error(config, LP_CONFIG_MUST_BE_POSITIVE, "default_lease");
    CHECK_OK(lp_config_set_default_lease_ms(config, 60000));
    CHECK_OK(lp_config_set_thread_stack_size(config, 1024));
    check_config_error(config, LP_CONFIG_OUT_OF_RANGE, "thread_stack_size");
    CHECK_FIELD("thread_stack_size");
    CHECK_OK(lp_config_set_thread_stack_size(config, 1 << 20));
    check_config_ok(config);

    /* Process-only options on the thread backend; accepted on the process backend. */
    CHECK_OK(lp_config_set_forward_process_logs(config, true));
    check_config_error(config, LP_CONFIG_PROCESS_ONLY, "process");
    CHECK_OK(lp_config_set_forward_process_logs(config, false));
    check_config_ok(config);

    lp_config *process = lp_config_new();
    CHECK_OK(lp_config_set_backend(process, "process"));
    CHECK_OK(lp_config_set_max_tasks_per_worker(process, 5));
    CHECK_OK(lp_config_set_forward_process_logs(process, true));
    check_config_ok(process); /* built, never started: no worker process */
    CHECK_OK(lp_config_set_backend(process, "thread"));
    check_config_error(process, LP_CONFIG_PROCESS_ONLY, "max_tasks_per_worker");
    lp_config_free(process);

    /* One config builds several managers, each independent. */
    CHECK_OK(lp_config_set_name_prefix(config, "bad-args"));
    lp_manager *first = NULL;
    lp_manager *second = NULL;
    CHECK_OK(lp_manager_new(config, &first));
    CHECK_OK(lp_manager_new(config, &second));
    lp_config_free(config); /* the managers do not need it */
    CHECK_OK(lp_manager_start(first));
    CHECK(lp_manager_is_running(first) && !lp_manager_is_running(second));
    lp_manager_free(first);
    lp_manager_free(second);
}

/* ---- 4: freeing NULL ------------------------------------------------------------------------ */

static void free_null(void) {
    lp_acquire_options_free(NULL);
    lp_interrupt_free(NULL);
    lp_config_free(NULL);
    lp_grinder_free(NULL);
    lp_lease_free(NULL);
    lp_executor_free(NULL);
    lp_drain_free(NULL);
    lp_manager_free(NULL);
    lp_registry_free(NULL);
    lp_stats_snapshot_free(NULL);
    lp_string_free(NULL);
    lp_task_free(NULL);
    lp_buffer_free(NULL);
    lp_buffer zeroed = {0};
    lp_buffer_free(&zeroed);
}

/* ---- 5: names, version, the last error ------------------------------------------------------ */

static void names_and_version(void) {
    static const struct {
        lp_status status;
        const char *name;
    } all[] = {
        {LP_OK, "LP_OK"},
        {LP_INVALID_ARGUMENT, "LP_INVALID_ARGUMENT"},
        {LP_PANIC, "LP_PANIC"},
        {LP_NOT_RUNNING, "LP_NOT_RUNNING"},
        {LP_UNAVAILABLE, "LP_UNAVAILABLE"},
        {LP_STARTING, "LP_STARTING"},
        {LP_TIMED_OUT, "LP_TIMED_OUT"},
        {LP_INTERRUPTED, "LP_INTERRUPTED"},
        {LP_POOL_BROKEN, "LP_POOL_BROKEN"},
        {LP_START_FAILED, "LP_START_FAILED"},
        {LP_EXPIRED, "LP_EXPIRED"},
        {LP_RELEASED, "LP_RELEASED"},
        {LP_REVOKED, "LP_REVOKED"},
        {LP_MANAGER_STOPPED, "LP_MANAGER_STOPPED"},
        {LP_WRONG_BACKEND, "LP_WRONG_BACKEND"},
        {LP_CANCELLED, "LP_CANCELLED"},
        {LP_TASK_PANICKED, "LP_TASK_PANICKED"},
        {LP_WORKER_CRASHED, "LP_WORKER_CRASHED"},
        {LP_TASK_FAILED, "LP_TASK_FAILED"},
        {LP_UNKNOWN_TASK, "LP_UNKNOWN_TASK"},
        {LP_NOT_FINISHED, "LP_NOT_FINISHED"},
        {LP_GRINDER_NOT_STARTED, "LP_GRINDER_NOT_STARTED"},
        {LP_GRINDER_STOPPING, "LP_GRINDER_STOPPING"},
        {LP_GRINDER_FULL, "LP_GRINDER_FULL"},
        {LP_GRINDER_CRASHED, "LP_GRINDER_CRASHED"},
        {LP_CONFIG_OUT_OF_RANGE, "LP_CONFIG_OUT_OF_RANGE"},
        {LP_CONFIG_MUST_BE_POSITIVE, "LP_CONFIG_MUST_BE_POSITIVE"},
        {LP_CONFIG_MIN_ABOVE_MAX, "LP_CONFIG_MIN_ABOVE_MAX"},
        {LP_CONFIG_INVALID_NAME, "LP_CONFIG_INVALID_NAME"},
        {LP_CONFIG_UNSUPPORTED_BACKEND, "LP_CONFIG_UNSUPPORTED_BACKEND"},
        {LP_CONFIG_PROCESS_ONLY, "LP_CONFIG_PROCESS_ONLY"},
        {LP_CONFIG_INVALID, "LP_CONFIG_INVALID"},
        {LP_LOGGER_ALREADY_SET, "LP_LOGGER_ALREADY_SET"},
    };
    size_t count = sizeof all / sizeof all[0];
    for (size_t i = 0; i < count; i++) {
        const char *name = lp_status_name((uint32_t)all[i].status);
        if (name == NULL || strcmp(name, all[i].name) != 0) {
            fprintf(stderr, "lp_status_name(%d) is \"%s\", expected \"%s\"\n", (int)all[i].status,
                    name ? name : "(NULL)", all[i].name);
            exit(1);
        }
    }
    /* Every other number in 0..100, and far-off ones, are unknown. */
    size_t known = 0;
    for (uint32_t n = 0; n < 100; n++) {
        if (strcmp(lp_status_name(n), "LP_UNKNOWN_STATUS") != 0) {
            known++;
        }
    }
    CHECK(known == count);
    CHECK(strcmp(lp_status_name(3), "LP_UNKNOWN_STATUS") == 0);
    CHECK(strcmp(lp_status_name(12345), "LP_UNKNOWN_STATUS") == 0);
    CHECK(strcmp(lp_status_name(UINT32_MAX), "LP_UNKNOWN_STATUS") == 0);

    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", LP_VERSION_MAJOR, LP_VERSION_MINOR, LP_VERSION_PATCH);
    CHECK(lp_version() != NULL);
    CHECK(strcmp(lp_version(), expected) == 0);
}

static void *fail_on_another_thread(void *arg) {
    (void)arg;
    /* A fresh thread has no message yet. */
    CHECK(strcmp(lp_last_error_message(), "") == 0);
    CHECK_INVALID(lp_manager_start(NULL), "manager");
    return NULL;
}

static void last_error_is_per_thread(void) {
    CHECK_INVALID(lp_interrupt_fire(NULL), "interrupt is NULL");
    pthread_t thread;
    CHECK_PT(pthread_create(&thread, NULL, fail_on_another_thread, NULL));
    CHECK_PT(pthread_join(thread, NULL));
    /* Another thread's failure did not touch this thread's message; a success does not either. */
    CHECK_MESSAGE_HAS("interrupt is NULL");
    lp_interrupt *interrupt = lp_interrupt_new();
    CHECK_OK(lp_interrupt_fire(interrupt));
    lp_interrupt_free(interrupt);
    CHECK_MESSAGE_HAS("interrupt is NULL");
}

/* ---- 6: the logger -------------------------------------------------------------------------- */

typedef struct {
    atomic_int records;
    atomic_int too_verbose;
    atomic_int malformed;
} log_counts;

static void log_record(uint32_t level, const char *target, const char *message, void *userdata) {
    log_counts *counts = (log_counts *)userdata;
    atomic_fetch_add(&counts->records, 1);
    if (level > LP_LOG_INFO) {
        atomic_fetch_add(&counts->too_verbose, 1);
    }
    if (level < LP_LOG_ERROR || target == NULL || message == NULL || target[0] == '\0') {
        atomic_fetch_add(&counts->malformed, 1);
    }
}

static log_counts logged; /* must outlive the process's logger */

static void logger(void) {
    atomic_init(&logged.records, 0);
    atomic_init(&logged.too_verbose, 0);
    atomic_init(&logged.malformed, 0);
    CHECK_INVALID(lp_set_logger(NULL, &logged, LP_LOG_INFO), "callback");
    CHECK_INVALID(lp_set_logger(log_record, &logged, LP_LOG_TRACE + 1), "max_level");
    CHECK_INVALID(lp_set_logger(log_record, &logged, UINT32_MAX), "max_level");
    CHECK_OK(lp_set_logger(log_record, &logged, LP_LOG_INFO));
    CHECK_STATUS(lp_set_logger(log_record, &logged, LP_LOG_TRACE), LP_LOGGER_ALREADY_SET);
    CHECK_MESSAGE_HAS("logger");

    /* A grinder logs "grinder started" and "grinder stopped" at info. */
    lp_manager *manager = start_manager(1, 1, 1);
    lp_grinder *grinder = NULL;
    CHECK_OK(lp_grinder_new(manager, NULL, &grinder));
    CHECK_OK(lp_grinder_start(grinder));
    CHECK_OK(lp_grinder_stop(grinder, LP_STOP_CANCEL, 0));
    lp_grinder_free(grinder);
    lp_manager_free(manager);
    CHECK(atomic_load(&logged.records) >= 2);
    CHECK(atomic_load(&logged.too_verbose) == 0);
    CHECK(atomic_load(&logged.malformed) == 0);
}

int main(void) {
    acquire_options_and_interrupts();
    config_setters();
    manager_functions();
    config_errors();
    free_null();
    names_and_version();
    last_error_is_per_thread();
    logger();
    printf("bad_args: ok\n");
    return 0;
}
