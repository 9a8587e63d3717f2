#!/usr/bin/env python3
"""How far incept's outputs are from a float64 evaluation, against ONNX Runtime's, over
several random images (the export's one image is a noisy yardstick: one max over the
logits of one input).

For each model exported by export_models.py (its .onnx and .safetensors in --model-dir),
K random N(0, 1) images (seeds 1000..1000+K-1): the float64 PyTorch output (the exported
weights loaded into the reference architecture, model.double()), ONNX Runtime's float32
output and incept's (`incept run MODEL.onnx --input x.npy --output y.npy`). Prints, per
model, the mean and max over the images of max |out - ref| / max |ref| for both, their
ratio (incept / ORT, below 1: incept is closer) and on how many images incept is closer.

Requires what export_models.py does (torch, torchvision, timm, onnxruntime, safetensors,
numpy). Optional, never part of CI.

Usage:
    python3 scripts/accuracy.py --model-dir /work/models --images 16
    python3 scripts/accuracy.py --models inception_v3 --incept target/release/incept
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_models import MODELS, build  # noqa: E402


def rel_err(out, ref) -> float:
    import numpy as np
    return float(np.abs(out.astype(np.float64) - ref).max() / np.abs(ref).max())


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
    args = ap.parse_args()

    d = Path(args.model_dir)
    print("| model | images | incept mean | incept max | ORT mean | ORT max | incept / ORT (means) | incept closer |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            model, hw = build(name, False)
            model.load_state_dict(load_file(str(d / f"{name}.safetensors")))
            model = model.eval().double()
            sess = ort.InferenceSession(str(d / f"{name}.onnx"), providers=["CPUExecutionProvider"])
            ours, theirs = [], []
            for i in range(args.images):
                x = torch.randn(1, 3, hw, hw, generator=torch.Generator().manual_seed(1000 + i))
                with torch.no_grad():
                    ref = model(x.double()).numpy()
                x32 = x.numpy().astype(np.float32)
                theirs.append(rel_err(sess.run(["logits"], {"input": x32})[0], ref))
                inp, out = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
                np.save(inp, x32)
                subprocess.run([args.incept, "run", str(d / f"{name}.onnx"), "--input", str(inp), "--output", str(out)],
                               check=True, stdout=subprocess.DEVNULL)
                ours.append(rel_err(np.load(out), ref))
            a, b = np.array(ours), np.array(theirs)
            print(f"| {name} | {len(a)} | {a.mean():.2e} | {a.max():.2e} | {b.mean():.2e} | {b.max():.2e} "
                  f"| {a.mean() / b.mean():.2f} | {(a < b).sum()}/{len(a)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
