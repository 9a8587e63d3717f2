#!/usr/bin/env python3
"""Write the small ONNX fixtures of tests/onnx_import.rs into tests/fixtures/.

Each model is built with the `onnx` helper API and random weights (numpy, fixed
seeds), and for the runnable ones ONNX Runtime's output is saved next to it:

    {name}.onnx          the model (opset 17)
    {name}.input.npy     float32 [1, C, H, W] input, N(0, 1)
    {name}.ort.npy       float32 ONNX Runtime output on that input

Models:

    inception_module     stem conv + BatchNorm + Relu; four branches (1x1; 1x1 -> 3x3;
                         1x1 -> Pad (asymmetric) -> 1x7 -> 7x1 with asymmetric pads;
                         avgpool count_include_pad=0 -> 1x1); concat; a nested concat
                         of 1x3 | 3x1; Dropout; GlobalAveragePool, Flatten, Gemm, Softmax
    resnet_block         Inception-ResNet blocks: Add(x, Mul(conv, 0.17)) + Relu,
                         Add(Mul(conv, 0.1), x) + Relu, a final Add(conv, x) without
                         Relu; Identity; GlobalAveragePool, Reshape, MatMul + Add
    same_pool_lrn        SAME_UPPER stride-2 4x4 conv, LRN, ceil_mode maxpool and
                         ceil_mode avgpool count_include_pad=1 (asymmetric pads), Pad folded into an avgpool, SAME_LOWER
                         stride-2 conv, Flatten of a 2x2 map, Gemm transB=0
    conv_relu6           Conv -> Clip(0, 6) (ReLU6): imported as a clip step
    unsupported_hardswish Conv -> HardSwish: an operator the engine does not implement
    unsupported_group    a grouped Conv (group=2)

Requires numpy, onnx and onnxruntime only. Usage: python3 scripts/make_onnx_fixtures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
OPSET = 17


class Net:
    """Accumulates nodes and initializers; helpers return output names."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.n = 0

    def _name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_{self.n}"

    def init(self, name: str, a: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(a, dtype=a.dtype), name))
        return name

    def node(self, op: str, inputs: list, name: str, n_out: int = 1, **attrs) -> str:
        outs = [f"{name}_out{i}" if i else f"{name}_out" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0]

    def conv(self, x, cin, cout, k, name, bias=True, **attrs):
        kh, kw = (k, k) if isinstance(k, int) else k
        std = np.sqrt(2.0 / (cin * kh * kw))
        w = self.init(f"{name}.weight", (self.rng.standard_normal((cout, cin, kh, kw)) * std).astype(np.float32))
        inputs = [x, w]
        if bias:
            inputs.append(self.init(f"{name}.bias", (0.1 * self.rng.standard_normal(cout)).astype(np.float32)))
        return self.node("Conv", inputs, name, **attrs)

    def bn(self, x, c, name, eps=1e-3):
        g = self.rng.uniform(0.6, 1.4, c).astype(np.float32)
        b = self.rng.uniform(-0.2, 0.2, c).astype(np.float32)
        m = self.rng.uniform(-0.2, 0.2, c).astype(np.float32)
        v = self.rng.uniform(0.5, 1.5, c).astype(np.float32)
        ins = [x] + [self.init(f"{name}.{s}", a) for s, a in zip(["scale", "B", "mean", "var"], [g, b, m, v])]
        return self.node("BatchNormalization", ins, name, epsilon=eps)

    def relu(self, x, name=None):
        return self.node("Relu", [x], name or self._name("relu"))

    def conv_bn_relu(self, x, cin, cout, k, name, **attrs):
        y = self.conv(x, cin, cout, k, f"{name}/conv", bias=False, **attrs)
        return self.relu(self.bn(y, cout, f"{name}/bn"), f"{name}/relu")

    def model(self, name: str, input_shape: list, output: str, output_shape: list) -> onnx.ModelProto:
        g = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape)],
            self.inits,
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="make_onnx_fixtures")
        m.ir_version = 8  # readable by any ONNX Runtime of the last few years
        onnx.checker.check_model(m)
        return m


