"""Classify (or embed) a directory of images with incept on Ray Data.

    python examples/ray/classify_images.py IMAGES_DIR --model model.incept [--actors 2]

Ray Data decodes the images (``ray.data.read_images``) and feeds batches to a pool of
actors, each an :class:`InceptClassifier`: it opens the model file once (an incept
model file is memory-mapped, so the actors of a node share one copy of the weights in
the page cache) and owns one session. Prints the images per second at the end.

Without ``--address`` a local Ray instance is started on loopback only (127.0.0.1, no
dashboard). With ``--address`` the same pipeline runs on an existing cluster: see
docs/python.md (what changes: the address, and a path every node can read).

``--engine onnxruntime`` runs the same pipeline (same preprocessing) on ONNX Runtime
with a ``.onnx`` file, to compare the engines through the same distributed pipeline.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Dict, Optional

import numpy as np

import incept


class InceptClassifier:
    """A Ray Data actor: one model (mapped once) and one session of ``batch_size``."""

    def __init__(self, model: str, batch_size: int, threads: int = 1, top: int = 1, preset: Optional[str] = None):
        self.model = incept.Model(model)
        self.session = self.model.session(threads=threads, batch=batch_size)
        self.kind = incept.output_kind(self.model, preset)
        self.top = top
        self.preset = preset

    def run(self, x: np.ndarray) -> np.ndarray:
        """Runs ``x`` in chunks of the session's batch (Ray may hand over more or fewer)."""
        return run_in_chunks(self.session.run, x, self.session.batch)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        x = incept.preprocess(list(batch["image"]), self.model, self.preset)
        return summarise(self.run(x), batch["path"], self.kind, self.top)


class OrtClassifier(InceptClassifier):
    """The same actor on ONNX Runtime (``pip install onnxruntime``): ``model`` is a
    ``.onnx`` file; preprocessing is incept's, so only the engine differs."""

    def __init__(self, model: str, batch_size: int, threads: int = 1, top: int = 1, preset: Optional[str] = None):
        super().__init__(model, 1, 1, top, preset)  # incept's model only for preprocessing
        self.ort = OrtSession(model, threads)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.ort.run(x)


