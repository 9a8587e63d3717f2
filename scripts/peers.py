#!/usr/bin/env python3
"""Compare incept's latency with ONNX Runtime's (and optionally tract's) on the same architectures.

One command:

    cargo build --release && python3 scripts/peers.py

For each model and thread count it loads target/models/{model}.onnx (running
scripts/export_models.py first for any that is missing), makes an ONNX Runtime
session (ORT_ENABLE_ALL, intra_op_num_threads = t, inter_op_num_threads = 1,
sequential execution), warms it up, and then interleaves K rounds. Each round:

  * ORT: R runs, each timed with time.perf_counter;
  * incept: `target/release/incept bench target/models/MODEL.onnx --threads t
    --runs R --json` in a subprocess (it warms up once, then reports the median
    of its R runs). With --incept-model builtin, or when the binary cannot read
    the .onnx file (auto), it benches the built-in model of that name instead.

The engines take turns going first, round by round (the order rotates), so
drifting machine load hits all alike. Reported per model and thread count:

  * ort_ms      median of all K*R ORT per-run times
  * incept_ms   median of the K round medians (`incept bench` prints only
                median_ms and min_ms, not per-run times)
  * ratio       incept_ms / ort_ms (below 1: incept is faster)
  * the fastest single run of each, and the spread of the round medians.

With --tract, tract (the pure-Rust inference engine, crates.io tract-onnx) joins
the rotation at 1 thread: `incept-tract-bench MODEL.onnx --threads 1 --runs R
--json`, a subprocess like incept's, which loads the same .onnx with
tract_onnx::onnx(), fixes the input to f32 [1,3,H,W], into_optimized(),
into_runnable(), warms up once and reports the median of its R runs. Build it
first (a separate crate outside the workspace; tract takes minutes to compile):

    cargo build --release --manifest-path peers/tract/Cargo.toml

It adds tract_ms (median of the round medians), the incept / tract ratio and
tract's fastest run. Off by default so that the ORT comparison's output stays as
it was and a stale tract binary is never picked up unasked. tract runs on one
thread by default, and that is the comparison point: rows with more threads show
no tract figure (null in JSON). It has an opt-in rayon executor (tract-linalg's
multithread-mm feature, RunOptions::executor; the binary's --threads N > 1 uses
it) that spreads matrix products, hence convolutions, packing, max pooling and
element-wise ops over N threads; --tract-multithread runs tract at every thread
count with it. Before timing each model, tract runs once on {model}.input.npy and is
checked against {model}.ref_f64.npy when the export left them: the result is
tract_rel_err_vs_f64 (max abs error / max |ref|, as export_models.py reports for
ORT). A model tract cannot load or run gets no tract figures (tract_error says why).

By default both engines run the same .onnx file. With the built-in model, incept
runs the same architecture with its own synthetic weights: shapes and FLOPs are
identical, and dense float32 kernels do not care about the values.

Requires: onnxruntime, numpy (and, to export missing models, torch, torchvision,
timm, onnx, safetensors). Optional; not part of CI. With the defaults it takes
2-4 minutes on 2 cores, plus about 2 minutes of export the first time. On a shared
machine, watch the load average it prints: with the second core busy, the 2-thread
rows measure contention (ORT's spinning worker threads suffer most), not the engines.

Usage:
    python3 scripts/peers.py                          # 4 models x threads 1 2, K=5, R=10
    python3 scripts/peers.py --models googlenet --threads 1 --rounds 3 --runs 5
    python3 scripts/peers.py --json > peers.json      # JSON on stdout, progress on stderr
    python3 scripts/peers.py --tract --threads 1      # adds tract (build it first, see above)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("googlenet", "inception_v3", "inception_v4", "inception_resnet_v2")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def incept_bench(binary: Path, model: str, threads: int, runs: int) -> dict:
    return run_json([str(binary), "bench", model, "--threads", str(threads), "--runs", str(runs), "--json"])


def tract_bench(binary: Path, onnx_path: Path, threads: int, runs: int) -> dict:
    return run_json([str(binary), str(onnx_path), "--threads", str(threads), "--runs", str(runs), "--json"])


def run_json(cmd: list[str]) -> dict:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"error: `{' '.join(cmd)}` failed (exit {p.returncode}): {p.stderr.strip()}")
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"error: `{' '.join(cmd)}` printed no JSON: {p.stdout[:200]!r}")


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_times(sess, feed: dict, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def ensure_exports(models: list[str], model_dir: Path) -> None:
    missing = [m for m in models if not (model_dir / f"{m}.onnx").is_file()]
    if not missing:
        return
    log(f"exporting {', '.join(missing)} to {model_dir} (scripts/export_models.py) ...")
    cmd = [sys.executable, str(ROOT / "scripts" / "export_models.py"),
           "--out", str(model_dir), "--models", *missing]
    if subprocess.run(cmd, stdout=sys.stderr).returncode != 0:
        raise SystemExit("error: export_models.py failed; see above")


def incept_model_arg(binary: Path, model: str, onnx_path: Path, source: str) -> str:
    """What to pass to `incept bench`: the .onnx path or the built-in name."""
    if source == "builtin":
        return model
    if source == "onnx":
        return str(onnx_path)
    cmd = [str(binary), "bench", str(onnx_path), "--runs", "1", "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode == 0:
        return str(onnx_path)
    log(f"  incept cannot bench {onnx_path} ({p.stderr.strip()}); using its built-in {model}")
    return model


def tract_check(binary: Path, model: str, onnx_path: Path) -> dict:
    """One tract run of the model: whether tract can run it at all and, when the
    export left {model}.input.npy and {model}.ref_f64.npy, its error vs float64."""
    cmd = [str(binary), str(onnx_path), "--runs", "1", "--json"]
    inp, ref = onnx_path.with_suffix(".input.npy"), onnx_path.with_suffix(".ref_f64.npy")
    if inp.is_file() and ref.is_file():
        cmd += ["--input", str(inp), "--check", str(ref)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        err = p.stderr.strip().splitlines()
        log(f"  tract cannot run {onnx_path}: {err[-1] if err else f'exit {p.returncode}'}; no tract figures")
        return {"error": p.stderr.strip() or f"exit {p.returncode}"}
    out = json.loads(p.stdout)
    check = out.get("check")
    if check:
        log(f"  tract on {model}: max abs error {check['max_abs_err']:.2e} vs float64, "
            f"max |ref| {check['ref_max_abs']:.3f} (ratio {check['rel_err']:.2e}); load {out['load_ms']:.0f} ms")
    return out


def measure(binary: Path, model: str, onnx_path: Path, threads: int, rounds: int, runs: int,
            warmup: int, incept_arg: str, tract: Path | None = None) -> dict:
    """tract: the incept-tract-bench binary, to add tract to the rotation (None: ORT and incept only)."""
    import numpy as np

    sess = ort_session(onnx_path, threads)
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal(inp.shape).astype(np.float32)
    feed = {inp.name: x}
    ort_times(sess, feed, warmup)

    ort_all, ort_round_medians, ours, theirs = [], [], [], []
    engines = ["ort", "incept"] + (["tract"] if tract else [])
    for k in range(rounds):
        # Each engine goes first in turn (with two: ORT on even rounds, incept on odd).
        got = {}
        for e in engines[k % len(engines):] + engines[:k % len(engines)]:
            if e == "ort":
                got[e] = ort_times(sess, feed, runs)
            elif e == "incept":
                got[e] = incept_bench(binary, incept_arg, threads, runs)
            else:
                got[e] = tract_bench(tract, onnx_path, threads, runs)
        t, b = got["ort"], got["incept"]
        ort_all += t
        ort_round_medians.append(statistics.median(t))
        ours.append(b)
        line = (f"  {model} t={threads} round {k + 1}/{rounds}: ORT {statistics.median(t):8.2f} ms, "
                f"incept {b['median_ms']:8.2f} ms")
        if tract:
            theirs.append(got["tract"])
            line += f", tract {got['tract']['median_ms']:8.2f} ms"
        log(line)

    ort_ms = statistics.median(ort_all)
    our_medians = [b["median_ms"] for b in ours]
    incept_ms = statistics.median(our_medians)
    tract_fields = {}
    if tract:
        their_medians = [b["median_ms"] for b in theirs]
        tract_ms = statistics.median(their_medians)
        tract_fields = {
            "tract_ms": tract_ms,
            "tract_min_ms": min(b["min_ms"] for b in theirs),
            "tract_round_medians_ms": their_medians,
            "tract_load_ms": statistics.median(b["load_ms"] for b in theirs),
            "incept_tract_ratio": incept_ms / tract_ms,
        }
    return {
        "model": model,
        "threads": threads,
        "ort_ms": ort_ms,
        "ort_min_ms": min(ort_all),
        "ort_round_medians_ms": ort_round_medians,
        "incept_ms": incept_ms,
        "incept_min_ms": min(b["min_ms"] for b in ours),
        "incept_round_medians_ms": our_medians,
        "incept_load_ms": statistics.median(b["load_ms"] for b in ours),
        "incept_tier": ours[0].get("tier"),
        "incept_model": incept_arg,
        "ratio": incept_ms / ort_ms,
        **tract_fields,
    }


# The tract fields of a row where tract did not run (more threads, or a model it cannot run).
NO_TRACT = {"tract_ms": None, "tract_min_ms": None, "tract_round_medians_ms": [], "tract_load_ms": None,
            "incept_tract_ratio": None}


def spread(xs: list[float]) -> str:
    m = statistics.median(xs)
    return f"±{100 * (max(xs) - min(xs)) / 2 / m:.0f}%"


def table(results: list[dict], with_tract: bool = False) -> str:
    if not with_tract:
        head = ("| model | threads | ORT ms | incept ms | incept / ORT | ORT min | incept min "
                "| round spread ORT / incept |")
        rows = [head, "|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in results:
            rows.append(
                f"| {r['model']} | {r['threads']} | {r['ort_ms']:.1f} | {r['incept_ms']:.1f} "
                f"| {r['ratio']:.2f} | {r['ort_min_ms']:.1f} | {r['incept_min_ms']:.1f} "
                f"| {spread(r['ort_round_medians_ms'])} / {spread(r['incept_round_medians_ms'])} |")
        return "\n".join(rows)

    def num(x, fmt: str) -> str:
        return "—" if x is None else format(x, fmt)

    head = ("| model | threads | ORT ms | incept ms | tract ms | incept / ORT | incept / tract "
            "| ORT min | incept min | tract min | round spread ORT / incept / tract |")
    rows = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        tract_spread = spread(r["tract_round_medians_ms"]) if r["tract_round_medians_ms"] else "—"
        rows.append(
            f"| {r['model']} | {r['threads']} | {r['ort_ms']:.1f} | {r['incept_ms']:.1f} "
            f"| {num(r['tract_ms'], '.1f')} | {r['ratio']:.2f} | {num(r['incept_tract_ratio'], '.2f')} "
            f"| {r['ort_min_ms']:.1f} | {r['incept_min_ms']:.1f} | {num(r['tract_min_ms'], '.1f')} "
            f"| {spread(r['ort_round_medians_ms'])} / {spread(r['incept_round_medians_ms'])} / {tract_spread} |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, metavar="MODEL",
                    help=f"models (default: {' '.join(MODELS)})")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="thread counts (default: 1 2)")
    ap.add_argument("--rounds", "-K", type=int, default=5, help="interleaved rounds K (default: 5)")
    ap.add_argument("--runs", "-R", type=int, default=10, help="timed runs per round R (default: 10)")
    ap.add_argument("--warmup", type=int, default=3, help="ORT warm-up runs per session (default: 3)")
    ap.add_argument("--model-dir", default=str(ROOT / "target" / "models"),
                    help="where the .onnx files are (default: target/models)")
    ap.add_argument("--incept", default=str(ROOT / "target" / "release" / "incept"),
                    help="incept binary (default: target/release/incept)")
    ap.add_argument("--incept-model", choices=("auto", "onnx", "builtin"), default="auto",
                    help="what incept benches: the same .onnx file, its built-in model of that "
                         "name, or auto: the .onnx file if the binary reads it (default: auto)")
    ap.add_argument("--tract", action="store_true",
                    help="add tract to the rotation, at 1 thread (build it first: cargo build --release "
                         "--manifest-path peers/tract/Cargo.toml)")
    ap.add_argument("--tract-bin",
                    default=str(ROOT / "peers" / "tract" / "target" / "release" / "incept-tract-bench"),
                    help="tract bench binary (default: peers/tract/target/release/incept-tract-bench)")
    ap.add_argument("--tract-multithread", action="store_true",
                    help="with --tract, run tract at every thread count, not only 1 (its rayon executor "
                         "threads only matrix products and element-wise ops)")
    ap.add_argument("--json", action="store_true", help="print JSON on stdout instead of the table")
    args = ap.parse_args()
    if args.rounds < 1 or args.runs < 1 or args.warmup < 0 or min(args.threads) < 1:
        ap.error("--rounds, --runs and --threads must be at least 1, --warmup at least 0")

    binary = Path(args.incept)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise SystemExit(f"error: incept binary not found at {binary}; build it first with "
                         "`cargo build --release` (in the repository root)")
    tract_bin = Path(args.tract_bin) if args.tract else None
    if tract_bin and not (tract_bin.is_file() and os.access(tract_bin, os.X_OK)):
        raise SystemExit(f"error: tract bench binary not found at {tract_bin}; build it first with "
                         "`cargo build --release --manifest-path peers/tract/Cargo.toml`")
    try:
        import numpy  # noqa: F401
        import onnxruntime as ort
    except ImportError as e:
        raise SystemExit(f"error: {e.name} missing: pip install onnxruntime numpy")

    model_dir = Path(args.model_dir)
    ensure_exports(args.models, model_dir)

    load_before = os.getloadavg()
    log(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}")
    started = time.time()
    results = []
    tract_version = None
    for model in args.models:
        onnx_path = model_dir / f"{model}.onnx"
        incept_arg = incept_model_arg(binary, model, onnx_path, args.incept_model)
        checked = tract_check(tract_bin, model, onnx_path) if tract_bin else {}
        tract_version = tract_version or checked.get("tract_version")
        for t in args.threads:
            use_tract = tract_bin and "error" not in checked and (t == 1 or args.tract_multithread)
            r = measure(binary, model, onnx_path, t, args.rounds, args.runs, args.warmup, incept_arg,
                        tract_bin if use_tract else None)
            if tract_bin:
                r = {**r, **{k: v for k, v in NO_TRACT.items() if k not in r}}
                r["tract_rel_err_vs_f64"] = checked.get("check", {}).get("rel_err")
                if "error" in checked:
                    r["tract_error"] = checked["error"]
            results.append(r)
    load_after = os.getloadavg()
    log(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)} "
        f"({time.time() - started:.0f} s)")

    if args.json:
        print(json.dumps({
            "date": datetime.date.today().isoformat(),
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "loadavg_before": load_before, "loadavg_after": load_after},
            "onnxruntime": ort.__version__,
            **({"tract": tract_version} if tract_bin else {}),
            "rounds": args.rounds, "runs": args.runs, "incept_model": args.incept_model,
            "method": "ort_ms: median of all per-run times; incept_ms: median of the per-round "
                      "medians printed by `incept bench`; ratio = incept_ms / ort_ms"
                      + ("; tract_ms: median of the per-round medians printed by incept-tract-bench, "
                         "null where tract did not run; incept_tract_ratio = incept_ms / tract_ms"
                         if tract_bin else ""),
            "results": results,
        }, indent=2))
    else:
        print(table(results, with_tract=tract_bin is not None))
        same = all(r["incept_model"] != r["model"] for r in results)
        print(f"\nORT {ort.__version__}; K={args.rounds} rounds of R={args.runs} runs, interleaved; "
              f"incept ran {'the same .onnx files' if same else 'built-in models (synthetic weights)'}. "
              "ORT ms: median of all per-run times; incept ms: median of the round medians "
              "(`incept bench` reports medians only). Below 1: incept is faster.")
        if tract_bin:
            first = [r for r in results if r["threads"] == args.threads[0]]
            errs = ", ".join(f"{r['model']} {r['tract_rel_err_vs_f64']:.1e}" for r in first
                             if r.get("tract_rel_err_vs_f64") is not None)
            failed = [r["model"] for r in first if "tract_error" in r]
            print(f"tract {tract_version or '?'}: tract ms is the median of its round medians, like incept's; "
                  + ("it ran at every thread count (--tract-multithread)" if args.tract_multithread
                     else "it ran at 1 thread only (— elsewhere)")
                  + (f"; it could not run {', '.join(failed)}" if failed else "") + "."
                  + (f" tract's max abs error / max |ref| vs float64: {errs}." if errs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
