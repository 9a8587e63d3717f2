//! `incept bench MODEL`: load time, memory, and latency as a distribution (p50, p90,
//! p99, max and the first run after load), with runs back to back or frame-paced
//! (`--interval-ms N`: a run starts every N ms, as a camera app would call it).

use std::thread::sleep;
use std::time::{Duration, Instant};

use incept::Session;
use serde_json::json;

use crate::heap;

/// Arguments of `incept bench`.
#[derive(clap::Args)]
pub struct Args {
    /// A built-in model name, a model file or a .onnx file.
    #[arg(default_value = "inception_v3")]
    model: String,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Convolution precision: `f32`, `bf16` or `bf16x3` (default: the model's own).
    #[arg(long)]
    precision: Option<incept::Precision>,
    /// Timed runs (after one untimed warm-up run, the first after load). Percentiles
    /// need many: p99 of fewer than 100 runs is close to the max.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Images per run.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Frame-paced: start a run every this many milliseconds (33.3 for 30 frames a
    /// second), sleeping in between; a run that overruns is followed at once and
    /// counted. Default: back to back.
    #[arg(long, value_name = "MS", value_parser = parse_interval, allow_negative_numbers = true)]
    interval_ms: Option<f64>,
    /// How the process spends the gap between frame-paced runs: `sleep` (as an app
    /// would), `spin` (busy on one core: the clock stays up, caches stay as they are),
    /// or `stream` (busy reading and writing 256 MiB: the clock stays up, the caches
    /// are flushed). Comparing them tells the core's idle state from cache traffic.
    #[arg(long, value_enum, default_value_t = Idle::Sleep, requires = "interval_ms")]
    idle: Idle,
    /// Print JSON (with `--profile`, the profile under the key `profile`).
    #[arg(long)]
    json: bool,
    /// Also time every step and print where the time goes; with `--interval-ms`,
    /// compare each step after the idle gap with the same step run back to back.
    #[arg(long)]
    profile: bool,
    /// The clock `--profile` times steps with: `wall`, or `thread-cpu` (the calling
    /// thread's CPU time: steadier on a shared machine, as time slices other
    /// processes take do not count; at several threads it times the leading thread).
    #[arg(long, value_enum, default_value_t = StepClock::Wall, requires = "profile")]
    clock: StepClock,
}

/// What `--profile` times steps with.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StepClock {
    Wall,
    ThreadCpu,
}

/// The calling thread's CPU time (the wall clock where the OS has no such clock).
fn thread_cpu_clock() -> std::time::Duration {
    std::time::Duration::from_secs_f64((crate::peak::Clock::thread_cpu().now)())
}

/// How to spend the gap before a frame-paced run.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Idle {
    Sleep,
    Spin,
    Stream,
}

/// Bytes the `stream` gap reads and writes: several times any last-level cache.
const STREAM_BYTES: usize = 256 << 20;

/// Spends the time until `until` as `how` says; `buffer` is streamed through for
/// [`Idle::Stream`] (empty otherwise).
fn idle_until(until: Instant, how: Idle, buffer: &mut [u64]) {
    match how {
        Idle::Sleep => sleep(until.saturating_duration_since(Instant::now())),
        Idle::Spin => {
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        Idle::Stream => {
            // One word per 64-byte line, read and written, a MiB between clock checks.
            'outer: loop {
                for chunk in buffer.chunks_mut((1 << 20) / 8) {
                    for line in chunk.iter_mut().step_by(8) {
                        *line = line.wrapping_add(1);
                    }
                    if Instant::now() >= until {
                        break 'outer;
                    }
                }
            }
            std::hint::black_box(&buffer);
        }
    }
}

/// The longest interval accepted: a minute between runs.
const MAX_INTERVAL_MS: f64 = 60_000.0;

