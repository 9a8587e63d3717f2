"""Type stubs of the native module incept._incept (bindings/python/src/lib.rs)."""

import os
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, "os.PathLike[str]"]

__version__: str

class InceptError(Exception):
    """An engine error: a model file that cannot be read or imported, a malformed
    graph, weights that do not fit."""

class Model:
    """A network ready to run: a built-in model (synthetic weights), an incept model
    file (memory-mapped, shared by every session) or a ``.onnx`` file."""

    def __init__(self, name_or_path: _Path) -> None: ...
    @staticmethod
    def from_safetensors(path: _Path, arch: str) -> "Model":
        """A built-in architecture with a PyTorch state dict saved as safetensors."""
    @property
    def source(self) -> str:
        """The built-in name or the path the model was opened from."""
    @property
    def input_shape(self) -> Tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
    def info(self, batch: int = 1) -> Dict[str, Any]:
        """``model``, ``params``, ``macs`` (per image), ``batch``, ``input_shape``,
        ``input_layout`` (``"NCHW"``), ``input_dtype``, ``output_shape``,
        ``arena_bytes`` (for ``batch``), ``weight_bytes``, ``mapped_weight_bytes``."""
    def session(self, threads: int = 1, batch: int = 1, precision: Optional[str] = None) -> "Session":
        """Plans a session for ``batch`` images per run on ``threads`` threads, at
        ``precision``: ``"f32"``, ``"bf16"`` or ``"bf16x3"`` (``None``: the model's own)."""

class Session:
    """A model planned for a batch size with its own arena; one thread at a time."""

    def run(self, x: npt.NDArray[np.float32], out: Optional[npt.NDArray[np.float32]] = None) -> npt.NDArray[np.float32]:
        """Runs float32 C-contiguous ``(n, C, H, W)`` input, ``1 <= n <= batch``.

        Returns a new ``(n, classes)`` array or fills and returns ``out``. Raises
        ``ValueError`` for a wrong dtype, shape or layout, ``RuntimeError`` if another
        thread is running this session. The GIL is released during the run.
        """
    @property
    def input_shape(self) -> Tuple[int, int, int, int]: ...
    @property
    def output_shape(self) -> Tuple[int, ...]: ...
    @property
    def batch(self) -> int: ...
    @property
    def threads(self) -> int: ...
    @property
    def tier(self) -> str: ...
    @property
    def precision(self) -> str: ...
    @property
    def arena_bytes(self) -> int: ...

def preprocess(
    image: Union[_Path, bytes, npt.NDArray[np.uint8]], model: Model, preset: Optional[str] = None
) -> npt.NDArray[np.float32]:
    """One image as ``incept classify`` preprocesses it: float32 ``(1, 3, S, S)``."""

def output_kind(model: Model, preset: Optional[str] = None) -> str:
    """``"logits"`` or ``"embedding"``."""

def top_classes(logits: npt.NDArray[np.float32], top: int) -> List[List[Tuple[int, float]]]:
    """Per row of ``(n, classes)`` logits: the ``top`` ``(index, probability)`` pairs."""

def class_name(classes: int, index: int) -> Optional[str]: ...
def imagenet_labels() -> List[str]: ...
def cifar10_labels() -> List[str]: ...
def builtin_models() -> List[str]:
    """The built-in model names."""

def convert(
    src: _Path, output: _Path, arch: Optional[str] = None, force: bool = False, precision: str = "f32"
) -> None:
    """Writes an incept model file from a ``.onnx`` file, a ``.safetensors`` state dict
    (with ``arch``) or a built-in name (synthetic weights), at ``precision`` (``"f32"``,
    or ``"bf16"`` or ``"bf16x3"``: a file that runs only at that precision), and verifies it."""
