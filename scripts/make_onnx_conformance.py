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
        if f != "status.tsv":  # the last recorded outcomes, compared by the test
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
    for name, m, x in own_cases():
        op = m.graph.node[-1].op_type
        y = run_ort(m, x)
        if y is None:
            sys.exit(f"{name}: ONNX Runtime cannot run it")
        stem = f"{name}.engine"
        onnx.save(m, os.path.join(OUT, f"{stem}.onnx"))
        np.save(os.path.join(OUT, f"{stem}.in.npy"), x)
        np.save(os.path.join(OUT, f"{stem}.out.npy"), np.ascontiguousarray(y, dtype=np.float64))
        ops = "+".join(n.op_type for n in m.graph.node)
        rows.append((name, "engine", op, attrs_of(m.graph.node[-1]) + f";graph={ops}", "checked", "ort"))
    with open(os.path.join(OUT, "manifest.tsv"), "w") as f:
        f.write("# case\tmode\top\tattributes\tfixture\treference\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, x)) for x in os.listdir(OUT))
    print(f"{len(rows)} cases, {total / 1024:.0f} KiB in {OUT}")


def own_cases():
    """incept's own cases of the engine operators on 4-D `[N, C, H, W]` data (most of
    onnx's cases use 3-D data, refused at the input), with ONNX Runtime's output as
    the reference: `(name, model, input)`."""
    from onnx import TensorProto as T

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    chan = rng.standard_normal((3, 1, 1)).astype(np.float32) + 2.0

    def model(name, opset, nodes, inits=(), batch=2, out_shape=None):
        g = helper.make_graph(
            nodes, name,
            [helper.make_tensor_value_info("x", T.FLOAT, [batch, 3, 5, 5])],
            [helper.make_tensor_value_info("y", T.FLOAT, out_shape)],
            [numpy_helper.from_array(np.asarray(v), k) for k, v in inits],
        )
        if opset <= 8:
            # IR version 3, as old exporters wrote it: every initializer is also an input.
            g.input.extend(helper.make_tensor_value_info(k, T.FLOAT if np.asarray(v).dtype == np.float32 else T.INT64,
                                                         np.asarray(v).shape) for k, v in inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 3 if opset <= 8 else 8 if opset <= 17 else 10
        return m

    N = helper.make_node
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    f32 = lambda *v: np.array(v, dtype=np.float32)  # noqa: E731
    gap = N("GlobalAveragePool", ["x"], ["p"])
    cases = [
        ("relu", 14, [N("Relu", ["x"], ["y"])], []),
        ("sigmoid", 13, [N("Sigmoid", ["x"], ["y"])], []),
        ("leakyrelu", 16, [N("LeakyRelu", ["x"], ["y"], alpha=0.1)], []),
        ("clip_min0_attr_opset6", 7, [N("Clip", ["x"], ["y"], min=0.0)], []),
        ("clip_min0_input_opset11", 11, [N("Clip", ["x", "lo"], ["y"])], [("lo", f32(0.0).reshape(()))]),
        ("clip_relu6_opset13", 13, [N("Clip", ["x", "lo", "hi"], ["y"])],
         [("lo", f32(0.0).reshape(())), ("hi", f32(6.0).reshape(()))]),
        ("clip_relu6_attr_opset6", 6, [N("Clip", ["x"], ["y"], min=0.0, max=6.0)], []),
        ("clip_max_only_opset13", 13, [N("Clip", ["x", "", "hi"], ["y"])], [("hi", f32(0.5).reshape(()))]),
        ("clip_min_greater_than_max", 13, [N("Clip", ["x", "lo", "hi"], ["y"])],
         [("lo", f32(1.0).reshape(())), ("hi", f32(-1.0).reshape(()))]),
        ("leakyrelu_default_alpha", 6, [N("LeakyRelu", ["x"], ["y"])], []),
        ("sigmoid_after_gap_opset6", 6, [gap, N("Flatten", ["p"], ["f"]), N("Sigmoid", ["f"], ["y"])], []),
        ("add_per_channel", 14, [N("Add", ["x", "c"], ["y"])], [("c", chan)]),
        ("add_scalar_first", 14, [N("Add", ["c", "x"], ["y"])], [("c", f32(0.5))]),
        ("add_residual", 14, [N("Relu", ["x"], ["r"]), N("Add", ["x", "r"], ["y"])], []),
        ("mul_per_channel", 14, [N("Mul", ["x", "c"], ["y"])], [("c", chan.reshape(1, 3, 1, 1))]),
        ("mul_scalar", 14, [N("Mul", ["x", "c"], ["y"])], [("c", f32(0.17))]),
        ("mul_scaled_residual", 14, [N("Relu", ["x"], ["r"]), N("Mul", ["r", "c"], ["s"]), N("Add", ["x", "s"], ["y"])],
         [("c", f32(0.17))]),
        ("div_per_channel", 14, [N("Div", ["x", "c"], ["y"])], [("c", chan)]),
        ("sub_per_channel", 14, [N("Sub", ["x", "c"], ["y"])], [("c", chan)]),
        ("sub_from_constant", 14, [N("Sub", ["c", "x"], ["y"])], [("c", chan)]),
        ("sub_two_maps", 14, [N("Relu", ["x"], ["r"]), N("Sub", ["x", "r"], ["y"])], []),
        ("mul_per_pixel", 14, [N("Mul", ["x", "c"], ["y"])], [("c", rng.standard_normal((5, 5)).astype(np.float32))]),
        ("sum_three", 13, [N("Relu", ["x"], ["r"]), N("Sum", ["x", "r", "x"], ["y"])], []),
        ("reducemean_hw_keepdims", 13, [N("ReduceMean", ["x"], ["y"], axes=[2, 3])], []),
        ("reducemean_hw_negative_axes_nokeep", 13, [N("ReduceMean", ["x"], ["y"], axes=[-1, -2], keepdims=0)], []),
        ("reducemean_axes_input_opset18", 18, [N("ReduceMean", ["x", "a"], ["y"], keepdims=0)], [("a", i64(2, 3))]),
        ("reducemean_channels", 13, [N("ReduceMean", ["x"], ["y"], axes=[1])], []),
        ("gap_squeeze_attr_opset11", 11, [gap, N("Squeeze", ["p"], ["y"], axes=[2, 3])], []),
        ("gap_squeeze_input_opset13", 13, [gap, N("Squeeze", ["p", "a"], ["y"])], [("a", i64(-1, -2))]),
        ("gap_flatten_unsqueeze", 13, [gap, N("Flatten", ["p"], ["f"]), N("Unsqueeze", ["f", "a"], ["y"])],
         [("a", i64(2, 3))]),
        ("gap_reshape_allowzero0", 14, [gap, N("Reshape", ["p", "s"], ["y"])], [("s", i64(0, -1))]),
        ("reshape_feature_map", 14, [N("Reshape", ["x", "s"], ["y"])], [("s", i64(0, 5, 15))]),
        ("shape_gather_concat_reshape_symbolic_batch", 13,
         [gap, N("Shape", ["p"], ["sh"]), N("Gather", ["sh", "zero"], ["b"], axis=0),
          N("Unsqueeze", ["b", "ax"], ["b1"]), N("Concat", ["b1", "minus1"], ["s"], axis=0),
          N("Reshape", ["p", "s"], ["y"])],
         [("zero", i64(0).reshape(())), ("ax", i64(0)), ("minus1", i64(-1))], "N"),
        ("softmax_opset11_after_gap", 11, [gap, N("Softmax", ["p"], ["y"], axis=1)], []),
        ("softmax_opset13_channels", 13, [N("Softmax", ["x"], ["y"], axis=1)], []),
        ("softmax_opset11_map", 11, [N("Softmax", ["x"], ["y"], axis=1)], []),
        ("identity_dropout", 12, [N("Identity", ["x"], ["i"]), N("Dropout", ["i", "ratio"], ["d"]),
                                  N("Relu", ["d"], ["y"])], [("ratio", f32(0.5).reshape(()))]),
    ]
    bn = [("g", chan.ravel() * 0.5), ("b", rng.standard_normal(3).astype(np.float32)),
          ("m", rng.standard_normal(3).astype(np.float32)), ("v", (chan.ravel() ** 2).astype(np.float32))]
    for opset in (7, 9, 15):
        extra = {"spatial": 1} if opset == 7 else {}
        cases.append((f"batchnorm_opset{opset}", opset,
                      [N("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], epsilon=1e-3, **extra)], bn))
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    cases += [
        ("pad_attr_conv_opset7", 7, [N("Pad", ["x"], ["q"], pads=[0, 0, 1, 2, 0, 0, 2, 1]), N("Conv", ["q", "w"], ["y"])],
         [("w", w)]),
        ("pad_input_conv_opset13", 13, [N("Pad", ["x", "pads"], ["q"]), N("Conv", ["q", "w"], ["y"])],
         [("w", w), ("pads", i64(0, 0, 1, 1, 0, 0, 1, 1))]),
        ("conv_same_lower_stride2", 13, [N("Conv", ["x", "w"], ["y"], auto_pad="SAME_LOWER", strides=[2, 2])],
         [("w", w)]),
        ("conv_dilated", 13, [N("Conv", ["x", "w"], ["y"], dilations=[2, 2])], [("w", w)]),
    ]
    for case in cases:
        name, opset, nodes, inits = case[:4]
        batch = case[4] if len(case) > 4 else 2
        yield f"incept_{name}", model(name, opset, nodes, inits, batch), x


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