fn parse_interval(s: &str) -> Result<f64, String> {
    let ms: f64 = s.trim().parse().map_err(|_| "not a number of milliseconds".to_string())?;
    if !(ms > 0.0 && ms <= MAX_INTERVAL_MS) {
        return Err(format!("must be more than 0 and at most {MAX_INTERVAL_MS} ms"));
    }
    Ok(ms)
}

pub fn run(args: &Args) -> Result<(), String> {
    let (name, threads, runs, batch) = (args.model.as_str(), args.threads, args.runs, args.batch);
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let heap_before = heap::live_bytes();
    let t0 = Instant::now();
    let model = crate::load(name, false)?;
    let mut s = crate::session(&model, batch, threads, args.precision)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let heap_after_load = heap::live_bytes().saturating_sub(heap_before);
    let heap_peak = heap::peak_bytes();
    let program = model.program_at(s.precision()).map_err(|e| e.to_string())?;
    let weights = &program.tensors;
    let (weight_bytes, mapped_bytes, gathered_bytes) =
        (weights.bytes(), weights.mapped_bytes(), weights.gathered_bytes());
    let mut x = crate::buffer(s.input_len(), "input")?;
    for (i, x) in x.iter_mut().enumerate() {
        *x = ((i * 7919) % 2001) as f32 / 1000.0 - 1.0;
    }
    let mut y = crate::buffer(s.output_len(), "output")?;
    let interval = args.interval_ms.map(|ms| Duration::from_secs_f64(ms / 1e3));
    let mut next_start = Instant::now() + interval.unwrap_or_default();
    let first_ms = timed(&mut s, &x, &mut y)?;

    let mut buffer = vec![0u64; if args.idle == Idle::Stream { STREAM_BYTES / 8 } else { 0 }];
    let mut times = Vec::with_capacity(runs);
    let mut overruns = 0;
    for _ in 0..runs {
        if let Some(interval) = interval {
            let now = Instant::now();
            if next_start > now {
                idle_until(next_start, args.idle, &mut buffer);
            } else {
                overruns += 1;
            }
            next_start = next_start.max(now) + interval;
        }
        times.push(timed(&mut s, &x, &mut y)?);
    }
    let latency = Latency::of(times);

    let gflops = 2.0 * model.graph().macs() as f64 * batch as f64 / 1e9 / (latency.p50 / 1e3);
    let idle = idle_cpu_fraction(Duration::from_millis(500));
    let profile = if args.profile {
        let clock = match args.clock {
            StepClock::ThreadCpu => {
                s.set_profile_clock(thread_cpu_clock);
                crate::peak::Clock::thread_cpu().name
            }
            StepClock::Wall => "wall",
        };
        let profile = match interval {
            None => Profile::Steps(steps_profile(&mut s, &x, &mut y, runs)?),
            Some(gap) => Profile::AfterIdle(after_idle_profile(&mut s, &x, &mut y, runs, gap, args.idle, &mut buffer)?),
        };
        Some((clock, profile))
    } else {
        None
    };
    if args.json {
        let mut v = json!({
            "model": name, "threads": threads, "batch": batch, "runs": runs, "tier": s.tier().name(),
            "precision": s.precision().name(), "bf16_tier": s.bf16_tier().map(|t| t.name()),
            "interval_ms": args.interval_ms, "overruns": interval.map(|_| overruns),
            "idle": interval.map(|_| idle_name(args.idle)),
            "load_ms": load_ms, "first_ms": first_ms,
            // The name `first_ms` had before; kept for scripts that read it.
            "first_run_ms": first_ms,
            "median_ms": latency.p50, "min_ms": latency.min,
            "p50_ms": latency.p50, "p90_ms": latency.p90, "p99_ms": latency.p99, "max_ms": latency.max,
            "heap_after_load_bytes": heap_after_load, "heap_peak_bytes": heap_peak, "arena_bytes": s.plan().arena_bytes(),
            "weight_bytes": weight_bytes, "mapped_weight_bytes": mapped_bytes, "gathered_weight_bytes": gathered_bytes,
            "gflops_median": gflops,
            "idle_cpu_fraction": idle,
        });
        if let Some((clock, p)) = &profile {
            v["profile"] = p.to_json(clock);
        }
        println!("{v:#}");
    } else {
        let pacing = match args.interval_ms {
            Some(ms) => format!(
                "frame-paced, a run starting every {ms} ms ({overruns} overran), {} in between",
                idle_name(args.idle)
            ),
            None => "back to back".into(),
        };
        println!(
            "{name}: load {load_ms:.1} ms, median {:.2} ms, min {:.2} ms over {runs} runs ({gflops:.1} GFLOP/s), batch {batch}, {threads} thread(s), {} kernels, precision {}",
            latency.p50,
            latency.min,
            s.tier().name(),
            crate::precision_name(&s)
        );
        println!(
            "latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms, first run after load {first_ms:.2} ms; {pacing}",
            latency.p50, latency.p90, latency.p99, latency.max
        );
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        println!(
            "memory: heap after load {:.1} MiB (arena {:.1} MiB); weights {:.1} MiB: {:.1} MiB mapped from the file, {:.1} MiB gathered outside the heap (huge pages where granted)",
            mib(heap_after_load),
            mib(s.plan().arena_bytes()),
            mib(weight_bytes),
            mib(mapped_bytes),
            mib(gathered_bytes)
        );
        if let Some(idle) = idle {
            println!("idle between runs: the process used {:.1}% of one core", 100.0 * idle);
        }
        if let Some((clock, profile)) = &profile {
            if args.clock == StepClock::ThreadCpu {
                println!("steps timed by the {clock} clock");
            }
            profile.print();
        }
    }
    Ok(())
}

