#!/usr/bin/env python3
"""ONNX operator conformance fixtures for incept, from the `onnx` package's own
operator test generators (`onnx.backend.test.case.node`).

    python3 -m venv /work/venv-onnx && /work/venv-onnx/bin/pip install onnx numpy
    /work/venv-onnx/bin/python scripts/make_onnx_conformance.py            # fixtures
    INCEPT_BLESS=1 cargo test --test onnx_conformance                      # status.tsv
    /work/venv-onnx/bin/python scripts/make_onnx_conformance.py --table    # docs/onnx.md

For every single-node case of an operator the importer claims, two fixtures may be
written to tests/fixtures/onnx_conformance/:

- `engine`: the first input stays the graph input (the data tensor), every other
  input is frozen as an initializer (the engine takes weights, shapes, axes as
  constants). `cargo test` runs it through `Model::open` and a session and compares
  with the generator's expected output, or checks that it is refused by node, op and
  opset (or, for inputs the engine cannot take, by the graph input).
- `fold`, for operators the importer folds: every input frozen, so the whole node
  is constant-folded at import; the folded output is compared.

Each case is `<name>.<mode>.onnx` with `<name>.<mode>.in.npy` (engine mode) and
`<name>.<mode>.out.npy`, listed in `manifest.tsv` (case, mode, op, attributes,
whether checked in, reference: the generator's output, or ONNX Runtime's where the
generator rounds its own).
Cases whose files would exceed 64 KiB are listed as `large` and not written.
"""

import argparse
import os
import sys
import warnings

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests/fixtures/onnx_conformance")
DOC = os.path.join(ROOT, "docs/onnx.md")

# Operators the importer maps onto engine steps (or metadata), or refuses by name.
ENGINE_OPS = [
    "Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat",
    "Add", "Sub", "Mul", "Div", "Sum", "LRN", "Gemm", "MatMul", "Flatten", "Reshape", "Squeeze",
    "Unsqueeze", "Softmax", "Dropout", "Identity", "Pad", "Clip", "ReduceMean",
    # Refused by name (the engine has no such step): listed so the refusal is tested.
    "Sigmoid", "LeakyRelu",
]
# Operators folded when all inputs are constants (see src/import/onnx/fold/).
FOLD_OPS = [
    "Add", "Cast", "Concat", "ConstantOfShape", "Div", "Expand", "Flatten", "Gather", "Identity", "Mul",
    "Neg", "Pow", "Range", "Reciprocal", "Reshape", "Shape", "Slice", "Sqrt", "Squeeze", "Sub",
    "Transpose", "Unsqueeze",
]
MAX_BYTES = 64 * 1024


def npy_bytes(a):
    return a.nbytes + 128


def attrs_of(node):
    out = []
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, onnx.TensorProto):
            v = "tensor"
        out.append(f"{a.name}={v}".replace(" ", ""))
    return ";".join(out) or "-"


