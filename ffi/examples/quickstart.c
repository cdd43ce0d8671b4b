/*
 * quickstart.c: the C version of examples/quickstart.rs, through include/leasepool.h.
 *
 * Shows:
 *  - building and starting a thread-backed manager (2 pools x 4 workers);
 *  - acquiring a lease with an owner label and an acquire timeout;
 *  - fanning a batch of CPU work out with lp_submit and waiting for every lp_task, versus the
 *    same work as one task;
 *  - userdata ownership: a task's userdata is freed by its drop_userdata (plain `free` here),
 *    which the library calls exactly once, whatever happens to the task;
 *  - two leases in use at once (the second pool is created on demand and hashes data while the
 *    first lease counts twin primes);
 *  - the manager's stats (lp_manager_stats, as text and as counts);
 *  - releasing and stopping, every handle freed.
 *
 * Build and run (from the repository root):
 *
 *   cargo build --release -p leasepool-ffi
 *   cc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude ffi/examples/quickstart.c \
 *      -Ltarget/release -l:libleasepool_ffi.a -lpthread -ldl -lm -o quickstart && ./quickstart
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "leasepool.h"

/* Primes below this bound are counted. */
#define LIMIT 3000000u
/* How many range chunks the batch is split into (more chunks than workers balances the load:
 * trial division costs more near the top of the range). */
#define CHUNKS 24u
/* Hash tasks, each over 1 MiB of pseudo-random bytes. */
#define HASH_CHUNKS 16u
#define HASH_CHUNK_BYTES (1u << 20)
/* Twin-prime tasks, each over 125 000 numbers. */
#define TWIN_CHUNKS 8u
#define TWIN_STEP 125000u

/* Exits with the status's name and the library's message if a call failed. */
static void check(lp_status status, const char *what) {
    if (status != LP_OK) {
        fprintf(stderr, "%s failed: %s: %s\n", what, lp_status_name((uint32_t)status), lp_last_error_message());
        exit(EXIT_FAILURE);
    }
}

static double now_ms(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Prints a snapshot of the manager's stats, through the library's readable summary. */
static void print_stats(const lp_manager *manager) {
    lp_stats_snapshot *snapshot = NULL;
    check(lp_manager_stats(manager, &snapshot), "lp_manager_stats");
    char *summary = lp_stats_snapshot_summary(snapshot);
    printf("%s\n", summary);
    lp_string_free(summary);
    lp_stats_snapshot_free(snapshot);
}

/* ── The work ────────────────────────────────────────────────────────────────────────────── */

static int is_prime(uint64_t n) {
    if (n < 4) {
        return n >= 2;
    }
    if (n % 2 == 0 || n % 3 == 0) {
        return 0;
    }
    for (uint64_t d = 5; d * d <= n; d += 6) {
        if (n % d == 0 || n % (d + 2) == 0) {
            return 0;
        }
    }
    return 1;
}

/* Counts the primes in [lo, hi) by trial division (deliberately CPU-bound). */
static uint64_t count_primes(uint64_t lo, uint64_t hi) {
    uint64_t count = 0;
    for (uint64_t n = lo; n < hi; n++) {
        count += (uint64_t)is_prime(n);
    }
    return count;
}

/* Counts the p in [lo, hi) for which p and p + 2 are both prime. */
static uint64_t count_twin_primes(uint64_t lo, uint64_t hi) {
    uint64_t count = 0;
    for (uint64_t p = lo; p < hi; p++) {
        count += (uint64_t)(is_prime(p) && is_prime(p + 2));
    }
    return count;
}

/* Deterministic pseudo-random bytes (xorshift64*), seeded per chunk: the same bytes as the Rust
 * quickstart's, so the same digests. */
static void pseudo_random_bytes(uint64_t seed, uint8_t *out, size_t len) {
    uint64_t x = (seed * UINT64_C(0x9E3779B97F4A7C15)) | 1;
    for (size_t i = 0; i < len; i += 8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t word = x * UINT64_C(0x2545F4914F6CDD1D);
        for (size_t b = 0; b < 8 && i + b < len; b++) {
            out[i + b] = (uint8_t)(word >> (8 * b)); /* little-endian, like to_le_bytes */
        }
    }
}

/* 64-bit FNV-1a. */
static uint64_t fnv1a(const uint8_t *bytes, size_t len) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h = (h ^ bytes[i]) * UINT64_C(0x100000001b3);
    }
    return h;
}

/* ── Task bodies: void (*)(void *userdata), run on a pool thread ─────────────────────────── */

/* A range to count in, and where the count goes. Owned by main (drop_userdata NULL): main
 * reads `count` after lp_task_wait returned LP_OK. */
typedef struct {
    uint64_t lo, hi, count;
} range_job;

