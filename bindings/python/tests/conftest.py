"""Shared fixtures: the `incept` binary to compare with, model files, PNG images."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import incept

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def incept_bin() -> str:
    """The CLI built from this tree: $INCEPT_BIN, else target/{release,debug}/incept.

    With $INCEPT_BIN set (CI sets it) a missing binary fails the tests; otherwise they
    are skipped with a note.
    """
    wanted = os.environ.get("INCEPT_BIN")
    if wanted:
        if not os.access(wanted, os.X_OK):
            pytest.fail(f"INCEPT_BIN={wanted} is not an executable")
        return wanted
    for profile in ("release", "debug"):
        candidate = REPO / "target" / profile / "incept"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("incept")
    if found:
        return found
    pytest.skip("no incept binary: cargo build --release, or set INCEPT_BIN")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def nin_file(model_dir) -> Path:
    """nin_cifar10's synthetic weights as an incept model file."""
    path = model_dir / "nin_cifar10.incept"
    incept.convert("nin_cifar10", path)
    return path


def write_pngs(directory: Path, count: int, seed: int = 0) -> list:
    """`count` small RGB PNGs of random sizes and pixels; returns their paths."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        h, w = rng.integers(20, 72, size=2)
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        path = directory / f"img{i:04d}.png"
        Image.fromarray(pixels, "RGB").save(path)
        paths.append(str(path))
    return paths
