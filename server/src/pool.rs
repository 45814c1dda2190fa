//! A cached pool of worker threads: a finished job's thread parks and takes the next one.
//!
//! Creating and ending a thread per connection cost more than serving the request itself: a trivial server
//! answers 2.5× more connections per second without the spawn, and ours made 28 syscalls per request, 14 of
//! them for the thread (docs/architecture.md, "The server's threads"). The model stays one OS thread per
//! connection while it is served; the threads are simply reused, as the Rust Book's final chapter builds its
//! `ThreadPool`, with two changes:
//!
//! - **Grown on demand.** A job goes to the worker that parked last; when none is parked, a new worker is started
//!   with the job in hand. The pool has no cap of its own: jobs carry an admission permit ([`crate::admission`]),
//!   which bounds them.
//! - **Idle workers retire** after [`WORKER_IDLE_RETIRE`] without a job. Because the last worker to park is the
//!   first to get work (a stack, not a queue), the workers a burst left behind stay idle and retire, instead of
//!   sharing the work round-robin and keeping each other alive.
//!
//! A worker that panics ends (its job's guards run while unwinding); the pool starts another when needed.
//! [`Pool::join`] empties the stack: parked workers end at once, busy ones after their job, and every one is
//! joined.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};

/// A worker that has had no job for this long ends.
pub const WORKER_IDLE_RETIRE: Duration = Duration::from_secs(10);
/// Handles of ended workers are reaped once this many have piled up.
const REAP_EVERY: usize = 256;

/// Counters of a pool, shared with whoever wants to watch it (tests, logs).
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Workers started since the pool began.
    pub spawned: AtomicU64,
    /// Workers alive now (busy or parked).
    pub live: AtomicUsize,
    /// Workers parked now, waiting for a job.
    pub parked: AtomicUsize,
}

/// The pool. Owned by the thread that hands out the jobs (the accept loop).
pub struct Pool<J: Send + 'static> {
    name: &'static str,
    stack: usize,
    idle_retire: Duration,
    work: Arc<dyn Fn(J) + Send + Sync>,
    /// The parked workers: a job goes to the one on top.
    parked: Arc<Parked<J>>,
    threads: Vec<JoinHandle<()>>,
    reap_at: usize,
    stats: Arc<PoolStats>,
}

impl<J: Send + 'static> Pool<J> {
    /// A pool whose workers are named `name-N`, have `stack` bytes of stack, run `work` on each job and retire
    /// after `idle_retire` without one.
    pub fn new<W>(name: &'static str, stack: usize, idle_retire: Duration, stats: Arc<PoolStats>, work: W) -> Self
    where
        W: Fn(J) + Send + Sync + 'static,
    {
        Pool {
            name,
            stack,
            idle_retire,
            work: Arc::new(work),
            parked: Arc::new(Parked {
                stack: Mutex::new(Stack { workers: Vec::new(), closed: false }),
                next_id: AtomicU64::new(0),
            }),
            threads: Vec::new(),
            reap_at: REAP_EVERY,
            stats,
        }
    }

    /// Hands `job` to a parked worker, or starts a worker for it. If no thread can be started, the job is
    /// dropped (with it its connection and permit) and the error logged.
    pub fn execute(&mut self, mut job: J) {
        // The worker that parked last; a worker that ended meanwhile hands the job back.
        while let Some((_, hand)) = self.parked.lock().workers.pop() {
            match hand.send(job) {
                Ok(()) => return,
                Err(back) => job = back.into_inner(),
            }
        }
        let n = self.stats.spawned.fetch_add(1, Ordering::Relaxed) + 1;
        let worker = Worker {
            work: self.work.clone(),
            parked: self.parked.clone(),
            idle_retire: self.idle_retire,
            stats: self.stats.clone(),
        };
        self.stats.live.fetch_add(1, Ordering::Relaxed);
        let spawned = thread::Builder::new()
            .name(format!("{}-{n}", self.name))
            .stack_size(self.stack)
            .spawn(move || worker.run(job));
        match spawned {
            Ok(handle) => self.threads.push(handle),
            // The closure (the worker and the job) is dropped: the peer sees a close, the permit is given back.
            Err(e) => log::error!("cannot start a worker thread: {e}; connection dropped"),
        }
        if self.threads.len() >= self.reap_at {
            self.threads.retain(|t| !t.is_finished());
            // Amortised: with many busy workers, do not rescan them on every start.
            self.reap_at = (self.threads.len() * 2).max(REAP_EVERY);
        }
    }

    /// Closes the pool: parked workers end at once, busy ones after their job; returns when all have ended.
    pub fn join(self) {
        let Pool { parked, threads, .. } = self;
        // Parked workers see their hand-over channel closed and end; busy ones end after their job.
        let mut stack = parked.lock();
        stack.closed = true;
        stack.workers.clear();
        drop(stack);
        for t in threads {
            // A worker that panicked has already been reported by the panic hook.
            let _ = t.join();
        }
    }
}

