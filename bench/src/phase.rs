//! A timed phase: N client threads share one plan (a warm-up, then a measured window or a request count),
//! each produces its own output, and the outputs are merged when the phase ends. The progress bar runs beside.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::mix::{Kind, WorkerOut};
use crate::procs::MemSample;
use crate::progress::Progress;
use crate::wire::Counters;

/// Upper bound on the duration of a `--requests` phase (a count that is never reached cannot hang the bench).
const MAX_COUNTED_PHASE: Duration = Duration::from_secs(3600);
/// Interval at which the progress bar reads the live counters.
const PROGRESS_POLL: Duration = Duration::from_millis(100);
/// The rate beside the bar is measured over this interval.
const RATE_EVERY: Duration = Duration::from_secs(1);

/// How long a phase lasts: `requests` requests, or a warm-up of `warmup` seconds then `duration` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub requests: Option<u64>,
    pub warmup: f64,
    pub duration: f64,
}

/// When a phase starts counting and when it stops.
pub struct Plan {
    warm_end: Instant,
    deadline: Instant,
    window: Duration,
    count: Option<u64>,
    issued: AtomicU64,
}

impl Plan {
    fn new(schedule: Schedule) -> Plan {
        let now = Instant::now();
        let issued = AtomicU64::new(0);
        match schedule.requests {
            Some(n) => Plan {
                warm_end: now,
                deadline: now + MAX_COUNTED_PHASE,
                window: Duration::ZERO,
                count: Some(n),
                issued,
            },
            None => {
                let warm_end = now + Duration::from_secs_f64(schedule.warmup);
                let window = Duration::from_secs_f64(schedule.duration);
                Plan { warm_end, deadline: warm_end + window, window, count: None, issued }
            }
        }
    }

    /// Whether another request may start; `Some(measured)` says whether it counts.
    pub fn next(&self) -> Option<bool> {
        let now = Instant::now();
        if now >= self.deadline || crate::stopping() {
            return None;
        }
        if let Some(n) = self.count {
            if self.issued.fetch_add(1, Ordering::Relaxed) >= n {
                return None;
            }
        }
        Some(now >= self.warm_end)
    }

    /// The bar's length and position: requests for a counted phase, milliseconds for a timed one.
    fn progress(&self, started: Instant, done: u64) -> (u64, u64) {
        match self.count {
            Some(n) => (n, done.min(n)),
            None => {
                let total = self.deadline.saturating_duration_since(started).as_millis() as u64;
                (total, (started.elapsed().as_millis() as u64).min(total))
            }
        }
    }
}

/// Live counters for the progress bar.
#[derive(Default)]
pub struct Live {
    pub done: AtomicU64,
    pub errors: AtomicU64,
}

/// Result of one timed phase.
pub struct Phase {
    pub threads: usize,
    pub window: Duration,
    pub out: WorkerOut,
    pub mem: Vec<MemSample>,
    /// CPU seconds the server (or the trivial server) used during the phase, warm-up included.
    pub server_cpu: Option<f64>,
    /// Requests issued during the phase, warm-up included (the denominator of `server_cpu`).
    pub issued: u64,
    /// Messages accepted for offline recipients during the phase (they stay queued until the end).
    pub offline_queued: usize,
}

impl Phase {
    pub fn total(&self) -> u64 {
        self.out.lat.iter().map(|l| l.count()).sum()
    }

    pub fn errors(&self) -> u64 {
        self.out.errors.iter().sum()
    }

    pub fn rate(&self) -> f64 {
        self.total() as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Server CPU microseconds per request.
    pub fn cpu_per_request(&self) -> Option<f64> {
        self.server_cpu.map(|s| s * 1e6 / self.issued.max(1) as f64)
    }
}

/// Runs `threads` copies of `work` under one plan, with a progress bar; returns the phase with the merged
/// output, the measured window and the number of requests issued (warm-up included). The caller adds what it
/// measures around the phase (server CPU, memory samples, offline queue).
pub fn drive(
    schedule: Schedule,
    label: &str,
    threads: usize,
    show: bool,
    counters: Option<&Counters>,
    work: impl Fn(usize, &Plan, &Live) -> WorkerOut + Sync,
) -> Phase {
    let plan = Plan::new(schedule);
    let live = Live::default();
    let finished = AtomicBool::new(false);
    let started = Instant::now();
    let (out, ended) = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (plan, live, work) = (&plan, &live, &work);
                thread::Builder::new()
                    .name(format!("worker-{t}"))
                    .spawn_scoped(s, move || work(t, plan, live))
                    .map_err(|e| e.to_string())
            })
            .collect();
        let label = format!("{label} c={threads}");
        let (plan, live, finished) = (&plan, &live, &finished);
        s.spawn(move || show_progress(&label, show, plan, live, counters, finished, started));
        let mut out = WorkerOut::default();
        for h in handles {
            match h {
                Ok(h) => out.merge(h.join().unwrap_or_default()),
                Err(e) => out.error(Kind::SendOnline, format!("cannot start a worker thread: {e}")),
            }
        }
        let ended = Instant::now();
        finished.store(true, Ordering::SeqCst);
        (out, ended)
    });
    let window = if plan.count.is_some() { ended - started } else { plan.window };
    let issued = live.done.load(Ordering::Relaxed);
    Phase { threads, window, out, mem: Vec::new(), server_cpu: None, issued, offline_queued: 0 }
}

fn show_progress(
    label: &str,
    show: bool,
    plan: &Plan,
    live: &Live,
    counters: Option<&Counters>,
    finished: &AtomicBool,
    started: Instant,
) {
    let (length, _) = plan.progress(started, 0);
    let mut bar = Progress::new(label, length, show);
    let (mut last_t, mut last_n) = (Instant::now(), 0u64);
    let mut rate = 0.0;
    // Bounded by the phase: the workers stop at the plan's deadline, and then `finished` is set.
    while !finished.load(Ordering::SeqCst) {
        thread::sleep(PROGRESS_POLL);
        let n = live.done.load(Ordering::Relaxed);
        if last_t.elapsed() >= RATE_EVERY {
            rate = n.saturating_sub(last_n) as f64 / last_t.elapsed().as_secs_f64();
            (last_t, last_n) = (Instant::now(), n);
        }
        let (_, position) = plan.progress(started, n);
        bar.update(position, || {
            let delivered = counters.map_or(String::new(), |c| {
                let (m, a) = (c.messages.load(Ordering::Relaxed), c.acks.load(Ordering::Relaxed));
                format!("  delivered {m}  acks {a}")
            });
            let errors = live.errors.load(Ordering::Relaxed);
            format!("{rate:6.0}/s  done {n}  errors {errors}{delivered}")
        });
    }
    bar.finish();
}
