//! The C API through its Rust symbols: status codes, the per-thread last error,
//! closed-handle detection, no allocation in `incept_session_run`, and a header that
//! declares every exported function and status code.

use std::ffi::CStr;
use std::ptr::null_mut;
use std::sync::Mutex;

// The library is a cdylib and staticlib only (no rlib to link): the test compiles its
// source as a module.
#[path = "../src/lib.rs"]
#[allow(dead_code)]
mod capi;
use capi::*;

#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

/// Tests that close handles run one at a time: a freed handle's address must not be
/// reused by another test's new handle before the use-after-close check.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn last_error() -> String {
    // SAFETY: incept_last_error returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(incept_last_error()) }.to_string_lossy().into_owned()
}

fn open(name: &CStr) -> *mut InceptModel {
    let mut m = null_mut();
    // SAFETY: a NUL-terminated name and a valid out pointer.
    assert_eq!(unsafe { incept_model_open(name.as_ptr(), &mut m) }, INCEPT_OK, "{}", last_error());
    m
}

fn session(m: *const InceptModel, threads: i32, batch: i32) -> *mut InceptSession {
    let mut s = null_mut();
    // SAFETY: a live model and a valid out pointer.
    assert_eq!(unsafe { incept_session_create(m, threads, batch, &mut s) }, INCEPT_OK, "{}", last_error());
    s
}

#[test]
fn version() {
    // SAFETY: a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(incept_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn open_failures_have_distinct_codes_and_messages() {
    let _g = serial();
    let mut m = std::ptr::NonNull::<InceptModel>::dangling().as_ptr(); // must be overwritten
    // SAFETY: valid pointers or NULL, as documented.
    unsafe {
        assert_eq!(incept_model_open(c"no_such_model".as_ptr(), &mut m), INCEPT_ERR_MODEL);
        assert!(m.is_null(), "out is NULL after a failure");
        assert!(last_error().contains("unknown model 'no_such_model'"), "{}", last_error());
        assert_eq!(incept_model_open(c"/nonexistent/model.onnx".as_ptr(), &mut m), INCEPT_ERR_MODEL);
        assert_eq!(incept_model_open(std::ptr::null(), &mut m), INCEPT_ERR_NULL);
        assert!(last_error().contains("name_or_path is NULL"));
        assert_eq!(incept_model_open(c"nin_cifar10".as_ptr(), null_mut()), INCEPT_ERR_NULL);
        assert_eq!(incept_model_open(c"\xff".as_ptr(), &mut m), INCEPT_ERR_ARGUMENT);
    }
}

#[test]
fn model_files_open_by_path() {
    let _g = serial();
    let path = format!("{}/../tests/fixtures/inception_module.onnx\0", env!("CARGO_MANIFEST_DIR"));
    let path = CStr::from_bytes_with_nul(path.as_bytes()).unwrap();
    let m = open(path);
    let s = session(m, 1, 1);
    let mut dims = [0usize; 4];
    // SAFETY: live handles and valid pointers.
    unsafe {
        assert_eq!(incept_session_input_shape(s, dims.as_mut_ptr()), INCEPT_OK);
        assert_eq!(dims[0], 1);
        assert_eq!(incept_session_close(s), INCEPT_OK);
        assert_eq!(incept_model_close(m), INCEPT_OK);
    }
    let corrupt = std::env::temp_dir().join(format!("incept-capi-{}.onnx", std::process::id()));
    std::fs::write(&corrupt, b"not a protobuf").unwrap();
    let corrupt = std::ffi::CString::new(corrupt.display().to_string()).unwrap();
    let mut m = null_mut();
    // SAFETY: valid pointers.
    assert_eq!(unsafe { incept_model_open(corrupt.as_ptr(), &mut m) }, INCEPT_ERR_MODEL);
    assert!(last_error().contains("cannot import model"), "{}", last_error());
}

