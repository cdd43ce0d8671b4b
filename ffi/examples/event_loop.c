/*
 * event_loop.c: an event-loop host that never blocks on a task.
 *
 * A single-threaded loop (poll(2) on a pipe, as an event loop watches its file descriptors)
 * submits CPU work to a leased pool and is told when each task resolves through
 * lp_task_on_complete: the callback, run on whichever thread resolves the task, only writes the
 * task's index to the pipe. The loop wakes on the pipe, collects the finished task (lp_task_wait
 * then returns at once) and stays free for other events in between.
 *
 * Build and run (from the repository root):
 *
 *   cargo build --release -p leasepool-ffi
 *   cc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude ffi/examples/event_loop.c \
 *      -Ltarget/release -l:libleasepool_ffi.a -lpthread -ldl -lm -o event_loop && ./event_loop
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "leasepool.h"

#define TASKS 8u
#define RANGE 1000000ull

/* One task's input, output and notification channel (owned by main; no drop_userdata). */
typedef struct job {
    unsigned index;
    uint64_t from, to;
    uint64_t sum; /* written by the task, read by the loop after it was notified */
    int notify_fd;
} job;

static void check(lp_status status, const char *what) {
    if (status != LP_OK) {
        fprintf(stderr, "%s failed: %s: %s\n", what, lp_status_name((uint32_t)status), lp_last_error_message());
        exit(EXIT_FAILURE);
    }
}

/* The task: a sum of i*i mod 2^64 over [from, to), on a pool thread. */
static void sum_of_squares(void *userdata) {
    job *j = userdata;
    uint64_t sum = 0;
    for (uint64_t i = j->from; i < j->to; i++) {
        sum += i * i;
    }
    j->sum = sum;
}

/* The completion callback: tell the loop which task resolved. Short, and safe on any thread. */
static void notify_loop(void *userdata) {
    job *j = userdata;
    unsigned char index = (unsigned char)j->index;
    while (write(j->notify_fd, &index, 1) < 0 && errno == EINTR) {
    }
}

int main(void) {
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        return EXIT_FAILURE;
    }

    lp_config *config = lp_config_new();
    check(lp_config_set_max_pools(config, 1), "lp_config_set_max_pools");
    check(lp_config_set_workers_per_pool(config, 2), "lp_config_set_workers_per_pool");
    lp_manager *manager = NULL;
    check(lp_manager_new(config, &manager), "lp_manager_new");
    lp_config_free(config);
    check(lp_manager_start(manager), "lp_manager_start");

    lp_acquire_options *options = lp_acquire_options_new();
    check(lp_acquire_options_set_owner(options, "event-loop"), "lp_acquire_options_set_owner");
    check(lp_acquire_options_set_timeout_ms(options, 5000), "lp_acquire_options_set_timeout_ms");
    lp_lease *lease = NULL;
    check(lp_manager_acquire(manager, options, &lease), "lp_manager_acquire");
    lp_acquire_options_free(options);
    lp_executor *executor = lp_lease_executor(lease);

    job jobs[TASKS];
    lp_task *tasks[TASKS];
    for (unsigned i = 0; i < TASKS; i++) {
        jobs[i] = (job){.index = i, .from = i * RANGE, .to = (i + 1) * RANGE, .sum = 0, .notify_fd = fds[1]};
        check(lp_submit(executor, sum_of_squares, &jobs[i], NULL, &tasks[i]), "lp_submit");
        check(lp_task_on_complete(tasks[i], notify_loop, &jobs[i]), "lp_task_on_complete");
    }
    printf("submitted %u tasks; the loop waits on its pipe, not on the tasks\n", TASKS);

    /* The event loop: other events would be polled here too; a 1 ms timeout stands for them. */
    unsigned done = 0, idle_ticks = 0;
    uint64_t total = 0;
    while (done < TASKS) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN, .revents = 0};
        int ready = poll(&pfd, 1, 1);
        if (ready < 0 && errno != EINTR) {
            perror("poll");
            return EXIT_FAILURE;
        }
        if (ready <= 0) {
            idle_ticks++; /* the loop was free to serve something else meanwhile */
            continue;
        }
        unsigned char index;
        if (read(fds[0], &index, 1) != 1) {
            continue;
        }
        /* Notified: the task has resolved, so this returns at once with its status. */
        check(lp_task_wait(tasks[index]), "lp_task_wait");
        printf("task %u done: sum of squares over [%" PRIu64 ", %" PRIu64 ") = %" PRIu64 "\n", (unsigned)index,
               jobs[index].from, jobs[index].to, jobs[index].sum);
        total += jobs[index].sum;
        lp_task_free(tasks[index]);
        done++;
    }
    printf("all %u tasks collected (the loop ticked %u times while they ran); combined sum %" PRIu64 "\n", done,
           idle_ticks, total);

    /* The same work as one sum, to check the fan-out. */
    uint64_t expected = 0;
    for (uint64_t i = 0; i < TASKS * RANGE; i++) {
        expected += i * i;
    }
    if (expected != total) {
        fprintf(stderr, "combined sum %" PRIu64 " differs from the direct sum %" PRIu64 "\n", total, expected);
        return EXIT_FAILURE;
    }

    lp_executor_free(executor);
    lp_lease_free(lease);
    check(lp_manager_stop(manager), "lp_manager_stop");
    lp_manager_free(manager);
    close(fds[0]);
    close(fds[1]);
    printf("stopped\n");
    return EXIT_SUCCESS;
}
