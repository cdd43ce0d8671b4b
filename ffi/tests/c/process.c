/*
 * process.c: the process backend, with this program as its own worker.
 *
 * main() registers byte tasks and calls lp_run_if_worker first: re-executed by a process pool,
 * this program serves those tasks and never returns from that call. As the parent it then:
 *
 *  1. Round trips: "echo", "upper" (1 MiB too), empty input, the registry's userdata reaching the
 *     task, tasks running in another process ("pid"), 16 tasks in flight on 2 workers. Output is
 *     taken with lp_task_take_output into a zeroed lp_buffer (a second take gives an empty one)
 *     and freed with lp_buffer_free.
 *  2. Failures: "fail" returns 7 → LP_TASK_FAILED with "7" in the message (also from
 *     lp_task_take_output); an unregistered name → LP_UNKNOWN_TASK naming it.
 *  3. Crashes: "abort" and "segv" → LP_WORKER_CRASHED; the pool is broken (the lease is
 *     LP_LEASE_BROKEN and refuses work with LP_POOL_BROKEN), the manager retires it and a new
 *     lease works.
 *  4. Timeout: "sleep" (60 s) with timeout_ms 300 → LP_TIMED_OUT, not before 300 ms, and the
 *     worker is replaced (the lease keeps working; the stats count it).
 *  5. Not finished yet, and cancel: two "hold" tasks keep both workers busy (each reports it started
 *     through a FIFO and waits on another FIFO the test controls): lp_task_take_output →
 *     LP_NOT_FINISHED; a third task queued behind them can be cancelled (LP_CANCELLED); released,
 *     the held tasks return what they read.
 *  6. Wrong backend: lp_submit (a callback) on a process lease → LP_WRONG_BACKEND, drop_userdata
 *     ran once; lp_submit_bytes on a thread lease → LP_WRONG_BACKEND.
 *  7. Registry misuse: duplicate names, NULL and non-UTF-8 names, NULL tasks → LP_INVALID_ARGUMENT;
 *     lp_run_if_worker(NULL) → LP_INVALID_ARGUMENT.
 *  8. After lp_manager_stop, lp_submit_bytes → LP_MANAGER_STOPPED.
 */
#include "check.h"

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the worker's tasks (also compiled into the parent, which never runs them) ----------- */

static int task_echo(const uint8_t *input, size_t len, lp_buffer *output, void *userdata) {
    (void)userdata;
    return lp_buffer_write(output, input, len) == LP_OK ? 0 : 1;
}

static int task_upper(const uint8_t *input, size_t len, lp_buffer *output, void *userdata) {
    (void)userdata;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        return 2;
    }
    for (size_t i = 0; i < len; i++) {
        copy[i] = (uint8_t)toupper(input[i]);
    }
    int rc = lp_buffer_write(output, copy, len) == LP_OK ? 0 : 1;
    free(copy);
    return rc;
}

static int task_fail(const uint8_t *input, size_t len, lp_buffer *output, void *userdata) {
    (void)input, (void)len, (void)userdata;
    /* Output written before a failure is discarded. */
    lp_buffer_write(output, (const uint8_t *)"partial", 7);
    return 7;
}

static int task_abort(const uint8_t *input, size_t len, lp_buffer *output, void *userdata) {
    (void)input, (void)len, (void)output, (void)userdata;
    abort();
}

static int task_segv(const uint8_t *input, size_t len, lp_buffer *output, void *userdata) {
    (void)input, (void)len, (void)output, (void)userdata;
    raise(SIGSEGV);
    return 0;
}

/* Sleeps for the number of milliseconds in the input (text). */
static int task_sleep(const uint8_t *input, size_t len, lp_buffer *output, void *userdata) {
    (void)output, (void)userdata;
    char text[32] = {0};
    memcpy(text, input, len < sizeof text - 1 ? len : sizeof text - 1);
    sleep_ms(strtoull(text, NULL, 10));
    return 0;
}

/* Writes the worker's pid (text). */
static int task_pid(const uint8_t *input, size_t len, lp_buffer *output, void *userdata) {
    (void)input, (void)len, (void)userdata;
    char text[32];
    int n = snprintf(text, sizeof text, "%ld", (long)getpid());
    return lp_buffer_write(output, (const uint8_t *)text, (size_t)n) == LP_OK ? 0 : 1;
}

