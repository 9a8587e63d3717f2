//! The C API: opaque model and session handles, `int` status codes and a per-thread
//! last-error message, built as `libincept.so` and `libincept.a` (`cargo build --release
//! -p incept-capi`). `capi/include/incept.h` is generated from this file by cbindgen
//! (`cbindgen --config capi/cbindgen.toml --output capi/include/incept.h capi/src/lib.rs`).
//!
//! Every function returns [`INCEPT_OK`] (0) or a negative status code, except
//! [`incept_version`] and [`incept_last_error`]. After a failure,
//! [`incept_last_error`] describes it. No panic crosses the boundary: one is caught
//! and reported as [`INCEPT_ERR_PANIC`].
//!
//! Thread safety: a model may be shared by any number of threads (creating sessions
//! concurrently from one model is fine); a session must be used by one thread at a
//! time (create one per thread). A session keeps the model's weights alive, so a model
//! may be closed while its sessions are still in use.
//!
//! Handles are checked against a registry of live handles on every call, so a
//! double close or a use after close is reported as [`INCEPT_ERR_CLOSED`] (unless the
//! freed address has since been reused by a new handle of the same kind).
//! [`incept_session_run`] allocates nothing.
#![deny(missing_docs)]

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use incept::Error;
use incept::Model;
use incept::graph::InputLayout;
use incept::{Precision, Session, SessionOptions};

/// Success.
pub const INCEPT_OK: c_int = 0;
/// A required pointer argument is NULL.
pub const INCEPT_ERR_NULL: c_int = -1;
/// An argument is invalid: a buffer of the wrong length, a thread count or batch size
/// below 1, a name that is not UTF-8, or a kernel tier this CPU cannot run.
pub const INCEPT_ERR_ARGUMENT: c_int = -2;
/// The model cannot be opened: an unknown built-in name, or a file that is missing,
/// unreadable or cannot be imported.
pub const INCEPT_ERR_MODEL: c_int = -3;
/// A run failed, or the session was left unusable by an earlier panic.
pub const INCEPT_ERR_RUN: c_int = -4;
/// The handle was already closed (or was never returned by this library).
pub const INCEPT_ERR_CLOSED: c_int = -5;
/// A panic inside the library was caught (a bug: please report it).
pub const INCEPT_ERR_PANIC: c_int = -6;

/// [`incept_session_input_layout`]: the input is `N x C x H x W`.
pub const INCEPT_LAYOUT_NCHW: c_int = 0;
/// [`incept_session_input_layout`]: the input is `N x H x W x C`.
pub const INCEPT_LAYOUT_NHWC: c_int = 1;

/// [`incept_session_create_with_precision`]: the model's own precision (float32, or
/// that of a model file converted to BF16 or BF16x3); what [`incept_session_create`] uses.
pub const INCEPT_PRECISION_DEFAULT: c_int = 0;
/// Float32 throughout.
pub const INCEPT_PRECISION_F32: c_int = 1;
/// The direct convolutions on BF16 operands with float32 sums (docs/bf16.md); the
/// BF16 kernels' tier is the widest this CPU runs, or `INCEPT_BF16_TIER`.
pub const INCEPT_PRECISION_BF16: c_int = 2;
/// Near float32: the convolutions [`INCEPT_PRECISION_BF16`] runs, each operand split
/// into two BF16 terms and three BF16 products per multiply-add, float32 sums
/// (docs/bf16.md): about three times BF16's work, for float32-class error.
pub const INCEPT_PRECISION_BF16X3: c_int = 3;

/// An opened model (opaque): its weights, lowered once. Shared by its sessions.
pub struct InceptModel {
    model: Model,
}

/// A session (opaque): a model planned for one batch size, with its own arena.
/// It keeps the model's weights alive.
pub struct InceptSession {
    session: Session,
    /// Set when a run panicked: the arena or the worker threads may be inconsistent.
    poisoned: bool,
}

// A model handle is shared across threads; a session handle moves between them.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    const fn sent<T: Send>() {}
    shared::<InceptModel>();
    sent::<InceptSession>();
};

