"""Class names, as ``incept classify`` prints them.

``imagenet``: the 1000 ImageNet-1k names (torchvision's), in class index order;
``cifar10``: the 10 CIFAR-10 names; ``class_name(classes, index)`` picks by the number
of outputs (1000: ImageNet, 1001: ImageNet after a ``background`` class, 10: CIFAR-10).
"""

from typing import Optional, Tuple

from ._incept import cifar10_labels, class_name as _class_name, imagenet_labels

imagenet: Tuple[str, ...] = tuple(imagenet_labels())
cifar10: Tuple[str, ...] = tuple(cifar10_labels())


def class_name(classes: int, index: int) -> Optional[str]:
    """The name of class ``index`` of a classifier with ``classes`` outputs, or None."""
    return _class_name(classes, index)


__all__ = ["cifar10", "class_name", "imagenet"]