#[test]
fn sessions_run_like_the_rust_api_and_outlive_their_model() {
    let _g = serial();
    let m = open(c"nin_cifar10");
    let mut s = null_mut();
    // SAFETY: valid handles and pointers throughout, except where a misuse is the point.
    unsafe {
        assert_eq!(incept_session_create(m, 0, 1, &mut s), INCEPT_ERR_ARGUMENT);
        assert!(last_error().contains("threads"));
        assert_eq!(incept_session_create(m, 1, -3, &mut s), INCEPT_ERR_ARGUMENT);
        assert_eq!(incept_session_create(std::ptr::null(), 1, 1, &mut s), INCEPT_ERR_NULL);
        let s = session(m, 1, 2);
        assert_eq!(incept_model_close(m), INCEPT_OK);

        let mut dims = [0usize; 4];
        assert_eq!(incept_session_input_shape(s, dims.as_mut_ptr()), INCEPT_OK);
        assert_eq!(dims, [2, 3, 32, 32]);
        let mut out_len = 0;
        assert_eq!(incept_session_output_len(s, &mut out_len), INCEPT_OK);
        assert_eq!(out_len, 20);
        assert_eq!(incept_session_output_len(s, null_mut()), INCEPT_ERR_NULL);

        let x: Vec<f32> = (0..dims.iter().product()).map(|i| ((i * 31) % 97) as f32 / 97.0 - 0.5).collect();
        let mut y = vec![0.0f32; out_len];
        assert_eq!(incept_session_run(s, x.as_ptr(), x.len(), y.as_mut_ptr(), y.len()), INCEPT_OK);
        let model = incept::Model::builtin("nin_cifar10").unwrap();
        let mut rust = model.session(incept::SessionOptions { batch: 2, ..Default::default() }).unwrap();
        let mut want = vec![0.0f32; out_len];
        rust.run(&x, &mut want).unwrap();
        assert_eq!(y, want);

        assert_eq!(incept_session_run(s, x.as_ptr(), x.len() - 1, y.as_mut_ptr(), y.len()), INCEPT_ERR_ARGUMENT);
        assert!(last_error().contains("input has 6143 values, expected 6144"), "{}", last_error());
        assert_eq!(incept_session_run(s, x.as_ptr(), x.len(), y.as_mut_ptr(), 3), INCEPT_ERR_ARGUMENT);
        assert_eq!(incept_session_run(s, std::ptr::null(), x.len(), y.as_mut_ptr(), y.len()), INCEPT_ERR_NULL);
        assert_eq!(incept_session_run(s, x.as_ptr(), x.len(), null_mut(), y.len()), INCEPT_ERR_NULL);
        // Failures leave the session usable.
        assert_eq!(incept_session_run(s, x.as_ptr(), x.len(), y.as_mut_ptr(), y.len()), INCEPT_OK);
        assert_eq!(incept_session_close(s), INCEPT_OK);
    }
}

#[test]
fn a_batch_no_arena_can_hold_is_an_argument_error_naming_the_bytes() {
    let _guard = serial();
    let m = open(c"nin_cifar10");
    let mut s = null_mut();
    // SAFETY: a live model and a valid out pointer.
    assert_eq!(unsafe { incept_session_create(m, 1, i32::MAX, &mut s) }, INCEPT_ERR_ARGUMENT);
    assert!(s.is_null());
    let err = last_error();
    assert!(err.contains(&format!("batch {}", i32::MAX)) && err.contains(" bytes"), "{err}");
    // SAFETY: a live model, closed once.
    assert_eq!(unsafe { incept_model_close(m) }, INCEPT_OK);
}

