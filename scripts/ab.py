#!/usr/bin/env python3
"""A/B two incept binaries on the same models, interleaved: is a change within noise?

    python3 scripts/ab.py OLD_INCEPT NEW_INCEPT [--models googlenet inception_v3] \
        [--threads 1 2] [--pairs 9] [--runs 5]
    python3 scripts/ab.py OLD_INCEPT NEW_INCEPT --peak [--models inception_v3] [--pairs 4]

Each pair runs `incept bench MODEL --threads T --runs R --json` once with each binary,
the order flipped every pair, so drifting machine load hits both alike. Per model and
thread count it prints both medians (of the per-bench medians), the median of the
per-pair ratios NEW / OLD and their spread (min, max). Below 1: NEW is faster.

With `--peak`, each pair runs `incept peak MODEL --json` (the built-in model's layers
alone, one thread) instead, and it prints per kind and per layer the share of the FMA
peak (medians) and the median of the per-pair ratios NEW / OLD of that share: above 1,
NEW is faster.
Prints the host's CPU model first: figures from different hosts are never compared.
"""

import argparse
import json
import statistics
import subprocess


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return "unknown CPU"


def bench(binary, model, threads, runs):
    out = subprocess.run(
        [binary, "bench", model, "--threads", str(threads), "--runs", str(runs), "--json"],
        capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)["median_ms"]


def peak(binary, model):
    out = subprocess.run([binary, "peak", model, "--json"], capture_output=True, text=True, check=True).stdout
    # The tier whose layers were timed (the widest; the others list only their peak).
    return next(t for t in json.loads(out)["tiers"] if t["layers"])


def peak_ab(args):
    print(f"host: {cpu_model()}; {args.pairs} pairs of `peak`, order flipped every pair; share of the FMA peak")
    for model in args.models:
        got = {"old": [], "new": []}
        for i in range(args.pairs):
            order = [("old", args.old), ("new", args.new)]
            if i % 2:
                order.reverse()
            for name, binary in order:
                got[name].append(peak(binary, model))
        print(f"{model} ({got['old'][0]['kernel']}): old, new, median new/old (min, max)")

        def row(label, old, new):
            ratios = [n / o for o, n in zip(old, new)]
            print(f"  {label:<40}{statistics.median(old):>7.1%}{statistics.median(new):>7.1%}"
                  f"{statistics.median(ratios):>8.3f} ({min(ratios):.3f}, {max(ratios):.3f})")

        # Kinds both binaries report (a kind one of them names differently is left out).
        for kind in got["old"][0]["kinds"]:
            if kind in got["new"][0]["kinds"]:
                row(kind, *([t["kinds"][kind]["fraction_of_peak"] for t in got[k]] for k in ("old", "new")))
        for i, layer in enumerate(got["old"][0]["layers"]):
            label = f"{layer['window']} {'x'.join(map(str, layer['input']))} -> {layer['out_channels']}"
            row(label, *([t["layers"][i]["fraction_of_peak"] for t in got[k]] for k in ("old", "new")))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--models", nargs="+", default=["googlenet", "inception_v3", "inception_v4", "inception_resnet_v2"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--pairs", type=int, default=9)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--peak", action="store_true", help="time the layers alone (`incept peak`) instead")
    args = p.parse_args()
    if args.peak:
        return peak_ab(args)

    print(f"host: {cpu_model()}; {args.pairs} pairs of `bench --runs {args.runs}`, order flipped every pair")
    print(f"{'model':<22}{'threads':>8}{'old ms':>10}{'new ms':>10}{'new/old':>10}{'min':>8}{'max':>8}")
    for model in args.models:
        for threads in args.threads:
            olds, news, ratios = [], [], []
            for i in range(args.pairs):
                order = [("old", args.old), ("new", args.new)]
                if i % 2:
                    order.reverse()
                got = {name: bench(binary, model, threads, args.runs) for name, binary in order}
                olds.append(got["old"])
                news.append(got["new"])
                ratios.append(got["new"] / got["old"])
            print(f"{model:<22}{threads:>8}{statistics.median(olds):>10.2f}{statistics.median(news):>10.2f}"
                  f"{statistics.median(ratios):>10.3f}{min(ratios):>8.3f}{max(ratios):>8.3f}")


if __name__ == "__main__":
    main()
