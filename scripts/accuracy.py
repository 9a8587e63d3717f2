#!/usr/bin/env python3
"""How far each engine's outputs are from a float64 evaluation, over several random images
(the export's one image is a noisy yardstick: one max over the logits of one input).

For each model exported by export_models.py (its .onnx and .safetensors in --model-dir),
K random N(0, 1) images (seeds 1000..1000+K-1): the float64 PyTorch output (the exported
weights loaded into the reference architecture, model.double()) and each engine's output
on the same image, from the same .onnx file:

    incept       `incept run MODEL.onnx --input x.npy --output y.npy [--precision P]`
    ORT          ONNX Runtime, float32
    OpenVINO     with --openvino: the CPU plugin, INFERENCE_PRECISION_HINT = --openvino-precision

Prints, per model and engine, the mean and max over the images of
max |out - ref| / max |ref|, and on how many images the engine's top-5 classes (as a set)
equal float64's; then the ratio of incept's mean error to each peer's.

Requires what export_models.py does (torch, torchvision, timm, onnxruntime, safetensors,
numpy), and openvino for --openvino. Optional, never part of CI.

Usage:
    python3 scripts/accuracy.py --model-dir /work/models --images 16
    python3 scripts/accuracy.py --model-dir /work/models --images 16 --precision bf16 --openvino
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_models import MODELS, build  # noqa: E402
from peers_inproc import cpu_model  # noqa: E402


def rel_err(out, ref) -> float:
    import numpy as np
    return float(np.abs(out.astype(np.float64).reshape(ref.shape) - ref).max() / np.abs(ref).max())


def top5(y) -> frozenset:
    import numpy as np
    return frozenset(np.argsort(np.asarray(y).reshape(-1))[-5:].tolist())


def main() -> int:
    import numpy as np
    import onnxruntime as ort
    import torch
    from safetensors.torch import load_file

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", default="target/models", help="export_models.py's output (default: target/models)")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, metavar="MODEL")
    ap.add_argument("--images", type=int, default=8, help="random images per model (default: 8)")
    ap.add_argument("--incept", default="target/release/incept", help="incept binary (default: target/release/incept)")
    ap.add_argument("--precision", default="f32", help="incept's --precision (default: f32)")
    ap.add_argument("--openvino", action="store_true", help="add OpenVINO's CPU plugin (pip install openvino)")
    ap.add_argument("--openvino-precision", default="bf16", help="OpenVINO's INFERENCE_PRECISION_HINT (default: bf16)")
    args = ap.parse_args()

    engines = [f"incept {args.precision}", "ORT f32"]
    if args.openvino:
        import openvino as ov
        core = ov.Core()
        engines.append(f"OpenVINO {args.openvino_precision}")

    d = Path(args.model_dir)
    print(f"CPU: {cpu_model()}; {args.images} images per model; error = max |y - y64| / max |y64|")
    print()
    print("| model | engine | mean error | max error | top-5 = float64's |")
    print("|---|---|---:|---:|---:|")
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            model, hw = build(name, False)
            model.load_state_dict(load_file(str(d / f"{name}.safetensors")))
            model = model.eval().double()
            sess = ort.InferenceSession(str(d / f"{name}.onnx"), providers=["CPUExecutionProvider"])
            runs = {"ORT f32": lambda x32: sess.run(["logits"], {"input": x32})[0]}
            if args.openvino:
                config = {"INFERENCE_PRECISION_HINT": args.openvino_precision, "INFERENCE_NUM_THREADS": "2"}
                compiled = core.compile_model(core.read_model(str(d / f"{name}.onnx")), "CPU", config)
                runs[engines[2]] = lambda x32, c=compiled: c(x32)[0]
            errs = {e: [] for e in engines}
            same5 = {e: 0 for e in engines}
            for i in range(args.images):
                x = torch.randn(1, 3, hw, hw, generator=torch.Generator().manual_seed(1000 + i))
                with torch.no_grad():
                    ref = model(x.double()).numpy()
                x32 = x.numpy().astype(np.float32)
                inp, out = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
                np.save(inp, x32)
                precision = [] if args.precision == "f32" else ["--precision", args.precision]
                subprocess.run([args.incept, "run", str(d / f"{name}.onnx"), "--input", str(inp), "--output", str(out),
                                *precision], check=True, stdout=subprocess.DEVNULL)
                outputs = {engines[0]: np.load(out)} | {e: run(x32) for e, run in runs.items()}
                for e, y in outputs.items():
                    errs[e].append(rel_err(y, ref))
                    same5[e] += top5(y) == top5(ref)
            for e in engines:
                a = np.array(errs[e])
                print(f"| {name} | {e} | {a.mean():.2e} | {a.max():.2e} | {same5[e]}/{len(a)} |", flush=True)
            summary.append((name, {e: float(np.mean(errs[e])) for e in engines}))
    print()
    for name, means in summary:
        ratios = ", ".join(f"/ {e}: {means[engines[0]] / means[e]:.3f}" for e in engines[1:])
        print(f"{name}: {engines[0]} mean error {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
