//! The C API from C: compiles every test program in `ffi/tests/c/` and every example in
//! `ffi/examples/` against `include/leasepool.h` and the static library this same `cargo test`
//! built (`libleasepool_ffi.a`), runs each one natively, then again under valgrind (no errors, no
//! definite leaks), each with a hard timeout. Also compiles the header as C++.
//!
//! - Compiler: `$CC`, else `cc`, with `-std=c11 -Wall -Wextra -Werror -pedantic`; linked with
//!   `-lpthread -ldl -lm`. Binaries go to `CARGO_TARGET_TMPDIR`.
//! - Valgrind: `--leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite
//!   --error-exitcode=1` and the suppressions of `c/valgrind.supp` (dependencies only), with
//!   `LP_TEST_SLOW=1` in the environment (the few programs where time is the subject stretch their
//!   durations). Worker processes of the process backend are not traced (valgrind's default). When
//!   valgrind is missing the valgrind tests are skipped with a note, unless `CI=true`, where they
//!   fail.
//! - A test program is a `.c` file with `int main(void)` that returns 0 on success; it reports a
//!   failure on stderr (see `c/check.h`). Its output is printed when it fails (and kept in
//!   `CARGO_TARGET_TMPDIR/leasepool-ffi-c/<name>.<pid>.std{out,err}`). It runs in its own process
//!   group, killed as a whole (worker processes included) when it overruns its timeout.
//!
//! One `#[test]` per program and mode; `other_c_programs` runs any `.c` file added to `ffi/tests/c/`
//! without a test of its own, and `examples` runs whatever `ffi/examples/` holds (possibly nothing).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// How long one program may run natively before it is killed and the test fails.
const NATIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one program may run under valgrind.
const VALGRIND_TIMEOUT: Duration = Duration::from_secs(150);

/// The programs in `ffi/tests/c/` that have their own tests below.
const KNOWN: &[&str] = &["threads", "acquire", "expiry", "drain", "grinder", "process", "bad_args", "drop_userdata"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("ffi/ has a parent").to_path_buf()
}

fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c")
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("leasepool-ffi-c");
    std::fs::create_dir_all(&dir).expect("create the C test output directory");
    dir
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `libleasepool_ffi.a` as built by this cargo invocation.
///
/// This test binary is `target/<profile>/deps/c_api-HASH`. Building the test builds the library
/// (all its crate types) into the same `deps/` directory, which is therefore always current; the
/// copy one level up is only refreshed by `cargo build`, so when both exist the newer one wins.
fn static_lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        let deps = exe.parent().expect("the test binary is in a directory");
        let candidates = [deps.join("libleasepool_ffi.a"), deps.parent().unwrap_or(deps).join("libleasepool_ffi.a")];
        let newest = candidates
            .iter()
            .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p)))
            .max_by_key(|(modified, _)| *modified);
        let Some((modified, lib)) = newest else {
            panic!(
                "libleasepool_ffi.a not found next to {} (looked at {candidates:?}); it is built with the \
                 leasepool-ffi library (crate-type staticlib)",
                exe.display()
            )
        };
        warn_if_older_than_sources(lib, modified);
        lib.clone()
    })
}

/// Cargo rebuilds the library before this test whenever `ffi/src` changes; a library older than
/// a source file means something else is going on (a source edited while the tests run): say so.
fn warn_if_older_than_sources(lib: &Path, lib_modified: SystemTime) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let newer: Vec<_> = std::fs::read_dir(&src)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.metadata().and_then(|m| m.modified()).is_ok_and(|m| m > lib_modified))
        .map(|e| e.path())
        .collect();
    if !newer.is_empty() {
        eprintln!("note: {} is older than {newer:?}: the C programs may test a stale library", lib.display());
    }
}

fn cc() -> OsString {
    std::env::var_os("CC").filter(|cc| !cc.is_empty()).unwrap_or_else(|| "cc".into())
}

/// Runs `command` to completion (it must not hang: compilers), returning its status and output.
fn output_of(command: &mut Command) -> (ExitStatus, String) {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status, text)
}

