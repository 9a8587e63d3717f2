#!/usr/bin/env python3
"""Real-world ONNX exports of Inception networks, with random weights and non-trivial
BatchNorm statistics, as users have them: PyTorch's dynamo exporter, Keras through
tf2onnx (NHWC input, and NCHW with --inputs-as-nchw), and the ONNX model zoo's
Inception v1/v2 graphs (Caffe2 exports, opset 9, IR 3).

Small versions (blocks of the same builders at reduced width and resolution) are the
checked-in fixtures of tests/onnx_exports.rs: each NAME.onnx with NAME.input.npy (in
the graph's own input shape) and NAME.ort.npy (ONNX Runtime's output). Full-size
versions (`--full`) are what scripts/check_exports.py compares.

The zoo graphs come from the `onnx` wheel's backend test data
(onnx/backend/test/data/light/light_inception_v{1,2}.onnx), whose weights are
`ConstantOfShape` nodes: --full realises every one with random values; the fixtures
realise those up to 16384 values and make the larger ones `ConstantOfShape(1) * rows`,
rows random per output channel and tap (the fixtures stay small; the graph and its
dialect are the zoo's, with a Mul of constants the importer folds).

Two environments (TensorFlow and PyTorch disagree on numpy/protobuf pins):
    /work/venv-export/bin/python scripts/make_export_fixtures.py --sources torch zoo
    /work/venv-tf/bin/python scripts/make_export_fixtures.py --sources keras
torch: torch torchvision onnx onnxscript onnxruntime numpy; keras: tensorflow-cpu keras
tf2onnx onnx onnxruntime numpy. Never part of CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "exports"
SEED = 20261206


def save_with_ort(out: Path, name: str, model_bytes: bytes, x) -> None:
    """Writes NAME.onnx, NAME.input.npy and ONNX Runtime's NAME.ort.npy."""
    import numpy as np
    import onnxruntime as ort

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.onnx").write_bytes(model_bytes)
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.save(out / f"{name}.input.npy", x)
    np.save(out / f"{name}.ort.npy", y.astype(np.float32))
    print(f"{name}: {len(model_bytes) / 1e6:.2f} MB, input {list(x.shape)}, output {list(y.shape)}")


# ---------------------------------------------------------------- PyTorch (dynamo)

