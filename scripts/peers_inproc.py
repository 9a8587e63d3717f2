#!/usr/bin/env python3
"""incept against ONNX Runtime (and optionally OpenVINO) in one process, run by run.

Separate processes timed minutes apart are too noisy on shared or virtual machines to
decide anything under ~10%: clocks, neighbours and the hypervisor drift between them.
Here every engine lives in the same Python process and the engines take turns run by
run, so drift hits them alike:

  * incept through its C API (capi/include/incept.h) with ctypes, from the shared
    library that `cargo build --release -p incept-capi` builds (--lib; default:
    $INCEPT_LIB, else target/release/libincept.so, refused when older than the
    sources);
  * ONNX Runtime (CPUExecutionProvider, ORT_ENABLE_ALL, intra_op_num_threads = t,
    inter_op_num_threads = 1, sequential execution), on the same .onnx file;
  * with --openvino, OpenVINO's CPU plugin on the same file (LATENCY hint, one
    stream, INFERENCE_NUM_THREADS = t, INFERENCE_PRECISION_HINT = --precision).

incept runs at --incept-precision (f32, bf16 or bf16x3, through incept_session_create_with_precision).

Every engine gets the same input (N(0, 1), seed 0) and warms up with --warmup runs;
the harness checks that incept's output matches ORT's (max abs difference / max |ORT|)
and refuses to time a model whose outputs disagree. Then N rounds (--pairs): one
single timed run of each engine, the order rotating every round (with two engines:
incept first, then ORT first, ...). Each round gives a ratio incept / peer; the table
shows the median ratio and its spread (p10 and p90 of the per-round ratios), each
engine's median run (p50) and its p99 / p50, and in how many of each engine's timed runs
the hypervisor ran other guests on this VM's CPUs ("steal" in /proc/stat, 10 ms ticks):
a slow run with steal in it was the host's. Below 1: incept is faster.

Modes (--interval-ms, several allowed; default 0 33):

  * 0: back to back, each run straight after the previous one (of either engine).
    ORT's worker threads then spin between its runs by default and would take the
    second core from incept's run, so ORT's spinning is off here
    (session.intra_op.allow_spinning = "0"; --ort-spinning on/off overrides).
  * N > 0: frame-paced, as a camera app calls an engine: a run starts every N ms and
    the thread sleeps in between. Each round gives each engine, in turn, a burst of
    --frames runs at that cadence; the first run of a burst follows the settle below
    and is not timed, the others are (the round's ratio compares their means). ORT
    keeps its default spinning here, as an app would get it: its workers spin for tens
    of ms after a run, which at 30 fps bridges the gap to the next frame. Between
    bursts the harness waits until the process is idle (no CPU burnt for 20 ms), so
    no engine's spinning ever overlaps the other's runs. The CPU each engine burns
    while it waits for its next frame is reported ("idle CPU", % of one core).

Thread counts: --threads (default 1 2). The CPU model (lscpu "Model name") is printed
with every table, and --markdown FILE appends the tables, with the host, date and the
command, to FILE for docs/performance.md (one table per host: never mix hosts).

Requires: numpy, onnxruntime (openvino with --openvino). The .onnx files come from
scripts/export_models.py (torch, torchvision, timm): run it first, e.g.

    python3 scripts/export_models.py --out /work/models
    cargo build --release -p incept-capi
    python3 scripts/peers_inproc.py --model-dir /work/models --pairs 40

Usage:
    python3 scripts/peers_inproc.py --models googlenet --pairs 5 --threads 1
    python3 scripts/peers_inproc.py --pairs 40 --markdown /tmp/perf.md --json /tmp/perf.json
    python3 scripts/peers_inproc.py --openvino --precision bf16 --incept-precision bf16 --threads 1
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("googlenet", "inception_v3", "inception_v4", "inception_resnet_v2")
# incept's output must match ORT's to this (max abs difference / max |ORT output|):
# both are float32 engines; incept's Winograd layers differ from direct convolution
# by ~1e-5 relative.
AGREEMENT = 1e-3
# BF16 operands move the random-weight exports' outputs by a few 1e-2 of max |y|
# (docs/bf16.md); a different model moves them by far more.
AGREEMENT_BF16 = 0.25
# incept.h's INCEPT_PRECISION_* constants.
INCEPT_PRECISION = {"f32": 1, "bf16": 2, "bf16x3": 3}
# The 1-minute load average per CPU before a run above which it is flagged as not a
# measurement (this harness itself keeps up to one CPU per thread busy: a run straight
# after another starts near 1).
QUIET_LOAD = 0.75


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cpu_model() -> str:
    """The host's CPU as lscpu names it, with its family and model numbers (a cloud VM's
    "Model name" can be as vague as "AMD EPYC"), caches and hypervisor."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}).stdout
    except OSError:
        out = ""
    f = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}
    if "Model name" not in f:
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        import platform
        return platform.processor() or platform.machine()
    details = [f"family {f.get('CPU family', '?')}, model {f.get('Model', '?')}"]
    caches = ", ".join(f"{c} {f[c].split(' (')[0]}" for c in ("L2 cache", "L3 cache") if c in f)
    details += [caches] if caches else []
    details += [f["Hypervisor vendor"]] if "Hypervisor vendor" in f else []
    return f"{f['Model name']} ({'; '.join(details)})"