/* Writes the string the registry was given as userdata. */
static int task_tag(const uint8_t *input, size_t len, lp_buffer *output, void *userdata) {
    (void)input, (void)len;
    const char *tag = (const char *)userdata;
    return lp_buffer_write(output, (const uint8_t *)tag, strlen(tag)) == LP_OK ? 0 : 1;
}

/* Input "STARTED_FIFO\nGATE_FIFO": writes one byte to the first FIFO (I am running), then reads
 * one byte from the second (wait for the test) and returns it as the output. */
static int task_hold(const uint8_t *input, size_t len, lp_buffer *output, void *userdata) {
    (void)userdata;
    char paths[512] = {0};
    if (len >= sizeof paths) {
        return 3;
    }
    memcpy(paths, input, len);
    char *gate_path = strchr(paths, '\n');
    if (gate_path == NULL) {
        return 4;
    }
    *gate_path++ = '\0';
    int started = open(paths, O_WRONLY);
    if (started < 0 || write(started, "s", 1) != 1) {
        return 5;
    }
    close(started);
    int gate_fd = open(gate_path, O_RDONLY);
    uint8_t byte = 0;
    if (gate_fd < 0 || read(gate_fd, &byte, 1) != 1) {
        return 6;
    }
    close(gate_fd);
    return lp_buffer_write(output, &byte, 1) == LP_OK ? 0 : 1;
}

static const char registry_tag[] = "tag-from-registry";

/* ---- the parent --------------------------------------------------------------------------- */

/* Submits a byte task and waits for it; returns its status, output in *out (zeroed first). */
static lp_status run_bytes(const lp_executor *executor, const char *name, const void *input, size_t len,
                           uint64_t timeout_ms, lp_buffer *out) {
    lp_task *task = NULL;
    memset(out, 0, sizeof *out);
    lp_status status = lp_submit_bytes(executor, name, (const uint8_t *)input, len, timeout_ms, &task);
    if (status != LP_OK) {
        CHECK(task == NULL);
        return status;
    }
    CHECK(task != NULL);
    status = lp_task_wait(task);
    lp_status taken = lp_task_take_output(task, out);
    CHECK(taken == status);
    lp_task_free(task);
    return status;
}

/* The output equals the string `expected`. */
static void check_output(const lp_buffer *out, const char *expected) {
    size_t len = strlen(expected);
    if (out->len != len || (len > 0 && memcmp(out->data, expected, len) != 0)) {
        fprintf(stderr, "output \"%.*s\" (%zu bytes), expected \"%s\"\n", (int)out->len,
                out->data ? (const char *)out->data : "", out->len, expected);
        exit(1);
    }
}

/* An "echo" round trip works: the lease (and a worker) is usable. */
static void echo_works(const lp_executor *executor, const char *text) {
    lp_buffer out;
    CHECK_OK(run_bytes(executor, "echo", text, strlen(text), 0, &out));
    check_output(&out, text);
    lp_buffer_free(&out);
}

