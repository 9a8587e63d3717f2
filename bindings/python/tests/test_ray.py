"""examples/ray on a local Ray instance bound to loopback: every image classified once,
each result identical to the single-process API's.

Needs ray[data] and Pillow; skipped without them unless INCEPT_REQUIRE_RAY=1 (CI).
"""

import importlib.util
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import incept
from conftest import REPO, write_pngs

# No usage reports, and a single-node cluster: without RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
# Ray replaces the 127.0.0.1 it is given by the machine's interface address (read when
# ray is imported). The test cluster talks to nothing but 127.0.0.1.
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

if os.environ.get("INCEPT_REQUIRE_RAY") != "1":
    pytest.importorskip("ray")
    pytest.importorskip("PIL")

import ray  # noqa: E402

IMAGES = 300
# Generous on 2 loaded cores: Ray's start and actor start-up are most of it.
BOUND_SECONDS = 300


def load_example():
    path = REPO / "examples/ray/classify_images.py"
    spec = importlib.util.spec_from_file_location("classify_images", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    # The actors get the module's classes by value: workers need not find the file.
    ray.cloudpickle.register_pickle_by_value(module)
    return module


@pytest.fixture(scope="module")
def local_ray():
    context = ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2,
                       object_store_memory=256 << 20, log_to_driver=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield context
    finally:
        ray.shutdown()


def test_the_ray_cluster_is_on_loopback_only(local_ray):
    assert local_ray.address_info["node_ip_address"] == "127.0.0.1"
    for node in ray.nodes():
        assert node["NodeManagerAddress"] == "127.0.0.1", node
    gcs = local_ray.address_info["gcs_address"]
    assert gcs.startswith("127.0.0.1:"), gcs


def test_the_pipeline_classifies_every_image_once_like_the_api(local_ray, nin_file, tmp_path):
    paths = write_pngs(tmp_path / "images", IMAGES, seed=7)
    example = load_example()
    # Two actors of half a CPU each: the other CPU decodes (read tasks).
    dataset = example.classify_directory(str(tmp_path / "images"), str(nin_file), batch_size=8, actors=2,
                                         top=3, cpus_per_actor=0.5)
    result = {}
    start = time.perf_counter()
    runner = threading.Thread(target=lambda: result.update(rows=dataset.take_all()), daemon=True)
    runner.start()
    runner.join(BOUND_SECONDS)
    seconds = time.perf_counter() - start
    assert not runner.is_alive(), f"the pipeline did not finish in {BOUND_SECONDS} s"
    rows = result["rows"]
    print(f"{len(rows)} images in {seconds:.1f} s through Ray (2 actors)")

    seen = [Path(r["path"]).name for r in rows]
    assert len(seen) == len(set(seen)) == IMAGES, "an image was lost or duplicated"
    assert set(seen) == {Path(p).name for p in paths}

    expected = {Path(r.path).name: r for r in incept.classify(paths, incept.Model(nin_file), top=3)}
    for row in rows:
        want = expected[Path(row["path"]).name]
        assert list(row["class"]) == [i for i, _, _ in want.top], row["path"]
        assert list(row["label"]) == [label for _, label, _ in want.top]
        # Same pixels (PNG), same preprocessing, same kernels: bit-identical probabilities.
        assert np.array_equal(row["probability"], np.array([p for _, _, p in want.top], np.float32))


EXPORTS = REPO / "tests/fixtures/exports"
# A torch export of a fixed batch of 1 (32x32, nin_cifar10's input size), and a
# tf2onnx export with a symbolic batch.
FIXED_BATCH_EXPORT = EXPORTS / "torch_googlenet_small.onnx"
SYMBOLIC_BATCH_EXPORT = EXPORTS / "keras_inception_v3_small_nchw.onnx"


def test_chunks_cover_the_input_in_order_and_pad_only_an_exact_batch():
    example = load_example()
    x = np.arange(7 * 2, dtype=np.float32).reshape(7, 2)
    for exact, sizes in [(False, [3, 3, 1]), (True, [3, 3, 3])]:
        seen = []

        def run(chunk):
            seen.append(len(chunk))
            return chunk * 2

        y = example.run_in_chunks(run, x, 3, exact=exact)
        assert seen == sizes
        assert np.array_equal(y, x * 2)


class RecordingSession:
    """An ONNX Runtime session that records the batch of every run."""

    def __init__(self, session):
        self.session, self.batches = session, []

    def run(self, outputs, feeds):
        self.batches += [len(x) for x in feeds.values()]
        return self.session.run(outputs, feeds)


@pytest.mark.parametrize("export, runs", [(FIXED_BATCH_EXPORT, [1] * 5), (SYMBOLIC_BATCH_EXPORT, [5])])
def test_the_onnxruntime_session_runs_a_fixed_batch_export_in_chunks_and_a_symbolic_one_at_once(export, runs):
    pytest.importorskip("onnxruntime")
    example = load_example()
    ort = example.OrtSession(str(export))
    ort.session = RecordingSession(ort.session)
    model = incept.Model(str(export))
    x = np.random.default_rng(3).standard_normal((5, *model.input_shape), dtype=np.float32)
    y = ort.run(x)
    assert ort.session.batches == runs
    # The rows in order, each image's own: as incept computes them, to float32 rounding.
    want = model.session(batch=5).run(x)
    assert y.shape == want.shape
    assert np.abs(y - want).max() <= 1e-4 * np.abs(want).max()


def test_the_onnxruntime_pipeline_feeds_a_batch_1_export_batches_of_8(local_ray, tmp_path):
    pytest.importorskip("onnxruntime")
    paths = write_pngs(tmp_path / "images", 20, seed=11)
    example = load_example()
    dataset = example.classify_directory(str(tmp_path / "images"), str(FIXED_BATCH_EXPORT), batch_size=8, actors=1,
                                         top=10, engine="onnxruntime", cpus_per_actor=0.5)
    rows = dataset.take_all()
    assert sorted(Path(r["path"]).name for r in rows) == sorted(Path(p).name for p in paths)

    # Every class's probability (top=10 of 10 classes) as incept's, to float32 rounding.
    expected = {Path(r.path).name: r for r in incept.classify(paths, incept.Model(str(FIXED_BATCH_EXPORT)), top=10)}
    for row in rows:
        got = np.zeros(10, np.float32)
        got[row["class"]] = row["probability"]
        want = np.zeros(10, np.float32)
        for i, _, p in expected[Path(row["path"]).name].top:
            want[i] = p
        assert np.abs(got - want).max() <= 1e-5, row["path"]