static void count_primes_task(void *userdata) {
    range_job *job = userdata;
    job->count = count_primes(job->lo, job->hi);
}

static void count_twin_primes_task(void *userdata) {
    range_job *job = userdata;
    job->count = count_twin_primes(job->lo, job->hi);
}

/* A chunk to hash, allocated per task and owned by the library once submitted: its
 * drop_userdata is `free`, called exactly once after the task ran (or if it never runs). */
typedef struct {
    uint64_t chunk;
    uint64_t *digest; /* main's result slot */
} hash_job;

static void hash_task(void *userdata) {
    hash_job *job = userdata;
    uint8_t *bytes = malloc(HASH_CHUNK_BYTES);
    if (bytes == NULL) {
        return; /* the digest stays 0; main reports it */
    }
    pseudo_random_bytes(job->chunk, bytes, HASH_CHUNK_BYTES);
    *job->digest = fnv1a(bytes, HASH_CHUNK_BYTES);
    free(bytes);
}

static uint64_t rotate_left(uint64_t x, unsigned n) {
    n %= 64;
    return n == 0 ? x : (x << n) | (x >> (64 - n));
}

int main(void) {
    printf("leasepool C API %s (header %d.%d.%d)\n", lp_version(), LP_VERSION_MAJOR, LP_VERSION_MINOR,
           LP_VERSION_PATCH);

    /* ── Manager: up to 2 pools of 4 worker threads, one started at once ─────────────────── */
    lp_config *config = lp_config_new();
    check(lp_config_set_max_pools(config, 2), "lp_config_set_max_pools");
    check(lp_config_set_min_pools(config, 1), "lp_config_set_min_pools");
    check(lp_config_set_workers_per_pool(config, 4), "lp_config_set_workers_per_pool");
    check(lp_config_set_name_prefix(config, "quickstart"), "lp_config_set_name_prefix");
    lp_manager *manager = NULL;
    check(lp_manager_new(config, &manager), "lp_manager_new");
    lp_config_free(config); /* the manager keeps what it needs */
    check(lp_manager_start(manager), "lp_manager_start");
    printf("started: up to 2 pools of 4 workers\n");

    /* ── Lease 1: count primes ─────────────────────────────────────────────────────────────── */
    lp_acquire_options *options = lp_acquire_options_new();
    check(lp_acquire_options_set_owner(options, "prime-counter"), "lp_acquire_options_set_owner");
    check(lp_acquire_options_set_timeout_ms(options, 2000), "lp_acquire_options_set_timeout_ms");
    lp_lease *primes = NULL;
    check(lp_manager_acquire(manager, options, &primes), "lp_manager_acquire (prime-counter)");
    lp_executor *primes_executor = lp_lease_executor(primes);
    printf("\nlease %" PRIu64 " acquired by \"prime-counter\"\n", lp_lease_id(primes));

    /* Fan out: one task per range, all queued at once on the leased pool. */
    double started = now_ms();
    range_job ranges[CHUNKS];
    lp_task *tasks[CHUNKS];
    uint64_t step = LIMIT / CHUNKS;
    for (unsigned i = 0; i < CHUNKS; i++) {
        ranges[i] = (range_job){.lo = i * step, .hi = i + 1 == CHUNKS ? LIMIT : (i + 1) * step, .count = 0};
        check(lp_submit(primes_executor, count_primes_task, &ranges[i], NULL, &tasks[i]), "lp_submit");
    }
    printf("submitted %u tasks\n", CHUNKS);
    uint64_t total = 0;
    for (unsigned i = 0; i < CHUNKS; i++) {
        check(lp_task_wait(tasks[i]), "lp_task_wait");
        lp_task_free(tasks[i]);
        if (ranges[i].lo == 0 || ranges[i].hi == LIMIT) {
            printf("  primes in [%9" PRIu64 ", %9" PRIu64 "): %6" PRIu64 "\n", ranges[i].lo, ranges[i].hi,
                   ranges[i].count);
        }
        total += ranges[i].count;
    }
    double parallel = now_ms() - started;
    printf("  ... (%u ranges in all)\n", CHUNKS);
    printf("primes below %u: %" PRIu64 " (%u tasks on 4 workers: %.2f ms)\n", LIMIT, total, CHUNKS, parallel);

    /* The same count as a single task: one worker does all of it. */
    started = now_ms();
    range_job whole = {.lo = 0, .hi = LIMIT, .count = 0};
    lp_task *single = NULL;
    check(lp_submit(primes_executor, count_primes_task, &whole, NULL, &single), "lp_submit");
    check(lp_task_wait(single), "lp_task_wait");
    lp_task_free(single);
    double sequential = now_ms() - started;
    if (whole.count != total) {
        fprintf(stderr, "one task counted %" PRIu64 " primes, the batch %" PRIu64 "\n", whole.count, total);
        return EXIT_FAILURE;
    }
    printf("same count as one task: %" PRIu64 " in %.2f ms (fan-out speed-up x%.1f)\n", whole.count, sequential,
           sequential / parallel);

    /* ── Lease 2, while lease 1 is still held: hash 16 MiB in chunks on the other pool ──────
     * The manager started one pool (min_pools 1); this acquire creates the second one on
     * demand, up to max_pools. */
    check(lp_acquire_options_set_owner(options, "checksummer"), "lp_acquire_options_set_owner");
    lp_lease *hasher = NULL;
    check(lp_manager_acquire(manager, options, &hasher), "lp_manager_acquire (checksummer)");
    lp_acquire_options_free(options);
    lp_executor *hasher_executor = lp_lease_executor(hasher);
    printf("\nlease %" PRIu64 " acquired by \"checksummer\"\n", lp_lease_id(hasher));

    double hash_started = now_ms();
    uint64_t digests[HASH_CHUNKS] = {0};
    lp_task *hash_tasks[HASH_CHUNKS];
    for (unsigned i = 0; i < HASH_CHUNKS; i++) {
        hash_job *job = malloc(sizeof *job);
        if (job == NULL) {
            fprintf(stderr, "out of memory\n");
            return EXIT_FAILURE;
        }
        *job = (hash_job){.chunk = i, .digest = &digests[i]};
        /* From here on `job` belongs to the library: `free(job)` runs exactly once, even if
         * lp_submit fails. */
        check(lp_submit(hasher_executor, hash_task, job, free, &hash_tasks[i]), "lp_submit");
    }
    /* Meanwhile lease 1 counts twin primes below 1 000 000. */
    range_job twins[TWIN_CHUNKS];
    lp_task *twin_tasks[TWIN_CHUNKS];
    for (unsigned i = 0; i < TWIN_CHUNKS; i++) {
        twins[i] = (range_job){.lo = (uint64_t)i * TWIN_STEP, .hi = (uint64_t)(i + 1) * TWIN_STEP, .count = 0};
        check(lp_submit(primes_executor, count_twin_primes_task, &twins[i], NULL, &twin_tasks[i]), "lp_submit");
    }

    printf("\nwith both leases busy:\n");
    print_stats(manager);

    uint64_t digest = 0;
    for (unsigned i = 0; i < HASH_CHUNKS; i++) {
        check(lp_task_wait(hash_tasks[i]), "lp_task_wait");
        lp_task_free(hash_tasks[i]);
        if (digests[i] == 0) {
            fprintf(stderr, "chunk %u was not hashed\n", i);
            return EXIT_FAILURE;
        }
        if (i < 2) {
            printf("  chunk %2u: fnv1a = %016" PRIx64 "\n", i, digests[i]);
        }
        digest ^= rotate_left(digests[i], i);
    }
    printf("hashed 16 MiB in %u tasks in %.2f ms, combined digest %016" PRIx64 "\n", HASH_CHUNKS,
           now_ms() - hash_started, digest);
    uint64_t twin_pairs = 0;
    for (unsigned i = 0; i < TWIN_CHUNKS; i++) {
        check(lp_task_wait(twin_tasks[i]), "lp_task_wait");
        lp_task_free(twin_tasks[i]);
        twin_pairs += twins[i].count;
    }
    printf("twin-prime pairs (p, p+2) with p below %u: %" PRIu64 "\n", TWIN_CHUNKS * TWIN_STEP, twin_pairs);

    /* ── Release both leases (lp_lease_release also hands back a drain; lp_lease_free does not) */
    lp_executor_free(primes_executor);
    lp_executor_free(hasher_executor);
    lp_drain *drain = NULL;
    check(lp_lease_release(primes, &drain), "lp_lease_release");
    check(lp_drain_wait(drain, UINT64_MAX), "lp_drain_wait"); /* nothing pending: over at once */
    lp_drain_free(drain);
    lp_lease_free(hasher);

    lp_stats_snapshot *snapshot = NULL;
    check(lp_manager_stats(manager, &snapshot), "lp_manager_stats");
    lp_stats counts;
    check(lp_stats_snapshot_counts(snapshot, &counts), "lp_stats_snapshot_counts");
    lp_stats_snapshot_free(snapshot);
    printf("\nreleased both leases: leased=%zu, available=%zu, total=%zu (the on-demand pool above desired was "
           "retired)\n",
           counts.leased, counts.available, counts.total);
    print_stats(manager);

    check(lp_manager_stop(manager), "lp_manager_stop");
    printf("\nstopped (running = %s)\n", lp_manager_is_running(manager) ? "true" : "false");
    lp_manager_free(manager);
    return EXIT_SUCCESS;
}
