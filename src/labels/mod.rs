//! Class names for classifier outputs: ImageNet-1k (torchvision's names, in class
//! index order) and CIFAR-10.

use std::sync::LazyLock;

/// The 1000 ImageNet-1k class names, one per line, in class index order.
const IMAGENET_TXT: &str = include_str!("imagenet.txt");

static IMAGENET: LazyLock<Vec<&'static str>> = LazyLock::new(|| IMAGENET_TXT.lines().collect());

/// The 1000 ImageNet-1k class names in class index order (`imagenet()[0] == "tench"`).
pub fn imagenet() -> &'static [&'static str] {
    &IMAGENET
}

/// The 10 CIFAR-10 class names in class index order.
pub const CIFAR10: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The name of class `index` of a classifier with `classes` outputs: ImageNet-1k for
/// 1000, ImageNet-1k after a `background` class for 1001 (the TF-slim convention),
/// CIFAR-10 for 10. `None` for other class counts or an index out of range.
pub fn class_name(classes: usize, index: usize) -> Option<&'static str> {
    match (classes, index) {
        (1000, i) => imagenet().get(i).copied(),
        (1001, 0) => Some("background"),
        (1001, i) => imagenet().get(i - 1).copied(),
        (10, i) => CIFAR10.get(i).copied(),
        _ => None,
    }
}

/// The `k` most probable classes of one image's logits, most probable first, as
/// `(index, probability)`: softmax in `f32`, ties to the lower index (what `incept
/// classify` prints).
pub fn top_classes(logits: &[f32], k: usize) -> Vec<(usize, f32)> {
    top_k(&softmax(logits), k)
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// The `k` largest values with their indices, largest first (ties: lower index first).
fn top_k(values: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<(usize, f32)> = values.iter().copied().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order.truncate(k);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_and_top_k() {
        let p = softmax(&[1.0, 3.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let top: Vec<usize> = top_k(&p, 3).into_iter().map(|(i, _)| i).collect();
        assert_eq!(top, [1, 3, 2]);
        assert_eq!(top_k(&p, 10).len(), 4);
        assert_eq!(top_classes(&[1.0, 3.0, 2.0, 3.0], 3), top_k(&p, 3));
    }

    #[test]
    fn label_sets() {
        assert_eq!(imagenet().len(), 1000);
        assert_eq!(imagenet()[0], "tench");
        assert!(imagenet().iter().all(|l| !l.is_empty() && l.trim() == *l));
        assert_eq!(class_name(1000, 999), imagenet().last().copied());
        assert_eq!(class_name(1001, 1), Some("tench"));
        assert_eq!(class_name(10, 3), Some("cat"));
        assert_eq!(class_name(1000, 1000), None);
        assert_eq!(class_name(512, 0), None);
    }
}
