#!/usr/bin/env python3
"""Smoke test of leasepool's C API from Python, through ctypes alone.

Usage: python3 smoke.py PATH/TO/libleasepool_ffi.so [PATH/TO/include/leasepool.h]

It drives the shared library exactly as any ctypes (or cffi, or other FFI) host would:
declares argtypes/restypes, builds and starts a thread-backed manager, acquires a lease with
options, submits Python callbacks through lp_submit (each with a drop_userdata, which must run
exactly once), waits for them, reads the stats (lp_stats mirrored as a ctypes Structure) and the
summary string, checks error paths (NULL manager, fail-fast acquire at max_pools, submitting
through a released lease), then releases, stops and frees everything.

With the header path, it also checks that the Structure's fields are the header's lp_stats
fields, in order, with the same types, and that lp_version() matches LP_VERSION_*.

Exits 0 on success; on any failure prints "FAIL: <what>" to stderr and exits 1. Run by
ffi/tests/python_ctypes.rs (`cargo test -p leasepool-ffi --test python_ctypes`).
"""

import ctypes
import faulthandler
import re
import sys
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)

# Status codes (lp_status, a C enum: an int).
LP_OK = 0
LP_INVALID_ARGUMENT = 1
LP_UNAVAILABLE = 11
LP_RELEASED = 21

# How many callback tasks to submit.
TASKS = 8
# Each task sums the squares of 0..N (its index added, so every result differs).
N = 100_000


class Failure(Exception):
    """A failed check."""


def check(condition, what):
    if not condition:
        raise Failure(what)


# ── Types ────────────────────────────────────────────────────────────────────────────────────

# typedef void (*lp_callback)(void *userdata);
LP_CALLBACK = CFUNCTYPE(None, c_void_p)


# lp_stats, field for field (order and C type) as in include/leasepool.h.
STATS_FIELDS = [
    ("running", "bool"),
    ("desired", "size_t"),
    ("max_pools", "size_t"),
    ("min_pools", "size_t"),
    ("available", "size_t"),
    ("leased", "size_t"),
    ("total", "size_t"),
    ("creating", "size_t"),
    ("waiting", "size_t"),
    ("workers_per_pool", "size_t"),
    ("leases_immediate", "uint64_t"),
    ("leases_after_wait", "uint64_t"),
    ("acquire_timeouts", "uint64_t"),
    ("acquire_unavailable", "uint64_t"),
    ("leases_released", "uint64_t"),
    ("leases_revoked", "uint64_t"),
    ("leases_renewed", "uint64_t"),
    ("pools_created", "uint64_t"),
    ("pools_retired_broken", "uint64_t"),
    ("pools_retired_shrink", "uint64_t"),
    ("pools_retired_expired", "uint64_t"),
    ("tasks_submitted", "uint64_t"),
    ("tasks_completed", "uint64_t"),
    ("tasks_panicked", "uint64_t"),
    ("tasks_cancelled", "uint64_t"),
    ("tasks_pool_broken", "uint64_t"),
    ("tasks_timed_out", "uint64_t"),
]
# The ctypes type of each C type used above.
CTYPES = {"bool": c_bool, "size_t": c_size_t, "uint64_t": c_uint64}


class LpStats(Structure):
    """lp_stats as a ctypes Structure."""

    _fields_ = [(name, CTYPES[c_type]) for name, c_type in STATS_FIELDS]


def check_stats_layout(header_text):
    """The header's lp_stats fields, in order and with their C types, are STATS_FIELDS (compared
    by type name: size_t and uint64_t are the same ctypes type on LP64, but not everywhere)."""
    # The last `typedef struct {` before `} lp_stats;` (no other typedef in between).
    match = re.search(r"typedef struct \{((?:(?!typedef).)*?)\}\s*lp_stats;", header_text, re.S)
    check(match is not None, "the header has no `typedef struct { ... } lp_stats;`")
    body = re.sub(r"/\*.*?\*/", "", match.group(1), flags=re.S)
    declared = [(name, c_type) for c_type, name in re.findall(r"^\s*(\w+)\s+(\w+)\s*;", body, re.M)]
    check(len(declared) == len(STATS_FIELDS), f"lp_stats has {len(declared)} fields in the header, {len(STATS_FIELDS)} here")
    for i, (theirs, ours) in enumerate(zip(declared, STATS_FIELDS)):
        check(theirs == ours, f"lp_stats field {i} is `{theirs[1]} {theirs[0]}` in the header, `{ours[1]} {ours[0]}` here")


def header_version(header_text):
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        match = re.search(rf"#define LP_VERSION_{part} (\d+)", header_text)
        check(match is not None, f"the header does not define LP_VERSION_{part}")
        parts.append(match.group(1))
    return ".".join(parts)