def percentile(xs: list[float], p: float) -> float:
    """Linear interpolation between the nearest ranks (numpy's default), like `incept bench`."""
    s = sorted(xs)
    rank = p / 100 * (len(s) - 1)
    lo = int(rank)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (rank - lo)


# ---------------------------------------------------------------------------------------
# The engines: each has .name, .run() (one inference on the fixed input), .output()


class Incept:
    """incept through its C API (include/incept.h)."""

    name = "incept"

    def __init__(self, lib: ctypes.CDLL, model: str, threads: int, precision: str, x, np, name: str = "incept"):
        self.name = name
        self.lib = lib
        self.model = ctypes.c_void_p()
        self.session = ctypes.c_void_p()
        self.check(lib.incept_model_open(model.encode(), ctypes.byref(self.model)), f"open {model}")
        self.check(lib.incept_session_create_with_precision(self.model, threads, 1, INCEPT_PRECISION[precision],
                                                            ctypes.byref(self.session)), "create a session")
        dims = (ctypes.c_size_t * 4)()
        self.check(lib.incept_session_input_shape(self.session, dims), "input shape")
        if tuple(dims) != tuple(x.shape):
            raise RuntimeError(f"incept's {model} takes {tuple(dims)}, the .onnx file {tuple(x.shape)}")
        n = ctypes.c_size_t()
        self.check(lib.incept_session_output_len(self.session, ctypes.byref(n)), "output length")
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.y = np.zeros(n.value, dtype=np.float32)
        self.args = (self.session, self.x.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), self.x.size,
                     self.y.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), self.y.size)

    def check(self, status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"incept: {what}: {self.lib.incept_last_error().decode()} (status {status})")

    def run(self) -> None:
        status = self.lib.incept_session_run(*self.args)
        if status != 0:
            self.check(status, "run")

    def output(self):
        return self.y.copy()

    def close(self) -> None:
        self.lib.incept_session_close(self.session)
        self.lib.incept_model_close(self.model)


class OnnxRuntime:
    name = "ORT"

    def __init__(self, path: Path, threads: int, spinning: bool, x):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.feed = {self.sess.get_inputs()[0].name: x}
        self.out = None

    def run(self) -> None:
        self.out = self.sess.run(None, self.feed)

    def output(self):
        self.run()
        return self.out[0].reshape(-1)

    def close(self) -> None:
        del self.sess


class OpenVino:
    name = "OpenVINO"

    def __init__(self, path: Path, threads: int, precision: str, x):
        import openvino as ov

        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(threads),
                  "INFERENCE_PRECISION_HINT": precision}
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.request.set_input_tensor(ov.Tensor(x))

    def run(self) -> None:
        self.request.infer()

    def output(self):
        self.run()
        return self.request.get_output_tensor(0).data.reshape(-1).copy()

    def close(self) -> None:
        del self.request, self.compiled


# ---------------------------------------------------------------------------------------