fn idle_name(how: Idle) -> &'static str {
    match how {
        Idle::Sleep => "sleep",
        Idle::Spin => "spin",
        Idle::Stream => "stream",
    }
}

/// One run, in milliseconds.
fn timed(s: &mut Session, x: &[f32], y: &mut [f32]) -> Result<f64, String> {
    let t = Instant::now();
    s.run(x, y).map_err(|e| e.to_string())?;
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

/// Run times in milliseconds, summarised.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Latency {
    min: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    /// `times` must not be empty.
    fn of(mut times: Vec<f64>) -> Self {
        times.sort_by(f64::total_cmp);
        let at = |p: f64| percentile(&times, p);
        Latency { min: times[0], p50: at(50.0), p90: at(90.0), p99: at(99.0), max: times[times.len() - 1] }
    }
}

/// The `p`th percentile of sorted, non-empty `sorted`, interpolated linearly between the
/// two nearest ranks (numpy's default): the median of an even count is the mean of the
/// middle two, and p <= q gives percentile(p) <= percentile(q).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// CPU time the whole process burns while the session sits idle for `wait`, as a
/// fraction of one core (a spinning worker pool would show ~1 per thread). Linux only.
fn idle_cpu_fraction(wait: Duration) -> Option<f64> {
    fn cpu_seconds() -> Option<f64> {
        // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks (100 Hz).
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
        let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }
    let before = cpu_seconds()?;
    sleep(wait);
    Some((cpu_seconds()? - before) / wait.as_secs_f64())
}

/// Where the time of the profiled runs goes, as `--profile` prints it.
enum Profile {
    /// Back to back: time by operator kind, and the slowest steps.
    Steps(StepsProfile),
    /// Frame-paced: each step after the idle gap against the same step straight after.
    AfterIdle(AfterIdleProfile),
}

/// Mean time per run of each step, summed by operator kind.
struct StepsProfile {
    /// `(kind, seconds, multiply-adds, steps)`, the most time first.
    kinds: Vec<(String, f64, u64, usize)>,
    /// Every step, the most time first.
    slowest: Vec<incept::exec::StepProfile>,
    total: f64,
}

/// Rows the text shows of the slowest steps.
const SLOWEST_SHOWN: usize = 15;