/// Addresses of the live handles of each kind. `BTreeSet::contains` does not allocate.
static MODELS: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());
static SESSIONS: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());

thread_local! {
    /// The message of the last failed call on this thread. Touched only on failure and
    /// by `incept_last_error`, so successful calls stay allocation-free.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// A failed call: its status code and message.
struct Fail(c_int, String);

type Status = Result<(), Fail>;

fn fail(code: c_int, message: impl Into<String>) -> Fail {
    Fail(code, message.into())
}

/// Maps an engine error to the status code of the function that met it.
fn engine(default: c_int) -> impl Fn(Error) -> Fail {
    move |e| {
        let code = match e {
            Error::BufferSize { .. } | Error::Options(_) => INCEPT_ERR_ARGUMENT,
            Error::UnknownModel { .. } | Error::Import(_) | Error::ModelFile(_) | Error::Weights(_) => INCEPT_ERR_MODEL,
            Error::Graph(_) => default,
        };
        Fail(code, e.to_string())
    }
}

/// Runs `body`, catching panics, and turns its outcome into a status code; a failure's
/// message becomes this thread's last error.
fn boundary(name: &str, body: impl FnOnce() -> Status) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(fail(INCEPT_ERR_PANIC, format!("panic: {what}")))
    });
    match outcome {
        Ok(()) => INCEPT_OK,
        Err(Fail(code, message)) => {
            let message = CString::new(format!("{name}: {message}").replace('\0', " ")).unwrap_or_default();
            let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = message);
            code
        }
    }
}

fn registry(set: &Mutex<BTreeSet<usize>>) -> std::sync::MutexGuard<'_, BTreeSet<usize>> {
    // The sets stay consistent even if a holder panicked: every update is one call.
    set.lock().unwrap_or_else(|e| e.into_inner())
}

/// Checks that `ptr` is non-NULL and a live handle of the kind `set` holds.
fn check_live<T>(set: &Mutex<BTreeSet<usize>>, ptr: *const T, what: &str) -> Status {
    if ptr.is_null() {
        return Err(fail(INCEPT_ERR_NULL, format!("{what} is NULL")));
    }
    if !registry(set).contains(&(ptr as usize)) {
        return Err(fail(INCEPT_ERR_CLOSED, format!("{what} is closed or not a handle from this library")));
    }
    Ok(())
}

/// Boxes `value`, records it live in `set`, returns its address.
fn open<T>(set: &Mutex<BTreeSet<usize>>, value: T) -> *mut T {
    let ptr = Box::into_raw(Box::new(value));
    registry(set).insert(ptr as usize);
    ptr
}

/// Removes `ptr` from `set` and frees it. NULL is a no-op.
fn close<T>(set: &Mutex<BTreeSet<usize>>, ptr: *mut T, what: &str) -> Status {
    if ptr.is_null() {
        return Ok(());
    }
    if !registry(set).remove(&(ptr as usize)) {
        return Err(fail(INCEPT_ERR_CLOSED, format!("{what} is already closed or not a handle from this library")));
    }
    // SAFETY: `ptr` was in the registry, so it came from `Box::into_raw` in `open` and
    // has not been freed; removing it first makes this the only free.
    drop(unsafe { Box::from_raw(ptr) });
    Ok(())
}

/// The library version, e.g. `"0.1.0"`: a static NUL-terminated string.
#[unsafe(no_mangle)]
pub extern "C" fn incept_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The message of the last call that failed on this thread (an empty string if none
/// has). The pointer stays valid until the next `incept_` call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn incept_last_error() -> *const c_char {
    LAST_ERROR.try_with(|e| e.borrow().as_ptr()).unwrap_or(c"".as_ptr())
}