#[test]
fn sessions_say_which_input_layout_they_expect() {
    let _guard = serial();
    let dir = env!("CARGO_MANIFEST_DIR");
    for (file, want, shape) in [
        ("keras_inception_v3_small_nhwc", INCEPT_LAYOUT_NHWC, [1, 35, 35, 3]),
        ("keras_inception_v3_small_nchw", INCEPT_LAYOUT_NCHW, [1, 3, 35, 35]),
    ] {
        let path = std::ffi::CString::new(format!("{dir}/../tests/fixtures/exports/{file}.onnx")).unwrap();
        let m = open(&path);
        let s = session(m, 1, 1);
        let (mut layout, mut dims) = (-1, [0usize; 4]);
        // SAFETY: a live session and valid out pointers (an int, 4 size_t).
        unsafe {
            assert_eq!(incept_session_input_layout(s, &mut layout), INCEPT_OK);
            assert_eq!(incept_session_input_shape(s, dims.as_mut_ptr()), INCEPT_OK);
            assert_eq!(incept_session_input_layout(s, std::ptr::null_mut()), INCEPT_ERR_NULL);
        }
        assert_eq!((layout, dims), (want, shape), "{file}");
        // SAFETY: live handles, each closed once.
        unsafe { assert_eq!((incept_session_close(s), incept_model_close(m)), (INCEPT_OK, INCEPT_OK)) };
    }
}

#[test]
fn double_close_and_use_after_close_are_detected() {
    let _g = serial();
    let m = open(c"nin_cifar10");
    let s = session(m, 1, 1);
    let x = vec![0.0f32; 3 * 32 * 32];
    let mut y = vec![0.0f32; 10];
    let mut dims = [0usize; 4];
    // SAFETY: the closed handles are passed only to be rejected; the registry check
    // runs before any dereference, and no handle is created in between (SERIAL).
    unsafe {
        assert_eq!(incept_session_close(s), INCEPT_OK);
        assert_eq!(incept_session_close(s), INCEPT_ERR_CLOSED);
        assert!(last_error().contains("already closed"), "{}", last_error());
        assert_eq!(incept_session_run(s, x.as_ptr(), x.len(), y.as_mut_ptr(), y.len()), INCEPT_ERR_CLOSED);
        assert_eq!(incept_session_input_shape(s, dims.as_mut_ptr()), INCEPT_ERR_CLOSED);
        // A session handle is not a model handle, and the other way round.
        let s2 = session(m, 1, 1);
        assert_eq!(incept_model_close(s2.cast()), INCEPT_ERR_CLOSED);
        assert_eq!(incept_session_close(m.cast()), INCEPT_ERR_CLOSED);
        assert_eq!(incept_session_close(s2), INCEPT_OK);
        assert_eq!(incept_model_close(m), INCEPT_OK);
        assert_eq!(incept_model_close(m), INCEPT_ERR_CLOSED);
        let mut s3 = null_mut();
        assert_eq!(incept_session_create(m, 1, 1, &mut s3), INCEPT_ERR_CLOSED);
        assert!(s3.is_null());
        // NULL closes are no-ops, as free(NULL).
        assert_eq!(incept_model_close(null_mut()), INCEPT_OK);
        assert_eq!(incept_session_close(null_mut()), INCEPT_OK);
    }
}

#[test]
fn last_error_is_per_thread() {
    let mut m = null_mut();
    // SAFETY: valid pointers.
    assert_eq!(unsafe { incept_model_open(c"not_here".as_ptr(), &mut m) }, INCEPT_ERR_MODEL);
    assert!(last_error().contains("not_here"));
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "");
}

#[test]
fn session_run_allocates_nothing() {
    let _g = serial();
    let m = open(c"nin_cifar10");
    for threads in [1, 2] {
        let s = session(m, threads, 1);
        let x = vec![0.25f32; 3 * 32 * 32];
        let mut y = vec![0.0f32; 10];
        let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
        // SAFETY: a live session and buffers of the stated lengths.
        let run = || unsafe { incept_session_run(s, xp, x.len(), yp, 10) };
        assert_eq!(run(), INCEPT_OK, "warm-up");
        let mut status = [INCEPT_OK; 3];
        let allocations = counting_alloc::on_this_thread(|| status = [run(), run(), run()]);
        assert_eq!(allocations, 0, "allocations in incept_session_run");
        assert_eq!(status, [INCEPT_OK; 3]);
        // The counter works: a failed call allocates its message.
        let mut short = INCEPT_OK;
        let allocations = counting_alloc::on_this_thread(|| {
            // SAFETY: as above; the short output length is the point.
            short = unsafe { incept_session_run(s, xp, x.len(), yp, 3) }
        });
        assert_eq!(short, INCEPT_ERR_ARGUMENT);
        assert!(allocations > 0);
        // SAFETY: a live session.
        assert_eq!(unsafe { incept_session_close(s) }, INCEPT_OK);
    }
    // SAFETY: a live model.
    assert_eq!(unsafe { incept_model_close(m) }, INCEPT_OK);
}

