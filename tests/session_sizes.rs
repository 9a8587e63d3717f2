//! Session sizes a user chooses: a batch no arena can hold is an error naming the
//! bytes (never a panic in the allocator); more threads than cores are allowed.

use incept::{Error, Model, SessionOptions};

#[test]
fn batches_no_arena_can_hold_are_errors_naming_the_bytes() {
    let model = Model::builtin("nin_cifar10").unwrap();
    for batch in [100_000_000, usize::MAX / 3, usize::MAX] {
        match model.session(SessionOptions { batch, ..Default::default() }) {
            Err(Error::Options(msg)) => {
                assert!(msg.contains(&format!("batch {batch}")) && msg.contains(" bytes"), "{msg}")
            }
            Err(e) => panic!("batch {batch}: {e}"),
            Ok(_) => panic!("batch {batch}: planned an arena no machine has"),
        }
    }
}

#[test]
fn more_threads_than_cores_run() {
    let model = Model::builtin("nin_cifar10").unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut one = model.session(SessionOptions::default()).unwrap();
    let mut many = model.session(SessionOptions { threads: cores + 2, ..Default::default() }).unwrap();
    let x: Vec<f32> = (0..one.input_len()).map(|i| (i % 17) as f32 / 17.0).collect();
    let (mut a, mut b) = (vec![0.0; one.output_len()], vec![0.0; many.output_len()]);
    one.run(&x, &mut a).unwrap();
    many.run(&x, &mut b).unwrap();
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 1e-5 * scale), "{a:?} vs {b:?}");
}