def torch_models(full: bool):
    """(name, module, input H=W) pairs: torchvision's networks, or small nets of their blocks."""
    import torch
    from torch import nn
    from torchvision.models import googlenet, inception_v3
    from torchvision.models.googlenet import BasicConv2d, Inception
    from torchvision.models.inception import InceptionA, InceptionC

    torch.manual_seed(SEED)
    if full:
        return [
            ("torch_googlenet", googlenet(weights=None, aux_logits=False, init_weights=True), 224),
            ("torch_inception_v3", inception_v3(weights=None, aux_logits=False, init_weights=True), 299),
        ]

    class SmallGoogLeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = BasicConv2d(3, 16, kernel_size=7, stride=2, padding=3)
            self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.block = Inception(16, 8, 8, 16, 4, 8, 8)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.dropout = nn.Dropout(0.2)
            self.fc = nn.Linear(40, 10)

        def forward(self, x):
            x = self.block(self.pool(self.stem(x)))
            return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))

    class SmallInceptionV3(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = BasicConv2d(3, 16, kernel_size=3, stride=2)
            self.a = InceptionA(16, pool_features=8)
            self.c = InceptionC(64 + 64 + 96 + 8, channels_7x7=8)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(768, 10)

        def forward(self, x):
            x = self.c(self.a(self.stem(x)))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return [("torch_googlenet_small", SmallGoogLeNet(), 32), ("torch_inception_v3_small", SmallInceptionV3(), 19)]


def randomize_batchnorm_torch(model) -> None:
    import torch

    g = torch.Generator().manual_seed(SEED + 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(0.2 * torch.randn(n, generator=g))
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            m.weight.data.copy_(1 + 0.2 * torch.randn(n, generator=g))
            m.bias.data.copy_(0.2 * torch.randn(n, generator=g))


def export_torch(model, hw: int) -> bytes:
    import io

    import torch

    x = torch.randn(1, 3, hw, hw)
    program = torch.onnx.export(model.eval(), (x,), dynamo=True, input_names=["input"], output_names=["logits"])
    program.optimize()
    buf = io.BytesIO()
    import onnx

    onnx.save_model(program.model_proto, buf)
    return buf.getvalue()


def make_torch(out: Path, full: bool) -> None:
    import numpy as np

    for name, model, hw in torch_models(full):
        randomize_batchnorm_torch(model)
        x = np.random.default_rng(SEED).standard_normal((1, 3, hw, hw)).astype(np.float32)
        save_with_ort(out, name, export_torch(model, hw), x)


# ---------------------------------------------------------------- Keras (tf2onnx)

def keras_models(full: bool):
    """(name, model, input H=W): keras.applications' networks, or small nets of their blocks."""
    import keras
    from keras.src.applications import inception_resnet_v2 as irv2
    from keras.src.applications import inception_v3 as iv3

    keras.utils.set_random_seed(SEED)
    if full:
        return [
            ("keras_inception_v3", keras.applications.InceptionV3(weights=None), 299),
            ("keras_inception_resnet_v2", keras.applications.InceptionResNetV2(weights=None), 299),
        ]
    # Inception v3's stem and first mixed block (average pool 'same': padding not counted).
    inp = keras.Input((35, 35, 3))
    x = iv3.conv2d_bn(inp, 16, 3, 3, strides=(2, 2), padding="valid")
    b1 = iv3.conv2d_bn(x, 16, 1, 1)
    b5 = iv3.conv2d_bn(iv3.conv2d_bn(x, 12, 1, 1), 16, 5, 5)
    b3 = iv3.conv2d_bn(iv3.conv2d_bn(iv3.conv2d_bn(x, 16, 1, 1), 24, 3, 3), 24, 3, 3)
    bp = iv3.conv2d_bn(keras.layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x), 8, 1, 1)
    x = keras.layers.concatenate([b1, b5, b3, bp], axis=3)
    x = keras.layers.GlobalAveragePooling2D()(x)
    v3 = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x), name="small_v3")
    # Inception-ResNet-v2's stem convolution and a block35 (scaled residual).
    inp = keras.Input((17, 17, 3))
    x = irv2.conv2d_bn(inp, 32, 3, strides=2, padding="valid")
    x = irv2.conv2d_bn(x, 320, 1)
    x = irv2.inception_resnet_block(x, scale=0.17, block_type="block35", block_idx=1)
    x = keras.layers.GlobalAveragePooling2D()(x)
    ir = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x), name="small_irv2")
    return [("keras_inception_v3_small", v3, 35), ("keras_inception_resnet_v2_small", ir, 17)]