def freeze(model, inputs, keep_first):
    """A copy of `model` with inputs (all, or all but the first) as initializers."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    names = [i.name for i in g.input]
    kept = names[:1] if keep_first else []
    for name, value in zip(names, inputs):
        if name in kept:
            continue
        g.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    keep = [i for i in g.input if i.name in kept]
    del g.input[:]
    g.input.extend(keep)
    return m


def run_ort(model, x):
    try:
        import onnxruntime as ort

        s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return s.run(None, {model.graph.input[0].name: x})[0]
    except Exception:  # noqa: BLE001 - ORT lacks the case (opset, type): keep the generator's
        return None


def generate():
    from onnx.backend.test.case import node as cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        all_cases = cases.collect_testcases(None)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    rows = []
    for case in sorted(all_cases, key=lambda c: c.name):
        if "expanded" in case.name or case.model is None or not case.data_sets:
            continue
        g = case.model.graph
        if len(g.node) != 1:
            continue
        op = g.node[0].op_type
        inputs, outputs = case.data_sets[0]
        if not outputs or len(inputs) != len(g.input):
            continue
        tensors = list(inputs) + list(outputs)
        if not all(isinstance(t, np.ndarray) and t.dtype != object for t in tensors):
            continue  # sequences, optionals, strings: no operator here takes them
        modes = []
        if op in ENGINE_OPS and inputs:
            modes.append("engine")
        if op in FOLD_OPS:
            modes.append("fold")
        for mode in modes:
            m = freeze(case.model, inputs, keep_first=(mode == "engine"))
            stem = f"{case.name}.{mode}"
            want = np.asarray(outputs[0])
            files = {f"{stem}.onnx": m.SerializeToString()}
            size = len(files[f"{stem}.onnx"]) + npy_bytes(want)
            if mode == "engine":
                size += npy_bytes(np.asarray(inputs[0]))
            if len(outputs) > 1 and mode == "fold":
                continue  # several outputs: not folded (none of FOLD_OPS has them)
            attrs = attrs_of(g.node[0])
            if size > MAX_BYTES:
                rows.append((case.name, mode, op, attrs, "large", "-"))
                continue
            with open(os.path.join(OUT, f"{stem}.onnx"), "wb") as f:
                f.write(files[f"{stem}.onnx"])
            if mode == "engine":
                np.save(os.path.join(OUT, f"{stem}.in.npy"), np.ascontiguousarray(inputs[0]))
            reference = "onnx"
            if mode == "engine" and want.dtype == np.float32:
                # A few generators round their expected output (e.g. to 4 decimals);
                # where ONNX Runtime agrees with them within the case's own rtol but
                # not within ours, its exact float32 output is the reference.
                ort_y = run_ort(m, inputs[0])
                scale = max(float(np.abs(want).max(initial=0.0)), 1e-30)
                if ort_y is not None and np.allclose(ort_y, want, rtol=case.rtol, atol=case.atol) and \
                        float(np.abs(ort_y - want).max(initial=0.0)) / scale > 1e-6:
                    want, reference = ort_y, "ort"
            if want.dtype == bool:
                want = want.astype(np.int64)
            np.save(os.path.join(OUT, f"{stem}.out.npy"), np.ascontiguousarray(want, dtype=np.float64))
            rows.append((case.name, mode, op, attrs, "checked", reference))
    with open(os.path.join(OUT, "manifest.tsv"), "w") as f:
        f.write("# case\tmode\top\tattributes\tfixture\treference\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, x)) for x in os.listdir(OUT))
    print(f"{len(rows)} cases, {total / 1024:.0f} KiB in {OUT}")


def table():
    manifest = [l.rstrip("\n").split("\t") for l in open(os.path.join(OUT, "manifest.tsv")) if not l.startswith("#")]
    status = {}
    for l in open(os.path.join(OUT, "status.tsv")):
        if l.startswith("#"):
            continue
        case, mode, result = l.rstrip("\n").split("\t")[:3]
        status[(case, mode)] = result
    per_op = {}
    for case, mode, op, attrs, fixture, _ in manifest:
        result = "large" if fixture == "large" else status.get((case, mode), "missing")
        d = per_op.setdefault((op, mode), {"pass": 0, "refused": 0, "refused-input": 0, "large": 0, "missing": 0,
                                          "attrs": set()})
        d[result] += 1
        for a in attrs.split(";"):
            if a != "-":
                d["attrs"].add(a.split("=")[0])
    lines = [
        "| operator | mode | pass | refused (node, op, opset) | refused (input not NCHW float) | not checked in (size) | attributes covered |",
        "|---|---|---|---|---|---|---|",
    ]
    for (op, mode), d in sorted(per_op.items()):
        attrs = ", ".join(f"`{a}`" for a in sorted(d["attrs"])) or "-"
        lines.append(f"| {op} | {mode} | {d['pass']} | {d['refused']} | {d['refused-input']} | {d['large']} | {attrs} |")
    text = open(DOC).read()
    begin, end = "<!-- conformance table: begin -->", "<!-- conformance table: end -->"
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    open(DOC, "w").write(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail)
    print("\n".join(lines))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", action="store_true", help="write the coverage table of docs/onnx.md from status.tsv")
    args = p.parse_args()
    table() if args.table else generate()