def load_incept_library(explicit: str | None) -> tuple[ctypes.CDLL, Path]:
    """The incept shared library: --lib, else $INCEPT_LIB, else the C API crate's
    release build, target/release/libincept.so (`cargo build --release -p
    incept-capi`). Refuses a default library older than the sources it is built from:
    timing an old build by mistake is easy (`cargo build --release` alone does not
    rebuild it) and silent."""
    candidates = [Path(explicit)] if explicit else [
        *([Path(os.environ["INCEPT_LIB"])] if os.environ.get("INCEPT_LIB") else []),
        ROOT / "target" / "release" / "libincept.so",
    ]
    tried = []
    for path in candidates:
        if not path.is_file():
            tried.append(f"{path} (missing)")
            continue
        if not explicit and not os.environ.get("INCEPT_LIB"):
            # The library's sources: the engine's (not its command line's), the kernels', the C API's.
            newest = max((f.stat().st_mtime, f) for d in ("src", "kernels/src", "capi/src")
                         for f in (ROOT / d).rglob("*.rs") if "bin" not in f.relative_to(ROOT / d).parts)
            if newest[0] > path.stat().st_mtime:
                raise SystemExit(f"error: {path} is older than {newest[1].relative_to(ROOT)}: rebuild it with "
                                 "`cargo build --release -p incept-capi` (or pass --lib PATH to time it anyway)")
        try:
            lib = ctypes.CDLL(str(path))
            lib.incept_session_run  # noqa: B018 (raises AttributeError when absent)
        except (OSError, AttributeError) as e:
            tried.append(f"{path} ({e})")
            continue
        declare(lib)
        return lib, path
    raise SystemExit("error: no incept shared library with the C API; build it with "
                     "`cargo build --release -p incept-capi` or pass --lib PATH. Tried:\n  " + "\n  ".join(tried))


def declare(lib: ctypes.CDLL) -> None:
    p, i, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    lib.incept_version.restype = ctypes.c_char_p
    lib.incept_last_error.restype = ctypes.c_char_p
    lib.incept_model_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(p)]
    lib.incept_model_close.argtypes = [p]
    lib.incept_session_create.argtypes = [p, i, i, ctypes.POINTER(p)]
    lib.incept_session_create_with_precision.argtypes = [p, i, i, i, ctypes.POINTER(p)]
    lib.incept_session_close.argtypes = [p]
    lib.incept_session_input_shape.argtypes = [p, ctypes.POINTER(sz)]
    lib.incept_session_output_len.argtypes = [p, ctypes.POINTER(sz)]
    fp = ctypes.POINTER(ctypes.c_float)
    lib.incept_session_run.argtypes = [p, fp, sz, fp, sz]
    for f in ("incept_model_open", "incept_model_close", "incept_session_create",
              "incept_session_create_with_precision", "incept_session_close",
              "incept_session_input_shape", "incept_session_output_len", "incept_session_run"):
        getattr(lib, f).restype = i


def host_steal_ms() -> float | None:
    """The time the hypervisor has run other guests on this VM's CPUs ("steal", all
    CPUs summed, /proc/stat), in ms; None where not reported. Its resolution is a
    clock tick (10 ms)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) * 1e3 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def timed_run(e) -> tuple[float, float | None]:
    """One run of `e`, in ms, and the host's steal during it (None where not reported)."""
    s0 = host_steal_ms()
    t0 = time.perf_counter()
    e.run()
    t1 = time.perf_counter()
    s1 = host_steal_ms()
    return (t1 - t0) * 1e3, None if s0 is None or s1 is None else s1 - s0


def record(e, ms_steal: tuple[float, float | None], times: dict, steal: dict) -> None:
    """Appends one timed run of `e` to `times` and, where reported, its steal to `steal`."""
    ms, st = ms_steal
    times[e.name].append(ms)
    if st is not None:
        steal[e.name].append(st)


