"""incept: CPU inference for the Inception family of CNNs, from Python.

    >>> import numpy as np, incept
    >>> m = incept.Model("nin_cifar10")          # a built-in name, a model file or a .onnx file
    >>> s = m.session(threads=1, batch=4)         # one per thread; sessions share the weights
    >>> s.run(np.zeros((2, 3, 32, 32), np.float32)).shape
    (2, 10)

``preprocess`` and ``classify`` do what ``incept classify`` does (same preprocessing, same
softmax, same labels); ``labels`` holds the class names it prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import labels
from ._incept import (
    InceptError,
    Model,
    Session,
    __version__,
    builtin_models,
    convert,
    output_kind,
    top_classes,
)
from ._incept import preprocess as _preprocess

__all__ = [
    "Classification",
    "InceptError",
    "Model",
    "Session",
    "__version__",
    "builtin_models",
    "classify",
    "convert",
    "labels",
    "output_kind",
    "preprocess",
    "top_classes",
]

ImageLike = Union[str, "os.PathLike[str]", bytes, np.ndarray, "object"]


def _model(model: Union[Model, str, "os.PathLike[str]"]) -> Model:
    return model if isinstance(model, Model) else Model(model)


def _pixels(image: object) -> object:
    """A PIL image as a uint8 RGB array; anything else unchanged."""
    if hasattr(image, "convert") and hasattr(image, "mode") and not isinstance(image, (str, bytes)):
        return np.asarray(image.convert("RGB"))
    return image


def preprocess(
    image_or_path: Union[ImageLike, Sequence[ImageLike]],
    model: Union[Model, str, "os.PathLike[str]"],
    preset: Optional[str] = None,
) -> np.ndarray:
    """Turns images into ``model``'s input exactly as ``incept classify`` does.

    ``image_or_path`` is a path (JPEG or PNG, recognised by its bytes), the bytes of an
    encoded image, a uint8 pixel array ``(H, W)``, ``(H, W, 3)`` RGB or ``(H, W, 4)``,
    a PIL image, or a list of those. Returns float32 ``(n, 3, S, S)``, ready for
    ``Session.run``. ``preset`` names a built-in model whose preprocessing to use
    (default: the model's own, or for a model file the built-in one of its input size).
    """
    model = _model(model)
    if isinstance(image_or_path, (list, tuple)):
        if not image_or_path:
            raise ValueError("preprocess: an empty list of images")
        return np.concatenate([_preprocess(_pixels(i), model, preset) for i in image_or_path])
    return _preprocess(_pixels(image_or_path), model, preset)


@dataclass
class Classification:
    """One image's result from :func:`classify`.

    ``top`` is ``[(class index, label, probability), ...]``, most probable first, for a
    classifier; ``embedding`` the output vector for an embedding model (then ``top`` is
    empty). ``label`` is ``"class N"`` for class counts without a known label set.
    """

    path: str
    top: List[Tuple[int, str, float]] = field(default_factory=list)
    embedding: Optional[np.ndarray] = None


def _label(classes: int, index: int) -> str:
    name = labels.class_name(classes, index)
    return name if name is not None else f"class {index}"


def classify(
    paths: Iterable[Union[str, "os.PathLike[str]"]],
    model: Union[Model, str, "os.PathLike[str]"],
    top: int = 5,
    batch: int = 8,
    threads: int = 1,
    preset: Optional[str] = None,
) -> List[Classification]:
    """Classifies image files like ``incept classify --batch BATCH --threads THREADS``.

    Returns one :class:`Classification` per path, in order. An unreadable image raises
    ``ValueError`` naming its path.
    """
    if top < 1:
        raise ValueError("top must be at least 1")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    paths = [os.fspath(p) for p in paths]
    if not paths:
        return []
    model = _model(model)
    kind = output_kind(model, preset)
    session = model.session(threads=threads, batch=min(batch, len(paths)))
    results: List[Classification] = []
    for start in range(0, len(paths), session.batch):
        chunk = paths[start : start + session.batch]
        y = session.run(preprocess(chunk, model, preset))
        if kind == "embedding":
            results += [Classification(p, embedding=row.copy()) for p, row in zip(chunk, y)]
            continue
        classes = y.shape[1]
        for p, row in zip(chunk, top_classes(y, top)):
            results.append(Classification(p, [(i, _label(classes, i), float(prob)) for i, prob in row]))
    return results
