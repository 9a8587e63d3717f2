#!/usr/bin/env python3
"""Export the reference PyTorch Inception models to ONNX and safetensors.

For each model this writes, into --out (default target/models):

    {name}.onnx           opset 17, batch 1 static, input "input", output "logits"
    {name}.safetensors    model.state_dict() (reference key names, BatchNorm stats included)
    {name}.input.npy      float32 [1, 3, H, W] reference input, N(0, 1), seed 0
    {name}.ref_f64.npy    float64 PyTorch output on that input (model.double())
    {name}.ort.npy        float32 ONNX Runtime output on that input
    {name}.json           shapes, parameter count, versions and the errors printed below

and prints ONNX Runtime's max abs error against the float64 reference, divided by
max |ref| (and the same for PyTorch float32, as a yardstick).

Models (the references that incept's built-ins match):

    googlenet            torchvision, aux_logits=False, init_weights=True, 224x224
    inception_v3         torchvision, aux_logits=False, init_weights=True,
                         transform_input=False, 299x299
    inception_v4         timm, 299x299
    inception_resnet_v2  timm, 299x299

Weights are random (torch.manual_seed(0)) unless --pretrained is given. Random
weights alone make activations drift in scale, so BatchNorm statistics are
calibrated: in train mode with momentum 1.0, one forward pass over 8 random N(0,1)
images sets every running mean/var to that batch's statistics; they are then
perturbed slightly (mean += 0.1*N(0,1)*std, var *= U(0.8, 1.25)) so the folded
BatchNorm is not an exact normalisation, and the model is put in eval mode.

--pretrained downloads the published weights instead (torchvision weights="DEFAULT",
timm pretrained=True) and skips the calibration. It needs internet access to the
weight hosts, so it only works on a user's machine, not in CI or the dev sandbox.
transform_input stays False for torchvision, so the ONNX graph is the bare network:
all four pretrained models then expect inputs normalised to [-1, 1] ((x - 0.5) / 0.5).

Requires: torch, torchvision, timm, onnx, onnxruntime, safetensors, numpy
(pip install torch torchvision timm onnx onnxruntime safetensors). Optional, never
part of CI. Exporting the four models takes about 2 minutes on 2 cores and writes
about 1 GB (the .onnx and .safetensors files are 27-225 MB each).

Usage:
    python3 scripts/export_models.py                       # all four, random weights
    python3 scripts/export_models.py --models googlenet --out /tmp/m
    python3 scripts/export_models.py --pretrained          # real weights (internet)
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

MODELS = ("googlenet", "inception_v3", "inception_v4", "inception_resnet_v2")
OPSET = 17
CALIBRATION_BATCH = 8


def ensure_safetensors() -> None:
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        print("safetensors missing: pip install safetensors", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "safetensors"])


def build(name: str, pretrained: bool):
    """Return (model, input_hw) for a model name."""
    import timm
    import torchvision

    if name == "googlenet":
        kw = dict(aux_logits=False, transform_input=False)
        if pretrained:
            model = torchvision.models.googlenet(weights="DEFAULT", **kw)
        else:
            model = torchvision.models.googlenet(weights=None, init_weights=True, **kw)
        return model, 224
    if name == "inception_v3":
        kw = dict(aux_logits=False, transform_input=False)
        if pretrained:
            model = torchvision.models.inception_v3(weights="DEFAULT", **kw)
        else:
            model = torchvision.models.inception_v3(weights=None, init_weights=True, **kw)
        return model, 299
    if name in ("inception_v4", "inception_resnet_v2"):
        model = timm.create_model(name, pretrained=pretrained)
        return model, model.default_cfg["input_size"][1]
    raise SystemExit(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def calibrate_batchnorm(model, hw: int, seed: int) -> None:
    """Set BN running stats to one random batch's statistics, then perturb them."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 1.0
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(CALIBRATION_BATCH, 3, hw, hw, generator=g)
    model.train()
    with torch.no_grad():
        model(x)
        for m, momentum in zip(bns, saved):
            m.momentum = momentum
            std = m.running_var.sqrt()
            m.running_mean += 0.1 * torch.randn(m.running_mean.shape, generator=g) * std
            m.running_var *= torch.empty(m.running_var.shape).uniform_(0.8, 1.25, generator=g)
    model.eval()


def export_onnx(model, x, path: Path) -> None:
    import torch

    kw = dict(input_names=["input"], output_names=["logits"], opset_version=OPSET,
              do_constant_folding=True)
    try:
        # The TorchScript exporter: opset 17 directly, needs no onnxscript.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(path), dynamo=False, **kw)
    except Exception as e:  # a torch without it: the dynamo exporter (needs onnxscript)
        print(f"  TorchScript exporter failed ({e}); trying dynamo=True", file=sys.stderr)
        torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=False, **kw)
    import onnx
    onnx.checker.check_model(str(path))


def rel_err(out, ref) -> float:
    import numpy as np
    return float(np.abs(out.astype(np.float64) - ref).max() / np.abs(ref).max())


def export_one(name: str, out: Path, pretrained: bool, seed: int) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch
    from safetensors.torch import save_file

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model, hw = build(name, pretrained)
    if not pretrained:
        calibrate_batchnorm(model, hw, seed)
    model.eval()
    params = sum(p.numel() for p in model.parameters())

    x = torch.randn(1, 3, hw, hw, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y32 = model(x).numpy()
        y64 = copy.deepcopy(model).double()(x.double()).numpy()

    onnx_path = out / f"{name}.onnx"
    export_onnx(model, x, onnx_path)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              str(out / f"{name}.safetensors"))

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    y_ort = sess.run(["logits"], {"input": x.numpy()})[0]

    np.save(out / f"{name}.input.npy", x.numpy().astype(np.float32))
    np.save(out / f"{name}.ref_f64.npy", y64)
    np.save(out / f"{name}.ort.npy", y_ort.astype(np.float32))

    info = {
        "model": name,
        "weights": "pretrained" if pretrained else f"random, seed {seed}, calibrated BatchNorm",
        "input_shape": list(x.shape),
        "output_shape": list(y_ort.shape),
        "params": params,
        "opset": OPSET,
        "ort_rel_err_vs_f64": rel_err(y_ort, y64),
        "torch_f32_rel_err_vs_f64": rel_err(y32, y64),
        "ref_max_abs": float(np.abs(y64).max()),
        "export_s": round(time.perf_counter() - t0, 1),
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__},
    }
    (out / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="target/models", help="output folder (default: target/models)")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, metavar="MODEL",
                    help=f"models to export (default: {' '.join(MODELS)})")
    ap.add_argument("--pretrained", action="store_true",
                    help="download the published weights (needs internet; not for CI)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = ap.parse_args()

    ensure_safetensors()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{'model':<20} {'params':>11} {'ORT f32 err':>12} {'torch f32 err':>14} {'time':>7}")
    for name in args.models:
        info = export_one(name, out, args.pretrained, args.seed)
        print(f"{name:<20} {info['params']:>11,} {info['ort_rel_err_vs_f64']:>12.2e} "
              f"{info['torch_f32_rel_err_vs_f64']:>14.2e} {info['export_s']:>6.1f}s", flush=True)
    print(f"wrote {out}/{{name}}.onnx .safetensors .input.npy .ref_f64.npy .ort.npy .json")
    print("errors: max |out - ref_f64| / max |ref_f64|")
    return 0


if __name__ == "__main__":
    sys.exit(main())