#[test]
fn header_declares_every_function_and_status_code() {
    let root = env!("CARGO_MANIFEST_DIR");
    let src = std::fs::read_to_string(format!("{root}/src/lib.rs")).unwrap();
    let header = std::fs::read_to_string(format!("{root}/include/incept.h")).unwrap();
    let mut functions = 0;
    for line in src.lines() {
        if let Some(rest) = line.split("extern \"C\" fn ").nth(1) {
            let name = rest.split('(').next().unwrap();
            assert!(
                header.contains(&format!("{name}(")),
                "include/incept.h lacks {name}: regenerate it (docs/c-api.md)"
            );
            functions += 1;
        }
        if let Some(rest) = line.strip_prefix("pub const INCEPT_") {
            let (name, value) = rest.split_once(": c_int = ").unwrap();
            let value = value.trim_end_matches(';');
            assert!(header.contains(&format!("#define INCEPT_{name} {value}\n")), "include/incept.h: INCEPT_{name}");
        }
    }
    assert_eq!(functions, 12);
}

#[test]
fn bf16_sessions_run_like_the_rust_api() {
    let _g = serial();
    let m = open(c"nin_cifar10");
    let (mut s, mut precision) = (null_mut(), -1);
    // SAFETY: valid handles and pointers throughout.
    unsafe {
        assert_eq!(incept_session_create_with_precision(m, 1, 1, 7, &mut s), INCEPT_ERR_ARGUMENT);
        assert!(last_error().contains("unknown precision 7"), "{}", last_error());
        let f32_session = session(m, 1, 1);
        assert_eq!(incept_session_precision(f32_session, &mut precision), INCEPT_OK);
        assert_eq!(precision, INCEPT_PRECISION_F32);
        assert_eq!(incept_session_close(f32_session), INCEPT_OK);
        assert_eq!(incept_session_create_with_precision(m, 1, 1, INCEPT_PRECISION_BF16, &mut s), INCEPT_OK);
        assert_eq!(incept_session_precision(s, &mut precision), INCEPT_OK);
        assert_eq!(precision, INCEPT_PRECISION_BF16);
        let x: Vec<f32> = (0..3 * 32 * 32).map(|i| ((i * 31) % 97) as f32 / 97.0 - 0.5).collect();
        let mut y = vec![0.0f32; 10];
        assert_eq!(incept_session_run(s, x.as_ptr(), x.len(), y.as_mut_ptr(), y.len()), INCEPT_OK);
        let model = incept::Model::builtin("nin_cifar10").unwrap();
        let options = incept::SessionOptions { precision: Some(incept::Precision::Bf16), ..Default::default() };
        let mut want = vec![0.0f32; 10];
        model.session(options).unwrap().run(&x, &mut want).unwrap();
        assert_eq!(y, want);
        assert_eq!(incept_session_close(s), INCEPT_OK);
        // BF16x3 likewise.
        assert_eq!(incept_session_create_with_precision(m, 1, 1, INCEPT_PRECISION_BF16X3, &mut s), INCEPT_OK);
        assert_eq!(incept_session_precision(s, &mut precision), INCEPT_OK);
        assert_eq!(precision, INCEPT_PRECISION_BF16X3);
        assert_eq!(incept_session_run(s, x.as_ptr(), x.len(), y.as_mut_ptr(), y.len()), INCEPT_OK);
        let options = incept::SessionOptions { precision: Some(incept::Precision::Bf16x3), ..Default::default() };
        model.session(options).unwrap().run(&x, &mut want).unwrap();
        assert_eq!(y, want);
        assert_eq!(incept_session_close(s), INCEPT_OK);
        assert_eq!(incept_model_close(m), INCEPT_OK);
    }
}