/// Opens a model: a built-in name (`"inception_v3"`, `"nin_cifar10"`, ...; built-in
/// models carry synthetic weights) or a model file: an incept model file written by
/// `incept convert` (memory-mapped; every session of the model, in any thread, shares
/// the mapped weights) or a `.onnx` file. On success `*out` is a
/// new handle, to be released with [`incept_model_close`]; on failure it is NULL.
///
/// A model may be used from any number of threads at once.
///
/// Returns [`INCEPT_OK`], [`INCEPT_ERR_NULL`], [`INCEPT_ERR_ARGUMENT`] (not UTF-8),
/// [`INCEPT_ERR_MODEL`] or [`INCEPT_ERR_PANIC`].
///
/// # Safety
/// `name_or_path` is NULL or a NUL-terminated string; `out` is NULL or valid for a
/// pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_model_open(name_or_path: *const c_char, out: *mut *mut InceptModel) -> c_int {
    boundary("incept_model_open", || {
        if out.is_null() {
            return Err(fail(INCEPT_ERR_NULL, "out is NULL"));
        }
        // SAFETY: `out` is non-NULL and valid for writes (the caller's contract).
        unsafe { out.write(std::ptr::null_mut()) };
        if name_or_path.is_null() {
            return Err(fail(INCEPT_ERR_NULL, "name_or_path is NULL"));
        }
        // SAFETY: non-NULL and NUL-terminated (the caller's contract).
        let name = unsafe { CStr::from_ptr(name_or_path) };
        let name = name.to_str().map_err(|_| fail(INCEPT_ERR_ARGUMENT, "name_or_path is not UTF-8"))?;
        let model = Model::load(name).map_err(engine(INCEPT_ERR_MODEL))?;
        let handle = open(&MODELS, InceptModel { model });
        // SAFETY: as above.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Closes a model handle. Its sessions stay usable. NULL is a no-op; closing a handle
/// twice returns [`INCEPT_ERR_CLOSED`].
///
/// # Safety
/// `model` is NULL or a pointer returned by [`incept_model_open`]; no other thread
/// uses it during or after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_model_close(model: *mut InceptModel) -> c_int {
    boundary("incept_model_close", || close(&MODELS, model, "model"))
}

/// Plans a session of `model` for `batch` images per run, run on `threads` worker
/// threads (1: on the caller's thread), and allocates its arena. On success `*out` is
/// a new handle, to be released with [`incept_session_close`]; on failure it is NULL.
///
/// A session must be used by one thread at a time; create one per thread.
///
/// Returns [`INCEPT_OK`], [`INCEPT_ERR_NULL`], [`INCEPT_ERR_ARGUMENT`] (`threads` or
/// `batch` below 1, or an `INCEPT_TIER` this CPU cannot run), [`INCEPT_ERR_CLOSED`],
/// [`INCEPT_ERR_MODEL`] or [`INCEPT_ERR_PANIC`].
///
/// # Safety
/// `model` is NULL or a pointer returned by [`incept_model_open`]; `out` is NULL or
/// valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_session_create(
    model: *const InceptModel,
    threads: c_int,
    batch: c_int,
    out: *mut *mut InceptSession,
) -> c_int {
    // SAFETY: the same contract as this function's.
    unsafe { create_session("incept_session_create", model, threads, batch, INCEPT_PRECISION_DEFAULT, out) }
}

/// [`incept_session_create`] at a precision: [`INCEPT_PRECISION_DEFAULT`],
/// [`INCEPT_PRECISION_F32`], [`INCEPT_PRECISION_BF16`] or [`INCEPT_PRECISION_BF16X3`].
/// The model's BF16 (or BF16x3) weights are made by its first session at that
/// precision and shared by later ones.
///
/// Returns what [`incept_session_create`] does; [`INCEPT_ERR_ARGUMENT`] also for an
/// unknown precision, another precision asked of a BF16 or BF16x3 model file, or an `INCEPT_BF16_TIER`
/// this CPU cannot run.
///
/// # Safety
/// As for [`incept_session_create`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_session_create_with_precision(
    model: *const InceptModel,
    threads: c_int,
    batch: c_int,
    precision: c_int,
    out: *mut *mut InceptSession,
) -> c_int {
    // SAFETY: the same contract as this function's.
    unsafe { create_session("incept_session_create_with_precision", model, threads, batch, precision, out) }
}