def inception_module() -> tuple[onnx.ModelProto, list]:
    n = Net(1)
    s = n.conv("input", 3, 16, 3, "stem/conv", bias=False, pads=[1, 1, 1, 1])
    s = n.relu(n.bn(s, 16, "stem/bn"), "stem/relu")
    b1 = n.relu(n.conv(s, 16, 8, 1, "branch1x1"))
    b2 = n.relu(n.conv(s, 16, 8, 1, "branch3x3_1"))
    b2 = n.relu(n.conv(b2, 8, 12, 3, "branch3x3_2", pads=[1, 1, 1, 1]))
    b3 = n.relu(n.conv(s, 16, 8, 1, "branch7x7_1"))
    pads = n.init("branch7x7_pad.pads", np.array([0, 0, 0, 2, 0, 0, 0, 4], dtype=np.int64))
    b3 = n.node("Pad", [b3, pads], "branch7x7_pad")  # left 2, right 4 for the 1x7
    b3 = n.relu(n.conv(b3, 8, 8, (1, 7), "branch7x7_2"))
    b3 = n.relu(n.conv(b3, 8, 8, (7, 1), "branch7x7_3", pads=[2, 0, 4, 0]))
    b4 = n.node("AveragePool", [s], "branch_pool/pool", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0)
    b4 = n.relu(n.conv(b4, 16, 8, 1, "branch_pool"))
    m1 = n.node("Concat", [b1, b2, b3, b4], "mixed_1", axis=1)  # 36 channels
    c1 = n.relu(n.conv(m1, 36, 8, 1, "mixed_2.branch1x1"))
    t = n.relu(n.conv(m1, 36, 8, 1, "mixed_2.branch3x3_1"))
    u1 = n.relu(n.conv(t, 8, 6, (1, 3), "mixed_2.branch3x3_2a", pads=[0, 1, 0, 1]))
    u2 = n.relu(n.conv(t, 8, 6, (3, 1), "mixed_2.branch3x3_2b", pads=[1, 0, 1, 0]))
    inner = n.node("Concat", [u1, u2], "mixed_2.inner", axis=1)
    m2 = n.node("Concat", [c1, inner], "mixed_2", axis=-3)  # 20 channels
    m2 = n.node("Dropout", [m2], "dropout")
    p = n.node("GlobalAveragePool", [m2], "avgpool")
    f = n.node("Flatten", [p], "flatten", axis=1)
    w = n.init("fc.weight", (n.rng.standard_normal((10, 20)) * 0.5).astype(np.float32))
    b = n.init("fc.bias", (0.1 * n.rng.standard_normal(10)).astype(np.float32))
    y = n.node("Gemm", [f, w, b], "fc", transB=1)
    y = n.node("Softmax", [y], "softmax", axis=1)
    return n.model("inception_module", [1, 3, 20, 20], y, [1, 10]), [1, 3, 20, 20]


def resnet_block() -> tuple[onnx.ModelProto, list]:
    n = Net(2)
    x = n.conv_bn_relu("input", 3, 32, 3, "stem", pads=[1, 1, 1, 1])
    # Block35-like, scale 0.17, Add(x, Mul(conv, c)) then Relu.
    a0 = n.conv_bn_relu(x, 32, 8, 1, "block35.branch0")
    a1 = n.conv_bn_relu(x, 32, 8, 1, "block35.branch1.0")
    a1 = n.conv_bn_relu(a1, 8, 8, 3, "block35.branch1.1", pads=[1, 1, 1, 1])
    a2 = n.conv_bn_relu(x, 32, 8, 1, "block35.branch2.0")
    a2 = n.conv_bn_relu(a2, 8, 12, 3, "block35.branch2.1", pads=[1, 1, 1, 1])
    a2 = n.conv_bn_relu(a2, 12, 16, 3, "block35.branch2.2", pads=[1, 1, 1, 1])
    cat = n.node("Concat", [a0, a1, a2], "block35.concat", axis=1)
    up = n.conv(cat, 32, 32, 1, "block35.conv2d")
    c = n.init("block35.scale", np.array(0.17, dtype=np.float32))
    x = n.relu(n.node("Add", [x, n.node("Mul", [up, c], "block35.mul")], "block35.add"), "block35.relu")
    # Block17-like, scale 0.1 as a Constant node, Add(Mul(conv, c), x) then Relu.
    b0 = n.conv_bn_relu(x, 32, 16, 1, "block17.branch0")
    b1 = n.conv_bn_relu(x, 32, 8, 1, "block17.branch1.0")
    b1 = n.conv_bn_relu(b1, 8, 8, (1, 7), "block17.branch1.1", pads=[0, 3, 0, 3])
    b1 = n.conv_bn_relu(b1, 8, 16, (7, 1), "block17.branch1.2", pads=[3, 0, 3, 0])
    cat = n.node("Concat", [b0, b1], "block17.concat", axis=1)
    up = n.conv(cat, 32, 32, 1, "block17.conv2d")
    c = n.node("Constant", [], "block17.scale", value=numpy_helper.from_array(np.array([0.1], dtype=np.float32)))
    x = n.relu(n.node("Add", [n.node("Mul", [c, up], "block17.mul"), x], "block17.add"), "block17.relu")
    # Block8-like without Relu, scale 1: Add(conv, x).
    d0 = n.conv_bn_relu(x, 32, 16, 1, "block8.branch0")
    d1 = n.conv_bn_relu(x, 32, 16, (3, 1), "block8.branch1", pads=[1, 0, 1, 0])
    cat = n.node("Concat", [d0, d1], "block8.concat", axis=1)
    up = n.conv(cat, 32, 32, 1, "block8.conv2d")
    x = n.node("Add", [up, x], "block8.add")
    x = n.node("Identity", [x], "identity")
    p = n.node("GlobalAveragePool", [x], "avgpool")
    shape = n.init("reshape.shape", np.array([1, -1], dtype=np.int64))
    f = n.node("Reshape", [p, shape], "reshape")
    w = n.init("classif.matmul_w", (n.rng.standard_normal((32, 10)) * 0.3).astype(np.float32))
    b = n.init("classif.bias", (0.1 * n.rng.standard_normal(10)).astype(np.float32))
    y = n.node("Add", [n.node("MatMul", [f, w], "classif.matmul"), b], "classif.add")
    return n.model("resnet_block", [1, 3, 17, 17], y, [1, 10]), [1, 3, 17, 17]


