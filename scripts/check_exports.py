#!/usr/bin/env python3
"""Full-size real exports through incept against a float64 evaluation, next to ONNX
Runtime: torchvision googlenet / inception_v3 (dynamo exporter), Keras InceptionV3 /
InceptionResNetV2 via tf2onnx (NHWC and NCHW input) and the model zoo's Inception
v1/v2 graphs with realised weights.

Each model is made by scripts/make_export_fixtures.py --full (same seeds, so the
float64 twin has the same weights), then run four ways: `incept run MODEL.onnx`,
`incept convert` + `incept run MODEL.incept`, the C API through ctypes
(libincept.so) and ONNX Runtime. The float64 reference: the PyTorch module in
double, the Keras model rebuilt with floatx float64 and the same weights, and for
the zoo graphs onnx's ReferenceEvaluator on the graph with every float tensor cast
to float64. Prints per model: max |y - ref| / max |ref| for each path, and
incept / ORT (below 1.5: the issue's bar).

Two environments (see make_export_fixtures.py):
    /work/venv-export/bin/python scripts/check_exports.py --sources torch zoo --dir /tmp/exports
    /work/venv-tf/bin/python scripts/check_exports.py --sources keras --dir /tmp/exports
Never part of CI.
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_export_fixtures as mk  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def rel_err(out, ref) -> float:
    import numpy as np

    return float(np.abs(out.astype(np.float64) - ref).max() / np.abs(ref).max())


def incept_paths(incept: str, lib: str, onnx_path: Path, x):
    """incept's output by `incept run`, by `incept convert` + run, by the C API."""
    import numpy as np

    outs = {}
    with tempfile.TemporaryDirectory() as tmp:
        inp, out, model = Path(tmp) / "x.npy", Path(tmp) / "y.npy", Path(tmp) / "m.incept"
        np.save(inp, x)
        subprocess.run([incept, "run", str(onnx_path), "--input", str(inp), "--output", str(out)], check=True)
        outs["run"] = np.load(out)
        subprocess.run([incept, "convert", str(onnx_path), "-o", str(model)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([incept, "run", str(model), "--input", str(inp), "--output", str(out)], check=True)
        outs["convert"] = np.load(out)
        outs["capi"] = capi_run(lib, onnx_path, x)
    return outs


def capi_run(lib_path: str, onnx_path: Path, x):
    import numpy as np

    lib = ctypes.CDLL(lib_path)
    vp, sz = ctypes.c_void_p, ctypes.c_size_t
    lib.incept_last_error.restype = ctypes.c_char_p
    m, s = vp(), vp()

    def ok(rc):
        if rc != 0:
            raise RuntimeError(lib.incept_last_error().decode())

    ok(lib.incept_model_open(str(onnx_path).encode(), ctypes.byref(m)))
    ok(lib.incept_session_create(m, 1, 1, ctypes.byref(s)))
    dims, layout, n = (sz * 4)(), ctypes.c_int(), sz()
    ok(lib.incept_session_input_shape(s, dims))
    ok(lib.incept_session_input_layout(s, ctypes.byref(layout)))
    assert list(dims) == list(x.shape), (list(dims), x.shape, layout.value)
    ok(lib.incept_session_output_len(s, ctypes.byref(n)))
    xs = np.ascontiguousarray(x, np.float32)
    y = np.zeros(n.value, np.float32)
    ok(lib.incept_session_run(s, xs.ctypes.data_as(vp), sz(xs.size), y.ctypes.data_as(vp), sz(y.size)))
    ok(lib.incept_session_close(s))
    ok(lib.incept_model_close(m))
    return y.reshape(1, -1)


def references_torch():
    import numpy as np
    import torch

    for name, model, hw in mk.torch_models(True):
        mk.randomize_batchnorm_torch(model)
        model.eval()
        x = np.random.default_rng(mk.SEED).standard_normal((1, 3, hw, hw)).astype(np.float32)
        onnx_bytes = mk.export_torch(model, hw)
        with torch.no_grad():
            ref = model.double()(torch.from_numpy(x).double()).numpy()
        yield name, onnx_bytes, x, ref


def references_keras():
    import keras
    import numpy as np

    for name, model, hw in mk.keras_models(True):
        mk.randomize_batchnorm_keras(model)
        weights = model.get_weights()
        keras.config.set_floatx("float64")
        twin = keras.models.clone_model(model)
        keras.config.set_floatx("float32")
        twin.set_weights([w.astype(np.float64) for w in weights])
        x_nhwc = np.random.default_rng(mk.SEED).standard_normal((1, hw, hw, 3)).astype(np.float32)
        ref = np.asarray(twin(x_nhwc.astype(np.float64), training=False))
        for nchw in (False, True):
            x = x_nhwc.transpose(0, 3, 1, 2).copy() if nchw else x_nhwc
            yield name + ("_nchw" if nchw else "_nhwc"), mk.export_keras(model, hw, nchw), x, ref


def references_zoo():
    import numpy as np
    import onnx
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    for name in ("inception_v1", "inception_v2"):
        m = mk.realise_zoo(name, True)
        x = np.random.default_rng(mk.SEED).standard_normal((1, 3, 224, 224)).astype(np.float32)
        d = onnx.ModelProto()
        d.CopyFrom(m)
        for i in d.graph.initializer:
            if i.data_type == onnx.TensorProto.FLOAT:
                i.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(i).astype(np.float64), i.name))
        for v in list(d.graph.input) + list(d.graph.output):
            if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
                v.type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
        ref = ReferenceEvaluator(d).run(None, {"data_0": x.astype(np.float64)})[0]
        yield f"zoo_{name}", m.SerializeToString(), x, ref


SOURCES = {"torch": references_torch, "keras": references_keras, "zoo": references_zoo}


def main() -> int:
    import numpy as np
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", nargs="+", choices=SOURCES, default=list(SOURCES))
    ap.add_argument("--dir", type=Path, required=True, help="where the full-size exports are written")
    ap.add_argument("--incept", default=str(ROOT / "target/release/incept"))
    ap.add_argument("--lib", default=str(ROOT / "target/release/libincept.so"))
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    print("| model | incept run | convert + run | C API | ORT | incept / ORT |")
    print("|---|---:|---:|---:|---:|---:|")
    for source in args.sources:
        for name, onnx_bytes, x, ref in SOURCES[source]():
            path = args.dir / f"{name}.onnx"
            path.write_bytes(onnx_bytes)
            sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
            theirs = rel_err(sess.run(None, {sess.get_inputs()[0].name: x})[0], ref)
            try:
                ours = {k: rel_err(v, ref) for k, v in incept_paths(args.incept, args.lib, path, x).items()}
                worst = max(ours.values())
                print(f"| {name} | {ours['run']:.2e} | {ours['convert']:.2e} | {ours['capi']:.2e} | {theirs:.2e} "
                      f"| {worst / theirs:.2f} |", flush=True)
            except (subprocess.CalledProcessError, RuntimeError, AssertionError) as e:
                print(f"| {name} | fails: {e} | | | {theirs:.2e} | |", flush=True)
            np.save(args.dir / f"{name}.input.npy", x)
    return 0


if __name__ == "__main__":
    sys.exit(main())