class OrtSession:
    """An ONNX Runtime session of a ``.onnx`` file that runs any batch.

    An export's batch dimension is fixed (an int: a batch-1 ``torch.onnx.export``) or
    symbolic (a name: dynamic axes). ONNX Runtime refuses any other batch than a fixed
    one, and Ray hands over up to ``batch_size`` images: a fixed batch runs in chunks
    of exactly its size, a symbolic one at once.
    """

    def __init__(self, model: str, threads: int = 1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        batch = self.session.get_inputs()[0].shape[0]
        self.input_name = self.session.get_inputs()[0].name
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None

    def run(self, x: np.ndarray) -> np.ndarray:
        if self.fixed_batch is None:
            return self.run_once(x)
        return run_in_chunks(self.run_once, x, self.fixed_batch, exact=True)

    def run_once(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]


def run_in_chunks(run, x: np.ndarray, size: int, exact: bool = False) -> np.ndarray:
    """``run`` over ``x`` in chunks of at most ``size`` rows, outputs concatenated.

    With ``exact`` every chunk has ``size`` rows: the last is padded with zeros and the
    padding's output rows dropped (for an engine that takes no smaller batch).
    """
    outputs = []
    for start in range(0, len(x), size):
        chunk = x[start : start + size]
        rows = len(chunk)
        if exact and rows < size:
            chunk = np.concatenate([chunk, np.zeros((size - rows, *chunk.shape[1:]), chunk.dtype)])
        outputs.append(run(chunk)[:rows])
    return np.concatenate(outputs)


def summarise(y: np.ndarray, paths: np.ndarray, kind: str, top: int) -> Dict[str, np.ndarray]:
    """Columns of the result: the path and the top classes, or the embedding."""
    if kind == "embedding":
        return {"path": paths, "embedding": y}
    ranked = incept.top_classes(np.ascontiguousarray(y, dtype=np.float32), top)
    classes = y.shape[1]
    index = np.array([[i for i, _ in row] for row in ranked], dtype=np.int64)
    probability = np.array([[p for _, p in row] for row in ranked], dtype=np.float32)
    label = np.array([[incept.labels.class_name(classes, i) or f"class {i}" for i, _ in row] for row in ranked])
    return {"path": paths, "class": index, "label": label, "probability": probability}


def classify_directory(
    images: str,
    model: str,
    batch_size: int = 8,
    actors: int = 2,
    threads: int = 1,
    top: int = 1,
    preset: Optional[str] = None,
    engine: str = "incept",
    cpus_per_actor: Optional[float] = None,
):
    """The pipeline: a lazy Ray dataset of one row per image (call ``.materialize()``,
    ``.iter_rows()`` or ``.write_parquet()`` to run it).

    Each actor reserves ``cpus_per_actor`` CPUs (default ``threads``). Leave CPUs for
    the read tasks that decode the images: actors holding every CPU of the cluster
    starve them and the pipeline stalls.
    """
    import ray

    classifier = {"incept": InceptClassifier, "onnxruntime": OrtClassifier}[engine]
    dataset = ray.data.read_images(images, mode="RGB", include_paths=True)
    return dataset.map_batches(
        classifier,
        fn_constructor_kwargs=dict(model=model, batch_size=batch_size, threads=threads, top=top, preset=preset),
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=actors,
        num_cpus=threads if cpus_per_actor is None else cpus_per_actor,
    )


def init_ray(address: Optional[str], cpus: Optional[int]) -> None:
    """Connects to the cluster at ``address``, or starts a local one on loopback only.

    Call before anything imports ``ray``: two of its settings are read at import.
    """
    # No usage reports: nothing leaves the machine but the cluster's own traffic.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not address:
        # A single-node cluster: otherwise Ray swaps the 127.0.0.1 below for the
        # machine's interface address.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    if address:
        ray.init(address=address)
    else:
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", help="a directory of JPEG/PNG images (or a path every node can read)")
    parser.add_argument("--model", required=True, help="an incept model file, a .onnx file or a built-in name")
    parser.add_argument("--batch", type=int, default=8, help="images per run")
    parser.add_argument("--actors", type=int, default=2, help="actors (sessions) in the pool")
    parser.add_argument("--threads", type=int, default=1, help="threads per session")
    parser.add_argument("--cpus-per-actor", type=float, help="CPUs each actor reserves (default: --threads)")
    parser.add_argument("--top", type=int, default=1, help="classes per image")
    parser.add_argument("--preset", help="preprocessing of a built-in model to use")
    parser.add_argument("--engine", choices=["incept", "onnxruntime"], default="incept")
    parser.add_argument("--address", help="an existing Ray cluster (default: a local one on 127.0.0.1)")
    parser.add_argument("--cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--output", help="write the results as Parquet to this directory")
    args = parser.parse_args()

    init_ray(args.address, args.cpus)
    import ray

    dataset = classify_directory(
        args.images, args.model, args.batch, args.actors, args.threads, args.top, args.preset, args.engine,
        args.cpus_per_actor,
    )
    start = time.perf_counter()
    if args.output:
        dataset.write_parquet(args.output)
        count = ray.data.read_parquet(args.output).count()
    else:
        count = 0
        for row in dataset.iter_rows():
            count += 1
            if "label" in row:
                print(f"{row['path']}: {row['label'][0]} ({100 * float(row['probability'][0]):.3f}%)")
    seconds = time.perf_counter() - start
    print(f"{count} images in {seconds:.2f} s: {count / seconds:.1f} images/s "
          f"({args.engine}, {args.actors} actors x {args.threads} thread(s), batch {args.batch})")
    ray.shutdown()


if __name__ == "__main__":
    main()