static void round_trips(const lp_executor *executor) {
    lp_buffer out;
    echo_works(executor, "hello, worker");

    CHECK_OK(run_bytes(executor, "upper", "MiXed case", 10, 0, &out));
    check_output(&out, "MIXED CASE");
    lp_buffer_free(&out);
    CHECK(out.data == NULL && out.len == 0 && out.capacity == 0);
    lp_buffer_free(&out); /* a zeroed buffer: no-op */

    /* Empty input (NULL with length 0), empty output. */
    CHECK_OK(run_bytes(executor, "echo", NULL, 0, 0, &out));
    CHECK(out.len == 0);
    lp_buffer_free(&out);

    /* The registry's userdata reaches the task in the worker. */
    CHECK_OK(run_bytes(executor, "tag", NULL, 0, 0, &out));
    check_output(&out, registry_tag);
    lp_buffer_free(&out);

    /* The task runs in another process. */
    CHECK_OK(run_bytes(executor, "pid", NULL, 0, 0, &out));
    char text[32] = {0};
    memcpy(text, out.data, out.len < sizeof text - 1 ? out.len : sizeof text - 1);
    long pid = strtol(text, NULL, 10);
    CHECK(pid > 0 && pid != (long)getpid());
    lp_buffer_free(&out);

    /* A large payload through "upper" (more than one socket buffer: ipc-channel fragments it):
     * 1 MiB, or 256 KiB under valgrind, where the parent's (de)serialization is slow. */
    const size_t big = lp_test_scale() == 1 ? 1u << 20 : 1u << 18;
    uint8_t *input = malloc(big);
    CHECK(input != NULL);
    for (size_t i = 0; i < big; i++) {
        input[i] = (uint8_t)('a' + i % 26);
    }
    CHECK_OK(run_bytes(executor, "upper", input, big, 0, &out));
    CHECK(out.len == big);
    for (size_t i = 0; i < big; i++) {
        if (out.data[i] != (uint8_t)('A' + i % 26)) {
            fprintf(stderr, "byte %zu of the big output is %d\n", i, out.data[i]);
            exit(1);
        }
    }
    lp_buffer_free(&out);
    free(input);

    /* 16 tasks in flight at once on 2 workers; a second take gives an empty buffer. */
    enum { IN_FLIGHT = 16 };
    lp_task *tasks[IN_FLIGHT];
    char inputs[IN_FLIGHT][16];
    for (int i = 0; i < IN_FLIGHT; i++) {
        int n = snprintf(inputs[i], sizeof inputs[i], "task-%d", i);
        CHECK_OK(lp_submit_bytes(executor, "echo", (const uint8_t *)inputs[i], (size_t)n, 0, &tasks[i]));
    }
    for (int i = IN_FLIGHT - 1; i >= 0; i--) {
        CHECK_OK(lp_task_wait(tasks[i]));
        lp_buffer buf = {0};
        CHECK_OK(lp_task_take_output(tasks[i], &buf));
        check_output(&buf, inputs[i]);
        /* Not empty: refused, and the buffer is left alone. */
        CHECK_STATUS(lp_task_take_output(tasks[i], &buf), LP_INVALID_ARGUMENT);
        CHECK(buf.len == strlen(inputs[i]));
        lp_buffer_free(&buf);
        CHECK_OK(lp_task_take_output(tasks[i], &buf));
        CHECK(buf.data == NULL && buf.len == 0);
        lp_task_free(tasks[i]);
    }
}

static void failures(const lp_executor *executor) {
    lp_buffer out;
    CHECK_STATUS(run_bytes(executor, "fail", "x", 1, 0, &out), LP_TASK_FAILED);
    CHECK(out.data == NULL && out.len == 0);
    CHECK_MESSAGE_HAS("7");
    CHECK_MESSAGE_HAS("fail");

    CHECK_STATUS(run_bytes(executor, "no-such-task", "x", 1, 0, &out), LP_UNKNOWN_TASK);
    CHECK_MESSAGE_HAS("no-such-task");
    echo_works(executor, "after failures");
}

/* The lease in use (replaced after a crash broke its pool). */
typedef struct {
    const lp_manager *manager;
    lp_lease *lease;
    lp_executor *executor;
} session;

static void session_open(session *s) {
    s->lease = acquire(s->manager);
    s->executor = lp_lease_executor(s->lease);
    CHECK(s->executor != NULL);
}

static void session_close(session *s) {
    lp_executor_free(s->executor);
    lp_lease_free(s->lease);
    s->executor = NULL;
    s->lease = NULL;
}

/* A task crashes its worker: the task fails with LP_WORKER_CRASHED and the pool is broken (the
 * lease refuses further work with LP_POOL_BROKEN); the manager retires it and builds another, so
 * a new lease works. */
static void crash(session *s, const char *task, uint64_t retired_before) {
    lp_buffer out;
    CHECK_STATUS(run_bytes(s->executor, task, NULL, 0, 0, &out), LP_WORKER_CRASHED);
    CHECK_MESSAGE_HAS("crashed");
    CHECK(lease_state(s->lease) == LP_LEASE_BROKEN);
    lp_task *refused = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_submit_bytes(s->executor, "echo", (const uint8_t *)"x", 1, 0, &refused), LP_POOL_BROKEN);
    CHECK(refused == NULL);
    CHECK_MESSAGE_HAS("broken");
    CHECK_STATUS(lp_lease_renew(s->lease, 1000), LP_POOL_BROKEN);
    session_close(s);
    session_open(s);
    for (int i = 0; i < 4; i++) {
        echo_works(s->executor, "after a crash");
    }
    CHECK(manager_counts(s->manager).pools_retired_broken == retired_before + 1);
}

