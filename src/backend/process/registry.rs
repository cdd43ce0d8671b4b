//! Registered tasks: the process backend's unit of work.
//!
//! Closures cannot cross a process boundary, so process work is a plain `fn(I) -> O` under a
//! stable name, with serde input and output. The parent names the task; the worker looks the name
//! up in its [`TaskRegistry`] and runs it. Both sides are usually the same program (the worker is
//! the host re-executed), so one function building the registry serves both.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::fingerprint;
use super::wire::Outcome;
use crate::util::catch_panic;

/// A named function that a process pool's worker can run: `fn(I) -> O`, with `I` and `O`
/// serialized across the process boundary.
///
/// Declare tasks as statics so the parent and the worker agree on names:
///
/// ```
/// use leasepool::Task;
///
/// fn square(n: u64) -> u64 {
///     n * n
/// }
/// static SQUARE: Task<u64, u64> = Task::new("square", square);
///
/// assert_eq!(SQUARE.name(), "square");
/// assert_eq!(SQUARE.call(7), 49); // runs in this process, no pool involved
/// ```
pub struct Task<I, O> {
    name: &'static str,
    f: fn(I) -> O,
    /// The fingerprint of `(I, O)`, computed once (see `fingerprint.rs`).
    types: OnceLock<u64>,
}

impl<I, O> Task<I, O> {
    /// A task named `name` running `f`. The name must be unique within a registry.
    pub const fn new(name: &'static str, f: fn(I) -> O) -> Self {
        Task { name, f, types: OnceLock::new() }
    }

    /// The task's name, as the worker looks it up.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the function in this process (what the worker does with a request).
    pub fn call(&self, input: I) -> O {
        (self.f)(input)
    }
}

impl<I: DeserializeOwned, O: DeserializeOwned> Task<I, O> {
    /// The structural fingerprint of the task's input and output types.
    fn types(&self) -> u64 {
        *self.types.get_or_init(fingerprint::of::<(I, O)>)
    }
}

impl<I: Serialize + DeserializeOwned, O: DeserializeOwned> Task<I, O> {
    /// A request for this task: the type fingerprint (8 bytes), then the serialized input. The
    /// worker checks the fingerprint before it decodes anything.
    pub(crate) fn encode_request(&self, input: &I) -> Result<Vec<u8>, String> {
        postcard::to_extend(input, self.types().to_le_bytes().to_vec()).map_err(|e| e.to_string())
    }
}

impl<I, O> fmt::Debug for Task<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("name", &self.name).finish()
    }
}

type Invoke = Box<dyn Fn(&[u8]) -> Outcome + Send + Sync>;

/// The tasks a worker process can run, by name.
///
/// Build it in one function and pass it to [`run_if_worker`](crate::run_if_worker) at the top of
/// `main` (the worker side). An initializer is registered like any task whose output is
/// `Result<(), String>`.
///
/// ```
/// use leasepool::{Task, TaskRegistry};
///
/// fn double(n: i64) -> i64 { n * 2 }
/// fn hello(name: String) -> String { format!("hello {name}") }
/// static DOUBLE: Task<i64, i64> = Task::new("double", double);
/// static HELLO: Task<String, String> = Task::new("hello", hello);
///
/// let registry = TaskRegistry::new().register(&DOUBLE).register(&HELLO);
/// assert!(registry.contains("double"));
/// assert_eq!(registry.len(), 2);
/// ```
#[derive(Default)]
pub struct TaskRegistry {
    tasks: HashMap<&'static str, Invoke>,
}

impl TaskRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a task.
    ///
    /// # Panics
    /// If another task with the same name is already registered: two functions under one name
    /// would make requests ambiguous, and that is a bug in the program that is best caught the
    /// first time it starts.
    #[must_use]
    pub fn register<I, O>(mut self, task: &'static Task<I, O>) -> Self
    where
        I: DeserializeOwned + 'static,
        O: Serialize + DeserializeOwned + 'static,
    {
        let (f, types) = (task.f, task.types());
        let invoke: Invoke = Box::new(move |bytes| invoke(f, types, bytes));
        if self.tasks.insert(task.name, invoke).is_some() {
            panic!("leasepool: two tasks are registered under the name {:?}", task.name);
        }
        self
    }

    /// Whether a task of this name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.tasks.contains_key(name)
    }

    /// How many tasks are registered.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task is registered.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Runs the task `name` on serialized input (in the worker).
    pub(crate) fn run(&self, name: &str, input: &[u8]) -> Outcome {
        match self.tasks.get(name) {
            Some(invoke) => invoke(input),
            None => Outcome::UnknownTask,
        }
    }
}

impl fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.tasks.keys().collect();
        names.sort();
        f.debug_struct("TaskRegistry").field("tasks", &names).finish()
    }
}

fn invoke<I: DeserializeOwned, O: Serialize>(f: fn(I) -> O, types: u64, request: &[u8]) -> Outcome {
    let Some((sent, bytes)) = request.split_first_chunk::<8>() else { return Outcome::TypeMismatch };
    if u64::from_le_bytes(*sent) != types {
        return Outcome::TypeMismatch;
    }
    let input: I = match decode(bytes) {
        Ok(input) => input,
        Err(e) => return Outcome::InvalidInput(e),
    };
    match catch_panic(|| f(input)) {
        Ok(output) => match postcard::to_stdvec(&output) {
            Ok(bytes) => Outcome::Value(bytes),
            Err(e) => Outcome::InvalidOutput(e.to_string()),
        },
        Err(message) => Outcome::Panicked(message),
    }
}

/// Serializes a task input or output.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_stdvec(value).map_err(|e| e.to_string())
}

/// Deserializes a task input or output, strictly: bytes left over mean the two sides disagree
/// about the type, which is an error rather than a silently truncated value.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} unexpected trailing bytes (do both sides agree on the type?)", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}