/// Compiles `source` into `out_dir()/<prefix><stem>`, once per process (the native and the
/// valgrind test of a program share the binary).
fn build(source: &Path, prefix: &str) -> PathBuf {
    type Built = Arc<OnceLock<Result<PathBuf, String>>>;
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, Built>>> = OnceLock::new();
    let cell = Arc::clone(BUILT.get_or_init(Default::default).lock().unwrap().entry(source.to_path_buf()).or_default());
    let result = cell.get_or_init(|| {
        let stem = source.file_stem().expect("a .c file").to_string_lossy();
        let exe = out_dir().join(format!("{prefix}{stem}"));
        // Compiled under a name of this process's own, then renamed into place: another `cargo
        // test` running at the same time (same target directory) may be running `exe`, and a
        // file being written cannot be executed (ETXTBSY).
        let partial = out_dir().join(format!("{prefix}{stem}.{}.partial", std::process::id()));
        let mut command = Command::new(cc());
        command
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-O1"])
            .arg("-I")
            .arg(repo().join("include"))
            .arg("-I")
            .arg(c_dir())
            .arg(source)
            .arg("-o")
            .arg(&partial)
            .arg(static_lib())
            .args(["-lpthread", "-ldl", "-lm"]);
        let (status, text) = output_of(&mut command);
        if !status.success() {
            let _ = std::fs::remove_file(&partial);
            return Err(format!("compiling {} failed ({status}):\n{command:?}\n{text}", source.display()));
        }
        std::fs::rename(&partial, &exe)
            .map_err(|e| format!("rename {} to {}: {e}", partial.display(), exe.display()))?;
        Ok(exe)
    });
    match result {
        Ok(exe) => exe.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// How a program ran.
struct Run {
    status: Option<ExitStatus>,
    elapsed: Duration,
    stdout: String,
    stderr: String,
}

/// Runs `program args...` with `envs`, output to files, killed (with its process group: worker
/// processes too) after `timeout`.
fn run(label: &str, program: &Path, args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> Run {
    use std::os::unix::process::CommandExt;

    let logs = out_dir();
    // Per process: a concurrent `cargo test` must not truncate these while this one writes them.
    let pid = std::process::id();
    let stdout_path = logs.join(format!("{label}.{pid}.stdout"));
    let stderr_path = logs.join(format!("{label}.{pid}.stderr"));
    let file = |p: &Path| std::fs::File::create(p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(&logs)
        .stdin(Stdio::null())
        .stdout(file(&stdout_path))
        .stderr(file(&stderr_path))
        .process_group(0);
    let start = Instant::now();
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the test program") {
            break Some(status);
        }
        if start.elapsed() > timeout {
            // The whole process group: the program and any worker processes it started.
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let run = Run { status, elapsed: start.elapsed(), stdout: read(&stdout_path), stderr: read(&stderr_path) };
    if run.status.is_some_and(|s| s.success()) {
        let _ = std::fs::remove_file(&stdout_path);
        let _ = std::fs::remove_file(&stderr_path);
    }
    run
}

/// Panics with the program's output unless it exited with 0.
fn expect_success(what: &str, run: &Run, timeout: Duration) {
    let verdict = match run.status {
        Some(status) if status.success() => {
            eprintln!("{what}: ok in {:.2} s", run.elapsed.as_secs_f64());
            return;
        }
        Some(status) => format!("failed: {status}"),
        None => format!("did not finish within {} s and was killed", timeout.as_secs()),
    };
    panic!(
        "{what} {verdict} after {:.2} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
        run.elapsed.as_secs_f64(),
        run.stdout,
        run.stderr
    );
}

fn run_native(exe: &Path, label: &str) {
    let run = run(label, exe, &[], &[], NATIVE_TIMEOUT);
    expect_success(&format!("{} (native)", exe.display()), &run, NATIVE_TIMEOUT);
}

/// Whether valgrind can run here; `false` means skip (never in CI, where it must be installed).
fn valgrind_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let found = Command::new("valgrind")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(!in_ci(), "valgrind is not installed, and CI=true requires the valgrind runs of the C tests");
            eprintln!("note: valgrind not found: skipping the valgrind runs of the C tests (CI=true makes this fail)");
        }
        found
    })
}