static void crashes(session *s) {
    uint64_t retired = manager_counts(s->manager).pools_retired_broken;
    crash(s, "abort", retired);
    crash(s, "segv", retired + 1);
}

static void timeout(const lp_manager *manager, const lp_executor *executor) {
    lp_buffer out;
    uint64_t start = now_ms();
    CHECK_STATUS(run_bytes(executor, "sleep", "60000", 5, 300, &out), LP_TIMED_OUT);
    /* Time is the subject: not before the task's own timeout, and long before its 60 s sleep. */
    uint64_t elapsed = now_ms() - start;
    CHECK(elapsed >= 295);
    CHECK(elapsed < 50000);
    CHECK_MESSAGE_HAS("timeout");
    for (int i = 0; i < 4; i++) {
        echo_works(executor, "after timeout");
    }
    CHECK(manager_counts(manager).tasks_timed_out == 1);
    /* A task that finishes within its timeout is unaffected. */
    CHECK_OK(run_bytes(executor, "sleep", "1", 1, 60000, &out));
    lp_buffer_free(&out);
}

/* Reads one byte from `fd` within 60 s (fails the test otherwise). */
static void read_byte(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    CHECK(poll(&p, 1, 60000) == 1);
    uint8_t byte;
    CHECK(read(fd, &byte, 1) == 1);
}

static void not_finished_and_cancel(const lp_executor *executor) {
    char dir[] = "/tmp/lp-process-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char started_path[256], gate_path[256], input[520];
    snprintf(started_path, sizeof started_path, "%s/started", dir);
    snprintf(gate_path, sizeof gate_path, "%s/gate", dir);
    CHECK(mkfifo(started_path, 0600) == 0);
    CHECK(mkfifo(gate_path, 0600) == 0);
    /* O_RDWR on a FIFO never blocks on Linux: the test holds both ends open. */
    int started = open(started_path, O_RDWR);
    int gate_fd = open(gate_path, O_RDWR);
    CHECK(started >= 0 && gate_fd >= 0);
    int n = snprintf(input, sizeof input, "%s\n%s", started_path, gate_path);

    lp_task *held[2];
    for (int i = 0; i < 2; i++) {
        CHECK_OK(lp_submit_bytes(executor, "hold", (const uint8_t *)input, (size_t)n, 0, &held[i]));
    }
    /* Both workers are running a held task. */
    read_byte(started);
    read_byte(started);

    lp_buffer out = {0};
    CHECK_STATUS(lp_task_take_output(held[0], &out), LP_NOT_FINISHED);
    CHECK(out.data == NULL);
    CHECK(!lp_task_is_finished(held[1]));
    CHECK_STATUS(lp_task_wait_timeout(held[0], 20), LP_NOT_FINISHED);
    /* Running tasks cannot be cancelled. */
    CHECK(!lp_task_cancel(held[0]));

    /* Queued behind them: cancellable. */
    lp_task *queued = NULL;
    CHECK_OK(lp_submit_bytes(executor, "echo", (const uint8_t *)"q", 1, 0, &queued));
    CHECK(lp_task_cancel(queued));
    CHECK_STATUS(lp_task_wait(queued), LP_CANCELLED);
    CHECK_STATUS(lp_task_take_output(queued, &out), LP_CANCELLED);
    lp_task_free(queued);

    CHECK(write(gate_fd, "ab", 2) == 2);
    char seen[3] = {0};
    for (int i = 0; i < 2; i++) {
        CHECK_OK(lp_task_wait(held[i]));
        CHECK_OK(lp_task_take_output(held[i], &out));
        CHECK(out.len == 1);
        seen[i] = (char)out.data[0];
        lp_buffer_free(&out);
        lp_task_free(held[i]);
    }
    CHECK((seen[0] == 'a' && seen[1] == 'b') || (seen[0] == 'b' && seen[1] == 'a'));
    close(started);
    close(gate_fd);
    CHECK(unlink(started_path) == 0);
    CHECK(unlink(gate_path) == 0);
    CHECK(rmdir(dir) == 0);
}