def same_pool_lrn() -> tuple[onnx.ModelProto, list]:
    n = Net(3)
    # 25x25, 4x4 stride 2 SAME_UPPER: 13x13, padding 1 above/left and 2 below/right.
    x = n.relu(n.conv("input", 3, 16, 4, "conv1", strides=[2, 2], auto_pad="SAME_UPPER"))
    x = n.node("LRN", [x], "lrn", size=5, alpha=0.5, beta=0.75, bias=1.0)
    # 13 -> 7 in ceil mode (6 in floor mode), padding above/left only. (Windows that
    # would start in the padding are avoided: ONNX shape inference keeps them, ONNX
    # Runtime's kernels and PyTorch drop them.)
    x = n.node("MaxPool", [x], "pool1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 0], ceil_mode=1)
    # 7 -> 4 in ceil mode, padding counted; the last window hangs over the bottom/right edge.
    x = n.node(
        "AveragePool", [x], "pool2", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 0],
        ceil_mode=1, count_include_pad=1,
    )
    pads = n.init("pad3.pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64))
    x = n.node("Pad", [x, pads], "pad3", mode="constant")
    x = n.node("AveragePool", [x], "pool3", kernel_shape=[3, 3], count_include_pad=1)  # 4 -> 4
    # 4x4, 3x3 stride 2 SAME_LOWER: 2x2, padding 1 above/left, 0 below/right.
    x = n.relu(n.conv(x, 16, 24, 3, "conv2", strides=[2, 2], auto_pad="SAME_LOWER"))
    f = n.node("Flatten", [x], "flatten")  # 24 x 2 x 2 = 96 features
    w = n.init("fc.w_in_out", (n.rng.standard_normal((96, 10)) * 0.2).astype(np.float32))
    b = n.init("fc.bias", (0.1 * n.rng.standard_normal(10)).astype(np.float32))
    y = n.node("Gemm", [f, w, b], "fc", transB=0)
    return n.model("same_pool_lrn", [1, 3, 25, 25], y, [1, 10]), [1, 3, 25, 25]


def conv_relu6() -> onnx.ModelProto:
    n = Net(4)
    x = n.conv("input", 3, 8, 3, "stem/conv")
    lo = n.init("relu6.min", np.array(0.0, dtype=np.float32))
    hi = n.init("relu6.max", np.array(6.0, dtype=np.float32))
    x = n.node("Clip", [x, lo, hi], "stem/relu6")
    y = n.node("GlobalAveragePool", [x], "avgpool")
    return n.model("conv_relu6", [1, 3, 8, 8], y, [1, 8, 1, 1])


def unsupported_hardswish() -> onnx.ModelProto:
    n = Net(6)
    x = n.conv("input", 3, 8, 3, "stem/conv")
    x = n.node("HardSwish", [x], "stem/hardswish")
    y = n.node("GlobalAveragePool", [x], "avgpool")
    return n.model("unsupported_hardswish", [1, 3, 8, 8], y, [1, 8, 1, 1])


def unsupported_group() -> onnx.ModelProto:
    n = Net(5)
    x = n.relu(n.conv("input", 4, 8, 1, "pw_conv"))
    w = n.init("dw_conv.weight", n.rng.standard_normal((8, 4, 3, 3)).astype(np.float32))
    x = n.node("Conv", [x, w], "dw_conv", group=2, pads=[1, 1, 1, 1])
    y = n.node("GlobalAveragePool", [x], "avgpool")
    return n.model("unsupported_group", [1, 4, 8, 8], y, [1, 8, 1, 1])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for i, build in enumerate([inception_module, resnet_block, same_pool_lrn]):
        model, shape = build()
        name = model.graph.name
        onnx.save(model, OUT / f"{name}.onnx")
        x = np.random.default_rng(100 + i).standard_normal(shape).astype(np.float32)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        (y,) = sess.run(None, {"input": x})
        np.save(OUT / f"{name}.input.npy", x)
        np.save(OUT / f"{name}.ort.npy", y.astype(np.float32))
        print(f"{name}: output {list(y.shape)}, max |y| {np.abs(y).max():.3g}")
    for build in [conv_relu6, unsupported_group, unsupported_hardswish]:
        model = build()
        onnx.save(model, OUT / f"{model.graph.name}.onnx")
        print(f"{model.graph.name}: written")


if __name__ == "__main__":
    main()