fn run_valgrind(exe: &Path, label: &str) {
    if !valgrind_available() {
        eprintln!("note: skipped {} under valgrind (valgrind not found)", exe.display());
        return;
    }
    let exe_arg = exe.to_str().expect("UTF-8 path");
    let mut args = vec![
        "--leak-check=full",
        "--errors-for-leak-kinds=definite",
        // Report only definite leaks: threads still alive at exit leave "possibly lost" blocks.
        "--show-leak-kinds=definite",
        "--error-exitcode=1",
        "-q",
        // Do not report on the process backend's children between fork and exec.
        "--child-silent-after-fork=yes",
    ];
    let supp = c_dir().join("valgrind.supp");
    let supp_arg = format!("--suppressions={}", supp.display());
    if supp.exists() {
        args.push(&supp_arg);
    }
    args.push(exe_arg);
    let run =
        run(&format!("{label}.valgrind"), Path::new("valgrind"), &args, &[("LP_TEST_SLOW", "1")], VALGRIND_TIMEOUT);
    expect_success(&format!("{} (valgrind)", exe.display()), &run, VALGRIND_TIMEOUT);
}

fn c_test(name: &str) -> PathBuf {
    let source = c_dir().join(format!("{name}.c"));
    assert!(source.exists(), "{} is missing", source.display());
    build(&source, "")
}

macro_rules! c_tests {
    ($($name:ident => $valgrind:ident,)*) => {
        $(
            #[test]
            fn $name() {
                run_native(&c_test(stringify!($name)), stringify!($name));
            }

            #[test]
            fn $valgrind() {
                run_valgrind(&c_test(stringify!($name)), stringify!($name));
            }
        )*
    };
}

c_tests! {
    threads => threads_valgrind,
    acquire => acquire_valgrind,
    expiry => expiry_valgrind,
    drain => drain_valgrind,
    grinder => grinder_valgrind,
    process => process_valgrind,
    bad_args => bad_args_valgrind,
    drop_userdata => drop_userdata_valgrind,
}

/// The `.c` files of `dir`, sorted (none if the directory is missing).
fn c_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    files.sort();
    files
}

/// Any program added to `ffi/tests/c/` without a test of its own still runs, in both modes.
#[test]
fn other_c_programs() {
    for source in c_files(&c_dir()) {
        let stem = source.file_stem().unwrap().to_string_lossy().into_owned();
        if KNOWN.contains(&stem.as_str()) {
            continue;
        }
        let exe = build(&source, "");
        run_native(&exe, &stem);
        run_valgrind(&exe, &stem);
    }
}

/// Every test above has its program.
#[test]
fn every_known_program_exists() {
    for name in KNOWN {
        assert!(c_dir().join(format!("{name}.c")).exists(), "ffi/tests/c/{name}.c is missing");
    }
}

/// The examples in `ffi/examples/` (if any) compile with the same flags and run, in both modes.
#[test]
fn examples() {
    let sources = c_files(&examples_dir());
    if sources.is_empty() {
        eprintln!("note: no C examples in {}", examples_dir().display());
    }
    for source in sources {
        let stem = source.file_stem().unwrap().to_string_lossy().into_owned();
        let exe = build(&source, "example_");
        let label = format!("example_{stem}");
        run_native(&exe, &label);
        run_valgrind(&exe, &label);
    }
}

/// The header is valid C++ too (cbindgen's `cpp_compat`: `extern "C"`), when g++ is installed.
#[test]
fn header_compiles_as_cpp() {
    let header = repo().join("include/leasepool.h");
    let mut command = Command::new("g++");
    command.args(["-fsyntax-only", "-x", "c++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic"]).arg(&header);
    match command.output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("note: g++ not found: skipping the C++ check of the header");
        }
        Err(e) => panic!("cannot run g++: {e}"),
        Ok(out) => assert!(
            out.status.success(),
            "include/leasepool.h does not compile as C++:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The header is self-contained C: it compiles on its own, with the strictest flags of the tests.
#[test]
fn header_compiles_alone_as_c() {
    let header = repo().join("include/leasepool.h");
    let (status, text) = output_of(
        Command::new(cc())
            .args(["-fsyntax-only", "-x", "c", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
            .arg(&header),
    );
    assert!(status.success(), "include/leasepool.h does not compile alone as C11:\n{text}");
}
