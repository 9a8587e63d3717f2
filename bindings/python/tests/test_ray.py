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
