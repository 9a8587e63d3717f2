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

#[cfg(test)]
mod tests {
    use super::*;

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
