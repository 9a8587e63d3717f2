#!/usr/bin/env python3
"""Compare how long incept takes to open a converted model file and make it ready to
run with how long ONNX Runtime takes to create a session on the same model.

One command:

    cargo build --release && python3 scripts/load_time.py

For each model it converts target/models/{model}.onnx (from scripts/export_models.py)
to target/models/{model}.incept with `incept convert` if that file is missing, then
interleaves K rounds; each round, in alternating order:

  * ORT: `onnxruntime.InferenceSession(model.onnx)` with ORT_ENABLE_ALL, 1 thread,
    timed with time.perf_counter (the file is in the page cache after round 0);
  * incept: `incept bench model.incept --runs 1 --json` in a subprocess, which reports
    `load_ms` (Model::open + Session::new: map the file, check the header and every
    tensor entry, plan, allocate the arena), `heap_after_load_bytes`, `arena_bytes`
    and `weight_bytes`.

Printed per model: medians of both, their ratio, and incept's memory after loading
(heap vs arena vs weights: a mapped file's weights stay off the heap).

Requires onnxruntime. Optional; not part of CI.

Usage:
    python3 scripts/load_time.py [--models inception_v3] [--rounds 11] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("googlenet", "inception_v3", "inception_v4", "inception_resnet_v2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--model-dir", type=Path, default=ROOT / "target" / "models")
    ap.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "incept")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import onnxruntime as ort

    rows = []
    for m in args.models:
        onnx = args.model_dir / f"{m}.onnx"
        if not onnx.is_file():
            raise SystemExit(f"error: {onnx} is missing: run scripts/export_models.py first")
        converted = args.model_dir / f"{m}.incept"
        if not converted.is_file():
            subprocess.run([str(args.binary), "convert", str(onnx), "-o", str(converted)], check=True,
                           stdout=sys.stderr)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        ort_ms, incept_ms, last = [], [], {}
        for k in range(args.rounds):
            def ours() -> None:
                nonlocal last
                p = subprocess.run([str(args.binary), "bench", str(converted), "--runs", "1", "--json"],
                                   capture_output=True, text=True, check=True)
                last = json.loads(p.stdout)
                incept_ms.append(last["load_ms"])

            def theirs() -> None:
                t0 = time.perf_counter()
                ort.InferenceSession(str(onnx), so, providers=["CPUExecutionProvider"])
                ort_ms.append((time.perf_counter() - t0) * 1e3)

            for f in ((ours, theirs) if k % 2 else (theirs, ours)):
                f()
        row = {
            "model": m,
            "ort_session_ms": statistics.median(ort_ms),
            "incept_load_ms": statistics.median(incept_ms),
            "heap_after_load_bytes": last["heap_after_load_bytes"],
            "arena_bytes": last["arena_bytes"],
            "weight_bytes": last["weight_bytes"],
            "mapped_weight_bytes": last["mapped_weight_bytes"],
        }
        row["speedup"] = row["ort_session_ms"] / row["incept_load_ms"]
        rows.append(row)
        print(f"{m}: ORT session {row['ort_session_ms']:.1f} ms, incept load {row['incept_load_ms']:.2f} ms",
              file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    mib = 1 << 20
    print(f"\nmedians of {args.rounds} interleaved rounds")
    print(f"{'model':<22} {'ORT session':>12} {'incept load':>12} {'speed-up':>9} {'heap':>9} {'arena':>9} "
          f"{'weights':>9} {'mapped':>9}")
    for r in rows:
        print(f"{r['model']:<22} {r['ort_session_ms']:>9.1f} ms {r['incept_load_ms']:>9.2f} ms "
              f"{r['speedup']:>8.0f}x {r['heap_after_load_bytes'] / mib:>5.1f} MiB {r['arena_bytes'] / mib:>5.1f} MiB "
              f"{r['weight_bytes'] / mib:>5.1f} MiB {r['mapped_weight_bytes'] / mib:>5.1f} MiB")


if __name__ == "__main__":
    main()
