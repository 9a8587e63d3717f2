//! The evaluator against ONNX (numpy) semantics, on hand-worked cases.

use super::*;

fn cx() -> Ctx {
    Ctx("test".into())
}

fn f(shape: &[usize], v: &[f32]) -> Const {
    Const::f32(shape.to_vec(), v.to_vec())
}

#[test]
fn broadcasting_follows_numpy() {
    let a = f(&[2, 1, 3], &[1., 2., 3., 4., 5., 6.]);
    let b = f(&[2, 1], &[10., 20.]);
    let y = binary(&cx(), "Add", &a, &b).unwrap();
    assert_eq!(y.shape, [2, 2, 3]);
    assert_eq!(y.data, Data::F32(vec![11., 12., 13., 21., 22., 23., 14., 15., 16., 24., 25., 26.]));
    assert!(binary(&cx(), "Add", &f(&[2], &[0.; 2]), &f(&[3], &[0.; 3])).is_err());
}

#[test]
fn reshape_copies_zeros_unless_allowzero() {
    assert_eq!(reshape_dims(&cx(), &[2, 3, 4], &[0, -1], false).unwrap(), [2, 12]);
    assert_eq!(reshape_dims(&cx(), &[0, 3], &[3, 0], true).unwrap(), [3, 0]);
    assert!(reshape_dims(&cx(), &[2, 3, 4], &[0, 0, 0], true).is_err());
    assert!(reshape_dims(&cx(), &[2, 3], &[4, -1], false).is_err());
}

#[test]
fn squeeze_and_unsqueeze_take_negative_axes() {
    assert_eq!(squeeze_dims(&cx(), &[1, 3, 1, 1], Some(&[-1, 2])).unwrap(), [1, 3]);
    assert_eq!(squeeze_dims(&cx(), &[1, 3, 1, 1], None).unwrap(), [3]);
    assert!(squeeze_dims(&cx(), &[1, 3], Some(&[1])).is_err());
    assert_eq!(unsqueeze_dims(&cx(), &[3, 4], &[0, -1]).unwrap(), [1, 3, 4, 1]);
}

#[test]
fn transpose_gather_slice_concat() {
    let a = f(&[2, 3], &[0., 1., 2., 3., 4., 5.]);
    let t = transpose(&cx(), &a, &[1, 0]).unwrap();
    assert_eq!((t.shape.clone(), t.data), (vec![3, 2], Data::F32(vec![0., 3., 1., 4., 2., 5.])));
    let g = gather(&cx(), &a, &Const::i64(vec![2], vec![-1, 0]), 1).unwrap();
    assert_eq!((g.shape.clone(), g.data), (vec![2, 2], Data::F32(vec![2., 0., 5., 3.])));
    let s = slice(&cx(), &a, &[-1, 10], &[-10, -10], Some(vec![0, 1]), Some(vec![-1, -2])).unwrap();
    assert_eq!((s.shape.clone(), s.data), (vec![2, 2], Data::F32(vec![5., 3., 2., 0.])));
    let c = concat(&cx(), &[&a, &f(&[2, 1], &[9., 9.])], -1).unwrap();
    assert_eq!(c.shape, [2, 4]);
    assert_eq!(c.data, Data::F32(vec![0., 1., 2., 9., 3., 4., 5., 9.]));
}

#[test]
fn symbolic_batch_is_never_computed_with() {
    let s = Const::i64(vec![2], vec![SYMBOLIC_BATCH, 8]);
    assert!(binary(&cx(), "Mul", &s, &Const::i64(vec![], vec![2])).is_err());
    assert!(reshape_dims(&cx(), &[8], &[SYMBOLIC_BATCH], false).is_err());
}