/// Runs `runs` more times with per-step timing.
fn steps_profile(s: &mut Session, x: &[f32], y: &mut [f32], runs: usize) -> Result<StepsProfile, String> {
    s.set_profiling(true);
    for _ in 0..runs {
        s.run(x, y).map_err(|e| e.to_string())?;
    }
    let steps = s.profile();
    s.set_profiling(false);
    let total: f64 = steps.iter().map(|p| p.seconds).sum();
    let mut kinds: Vec<(String, f64, u64, usize)> = Vec::new();
    for p in &steps {
        match kinds.iter_mut().find(|k| k.0 == p.kind) {
            Some(k) => (k.1, k.2, k.3) = (k.1 + p.seconds, k.2 + p.macs, k.3 + 1),
            None => kinds.push((p.kind.clone(), p.seconds, p.macs, 1)),
        }
    }
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut slowest = steps;
    slowest.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    Ok(StepsProfile { kinds, slowest, total })
}

fn gflops(macs: u64, secs: f64) -> f64 {
    if secs > 0.0 { 2.0 * macs as f64 / secs / 1e9 } else { 0.0 }
}

/// Where a run after an idle gap loses time: per step (in plan order) the median
/// time over the pairs of a run after the gap and one straight after it.
struct AfterIdleProfile {
    gap: Duration,
    how: Idle,
    pairs: usize,
    /// The median sums of the steps, after the gap and straight after.
    total_idle: f64,
    total_warm: f64,
    /// `(kind, name, after the gap, straight after)` in seconds, in plan order.
    steps: Vec<(String, String, f64, f64)>,
}

/// `runs` pairs of a profiled run after idling `gap` as `how` says and a profiled
/// run straight after it.
fn after_idle_profile(
    s: &mut Session,
    x: &[f32],
    y: &mut [f32],
    runs: usize,
    gap: Duration,
    how: Idle,
    buffer: &mut [u64],
) -> Result<AfterIdleProfile, String> {
    // [pair][step] in seconds, for the run after the gap and the run after it.
    let (mut idle, mut warm) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        idle_until(Instant::now() + gap, how, buffer);
        for times in [&mut idle, &mut warm] {
            s.set_profiling(true);
            s.run(x, y).map_err(|e| e.to_string())?;
            times.push(s.profile().iter().map(|p| p.seconds).collect::<Vec<f64>>());
        }
    }
    let names = s.profile();
    s.set_profiling(false);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        percentile(&v, 50.0)
    };
    let total = |runs: &[Vec<f64>]| median(runs.iter().map(|r| r.iter().sum()).collect());
    let steps = names.into_iter().enumerate().map(|(i, step)| {
        let (a, b) = (median(idle.iter().map(|r| r[i]).collect()), median(warm.iter().map(|r| r[i]).collect()));
        (step.kind, step.name, a, b)
    });
    let steps = steps.collect();
    Ok(AfterIdleProfile { gap, how, pairs: runs, total_idle: total(&idle), total_warm: total(&warm), steps })
}

