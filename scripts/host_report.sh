#!/usr/bin/env bash
# Everything issues 19 (BF16) and 20 (FP32 on every host) measure on a host, in one go,
# into one markdown file for docs/performance.md (one section per host: never mix hosts).
#
#   scripts/host_report.sh [--quick] [--model-dir DIR] [--python PY] [--out FILE]
#
# In order: the CPU (lscpu, and which tiers it has); every tier the CPU has, forced
# and asserted to have run (INCEPT_EXPECT_*: a tier the tests skip here is a failure);
# the FP32 and BF16 peaks and each layer kind's share (`incept peak`); FP32 against
# ONNX Runtime, in one process, 1 and 2 threads, back to back and a run every 33 ms;
# BF16 and bf16x3 against OpenVINO BF16; BF16 and bf16x3 accuracy against float64
# beside OpenVINO's. About 30 minutes (--quick: fewer rounds, about 10; figures to
# look at, not to report). Needs the exports of scripts/export_models.py and a
# Python with numpy, onnxruntime and openvino.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
model_dir=target/models
py=python3
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --model-dir) model_dir=$2; shift ;;
        --python) py=$2; shift ;;
        --out) out=$2; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "host_report.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
out=${out:-host-report-$(date -u +%Y%m%dT%H%MZ).md}
pairs=30; acc_images=16
[ "$quick" = 1 ] && pairs=8 && acc_images=4
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { [[ " $flags " == *" $1 "* ]]; }
# SCHED_FIFO keeps the host's other jobs off the timed runs where the user may ask for it.
rt=""
chrt -f 10 true 2>/dev/null && rt="chrt -f 10"

section() { printf '\n## %s\n\n' "$1" | tee -a "$out"; }
record() { # a command and its output, into the report as a code block
    printf '```\n$ %s\n' "$*" >>"$out"
    "$@" 2>&1 | tee -a "$out"
    printf '```\n' >>"$out"
}

{
    printf '# Host report, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'CPU: %s; %s CPUs; commit %s\n' "$(lscpu | sed -n 's/^Model name: *//p')" "$(nproc)" \
        "$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    printf 'lscpu: family %s, model %s; %s\n' "$(lscpu | sed -n 's/^CPU family: *//p')" \
        "$(lscpu | sed -n 's/^Model: *//p')" "$(lscpu | sed -n 's/^Hypervisor vendor: *//p')"
    printf 'tiers: avx2/fma %s, avx512f %s, avx512_bf16 %s, amx_bf16 %s\n' \
        "$(has fma && echo yes || echo no)" "$(has avx512f && echo yes || echo no)" \
        "$(has avx512_bf16 && echo yes || echo no)" "$(has amx_bf16 && echo yes || echo no)"
} | tee "$out"

cargo build --release --quiet
cargo build --release --quiet -p incept-capi

section "Every tier this CPU has, forced (a skip is a failure here)"
expect=()
has avx512f && expect+=(INCEPT_EXPECT_AVX512=1)
has avx512_bf16 && expect+=(INCEPT_EXPECT_AVX512BF16=1)
has amx_bf16 && expect+=(INCEPT_EXPECT_AMX=1)
record env "${expect[@]}" cargo test --release --quiet -p incept-kernels \
    --test conv_tiers --test bf16_tiers --test bf16x3_tiers --test bf16_image
has amx_bf16 && record cargo test --release --quiet -p incept-kernels --lib amx

section "Peaks and each layer kind's share (one thread)"
record $rt target/release/incept peak inception_v3
record $rt target/release/incept peak inception_resnet_v2
has avx512_bf16 && record $rt target/release/incept peak --bf16 inception_v3

section "FP32 against ONNX Runtime, one process"
$rt "$py" scripts/peers_inproc.py --model-dir "$model_dir" --threads 1 2 --pairs "$pairs" --frames 6 \
    --interval-ms 0 33 --markdown "$out"

if has avx512_bf16 || has amx_bf16; then
    for p in bf16 bf16x3; do
        section "incept $p against OpenVINO BF16, one process"
        $rt "$py" scripts/peers_inproc.py --model-dir "$model_dir" --threads 1 2 --pairs "$pairs" \
            --interval-ms 0 --openvino --precision bf16 --incept-precision "$p" --markdown "$out"
        section "incept $p accuracy against float64, beside OpenVINO BF16"
        record "$py" scripts/accuracy.py --model-dir "$model_dir" --images "$acc_images" --precision "$p" --openvino
    done
fi

printf '\nreport: %s\n' "$out"