def rounds(engines: list, pairs: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Back to back: `pairs` rounds of one timed run per engine, the order rotating
    each round. Times in ms per engine, and the host's steal during each run."""
    times: dict[str, list[float]] = {e.name: [] for e in engines}
    steal: dict[str, list[float]] = {e.name: [] for e in engines}
    for k in range(pairs):
        shift = k % len(engines)
        for e in engines[shift:] + engines[:shift]:
            record(e, timed_run(e), times, steal)
    return times, steal


def settle(quiet_s: float = 0.02, limit_s: float = 1.0) -> None:
    """Waits until the process burns (almost) no CPU for `quiet_s`: the end of any
    engine's spinning after its last run, so that it cannot take a core from the next."""
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        c0 = time.process_time()
        time.sleep(quiet_s)
        if time.process_time() - c0 < 0.1 * quiet_s:
            return


def paced_rounds(engines: list, pairs: int, interval_s: float, frames: int) -> tuple[dict, dict]:
    """Frame-paced: `pairs` rounds; in each, every engine in turn (the order rotating)
    runs `frames` runs starting every `interval_s`, after the process has settled. The
    first run of a burst is not timed; a round's time is the mean of the others. Also
    returns each engine's CPU use between runs, as a fraction of one core."""
    times: dict[str, list[float]] = {e.name: [] for e in engines}
    frame_times: dict[str, list[float]] = {e.name: [] for e in engines}
    idle_cpu: dict[str, list[float]] = {e.name: [] for e in engines}
    steal: dict[str, list[float]] = {e.name: [] for e in engines}
    for k in range(pairs):
        shift = k % len(engines)
        for e in engines[shift:] + engines[:shift]:
            settle()
            timed, next_start = [], time.perf_counter()
            for f in range(frames):
                run = timed_run(e)
                t1 = time.perf_counter()
                if f > 0:
                    record(e, run, {e.name: timed}, steal)
                next_start = max(next_start + interval_s, t1)
                gap = next_start - time.perf_counter()
                if f + 1 < frames and gap > 0:
                    c0, w0 = time.process_time(), time.perf_counter()
                    time.sleep(gap)
                    # Gaps under 2 ms (a run that nearly fills the interval) say little.
                    if gap >= 0.002:
                        idle_cpu[e.name].append((time.process_time() - c0, time.perf_counter() - w0))
            times[e.name].append(statistics.fmean(timed))
            frame_times[e.name] += timed
    # CPU per second of gap, over all gaps; None when runs left no gap (a model slower
    # than the cadence runs back to back).
    return times, {"frame_times": frame_times, "steal": steal,
                   "idle_cpu": {n: sum(c for c, _ in v) / sum(w for _, w in v) if v else None
                                for n, v in idle_cpu.items()}}


def summarise(times: dict[str, list[float]], steal: dict[str, list[float]], peers: list[str],
              paced: dict | None = None) -> dict:
    """Per engine: percentiles of its runs (frame-paced: of every timed frame), the host's
    steal during them and, frame-paced, its CPU use between runs; per peer: the per-round
    ratios incept / peer."""
    row = {}
    for name in times:
        ts = paced["frame_times"][name] if paced else times[name]
        p50 = percentile(ts, 50)
        row[name] = {"p50_ms": p50, "p90_ms": percentile(ts, 90), "p99_ms": percentile(ts, 99),
                     "max_ms": max(ts), "p99_over_p50": percentile(ts, 99) / p50, "times_ms": ts,
                     "steal_ms": steal[name] or None}
        if paced:
            row[name]["idle_cpu"] = paced["idle_cpu"][name]
    for peer in peers:
        ratios = [a / b for a, b in zip(times["incept"], times[peer])]
        row[f"incept/{peer}"] = {"median": percentile(ratios, 50), "p10": percentile(ratios, 10),
                                 "p90": percentile(ratios, 90), "ratios": ratios}
    return row


def rel_diff(a, b) -> float:
    import numpy as np
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def mode_name(interval_ms: float) -> str:
    return "back to back" if interval_ms == 0 else f"frame-paced, a run every {interval_ms:g} ms"


def table(results: list[dict], peers: list[str]) -> str:
    head = "| model | threads | mode | " + " | ".join(
        f"incept / {p} (p10-p90)" for p in peers) + " | incept p50 ms | " + " | ".join(
        f"{p} p50 ms" for p in peers) + " | p99/p50 incept | " + " | ".join(f"p99/p50 {p}" for p in peers) + \
        " | idle CPU incept | " + " | ".join(f"idle CPU {p}" for p in peers) + \
        " | runs with host steal, incept | " + " | ".join(f"... {p}" for p in peers) + " |"
    ncols = 3 + 2 * len(peers) + 1 + 1 + len(peers) + 1 + len(peers) + 1 + len(peers)
    rows = [head, "|---|---:|---|" + "---:|" * (ncols - 3)]
    for r in results:
        cells = [r["model"], str(r["threads"]), mode_name(r["interval_ms"])]
        cells += [f"{r[f'incept/{p}']['median']:.2f} ({r[f'incept/{p}']['p10']:.2f}-{r[f'incept/{p}']['p90']:.2f})"
                  for p in peers]
        cells += [f"{r['incept']['p50_ms']:.1f}"] + [f"{r[p]['p50_ms']:.1f}" for p in peers]
        cells += [f"{r['incept']['p99_over_p50']:.2f}"] + [f"{r[p]['p99_over_p50']:.2f}" for p in peers]
        cells += [f"{100 * r[n]['idle_cpu']:.0f}%" if r[n].get("idle_cpu") is not None else "-"
                  for n in ["incept", *peers]]
        cells += [f"{sum(1 for s in r[n]['steal_ms'] if s > 0)}/{len(r[n]['steal_ms'])}"
                  if r[n]["steal_ms"] else "-" for n in ["incept", *peers]]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), metavar="MODEL",
                    help=f"models: {{MODEL}}.onnx in --model-dir (default: {' '.join(MODELS)})")
    ap.add_argument("--model-dir", default=str(ROOT / "target" / "models"),
                    help="folder of the .onnx files from scripts/export_models.py (default: target/models)")
    ap.add_argument("--lib", help="incept shared library (default: see above)")
    ap.add_argument("--lib-b", metavar="LIB",
                    help="a second incept build (its libincept.so, copied aside) timed as peer 'incept-b' in the "
                         "same rounds: A/B of two builds, interleaved run by run")
    ap.add_argument("--incept-model", choices=("onnx", "builtin"), default="onnx",
                    help="what incept opens: the same .onnx file, or its built-in model of that name "
                         "(same shapes, synthetic weights; the output check is then skipped)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="thread counts (default: 1 2)")
    ap.add_argument("--pairs", type=int, default=30, help="rounds of one run per engine (default: 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs per engine first (default: 3)")
    ap.add_argument("--interval-ms", nargs="+", type=float, default=[0.0, 33.0],
                    help="0: back to back; N: frame-paced, a run starting every N ms (default: 0 33)")
    ap.add_argument("--frames", type=int, default=4,
                    help="frame-paced: runs per engine per round, the first untimed (default: 4)")
    ap.add_argument("--ort-spinning", choices=("auto", "on", "off"), default="auto",
                    help="ORT's worker threads spinning between runs; auto: off back to back, "
                         "ORT's default (on) frame-paced (default: auto)")
    ap.add_argument("--openvino", action="store_true", help="add OpenVINO's CPU plugin (pip install openvino)")
    ap.add_argument("--precision", default="f32",
                    help="OpenVINO's INFERENCE_PRECISION_HINT, e.g. f32 or bf16 (default: f32); "
                         "ORT runs float32")
    ap.add_argument("--incept-precision", choices=tuple(INCEPT_PRECISION), default="f32",
                    help="incept's precision (default: f32)")
    ap.add_argument("--markdown", metavar="FILE", help="append the tables, host, date and command to FILE")
    ap.add_argument("--json", metavar="FILE", help="write every time and ratio to FILE as JSON")
    args = ap.parse_args()
    if args.pairs < 2 or args.warmup < 0 or min(args.threads) < 1 or min(args.interval_ms) < 0 or args.frames < 2:
        ap.error("--pairs and --frames must be at least 2, --warmup at least 0, --threads at least 1, "
                 "--interval-ms at least 0")
    for out in (args.json,):
        if out and Path(out).exists():
            ap.error(f"{out} exists; pick a new file (nothing is overwritten)")
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        raise SystemExit(f"error: {e.name} missing: pip install onnxruntime numpy")
    if args.openvino:
        try:
            import openvino as ov
        except ImportError:
            raise SystemExit("error: openvino missing: pip install openvino")

    lib, lib_path = load_incept_library(args.lib)
    lib_b = None
    if args.lib_b:
        if Path(args.lib_b).resolve() == lib_path.resolve():
            ap.error("--lib-b is the same file as the library under test")
        lib_b, _ = load_incept_library(args.lib_b)
    model_dir = Path(args.model_dir)
    missing = [m for m in args.models if not (model_dir / f"{m}.onnx").is_file()]
    if missing:
        raise SystemExit(f"error: no {', '.join(f'{m}.onnx' for m in missing)} in {model_dir}; make them with "
                         f"`python3 scripts/export_models.py --out {model_dir}` (needs torch, torchvision, timm)")

    cpu = cpu_model()
    versions = {"incept": lib.incept_version().decode(), "onnxruntime": ort.__version__}
    if args.openvino:
        versions["openvino"] = ov.__version__.split("-")[0]
    peers = ["ORT"] + (["OpenVINO"] if args.openvino else []) + (["incept-b"] if lib_b else [])
    command = "python3 " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, os.getcwd()), *sys.argv[1:]])
    log(f"host: {cpu}; {os.cpu_count()} CPUs; incept {versions['incept']} from {lib_path}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "incept"))
    load_before = os.getloadavg()
    started = time.time()
    results = []
    for model in args.models:
        path = model_dir / f"{model}.onnx"
        x = np.random.default_rng(0).standard_normal(
            [d if isinstance(d, int) else 1 for d in ort.InferenceSession(
                str(path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape]).astype(np.float32)
        for threads in args.threads:
            for interval in args.interval_ms:
                spinning = {"on": True, "off": False, "auto": interval > 0}[args.ort_spinning]
                engines = [Incept(lib, model if args.incept_model == "builtin" else str(path), threads,
                                  args.incept_precision, x, np),
                           OnnxRuntime(path, threads, spinning, x)]
                if args.openvino:
                    engines.append(OpenVino(path, threads, args.precision, x))
                if lib_b:
                    engines.append(Incept(lib_b, model if args.incept_model == "builtin" else str(path), threads,
                                          args.incept_precision, x, np, name="incept-b"))
                ref = engines[1].output()
                for e in engines:
                    for _ in range(args.warmup):
                        e.run()
                agreement = {e.name: rel_diff(e.output(), ref) for e in engines if e.name != "ORT"}
                allowed = AGREEMENT_BF16 if args.incept_precision == "bf16" else AGREEMENT
                if args.incept_model == "onnx" and max(v for k, v in agreement.items() if "incept" in k) > allowed:
                    raise SystemExit(f"error: incept's {model} output differs from ORT's by "
                                     f"{agreement['incept']:.1e} (relative): not the same model?")
                if interval > 0:
                    times, paced = paced_rounds(engines, args.pairs, interval / 1e3, args.frames)
                    steal = paced["steal"]
                else:
                    (times, steal), paced = rounds(engines, args.pairs), None
                for e in engines:
                    e.close()
                row = {"model": model, "threads": threads, "interval_ms": interval, "pairs": args.pairs,
                       "ort_spinning": spinning, "rel_diff_vs_ort": agreement, **summarise(times, steal, peers, paced)}
                results.append(row)
                log(f"  {model} t={threads} {mode_name(interval)}: "
                    + ", ".join(f"incept/{p} {row[f'incept/{p}']['median']:.3f}" for p in peers)
                    + f" (incept p50 {row['incept']['p50_ms']:.2f} ms, ORT {row['ORT']['p50_ms']:.2f} ms; "
                    + "output vs ORT: " + ", ".join(f"{k} {v:.1e}" for k, v in agreement.items()) + ")")
    load_after = os.getloadavg()
    elapsed = time.time() - started

    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    spin_note = {"auto": "ORT spinning off back to back, on (its default) frame-paced",
                 "on": "ORT spinning on", "off": "ORT spinning off"}[args.ort_spinning]
    notes = (f"Host: **{cpu}**, {os.cpu_count()} CPUs; {today}; "
             + ", ".join(f"{k} {v}" for k, v in versions.items())
             + f" (incept {args.incept_precision}"
             + (f", OpenVINO precision hint {args.precision})" if args.openvino else ")")
             + f". Back to back: {args.pairs} rounds of one run per engine; frame-paced: {args.pairs} rounds of "
             f"{args.frames} runs per engine at the cadence, the first untimed, after the process settles; "
             "order rotating each round; ratio: median of "
             f"the per-round ratios (p10-p90 in brackets), below 1 incept is faster; {spin_note}; "
             "runs with host steal: timed runs during which the hypervisor ran other guests on this VM's "
             "CPUs (/proc/stat, 10 ms ticks), a cause of long tails no engine controls; "
             f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after ({elapsed:.0f} s).")
    if load_before[0] > QUIET_LOAD * (os.cpu_count() or 1):
        notes += (f" **Load average {load_before[0]:.1f} on {os.cpu_count()} CPUs before the run: other work "
                  "shared the machine; not a measurement.**")
    text = table(results, peers)
    print(f"CPU: {cpu}\n\n{text}\n\n{notes}")
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(f"### {cpu}, {today}\n\n```\n{command}\n```\n\n{text}\n\n{notes}\n\n")
        log(f"appended the table to {args.markdown}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "cpu": cpu, "cpus": os.cpu_count(), "date": today, "command": command, "versions": versions,
            "library": str(lib_path), "precision": args.precision, "loadavg_before": load_before,
            "loadavg_after": load_after, "results": results}, indent=1) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