/// What a worker thread owns.
/// The parked workers, last parked on top, each with the channel its next job comes through.
struct Parked<J> {
    stack: Mutex<Stack<J>>,
    next_id: AtomicU64,
}

struct Stack<J> {
    workers: Vec<(u64, Sender<J>)>,
    /// The pool is joining: a worker that finishes its job ends instead of parking.
    closed: bool,
}

impl<J> Parked<J> {
    fn lock(&self) -> MutexGuard<'_, Stack<J>> {
        // A push or a pop cannot leave the stack half-changed: a panic elsewhere leaves it usable.
        self.stack.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Worker<J> {
    work: Arc<dyn Fn(J) + Send + Sync>,
    parked: Arc<Parked<J>>,
    idle_retire: Duration,
    stats: Arc<PoolStats>,
}

impl<J> Worker<J> {
    fn run(self, first: J) {
        let id = self.parked.next_id.fetch_add(1, Ordering::Relaxed);
        let mut job = first;
        loop {
            (self.work)(job);
            let (hand, next) = bounded(1);
            {
                let mut stack = self.parked.lock();
                if stack.closed {
                    return;
                }
                stack.workers.push((id, hand));
            }
            self.stats.parked.fetch_add(1, Ordering::Relaxed);
            let got = match next.recv_timeout(self.idle_retire) {
                Err(RecvTimeoutError::Timeout) => {
                    // Idle too long: leave, unless a job was handed over just now.
                    let mut stack = self.parked.lock();
                    match stack.workers.iter().position(|(i, _)| *i == id) {
                        Some(at) => {
                            stack.workers.remove(at);
                            None
                        }
                        None => {
                            drop(stack);
                            next.recv().ok()
                        }
                    }
                }
                got => got.ok(),
            };
            self.stats.parked.fetch_sub(1, Ordering::Relaxed);
            match got {
                Some(next) => job = next,
                // Idle too long, or the pool is closing.
                None => return,
            }
        }
    }
}

impl<J> Drop for Worker<J> {
    fn drop(&mut self) {
        // Also when the job panicked, or the thread never started.
        self.stats.live.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    const WAIT: Duration = Duration::from_secs(10);

    fn eventually(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn sequential_jobs_reuse_one_thread() {
        let stats = Arc::new(PoolStats::default());
        let (done, finished) = mpsc::channel();
        let mut pool = Pool::new("t", 64 * 1024, WAIT, stats.clone(), move |n: u32| done.send(n).unwrap());
        for n in 0..100 {
            // Wait until the worker has parked again, so that the next job finds it.
            eventually("the worker parks", || n == 0 || stats.parked.load(Ordering::Relaxed) == 1);
            pool.execute(n);
            assert_eq!(finished.recv_timeout(WAIT).unwrap(), n);
        }
        assert_eq!(stats.spawned.load(Ordering::Relaxed), 1, "{stats:?}");
        pool.join();
        assert_eq!(stats.live.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn concurrent_jobs_get_their_own_threads_and_idle_ones_retire() {
        let stats = Arc::new(PoolStats::default());
        let (release_tx, release) = crossbeam_channel::unbounded::<()>();
        let (started_tx, started) = mpsc::channel();
        let mut pool = Pool::new("t", 64 * 1024, Duration::from_millis(50), stats.clone(), move |_: ()| {
            started_tx.send(()).unwrap();
            release.recv_timeout(WAIT).unwrap();
        });
        for _ in 0..4 {
            pool.execute(());
        }
        for _ in 0..4 {
            started.recv_timeout(WAIT).unwrap();
        }
        assert_eq!(stats.spawned.load(Ordering::Relaxed), 4, "a blocked worker is not handed a second job");
        for _ in 0..4 {
            release_tx.send(()).unwrap();
        }
        eventually("idle workers retire", || stats.live.load(Ordering::Relaxed) == 0);
        pool.execute(());
        started.recv_timeout(WAIT).unwrap();
        assert_eq!(stats.spawned.load(Ordering::Relaxed), 5, "a retired worker is replaced on demand");
        release_tx.send(()).unwrap();
        pool.join();
    }

    #[test]
    fn workers_a_burst_left_behind_retire_while_steady_work_goes_on() {
        let stats = Arc::new(PoolStats::default());
        let (release_tx, release) = crossbeam_channel::unbounded::<()>();
        let (done_tx, done) = mpsc::channel();
        // Long enough that the burst's first worker does not retire while the other three finish on a slow
        // machine; the steady loop below still outlasts it many times over.
        const IDLE: Duration = Duration::from_secs(1);
        let mut pool = Pool::new("t", 64 * 1024, IDLE, stats.clone(), move |hold: bool| {
            if hold {
                release.recv_timeout(WAIT).unwrap();
            }
            done_tx.send(()).unwrap();
        });
        for _ in 0..4 {
            pool.execute(true);
        }
        for _ in 0..4 {
            release_tx.send(()).unwrap();
            done.recv_timeout(WAIT).unwrap();
        }
        eventually("the burst's workers park", || stats.parked.load(Ordering::Relaxed) == 4);
        // Steady work, one job at a time, more often than the idle time: the last worker to park takes every
        // job, so the other three stay idle and retire (a queue would hand the jobs round and keep all four).
        let deadline = Instant::now() + WAIT;
        while stats.live.load(Ordering::Relaxed) > 1 {
            assert!(Instant::now() < deadline, "surplus workers retired: {stats:?}");
            pool.execute(false);
            done.recv_timeout(WAIT).unwrap();
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(stats.spawned.load(Ordering::Relaxed), 4);
        pool.join();
    }

    #[test]
    fn join_ends_parked_workers_and_waits_for_busy_ones() {
        let stats = Arc::new(PoolStats::default());
        let (release_tx, release) = crossbeam_channel::unbounded::<u32>();
        let (started_tx, started) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let mut pool = Pool::new("t", 64 * 1024, WAIT, stats.clone(), move |n: u32| {
            started_tx.send(n).unwrap();
            if n == 0 {
                release.recv_timeout(WAIT).unwrap();
            }
            done_tx.send(n).unwrap();
        });
        pool.execute(0); // busy until released
        pool.execute(1); // finishes at once, then parks
        for _ in 0..2 {
            started.recv_timeout(WAIT).unwrap();
        }
        assert_eq!(done.recv_timeout(WAIT).unwrap(), 1);
        let joiner = thread::spawn(move || pool.join());
        release_tx.send(0).unwrap();
        assert_eq!(done.recv_timeout(WAIT).unwrap(), 0, "the busy job finished");
        let deadline = Instant::now() + WAIT;
        while !joiner.is_finished() {
            assert!(Instant::now() < deadline, "join returned");
            thread::sleep(Duration::from_millis(2));
        }
        joiner.join().unwrap();
        assert_eq!(stats.live.load(Ordering::Relaxed), 0);
    }
}