/// The body of the two session constructors.
///
/// # Safety
/// As for [`incept_session_create`].
unsafe fn create_session(
    name: &str,
    model: *const InceptModel,
    threads: c_int,
    batch: c_int,
    precision: c_int,
    out: *mut *mut InceptSession,
) -> c_int {
    boundary(name, || {
        if out.is_null() {
            return Err(fail(INCEPT_ERR_NULL, "out is NULL"));
        }
        // SAFETY: `out` is non-NULL and valid for writes (the caller's contract).
        unsafe { out.write(std::ptr::null_mut()) };
        check_live(&MODELS, model, "model")?;
        let threads = usize::try_from(threads).ok().filter(|&t| t >= 1);
        let threads = threads.ok_or_else(|| fail(INCEPT_ERR_ARGUMENT, "threads must be at least 1"))?;
        let batch = usize::try_from(batch).ok().filter(|&b| b >= 1);
        let batch = batch.ok_or_else(|| fail(INCEPT_ERR_ARGUMENT, "batch must be at least 1"))?;
        let precision = match precision {
            INCEPT_PRECISION_DEFAULT => None,
            INCEPT_PRECISION_F32 => Some(Precision::F32),
            INCEPT_PRECISION_BF16 => Some(Precision::Bf16),
            INCEPT_PRECISION_BF16X3 => Some(Precision::Bf16x3),
            p => return Err(fail(INCEPT_ERR_ARGUMENT, format!("unknown precision {p}"))),
        };
        // SAFETY: `model` is a live handle (checked above) and only read; models are
        // Sync, so other threads may read it at the same time.
        let model = unsafe { &(*model).model };
        let session = model
            .session(SessionOptions { batch, threads, precision, ..Default::default() })
            .map_err(engine(INCEPT_ERR_MODEL))?;
        let handle = open(&SESSIONS, InceptSession { session, poisoned: false });
        // SAFETY: as above.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Closes a session handle and frees its arena (and stops its worker threads). NULL is
/// a no-op; closing a handle twice returns [`INCEPT_ERR_CLOSED`].
///
/// # Safety
/// `session` is NULL or a pointer returned by [`incept_session_create`]; no other
/// thread uses it during or after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_session_close(session: *mut InceptSession) -> c_int {
    boundary("incept_session_close", || close(&SESSIONS, session, "session"))
}

/// Writes the order of the input's values the session expects to `*out`:
/// [`INCEPT_LAYOUT_NCHW`], or [`INCEPT_LAYOUT_NHWC`] for a model whose graph reads
/// NHWC (an ONNX graph that starts by transposing its input from NHWC).
///
/// # Safety
/// `session` is NULL or a pointer returned by [`incept_session_create`] that no other
/// thread is using; `out` is NULL or valid for an `int` write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_session_input_layout(session: *const InceptSession, out: *mut c_int) -> c_int {
    // SAFETY: the same contract as this function's.
    unsafe {
        write_property("incept_session_input_layout", session, out, |s| match s.input_layout() {
            InputLayout::Nchw => INCEPT_LAYOUT_NCHW,
            InputLayout::Nhwc => INCEPT_LAYOUT_NHWC,
        })
    }
}

/// Writes the session's precision to `*out`: [`INCEPT_PRECISION_F32`],
/// [`INCEPT_PRECISION_BF16`] or [`INCEPT_PRECISION_BF16X3`].
///
/// # Safety
/// `session` is NULL or a pointer returned by [`incept_session_create`] that no other
/// thread is using; `out` is NULL or valid for an `int` write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_session_precision(session: *const InceptSession, out: *mut c_int) -> c_int {
    // SAFETY: the same contract as this function's.
    unsafe {
        write_property("incept_session_precision", session, out, |s| match s.precision() {
            Precision::F32 => INCEPT_PRECISION_F32,
            Precision::Bf16 => INCEPT_PRECISION_BF16,
            Precision::Bf16x3 => INCEPT_PRECISION_BF16X3,
        })
    }
}