impl Profile {
    /// The tables: for back-to-back runs, time by operator kind and the slowest
    /// steps, with their GFLOP/s; after an idle gap, each step's time and the
    /// difference, with the running sum of the differences, so that a cost paid once
    /// at the start (waking the worker pool, the clock ramping up) shows as a jump in
    /// the first steps and a cost spread over the run (caches, TLB refilled layer by
    /// layer) as a steady climb.
    fn print(&self) {
        match self {
            Profile::Steps(p) => {
                println!("\n{:<28} {:>6} {:>9} {:>6} {:>8}", "kind", "steps", "ms", "%", "GFLOP/s");
                for (kind, secs, macs, n) in &p.kinds {
                    let share = 100.0 * secs / p.total;
                    println!("{kind:<28} {n:>6} {:>9.3} {share:>5.1}% {:>8.1}", secs * 1e3, gflops(*macs, *secs));
                }
                println!("\n{:<48} {:<20} {:>9} {:>8}", "slowest steps", "kind", "ms", "GFLOP/s");
                for p in p.slowest.iter().take(SLOWEST_SHOWN) {
                    println!(
                        "{:<48} {:<20} {:>9.3} {:>8.1}",
                        p.name,
                        p.kind,
                        p.seconds * 1e3,
                        gflops(p.macs, p.seconds)
                    );
                }
            }
            Profile::AfterIdle(p) => {
                println!(
                    "\nafter {:.1} ms of {} vs straight after: median of {} pairs, sum of steps {:.3} vs {:.3} ms",
                    p.gap.as_secs_f64() * 1e3,
                    idle_name(p.how),
                    p.pairs,
                    p.total_idle * 1e3,
                    p.total_warm * 1e3
                );
                println!(
                    "{:>4} {:<20} {:>9} {:>9} {:>8} {:>9}  name",
                    "step", "kind", "idle ms", "warm ms", "diff ms", "cum diff"
                );
                let mut cumulative = 0.0;
                for (i, (kind, name, a, b)) in p.steps.iter().enumerate() {
                    cumulative += a - b;
                    // Every step of the first 20, then only those that differ by 10 us or more.
                    if i < 20 || (a - b).abs() >= 1e-5 || i == p.steps.len() - 1 {
                        let (a, b, d, c) = (a * 1e3, b * 1e3, (a - b) * 1e3, cumulative * 1e3);
                        println!("{i:>4} {kind:<20} {a:>9.3} {b:>9.3} {d:>+8.3} {c:>+9.3}  {name}");
                    }
                }
            }
        }
    }

    /// The same figures for `--json` (every step, in milliseconds), timed by `clock`.
    fn to_json(&self, clock: &str) -> serde_json::Value {
        match self {
            Profile::Steps(p) => {
                let kinds = p.kinds.iter().map(|(kind, secs, macs, n)| {
                    json!({"kind": kind, "steps": n, "ms": secs * 1e3, "percent": 100.0 * secs / p.total,
                           "gflops": gflops(*macs, *secs)})
                });
                let kinds: Vec<_> = kinds.collect();
                let slowest = p.slowest.iter().take(SLOWEST_SHOWN).map(|s| {
                    json!({"name": s.name, "kind": s.kind, "ms": s.seconds * 1e3, "gflops": gflops(s.macs, s.seconds)})
                });
                let slowest: Vec<_> = slowest.collect();
                json!({"clock": clock, "total_ms": p.total * 1e3, "kinds": kinds, "slowest_steps": slowest})
            }
            Profile::AfterIdle(p) => {
                let mut cumulative = 0.0;
                let steps = p.steps.iter().map(|(kind, name, a, b)| {
                    cumulative += a - b;
                    json!({"kind": kind, "name": name, "idle_ms": a * 1e3, "warm_ms": b * 1e3,
                           "diff_ms": (a - b) * 1e3, "cum_diff_ms": cumulative * 1e3})
                });
                let steps: Vec<_> = steps.collect();
                json!({
                    "clock": clock, "gap_ms": p.gap.as_secs_f64() * 1e3, "idle": idle_name(p.how), "pairs": p.pairs,
                    "idle_total_ms": p.total_idle * 1e3, "warm_total_ms": p.total_warm * 1e3, "steps": steps,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 50.0), 2.5);
        assert_eq!(percentile(&sorted, 100.0), 4.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        let l = Latency::of((1..=100).rev().map(f64::from).collect());
        assert_eq!((l.min, l.p50, l.max), (1.0, 50.5, 100.0));
        assert!((l.p90 - 90.1).abs() < 1e-9 && (l.p99 - 99.01).abs() < 1e-9, "{l:?}");
    }

    #[test]
    fn interval_must_be_positive_and_bounded() {
        assert_eq!(parse_interval("33.3"), Ok(33.3));
        for bad in ["0", "-5", "abc", "nan", "inf", "60001", ""] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
