#!/usr/bin/env python3
"""ONNX Runtime's time per convolution kind (window and stride), from its profiler.

Where does incept win or lose against ORT, kind by kind? This runs an .onnx file with
ORT's per-node profiling (one thread by default, spinning off), takes each node's median
kernel time over the runs (the first, a warm-up, left out) and sums them by kind, with
the dense multiply-add rate (GFLOP/s = 2 x multiply-adds of the whole window / time; ORT
skips padded taps, so its rate on padded windows reads a little high). Compare with
`incept bench MODEL.onnx --threads 1 --runs 10 --profile` on the same host, in the same
minutes. Prints the CPU model first.

Usage:
    python3 scripts/ort_kinds.py /work/models/inception_resnet_v2.onnx [--runs 6] [--threads 1]

Requires: onnxruntime, onnx, numpy.
"""

import argparse
import collections
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers_inproc import cpu_model  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="an .onnx file")
    ap.add_argument("--runs", type=int, default=6, help="profiled runs, the first a warm-up (default: 6)")
    ap.add_argument("--threads", type=int, default=1, help="ORT's intra-op threads (default: 1)")
    args = ap.parse_args()
    if args.runs < 2:
        ap.error("--runs must be at least 2")
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.enable_profiling = True
    s = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal([d if isinstance(d, int) else 1 for d in inp.shape])
    for _ in range(args.runs):
        s.run(None, {inp.name: x.astype(np.float32)})
    profile = s.end_profiling()
    events = json.loads(Path(profile).read_text())
    os.remove(profile)

    times, kinds, flops = collections.defaultdict(list), {}, {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        node, a = e["name"][: -len("_kernel_time")], e["args"]
        times[node].append(e["dur"] / 1e3)
        kind = a.get("op_name", "?")
        if kind == "Conv":
            x_shape, w = a["input_type_shape"][0]["float"], a["input_type_shape"][1]["float"]
            y = a["output_type_shape"][0]["float"]
            stride = max(1, round(x_shape[2] / y[2])) if w[2] > 1 else max(1, round(x_shape[3] / y[3]))
            kind = f"conv {w[2]}x{w[3]}/{stride}"
            flops[node] = 2 * w[0] * w[1] * w[2] * w[3] * y[2] * y[3]
        kinds[node] = kind
    ms, count, gflop = collections.defaultdict(float), collections.Counter(), collections.defaultdict(float)
    for node, ts in times.items():
        t = statistics.median(ts[1:])
        ms[kinds[node]] += t
        count[kinds[node]] += 1
        gflop[kinds[node]] += flops.get(node, 0) / 1e9
    total = sum(ms.values())
    print(f"CPU: {cpu_model()}; ORT {ort.__version__}, {args.threads} thread(s), median of {args.runs - 1} runs")
    print(f"{'kind':<24} {'nodes':>5} {'ms':>9} {'%':>6} {'GFLOP/s':>8}")
    for kind, t in sorted(ms.items(), key=lambda kv: -kv[1]):
        rate = f"{gflop[kind] / t * 1e3:8.1f}" if gflop[kind] else ""
        print(f"{kind:<24} {count[kind]:>5} {t:9.3f} {100 * t / total:5.1f}% {rate}")
    print(f"total {total:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