static void wrong_backend(const lp_executor *process_executor) {
    counter c;
    counter_init(&c);
    lp_task *task = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_submit(process_executor, counter_run, &c, counter_drop, &task), LP_WRONG_BACKEND);
    CHECK(task == NULL);
    CHECK_COUNTER(&c, 0, 1);

    lp_manager *threads = start_manager(1, 1, 1);
    lp_lease *lease = acquire(threads);
    lp_executor *executor = lp_lease_executor(lease);
    task = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_submit_bytes(executor, "echo", (const uint8_t *)"x", 1, 0, &task), LP_WRONG_BACKEND);
    CHECK(task == NULL);
    lp_executor_free(executor);
    lp_lease_free(lease);
    lp_manager_free(threads);
}

static void registry_misuse(void) {
    lp_registry *registry = lp_registry_new();
    CHECK(registry != NULL);
    CHECK_OK(lp_registry_register(registry, "echo", task_echo, NULL));
    CHECK_STATUS(lp_registry_register(registry, "echo", task_upper, NULL), LP_INVALID_ARGUMENT);
    CHECK_MESSAGE_HAS("echo");
    CHECK_STATUS(lp_registry_register(registry, NULL, task_echo, NULL), LP_INVALID_ARGUMENT);
    CHECK_STATUS(lp_registry_register(registry, "\xff\xfe", task_echo, NULL), LP_INVALID_ARGUMENT);
    CHECK_MESSAGE_HAS("UTF-8");
    CHECK_STATUS(lp_registry_register(registry, "null-task", NULL, NULL), LP_INVALID_ARGUMENT);
    CHECK_STATUS(lp_registry_register(NULL, "x", task_echo, NULL), LP_INVALID_ARGUMENT);
    CHECK_STATUS(lp_run_if_worker(NULL), LP_INVALID_ARGUMENT);
    /* Not a worker: returns at once, again. */
    CHECK_OK(lp_run_if_worker(registry));
    lp_registry_free(registry);
}

int main(void) {
    /* Crashing tasks must not leave core files behind (workers inherit this limit). */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);

    lp_registry *registry = lp_registry_new();
    CHECK_OK(lp_registry_register(registry, "echo", task_echo, NULL));
    CHECK_OK(lp_registry_register(registry, "upper", task_upper, NULL));
    CHECK_OK(lp_registry_register(registry, "fail", task_fail, NULL));
    CHECK_OK(lp_registry_register(registry, "abort", task_abort, NULL));
    CHECK_OK(lp_registry_register(registry, "segv", task_segv, NULL));
    CHECK_OK(lp_registry_register(registry, "sleep", task_sleep, NULL));
    CHECK_OK(lp_registry_register(registry, "pid", task_pid, NULL));
    CHECK_OK(lp_registry_register(registry, "tag", task_tag, (void *)registry_tag));
    CHECK_OK(lp_registry_register(registry, "hold", task_hold, NULL));
    /* In a worker this never returns. */
    CHECK_OK(lp_run_if_worker(registry));
    lp_registry_free(registry);

    lp_config *config = lp_config_new();
    CHECK_OK(lp_config_set_backend(config, "process"));
    CHECK_OK(lp_config_set_max_pools(config, 1));
    CHECK_OK(lp_config_set_min_pools(config, 1));
    CHECK_OK(lp_config_set_workers_per_pool(config, 2));
    lp_manager *manager = NULL;
    CHECK_OK(lp_manager_new(config, &manager));
    lp_config_free(config);
    CHECK_OK(lp_manager_start(manager));
    session s = {manager, NULL, NULL};
    session_open(&s);

    round_trips(s.executor);
    failures(s.executor);
    timeout(manager, s.executor);
    not_finished_and_cancel(s.executor);
    wrong_backend(s.executor);
    crashes(&s);
    registry_misuse();

    lp_stats_snapshot *snapshot = NULL;
    CHECK_OK(lp_manager_stats(manager, &snapshot));
    char *summary = lp_stats_snapshot_summary(snapshot);
    CHECK(summary != NULL && strstr(summary, "worker pids") != NULL);
    lp_string_free(summary);
    lp_stats_snapshot_free(snapshot);

    CHECK_OK(lp_manager_stop_graceful(manager, 60000));
    lp_task *task = NOT_NULL_SENTINEL;
    CHECK_STATUS(lp_submit_bytes(s.executor, "echo", (const uint8_t *)"x", 1, 0, &task), LP_MANAGER_STOPPED);
    CHECK(task == NULL);
    session_close(&s);
    lp_manager_free(manager);
    printf("process: ok\n");
    return 0;
}