def randomize_batchnorm_keras(model) -> None:
    import keras
    import numpy as np

    rng = np.random.default_rng(SEED + 1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            new = []
            for w in layer.weights:
                n = w.shape[0]
                kind = w.path.rsplit("/", 1)[-1]
                if kind == "moving_variance":
                    new.append(0.5 + rng.random(n))
                elif kind == "gamma":
                    new.append(1 + 0.2 * rng.standard_normal(n))
                else:  # beta, moving_mean
                    new.append(0.2 * rng.standard_normal(n))
            layer.set_weights([v.astype(np.float32) for v in new])


def export_keras(model, hw: int, nchw: bool) -> bytes:
    import tensorflow as tf
    import tf2onnx

    f = tf.function(lambda t: model(t, training=False))
    spec = [tf.TensorSpec([None, hw, hw, 3], tf.float32, name="input")]
    proto, _ = tf2onnx.convert.from_function(f, input_signature=spec, opset=13,
                                             inputs_as_nchw=["input"] if nchw else None)
    return proto.SerializeToString()


def make_keras(out: Path, full: bool) -> None:
    import numpy as np

    for name, model, hw in keras_models(full):
        randomize_batchnorm_keras(model)
        for nchw in (False, True):
            shape = (1, 3, hw, hw) if nchw else (1, hw, hw, 3)
            x = np.random.default_rng(SEED).standard_normal(shape).astype(np.float32)
            save_with_ort(out, name + ("_nchw" if nchw else "_nhwc"), export_keras(model, hw, nchw), x)


# ---------------------------------------------------------------- ONNX model zoo v1/v2

def realise_zoo(name: str, full: bool):
    """The zoo graph with its ConstantOfShape weights realised as random initializers
    (also listed as graph inputs: IR 3) and random BatchNorm statistics."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    path = Path(onnx.__file__).parent / "backend/test/data/light" / f"light_{name}.onnx"
    m = onnx.load(str(path))
    rng = np.random.default_rng(SEED)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}

    def value(tensor: str, shape) -> np.ndarray:
        n = int(np.prod(shape))
        if tensor.endswith("_w_0") and len(shape) >= 2:  # conv / classifier weights
            return rng.standard_normal(shape) * np.sqrt(2.0 / (n // shape[0]))
        if "var" in tensor:
            return 0.5 + rng.random(shape)
        if tensor.endswith("sc_w_0") or tensor.endswith("bn_scale_0"):
            return 1 + 0.2 * rng.standard_normal(shape)
        return 0.2 * rng.standard_normal(shape)

    keep, new_inits = [], []
    for node in m.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = [int(d) for d in inits[node.input[0]]]
            if full or int(np.prod(shape)) <= 16384:
                v = value(node.output[0], shape).astype(np.float32)
                new_inits.append(numpy_helper.from_array(v, node.output[0]))
                continue
            # ones(shape) * rows: filters differ by output channel (and window tap),
            # not by input channel; folded at import.
            # The collapsed axis: a convolution's input channels, else the last (the
            # classifier's inputs); scaled by 1/its size: the channels it sums are alike.
            axis = 1 if len(shape) == 4 and shape[0] > 1 else len(shape) - 1
            out, rows_shape = node.output[0], [1 if i == axis else d for i, d in enumerate(shape)]
            rows = value(out, rows_shape) / shape[axis]
            new_inits.append(numpy_helper.from_array(rows.astype(np.float32), out + "_rows"))
            node.attribute[0].t.CopyFrom(numpy_helper.from_array(np.ones(1, np.float32), ""))
            node.output[0] = out + "_ones"
            keep.append(node)
            keep.append(helper.make_node("Mul", [out + "_ones", out + "_rows"], [out]))
            continue
        keep.append(node)
    for i in m.graph.initializer:  # BatchNorm statistics stored as initializers
        if not i.name.endswith("__SHAPE") and i.data_type == onnx.TensorProto.FLOAT:
            a = numpy_helper.to_array(i)
            if a.ndim == 1 and a.size > 1:
                i.CopyFrom(numpy_helper.from_array(value(i.name, a.shape).astype(np.float32), i.name))
    del m.graph.node[:]
    m.graph.node.extend(keep)
    m.graph.initializer.extend(new_inits)
    for t in new_inits:
        m.graph.input.append(helper.make_tensor_value_info(t.name, onnx.TensorProto.FLOAT, list(t.dims)))
    used = {i for n in m.graph.node for i in n.input}
    drop = [i for i in m.graph.initializer if i.name.endswith("__SHAPE") and i.name not in used]
    for i in drop:
        m.graph.initializer.remove(i)
    for i in [i for i in m.graph.input if i.name in {d.name for d in drop}]:
        m.graph.input.remove(i)
    onnx.checker.check_model(m)
    return m


def make_zoo(out: Path, full: bool) -> None:
    import numpy as np

    for name in ("inception_v1", "inception_v2"):
        m = realise_zoo(name, full)
        x = np.random.default_rng(SEED).standard_normal((1, 3, 224, 224)).astype(np.float32)
        save_with_ort(out, f"zoo_{name}" + ("" if full else "_light"), m.SerializeToString(), x)


MAKERS = {"torch": make_torch, "keras": make_keras, "zoo": make_zoo}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", nargs="+", choices=MAKERS, default=list(MAKERS))
    ap.add_argument("--full", action="store_true", help="full-size networks (not fixtures)")
    ap.add_argument("--out", type=Path, default=FIXTURES, help=f"output directory (default: {FIXTURES})")
    args = ap.parse_args()
    for s in args.sources:
        MAKERS[s](args.out, args.full)
    return 0


if __name__ == "__main__":
    sys.exit(main())