/// Writes `get` of a live session to `*out`: the body of the property getters.
///
/// # Safety
/// `session` is NULL or a pointer returned by [`incept_session_create`] that no other
/// thread is using; `out` is NULL or valid for a write.
unsafe fn write_property<T>(
    name: &str,
    session: *const InceptSession,
    out: *mut T,
    get: impl FnOnce(&Session) -> T,
) -> c_int {
    boundary(name, || {
        check_live(&SESSIONS, session, "session")?;
        if out.is_null() {
            return Err(fail(INCEPT_ERR_NULL, "out is NULL"));
        }
        // SAFETY: `session` is live (checked) and not used elsewhere; `out` is non-NULL
        // and valid for a write (the caller's contract).
        unsafe { out.write(get(&(*session).session)) };
        Ok(())
    })
}

/// Writes the session's input shape to `dims`, an array of 4: `[N, C, H, W]`, or
/// `[N, H, W, C]` when [`incept_session_input_layout`] is [`INCEPT_LAYOUT_NHWC`].
///
/// # Safety
/// `session` is NULL or a pointer returned by [`incept_session_create`] that no other
/// thread is using; `dims` is NULL or valid for writing 4 `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_session_input_shape(session: *const InceptSession, dims: *mut usize) -> c_int {
    boundary("incept_session_input_shape", || {
        check_live(&SESSIONS, session, "session")?;
        if dims.is_null() {
            return Err(fail(INCEPT_ERR_NULL, "dims is NULL"));
        }
        // SAFETY: `session` is live (checked) and not used elsewhere (the caller's contract).
        let shape = unsafe { (*session).session.input_shape() };
        // SAFETY: `dims` is non-NULL and valid for 4 writes (the caller's contract).
        unsafe { std::ptr::copy_nonoverlapping(shape.as_ptr(), dims, 4) };
        Ok(())
    })
}

/// Writes the number of floats a run writes (`N x classes` for the classifiers,
/// `N x 512` for the `inception_resnet_v1` embedding) to `*out`.
///
/// # Safety
/// `session` is NULL or a pointer returned by [`incept_session_create`] that no other
/// thread is using; `out` is NULL or valid for a `size_t` write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_session_output_len(session: *const InceptSession, out: *mut usize) -> c_int {
    // SAFETY: the same contract as this function's.
    unsafe { write_property("incept_session_output_len", session, out, Session::output_len) }
}

/// Runs the session: `input` holds `input_len` floats in the order of
/// [`incept_session_input_shape`] (NCHW, or NHWC: see [`incept_session_input_layout`]),
/// their count the product of that shape; `output` receives `output_len`
/// floats (see [`incept_session_output_len`]). Allocates nothing.
///
/// Returns [`INCEPT_OK`], [`INCEPT_ERR_NULL`], [`INCEPT_ERR_ARGUMENT`] (a length that
/// does not match), [`INCEPT_ERR_CLOSED`], [`INCEPT_ERR_RUN`] or [`INCEPT_ERR_PANIC`].
///
/// # Safety
/// `session` is NULL or a pointer returned by [`incept_session_create`] that no other
/// thread is using; `input` is NULL or valid for reading `input_len` floats; `output`
/// is NULL or valid for writing `output_len` floats and does not overlap `input`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_session_run(
    session: *mut InceptSession,
    input: *const f32,
    input_len: usize,
    output: *mut f32,
    output_len: usize,
) -> c_int {
    boundary("incept_session_run", || {
        check_live(&SESSIONS, session, "session")?;
        if input.is_null() {
            return Err(fail(INCEPT_ERR_NULL, "input is NULL"));
        }
        if output.is_null() {
            return Err(fail(INCEPT_ERR_NULL, "output is NULL"));
        }
        // SAFETY: `session` is live (checked) and this thread has it to itself (the
        // caller's contract), so a unique reference is sound.
        let s = unsafe { &mut *session };
        if s.poisoned {
            return Err(fail(INCEPT_ERR_RUN, "the session panicked in an earlier run; close it"));
        }
        // SAFETY: non-NULL, valid for `input_len` reads and `output_len` writes, and
        // not overlapping (the caller's contract); floats have no invalid bit patterns.
        let (x, y) = unsafe {
            (std::slice::from_raw_parts(input, input_len), std::slice::from_raw_parts_mut(output, output_len))
        };
        s.poisoned = true;
        let result = s.session.run(x, y).map_err(engine(INCEPT_ERR_RUN));
        s.poisoned = false;
        result
    })
}