def declare(lib):
    """argtypes and restype of every function used (status-returning ones return c_int)."""
    p = c_void_p  # every opaque handle
    signatures = {
        "lp_version": ([], c_char_p),
        "lp_last_error_message": ([], c_char_p),
        "lp_status_name": ([c_uint32], c_char_p),
        "lp_config_new": ([], p),
        "lp_config_free": ([p], None),
        "lp_config_set_max_pools": ([p, c_size_t], c_int),
        "lp_config_set_min_pools": ([p, c_size_t], c_int),
        "lp_config_set_workers_per_pool": ([p, c_size_t], c_int),
        "lp_config_set_name_prefix": ([p, c_char_p], c_int),
        "lp_manager_new": ([p, POINTER(p)], c_int),
        "lp_manager_start": ([p], c_int),
        "lp_manager_is_running": ([p], c_bool),
        "lp_manager_stop_graceful": ([p, c_uint64], c_int),
        "lp_manager_free": ([p], None),
        "lp_manager_acquire": ([p, p, POINTER(p)], c_int),
        "lp_manager_try_acquire": ([p, p, POINTER(p)], c_int),
        "lp_manager_stats": ([p, POINTER(p)], c_int),
        "lp_acquire_options_new": ([], p),
        "lp_acquire_options_free": ([p], None),
        "lp_acquire_options_set_owner": ([p, c_char_p], c_int),
        "lp_acquire_options_set_timeout_ms": ([p, c_uint64], c_int),
        "lp_lease_executor": ([p], p),
        "lp_lease_id": ([p], c_uint64),
        "lp_lease_free": ([p], None),
        "lp_executor_free": ([p], None),
        "lp_submit": ([p, LP_CALLBACK, c_void_p, LP_CALLBACK, POINTER(p)], c_int),
        "lp_task_wait": ([p], c_int),
        "lp_task_is_finished": ([p], c_bool),
        "lp_task_free": ([p], None),
        "lp_stats_snapshot_counts": ([p, POINTER(LpStats)], c_int),
        # c_void_p, not c_char_p: the pointer itself must go back to lp_string_free.
        "lp_stats_snapshot_summary": ([p], c_void_p),
        "lp_stats_snapshot_free": ([p], None),
        "lp_string_free": ([c_void_p], None),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype


class Smoke:
    def __init__(self, lib):
        self.lib = lib
        self.lock = threading.Lock()
        self.ran = {}  # task index -> number of times the task body ran
        self.dropped = {}  # userdata -> number of times drop_userdata ran
        self.results = {}  # task index -> the task's result
        self.callback_errors = []
        # The callback objects must stay alive as long as the library may call them: they are
        # attributes of this object, which lives until the end of main().
        self.task_cb = LP_CALLBACK(self._task)
        self.drop_cb = LP_CALLBACK(self._drop)

    # Both run on a pool thread (or, for drop_userdata, on whichever thread resolves the task):
    # ctypes takes the GIL for them. An exception here would only be printed, so record it.
    def _task(self, userdata):
        try:
            index = userdata or 0
            result = sum(i * i for i in range(N + index))
            with self.lock:
                self.ran[index] = self.ran.get(index, 0) + 1
                self.results[index] = result
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            self.callback_errors.append(f"task callback: {e!r}")

    def _drop(self, userdata):
        try:
            with self.lock:
                key = userdata or 0
                self.dropped[key] = self.dropped.get(key, 0) + 1
        except BaseException as e:  # noqa: BLE001
            self.callback_errors.append(f"drop_userdata callback: {e!r}")

    def drops(self, key):
        with self.lock:
            return self.dropped.get(key, 0)

    def status(self, code, expected, what):
        if code != expected:
            message = self.lib.lp_last_error_message() or b""
            name = self.lib.lp_status_name(code) or b"?"
            raise Failure(
                f"{what}: returned {code} ({name.decode()}), expected {expected} "
                f"({self.lib.lp_status_name(expected).decode()}); last error: {message.decode(errors='replace')!r}"
            )

    def check_dropped_once(self, key, what):
        """drop_userdata for `key` ran exactly once. The header promises it has run by the time
        lp_task_wait returns (after the task ran, or when a refused lp_submit returns)."""
        count = self.drops(key)
        check(count == 1, f"{what}: drop_userdata ran {count} times for userdata {key}, expected exactly once")

    def run(self, header_text):
        lib = self.lib
        version = lib.lp_version().decode()
        print(f"library version {version}")
        if header_text is not None:
            check_stats_layout(header_text)
            print(f"lp_stats layout matches the header ({len(LpStats._fields_)} fields, {ctypes.sizeof(LpStats)} bytes)")
            expected = header_version(header_text)
            check(version == expected, f"lp_version() is {version}, the header says {expected}")

        # ── Config and manager ──────────────────────────────────────────────────────────────
        config = lib.lp_config_new()
        check(config, "lp_config_new returned NULL")
        self.status(lib.lp_config_set_max_pools(config, 1), LP_OK, "lp_config_set_max_pools")
        self.status(lib.lp_config_set_min_pools(config, 1), LP_OK, "lp_config_set_min_pools")
        self.status(lib.lp_config_set_workers_per_pool(config, 2), LP_OK, "lp_config_set_workers_per_pool")
        self.status(lib.lp_config_set_name_prefix(config, b"py-smoke"), LP_OK, "lp_config_set_name_prefix")
        manager = c_void_p()
        self.status(lib.lp_manager_new(config, ctypes.byref(manager)), LP_OK, "lp_manager_new")
        check(manager.value, "lp_manager_new returned LP_OK but no manager")
        self.status(lib.lp_manager_start(manager), LP_OK, "lp_manager_start")
        check(lib.lp_manager_is_running(manager), "lp_manager_is_running is false after start")

        # ── Error path: NULL manager ────────────────────────────────────────────────────────
        lease_out = c_void_p(0xDEAD)  # must be set to NULL by the failed call
        code = lib.lp_manager_acquire(None, None, ctypes.byref(lease_out))
        check(code == LP_INVALID_ARGUMENT, f"lp_manager_acquire(NULL, ...) returned {code}, expected {LP_INVALID_ARGUMENT}")
        check(lease_out.value is None, "a failed lp_manager_acquire did not set *out to NULL")
        message = lib.lp_last_error_message()
        check(message, "lp_last_error_message() is empty after LP_INVALID_ARGUMENT")
        print(f"NULL manager: LP_INVALID_ARGUMENT, message {message.decode()!r}")

        # ── Lease with options ──────────────────────────────────────────────────────────────
        options = lib.lp_acquire_options_new()
        check(options, "lp_acquire_options_new returned NULL")
        self.status(lib.lp_acquire_options_set_owner(options, b"python-smoke"), LP_OK, "lp_acquire_options_set_owner")
        self.status(lib.lp_acquire_options_set_timeout_ms(options, 10_000), LP_OK, "lp_acquire_options_set_timeout_ms")
        lease = c_void_p()
        self.status(lib.lp_manager_acquire(manager, options, ctypes.byref(lease)), LP_OK, "lp_manager_acquire")
        check(lease.value, "lp_manager_acquire returned LP_OK but no lease")
        print(f"lease {lib.lp_lease_id(lease)} acquired by 'python-smoke'")

        # Fail-fast acquire with the only pool (max_pools 1) leased.
        other = c_void_p(0xDEAD)
        code = lib.lp_manager_try_acquire(manager, options, ctypes.byref(other))
        self.status(code, LP_UNAVAILABLE, "lp_manager_try_acquire at max_pools")
        check(other.value is None, "a failed lp_manager_try_acquire did not set *out to NULL")
        check(lib.lp_last_error_message(), "lp_last_error_message() is empty after LP_UNAVAILABLE")
        print(f"try_acquire at max_pools: LP_UNAVAILABLE, message {lib.lp_last_error_message().decode()!r}")

        # ── Submit callbacks ────────────────────────────────────────────────────────────────
        executor = lib.lp_lease_executor(lease)
        check(executor, "lp_lease_executor returned NULL")
        tasks = []
        # userdata is the task's index + 1 (never NULL, so every drop is told apart).
        for index in range(1, TASKS + 1):
            task = c_void_p()
            code = lib.lp_submit(executor, self.task_cb, c_void_p(index), self.drop_cb, ctypes.byref(task))
            self.status(code, LP_OK, f"lp_submit #{index}")
            check(task.value, "lp_submit returned LP_OK but no task")
            tasks.append((index, task))
        for index, task in tasks:
            self.status(lib.lp_task_wait(task), LP_OK, f"lp_task_wait #{index}")
            check(lib.lp_task_is_finished(task), f"lp_task_is_finished #{index} is false after lp_task_wait")
            # Waiting again returns the same status.
            self.status(lib.lp_task_wait(task), LP_OK, f"lp_task_wait #{index} (again)")
        for index, _ in tasks:
            self.check_dropped_once(index, f"task #{index}")
            with self.lock:
                ran, result = self.ran.get(index, 0), self.results.get(index)
            check(ran == 1, f"task #{index} ran {ran} times, expected once")
            expected = sum(i * i for i in range(N + index))
            check(result == expected, f"task #{index} computed {result}, expected {expected}")
        print(f"{TASKS} callbacks ran once each, results correct, drop_userdata ran once each")

        # A failing submit (task NULL) still drops the userdata exactly once, before returning.
        task = c_void_p(0xDEAD)
        code = lib.lp_submit(executor, LP_CALLBACK(), c_void_p(1001), self.drop_cb, ctypes.byref(task))
        self.status(code, LP_INVALID_ARGUMENT, "lp_submit with a NULL task")
        check(task.value is None, "a failed lp_submit did not set *out to NULL")
        check(self.drops(1001) == 1, f"failed lp_submit: drop_userdata ran {self.drops(1001)} times before returning")

        # ── Stats ───────────────────────────────────────────────────────────────────────────
        snapshot = c_void_p()
        self.status(lib.lp_manager_stats(manager, ctypes.byref(snapshot)), LP_OK, "lp_manager_stats")
        stats = LpStats()
        self.status(lib.lp_stats_snapshot_counts(snapshot, ctypes.byref(stats)), LP_OK, "lp_stats_snapshot_counts")
        counts = {name: getattr(stats, name) for name, _ in LpStats._fields_}
        print("stats: " + ", ".join(f"{k}={v}" for k, v in counts.items() if v))
        expectations = {
            "running": True,
            "max_pools": 1,
            "min_pools": 1,
            "leased": 1,
            "total": 1,
            "available": 0,
            "workers_per_pool": 2,
            "tasks_submitted": TASKS,
            "tasks_completed": TASKS,
            "tasks_panicked": 0,
            "acquire_unavailable": 1,
            "leases_revoked": 0,
        }
        for name, expected in expectations.items():
            check(counts[name] == expected, f"lp_stats.{name} is {counts[name]}, expected {expected}")
        check(counts["leases_immediate"] + counts["leases_after_wait"] == 1, "lp_stats: not exactly one lease granted")
        check(counts["pools_created"] >= 1, "lp_stats.pools_created is 0 with a pool leased")

        summary_ptr = lib.lp_stats_snapshot_summary(snapshot)
        check(summary_ptr, "lp_stats_snapshot_summary returned NULL")
        summary = ctypes.string_at(summary_ptr).decode()
        lib.lp_string_free(summary_ptr)
        check("python-smoke" in summary, f"the summary does not show the lease's owner:\n{summary}")
        print("summary:\n" + "\n".join("  " + line for line in summary.splitlines()))
        lib.lp_stats_snapshot_free(snapshot)

        # ── Release, then the executor refuses work (and still drops the userdata once) ────
        lib.lp_lease_free(lease)
        task = c_void_p(0xDEAD)
        code = lib.lp_submit(executor, self.task_cb, c_void_p(1002), self.drop_cb, ctypes.byref(task))
        self.status(code, LP_RELEASED, "lp_submit through a released lease")
        check(task.value is None, "a refused lp_submit did not set *out to NULL")
        check(self.drops(1002) == 1, f"refused lp_submit: drop_userdata ran {self.drops(1002)} times before returning")
        with self.lock:
            check(1002 not in self.ran, "a task refused with LP_RELEASED ran")

        # ── Free everything ─────────────────────────────────────────────────────────────────
        for _, task in tasks:
            lib.lp_task_free(task)
        lib.lp_executor_free(executor)
        lib.lp_acquire_options_free(options)
        self.status(lib.lp_manager_stop_graceful(manager, 10_000), LP_OK, "lp_manager_stop_graceful")
        check(not lib.lp_manager_is_running(manager), "lp_manager_is_running is true after stop")
        lib.lp_manager_free(manager)
        lib.lp_config_free(config)
        # Freeing NULL is a no-op.
        for free in ("lp_task_free", "lp_executor_free", "lp_lease_free", "lp_manager_free", "lp_config_free"):
            getattr(lib, free)(None)
        lib.lp_string_free(None)

        # Nothing ran or dropped twice, and nothing raised inside a callback.
        with self.lock:
            twice = {k: v for k, v in self.dropped.items() if v != 1}
        check(not twice, f"drop_userdata counts not exactly once: {twice}")
        check(not self.callback_errors, f"exceptions inside callbacks: {self.callback_errors}")
        print("released, stopped, freed: OK")


def main(argv):
    faulthandler.enable()  # a crash inside the library prints the Python stack
    if len(argv) not in (2, 3):
        print(f"usage: {argv[0]} PATH/TO/libleasepool_ffi.so [PATH/TO/leasepool.h]", file=sys.stderr)
        return 2
    try:
        lib = ctypes.CDLL(argv[1])
    except OSError as e:
        print(f"FAIL: cannot load {argv[1]}: {e}", file=sys.stderr)
        return 1
    header_text = None
    if len(argv) == 3:
        with open(argv[2], encoding="utf-8") as f:
            header_text = f.read()
    smoke = Smoke(lib)
    try:
        declare(lib)
        smoke.run(header_text)
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except AttributeError as e:  # a symbol missing from the library
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print("python ctypes smoke test: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
