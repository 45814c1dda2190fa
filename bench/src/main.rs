//! `bench`: load generator and delivery checker for the message server, in the spirit of redis-benchmark.
//!
//! One run: register `--users` users, connect `--connected` of them with real push listeners, then for each
//! client thread count in `--threads` run `--duration` seconds (or `--requests` requests) of a request mix:
//! SEND to an online user, SEND to an offline user, CONNECTEDUSERS. With `--baseline`, each mix phase is
//! preceded by the same client threads against a trivial thread-per-connection server (accept, read a few bytes,
//! answer one byte), which is the ceiling this machine puts on any one-connection-per-request protocol.
//! At the end every offline recipient is connected and the bench checks that every accepted message reached
//! its recipient exactly once, and every delivered message's acknowledgement reached its sender.
//!
//! Every message text starts with a number unique in the run (`m<hex> xxx…`), so a listener can tell which
//! SEND it belongs to without any shared state on the hot path: workers and listeners each log into their own
//! vectors, merged once at the end.
//!
//! Loopback only: the bench binds its listeners to 127.0.0.1, and the server records the CONNECT peer address
//! as the push address, so the server must be on this machine too.

use std::collections::HashMap;
use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use protocol::{ConnectStatus, DisconnectStatus, Op, RegisterStatus, Reply, SendReply, UnregisterStatus, UsersReply};

mod procs;
mod stats;
mod wire;

use procs::{MemSample, Sampler, Spawned};
use stats::{us, Json, Samples, Summary, Table};
use wire::{encode, Clock, Counters, Decoder, Listener, Received};

/// Default server address when neither `--server` nor `--spawn-server` is given.
const DEFAULT_SERVER: &str = "127.0.0.1:8888";
/// Interval of the progress line and of the memory samples.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Without a terminal, a progress line is printed this often instead of being redrawn in place.
const PROGRESS_EVERY_PIPED: Duration = Duration::from_secs(5);
/// Upper bound on the duration of a `--requests` phase (a count that is never reached cannot hang the bench).
const MAX_COUNTED_PHASE: Duration = Duration::from_secs(3600);
/// Polling step while waiting for deliveries to arrive.
const WAIT_POLL: Duration = Duration::from_millis(20);
/// At most this many distinct error texts are kept per phase for the report.
const MAX_ERROR_EXAMPLES: usize = 5;
/// Offline recipients when not given: as many as online users (the usual 100/50 run has 50 of each), but never
/// so many that the final "connect everybody" needs thousands of listeners.
const MAX_DEFAULT_OFFLINE_RECIPIENTS: usize = 1000;

/// Load generator and delivery checker for the message server.
///
/// Example: `bench --spawn-server target/release/server --baseline -c 8,64 -d 20`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Server to load (HOST:PORT, on this machine). Default 127.0.0.1:8888.
    #[arg(long, conflicts_with = "spawn_server")]
    server: Option<SocketAddr>,
    /// Start this server binary on 127.0.0.1 and a free port (`-p PORT --bind 127.0.0.1`), read and discard its
    /// console through a pipe, and stop it with SIGTERM at the end. Its memory and CPU time are then sampled too.
    #[arg(long, value_name = "PATH")]
    spawn_server: Option<PathBuf>,
    /// Extra argument for the spawned server (repeatable), e.g. `--server-arg=--max-queue=200000`.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Sample the memory and CPU time of this process (the server's pid, when the bench did not start it).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Client threads; a comma-separated list runs one phase per value, e.g. `8,64`.
    #[arg(short = 'c', long, default_value = "8", value_delimiter = ',')]
    threads: Vec<usize>,
    /// Registered users.
    #[arg(short = 'u', long, default_value_t = 100)]
    users: usize,
    /// Users connected with a listener (spread evenly over the registration order).
    #[arg(long, default_value_t = 50)]
    connected: usize,
    /// Offline users that receive messages (default: as many as connected users, at most 1000).
    #[arg(long)]
    offline_recipients: Option<usize>,
    /// Seconds per phase (after the warm-up).
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// Requests per phase instead of a duration (no warm-up).
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Seconds of load before each phase whose requests are not counted.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Message text size in bytes (at least 18: the text carries the message number).
    #[arg(short = 's', long, default_value_t = 64)]
    size: usize,
    /// Request mix in percent: SEND to online users, SEND to offline users, CONNECTEDUSERS.
    #[arg(long, default_value = "60,20,20")]
    mix: Mix,
    /// Before the phases, queue this many messages for the offline recipients and measure the server's memory
    /// per queued message (needs a pid: `--spawn-server` or `--server-pid`).
    #[arg(long, default_value_t = 0)]
    preload: u64,
    /// Measure the trivial thread-per-connection server before each mix phase.
    #[arg(long)]
    baseline: bool,
    /// Only the baseline: no message server is contacted.
    #[arg(long)]
    baseline_only: bool,
    /// Threads for setup work (registration, connects, preload, cleanup).
    #[arg(long, default_value_t = 8)]
    setup_threads: usize,
    /// Seconds allowed for each connect and each read.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    /// Seconds to wait at the end for every accepted message and acknowledgement to arrive.
    #[arg(long, default_value_t = 120)]
    drain_timeout: u64,
    /// Leave the users registered and connected at the end (by default they are disconnected and
    /// unregistered, unless the bench started the server, which it simply stops).
    #[arg(long)]
    keep_users: bool,
    /// Alias prefix (default: random per run, so runs against one server never collide).
    #[arg(long)]
    prefix: Option<String>,
    /// Seed of the request choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON line with every figure instead of the table.
    #[arg(long)]
    json: bool,
    /// No progress line.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Internal: run the trivial baseline server on this address.
    #[arg(long, hide = true)]
    serve_trivial: Option<SocketAddr>,
}

/// Percentages of the three request kinds.
#[derive(Debug, Clone, Copy)]
struct Mix {
    send_online: u32,
    send_offline: u32,
    users: u32,
}

impl FromStr for Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Mix, String> {
        let parts: Vec<u32> = s
            .split(',')
            .map(|p| p.trim().parse::<u32>().map_err(|e| format!("{p:?}: {e}")))
            .collect::<Result<_, _>>()?;
        match parts[..] {
            [a, b, c] if a + b + c > 0 => Ok(Mix { send_online: a, send_offline: b, users: c }),
            _ => Err("expected three non-negative weights, e.g. 60,20,20".into()),
        }
    }
}

/// The three measured request kinds, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    SendOnline = 0,
    SendOffline = 1,
    Users = 2,
}

const KINDS: [Kind; 3] = [Kind::SendOnline, Kind::SendOffline, Kind::Users];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::SendOnline => "send_online",
            Kind::SendOffline => "send_offline",
            Kind::Users => "connected_users",
        }
    }
}

/// xorshift64*: fast, good enough to pick users and request kinds, and reproducible from `--seed`.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that nearby seeds give unrelated streams and 0 is not a fixed point.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// A SEND the server accepted.
#[derive(Debug, Clone, Copy)]
struct Accepted {
    number: u64,
    sender: u32,
    recipient: u32,
    id: u32,
    /// When the SEND was issued (before connecting): acceptance happened after this...
    sent_ns: u64,
    /// ...and before this, when its reply was read.
    at_ns: u64,
    /// Sent to a connected recipient (its delivery latency is measured).
    online: bool,
}

/// What one worker thread produced in one phase.
#[derive(Default)]
struct WorkerOut {
    lat: [Samples; 3],
    errors: [u64; 3],
    examples: Vec<String>,
    accepted: Vec<Accepted>,
    /// Message numbers of SENDs whose outcome is unknown (no valid reply): the server may have queued them.
    unconfirmed: Vec<u64>,
}

impl WorkerOut {
    fn error(&mut self, kind: Kind, what: String) {
        self.errors[kind as usize] += 1;
        if self.examples.len() < MAX_ERROR_EXAMPLES && !self.examples.contains(&what) {
            self.examples.push(what);
        }
    }

    fn merge(&mut self, other: WorkerOut) {
        for (a, b) in self.lat.iter_mut().zip(other.lat) {
            a.merge(b);
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        for e in other.examples {
            if self.examples.len() < MAX_ERROR_EXAMPLES && !self.examples.contains(&e) {
                self.examples.push(e);
            }
        }
        self.accepted.extend(other.accepted);
        self.unconfirmed.extend(other.unconfirmed);
    }
}

/// The users of the run and where they stand.
struct Population {
    addr: SocketAddr,
    aliases: Vec<String>,
    online: Vec<u32>,
    offline: Vec<u32>,
    timeout: Duration,
    clock: Clock,
    decoder: Decoder,
    counters: Arc<Counters>,
    listeners: Vec<(u32, Listener)>,
    next_number: AtomicU64,
}

/// Live counters for the progress line.
#[derive(Default)]
struct Live {
    done: AtomicU64,
    errors: AtomicU64,
}

/// Result of one timed phase.
struct Phase {
    threads: usize,
    window: Duration,
    out: WorkerOut,
    mem: Vec<MemSample>,
    /// CPU seconds the server (or the trivial server) used during the phase, warm-up included.
    server_cpu: Option<f64>,
    /// Requests issued during the phase, warm-up included (the denominator of `server_cpu`).
    issued: u64,
    /// Messages accepted for offline recipients during the phase (they stay queued until the end).
    offline_queued: usize,
}

impl Phase {
    fn total(&self) -> u64 {
        self.out.lat.iter().map(Samples::count).sum()
    }

    fn rate(&self) -> f64 {
        self.total() as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Server CPU microseconds per request.
    fn cpu_per_request(&self) -> Option<f64> {
        self.server_cpu.map(|s| s * 1e6 / self.issued.max(1) as f64)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(bind) = args.serve_trivial {
        return match wire::serve_trivial(bind) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench: trivial server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bench: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn check_args(args: &Args) -> Result<(), String> {
    if args.threads.is_empty() || args.threads.contains(&0) {
        return Err("--threads: every value must be at least 1".into());
    }
    if args.baseline_only {
        return Ok(());
    }
    if args.size < wire::MIN_TEXT || args.size > protocol::MAX_FIELD_LEN {
        return Err(format!("--size must be between {} and {}", wire::MIN_TEXT, protocol::MAX_FIELD_LEN));
    }
    if args.connected < 2 || args.connected > args.users {
        return Err("--connected must be at least 2 (senders need another online user) and at most --users".into());
    }
    if (args.mix.send_offline > 0 || args.preload > 0) && args.connected == args.users {
        return Err("SEND to offline users needs --users greater than --connected".into());
    }
    if !(args.duration > 0.0 && args.duration.is_finite() && args.warmup >= 0.0 && args.warmup.is_finite()) {
        return Err("--duration must be positive and --warmup non-negative".into());
    }
    Ok(())
}

fn run(args: &Args) -> Result<bool, String> {
    check_args(args)?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let clock = Clock(Instant::now());
    let progress = !args.quiet;

    let trivial = if args.baseline || args.baseline_only {
        Some(Spawned::trivial().map_err(|e| format!("cannot start the trivial server: {e}"))?)
    } else {
        None
    };

    if args.baseline_only {
        let Some(trivial) = trivial else { unreachable!("started above") };
        let mut phases = Vec::new();
        for &threads in &args.threads {
            phases.push(run_baseline(args, &trivial, threads, timeout, progress));
        }
        report_baseline_only(args, &phases);
        return Ok(true);
    }

    let spawned = match &args.spawn_server {
        Some(path) => Some(Spawned::server(path, &args.server_args).map_err(|e| format!("cannot start server: {e}"))?),
        None => None,
    };
    let addr = match (&spawned, args.server) {
        (Some(s), _) => s.addr,
        (None, Some(a)) => a,
        (None, None) => DEFAULT_SERVER.parse().map_err(|e| format!("{e}"))?,
    };
    if !addr.ip().is_loopback() {
        // The server pushes to the address the CONNECT came from, and our listeners are bound to 127.0.0.1.
        return Err(format!("{addr} is not a loopback address: the bench runs on the server's machine only"));
    }
    let pid = spawned.as_ref().map(Spawned::pid).or(args.server_pid);
    let prefix = args.prefix.clone().unwrap_or_else(random_prefix);

    let mut pop = Population {
        addr,
        aliases: (0..args.users).map(|i| format!("{prefix}{i}")).collect(),
        online: spread(args.users, args.connected),
        offline: Vec::new(),
        timeout,
        clock,
        decoder: Decoder { prefix: prefix.clone().into() },
        counters: Arc::new(Counters::default()),
        listeners: Vec::new(),
        next_number: AtomicU64::new(1),
    };
    let online_set: std::collections::HashSet<u32> = pop.online.iter().copied().collect();
    let offline_all: Vec<u32> = (0..args.users as u32).filter(|u| !online_set.contains(u)).collect();
    let wanted = args.offline_recipients.unwrap_or_else(|| args.connected.min(MAX_DEFAULT_OFFLINE_RECIPIENTS));
    pop.offline =
        spread(offline_all.len(), wanted.min(offline_all.len())).into_iter().map(|i| offline_all[i as usize]).collect();
    if args.mix.send_offline > 0 && pop.offline.is_empty() {
        return Err("the mix sends to offline users but --offline-recipients is 0".into());
    }

    let mut json = Json::new();
    json.open();
    json.str("tool", "bench");
    json.str("server", &addr.to_string());
    let load_start = load_average();
    json.str("load_avg_start", &load_start);
    json.field("config");
    config_json(args, &mut json);

    // Registration: O(n) per REGISTER on the server's list, so it is timed and reported.
    let mem0 = pid.and_then(procs::mem_of);
    let started = Instant::now();
    let errors = register_all(&pop, args.setup_threads);
    let register_time = started.elapsed();
    if errors > 0 {
        return Err(format!("{errors} REGISTER requests failed (is the prefix {prefix:?} already in use?)"));
    }
    let mem1 = pid.and_then(procs::mem_of);
    if !args.json {
        println!(
            "registered {} users in {:.2} s ({:.0}/s); alias prefix {prefix:?}",
            args.users,
            register_time.as_secs_f64(),
            args.users as f64 / register_time.as_secs_f64().max(1e-9)
        );
    }
    json.field("setup");
    json.open();
    json.num("register_s", register_time.as_secs_f64());
    if let (Some((a, _)), Some((b, _))) = (mem0, mem1) {
        json.num("rss_before_register_kb", a as f64);
        json.num("rss_after_register_kb", b as f64);
        let per_user = (b as f64 - a as f64) * 1024.0 / args.users as f64;
        json.num("bytes_per_user", per_user);
        if !args.json {
            println!("server RSS {a} kB -> {b} kB: {per_user:.0} bytes per registered user");
        }
    }

    let online = pop.online.clone();
    connect_users(&mut pop, &online, args.setup_threads)?;

    let mut preloaded = Vec::new();
    if args.preload > 0 {
        let before = pid.and_then(procs::mem_of);
        let started = Instant::now();
        let (acc, errors) = preload(&pop, args.preload, args.size, args.setup_threads);
        let took = started.elapsed();
        let after = pid.and_then(procs::mem_of);
        json.num("preload_messages", acc.len() as f64);
        json.num("preload_errors", errors as f64);
        json.num("preload_s", took.as_secs_f64());
        if let (Some((a, _)), Some((b, _))) = (before, after) {
            let per = (b as f64 - a as f64) * 1024.0 / acc.len().max(1) as f64;
            json.num("rss_before_preload_kb", a as f64);
            json.num("rss_after_preload_kb", b as f64);
            json.num("bytes_per_queued_message", per);
            if !args.json {
                println!(
                    "queued {} messages of {} bytes in {:.2} s: server RSS {a} kB -> {b} kB, {per:.0} bytes per message",
                    acc.len(),
                    args.size,
                    took.as_secs_f64()
                );
            }
        }
        if errors > 0 && !args.json {
            println!("preload: {errors} SENDs failed");
        }
        preloaded = acc;
    }
    json.close();

    // The phases: for each thread count, the baseline (if asked) then the mix, back to back, so that both see
    // the same machine load.
    let mut phases: Vec<(Option<Phase>, Phase)> = Vec::new();
    let mut online_accepted: u64 = 0;
    let drain_timeout = Duration::from_secs(args.drain_timeout);
    for &threads in &args.threads {
        let base = trivial.as_ref().map(|t| run_baseline(args, t, threads, timeout, progress));
        let sampler = pid.map(|p| Sampler::start(p, PROGRESS_EVERY));
        let cpu0 = pid.and_then(procs::cpu_of);
        let mut phase = run_mix(args, &pop, threads, progress);
        phase.server_cpu = cpu0.zip(pid.and_then(procs::cpu_of)).map(|(a, b)| b - a);
        phase.mem = sampler.map(Sampler::finish).unwrap_or_default();
        online_accepted += phase.out.accepted.iter().filter(|a| a.online).count() as u64;
        // Let this phase's live deliveries land before the next phase measures anything.
        wait_for(&pop.counters, online_accepted, online_accepted, drain_timeout, progress, "settling");
        if !args.json {
            print_phase(base.as_ref(), &phase, args);
        }
        phases.push((base, phase));
    }
    drop(trivial);

    // "Connect everybody": the offline recipients get listeners and CONNECT, which flushes their queues.
    let offline = pop.offline.clone();
    connect_users(&mut pop, &offline, args.setup_threads)?;
    let total_accepted = preloaded.len() as u64 + phases.iter().map(|(_, p)| p.out.accepted.len() as u64).sum::<u64>();
    let started = Instant::now();
    let complete = wait_for(&pop.counters, total_accepted, total_accepted, drain_timeout, progress, "final delivery");
    let final_wait = started.elapsed();

    // Clean up the server's state (unless we own the server: then we just stop it after the listeners).
    if spawned.is_none() && !args.keep_users {
        cleanup(&pop, args.setup_threads);
    }
    let listeners = std::mem::take(&mut pop.listeners);
    let mut receptions = Vec::new();
    for (user, l) in listeners {
        receptions.extend(l.stop().into_iter().map(|r| (user, r)));
    }
    let server_exit = spawned.map(Spawned::stop);

    let mut all_accepted = preloaded;
    let mut unconfirmed = Vec::new();
    for (_, p) in &mut phases {
        all_accepted.append(&mut p.out.accepted);
        unconfirmed.append(&mut p.out.unconfirmed);
    }
    let verdict = verify(&all_accepted, &unconfirmed, &receptions);
    let ok = verdict.ok() && complete;

    json.array("phases");
    for (base, phase) in &phases {
        phase_json(base.as_ref(), phase, &mut json);
    }
    json.close_array();
    json.field("verify");
    verdict.json(&mut json);
    json.num("final_delivery_s", final_wait.as_secs_f64());
    json.bool("complete", complete);
    if let Some(exit) = &server_exit {
        json.str("server_exit", exit);
    }
    json.str("load_avg_end", &load_average());
    json.bool("ok", ok);
    json.close();
    if args.json {
        println!("{}", json.into_string());
    } else {
        print_verdict(&verdict, final_wait, complete);
        if let Some(exit) = &server_exit {
            println!("server stopped: {exit}");
        }
        println!("load average at start: {load_start}");
        println!("load average at end:   {}", load_average());
        println!("{}", if ok { "OK" } else { "FAILED: messages lost, duplicated or misdelivered" });
    }
    Ok(ok)
}

/// `/proc/loadavg`'s three averages, for the report (the machine is shared; figures need their context).
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let avg: Vec<&str> = text.split_whitespace().take(3).collect();
    avg.join(" ")
}

/// A prefix that differs between runs: users of an earlier run on the same server never collide.
fn random_prefix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mix = (u64::from(std::process::id()) << 32 | u64::from(nanos)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("b{:06x}_", mix >> 40)
}

/// `k` indices spread evenly over `0..n` (so online users sit all along the server's list, not at its head).
fn spread(n: usize, k: usize) -> Vec<u32> {
    (0..k).map(|i| (i * n / k.max(1)) as u32).collect()
}

fn config_json(args: &Args, json: &mut Json) {
    json.open();
    json.num("users", args.users as f64);
    json.num("connected", args.connected as f64);
    json.num("size", args.size as f64);
    json.str("mix", &format!("{},{},{}", args.mix.send_online, args.mix.send_offline, args.mix.users));
    json.num("duration_s", args.duration);
    json.num("warmup_s", args.warmup);
    if let Some(n) = args.requests {
        json.num("requests", n as f64);
    }
    json.num("preload", args.preload as f64);
    json.bool("baseline", args.baseline);
    json.num("cores", thread::available_parallelism().map_or(0, |n| n.get()) as f64);
    json.close();
}

/// Runs `f(i, buf)` for every `i` in `0..n` on `threads` threads; returns the results in index order.
fn parallel<R: Send>(n: usize, threads: usize, f: impl Fn(usize, &mut Vec<u8>) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut parts: Vec<Vec<(usize, R)>> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads.clamp(1, n.max(1)))
            .map(|_| {
                s.spawn(|| {
                    let mut buf = Vec::with_capacity(512);
                    let mut got = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        got.push((i, f(i, &mut buf)));
                    }
                    got
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut all: Vec<(usize, R)> = parts.iter_mut().flat_map(std::mem::take).collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// Registers every user; returns the number of failures.
fn register_all(pop: &Population, threads: usize) -> usize {
    let results = parallel(pop.aliases.len(), threads, |i, buf| {
        encode::register(buf, &pop.aliases[i]);
        matches!(wire::request(pop.addr, buf, Op::Register, pop.timeout), Ok(Reply::Register(RegisterStatus::Ok)))
    });
    results.iter().filter(|ok| !**ok).count()
}

/// Gives each of `users` a listener, then CONNECTs it with that listener's port.
fn connect_users(pop: &mut Population, users: &[u32], threads: usize) -> Result<(), String> {
    let mut ports = Vec::with_capacity(users.len());
    for &u in users {
        let l = Listener::spawn(u, pop.decoder.clone(), pop.clock, pop.counters.clone(), pop.timeout)
            .map_err(|e| format!("cannot start a listener: {e}"))?;
        ports.push(l.port);
        pop.listeners.push((u, l));
    }
    let p: &Population = pop;
    let results = parallel(users.len(), threads, |i, buf| {
        encode::connect(buf, &p.aliases[users[i] as usize], ports[i]);
        match wire::request(p.addr, buf, Op::Connect, p.timeout) {
            Ok(Reply::Connect(ConnectStatus::Ok)) => Ok(()),
            Ok(other) => Err(format!("CONNECT {} answered {other:?}", p.aliases[users[i] as usize])),
            Err(e) => Err(format!("CONNECT {}: {e}", p.aliases[users[i] as usize])),
        }
    });
    results.into_iter().collect::<Result<Vec<()>, String>>().map(|_| ())
}

/// Queues `n` messages for the offline recipients, round robin from the online senders.
fn preload(pop: &Population, n: u64, size: usize, threads: usize) -> (Vec<Accepted>, u64) {
    let results = parallel(n as usize, threads, |i, buf| {
        let sender = pop.online[i % pop.online.len()];
        let recipient = pop.offline[i % pop.offline.len()];
        let number = pop.next_number.fetch_add(1, Ordering::Relaxed);
        let mut text = Vec::with_capacity(size);
        wire::message_text(&mut text, number, size);
        encode::send(buf, &pop.aliases[sender as usize], &pop.aliases[recipient as usize], &text);
        match wire::request(pop.addr, buf, Op::Send, pop.timeout) {
            Ok(Reply::Send(SendReply::Accepted(id))) => {
                let at_ns = pop.clock.now_ns();
                Some(Accepted { number, sender, recipient, id, sent_ns: at_ns, at_ns, online: false })
            }
            _ => None,
        }
    });
    let errors = results.iter().filter(|r| r.is_none()).count() as u64;
    (results.into_iter().flatten().collect(), errors)
}

/// Disconnects every connected user and unregisters every user of the run (best effort).
fn cleanup(pop: &Population, threads: usize) {
    let connected: Vec<u32> = pop.listeners.iter().map(|(u, _)| *u).collect();
    parallel(connected.len(), threads, |i, buf| {
        encode::disconnect(buf, &pop.aliases[connected[i] as usize]);
        matches!(wire::request(pop.addr, buf, Op::Disconnect, pop.timeout), Ok(Reply::Disconnect(DisconnectStatus::Ok)))
    });
    parallel(pop.aliases.len(), threads, |i, buf| {
        encode::unregister(buf, &pop.aliases[i]);
        matches!(wire::request(pop.addr, buf, Op::Unregister, pop.timeout), Ok(Reply::Unregister(UnregisterStatus::Ok)))
    });
}

/// Waits until the listeners have seen `messages` messages and `acks` acknowledgements, or `limit` passes.
fn wait_for(counters: &Counters, messages: u64, acks: u64, limit: Duration, progress: bool, label: &str) -> bool {
    let started = Instant::now();
    let mut last_print = started;
    loop {
        let (m, a) = (counters.messages.load(Ordering::Relaxed), counters.acks.load(Ordering::Relaxed));
        if m >= messages && a >= acks {
            if progress && last_print != started {
                eprintln!();
            }
            return true;
        }
        if started.elapsed() >= limit {
            if progress {
                eprintln!("\n{label}: gave up after {limit:?}: {m}/{messages} messages, {a}/{acks} acks");
            }
            return false;
        }
        if progress && last_print.elapsed() >= PROGRESS_EVERY {
            last_print = Instant::now();
            eprint!("\r{label}: {m}/{messages} messages, {a}/{acks} acks   ");
        }
        thread::sleep(WAIT_POLL);
    }
}

/// When a phase starts counting and when it stops.
struct Plan {
    warm_end: Instant,
    deadline: Instant,
    window: Duration,
    count: Option<u64>,
    issued: AtomicU64,
}

impl Plan {
    fn new(args: &Args) -> Plan {
        let now = Instant::now();
        match args.requests {
            Some(n) => Plan {
                warm_end: now,
                deadline: now + MAX_COUNTED_PHASE,
                window: Duration::ZERO,
                count: Some(n),
                issued: AtomicU64::new(0),
            },
            None => {
                let warm_end = now + Duration::from_secs_f64(args.warmup);
                let window = Duration::from_secs_f64(args.duration);
                Plan { warm_end, deadline: warm_end + window, window, count: None, issued: AtomicU64::new(0) }
            }
        }
    }

    /// Whether another request may start; `Some(measured)` says whether it counts.
    fn next(&self) -> Option<bool> {
        let now = Instant::now();
        if now >= self.deadline {
            return None;
        }
        if let Some(n) = self.count {
            if self.issued.fetch_add(1, Ordering::Relaxed) >= n {
                return None;
            }
        }
        Some(now >= self.warm_end)
    }
}

/// Runs `threads` copies of `work` under one plan, with a progress line; returns the merged output, the
/// measured window and the number of requests issued (warm-up included).
fn drive(
    args: &Args,
    label: &str,
    threads: usize,
    progress: bool,
    counters: Option<&Counters>,
    work: impl Fn(usize, &Plan, &Live) -> WorkerOut + Sync,
) -> (WorkerOut, Duration, u64) {
    let plan = Plan::new(args);
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
        if progress {
            s.spawn(|| progress_line(label, threads, &live, counters, &finished, started));
        }
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
    (out, window, live.done.load(Ordering::Relaxed))
}

fn progress_line(
    label: &str,
    threads: usize,
    live: &Live,
    counters: Option<&Counters>,
    finished: &AtomicBool,
    started: Instant,
) {
    let tty = std::io::stderr().is_terminal();
    let every = if tty { PROGRESS_EVERY } else { PROGRESS_EVERY_PIPED };
    let (mut last_t, mut last_n) = (Instant::now(), 0u64);
    let mut printed = false;
    while !finished.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(50));
        if last_t.elapsed() < every {
            continue;
        }
        let n = live.done.load(Ordering::Relaxed);
        let rate = (n - last_n) as f64 / last_t.elapsed().as_secs_f64();
        (last_t, last_n) = (Instant::now(), n);
        let delivered = counters.map_or(String::new(), |c| {
            format!("  delivered {}  acks {}", c.messages.load(Ordering::Relaxed), c.acks.load(Ordering::Relaxed))
        });
        let line = format!(
            "{label} c={threads} {:5.1}s  {rate:8.0}/s  done {n}  errors {}{delivered}",
            started.elapsed().as_secs_f64(),
            live.errors.load(Ordering::Relaxed)
        );
        if tty {
            eprint!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
        printed = true;
    }
    if printed && tty {
        eprintln!();
    }
}

fn run_baseline(args: &Args, trivial: &Spawned, threads: usize, timeout: Duration, progress: bool) -> Phase {
    let addr = trivial.addr;
    let cpu0 = procs::cpu_of(trivial.pid());
    let (out, window, issued) = drive(args, "baseline", threads, progress, None, |_, plan, live| {
        let mut out = WorkerOut::default();
        while let Some(measured) = plan.next() {
            let t0 = Instant::now();
            match wire::ping(addr, timeout) {
                Ok(()) if measured => out.lat[0].record(t0.elapsed()),
                Ok(()) => {}
                Err(e) => {
                    live.errors.fetch_add(1, Ordering::Relaxed);
                    out.error(Kind::SendOnline, e.to_string());
                }
            }
            live.done.fetch_add(1, Ordering::Relaxed);
        }
        out
    });
    let server_cpu = cpu0.zip(procs::cpu_of(trivial.pid())).map(|(a, b)| b - a);
    Phase { threads, window, out, mem: Vec::new(), server_cpu, issued, offline_queued: 0 }
}

fn run_mix(args: &Args, pop: &Population, threads: usize, progress: bool) -> Phase {
    let weights = [args.mix.send_online, args.mix.send_offline, args.mix.users];
    let total: u32 = weights.iter().sum();
    let (out, window, issued) = drive(args, "mix", threads, progress, Some(&pop.counters), |t, plan, live| {
        let mut rng = Rng::new(args.seed.wrapping_mul(1_000_003).wrapping_add(t as u64));
        let mut out = WorkerOut::default();
        let (mut buf, mut text) = (Vec::with_capacity(512), Vec::with_capacity(args.size));
        while let Some(measured) = plan.next() {
            let mut pick = rng.below(total as usize) as u32;
            let kind = *KINDS
                .iter()
                .find(|k| {
                    let w = weights[**k as usize];
                    if pick < w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(&Kind::Users);
            let sender = pop.online[rng.below(pop.online.len())];
            let t0 = Instant::now();
            let result = match kind {
                Kind::Users => {
                    encode::connected_users(&mut buf, &pop.aliases[sender as usize]);
                    match wire::request(pop.addr, &buf, Op::ConnectedUsers, pop.timeout) {
                        Ok(Reply::ConnectedUsers(UsersReply::List(_))) => Ok(()),
                        Ok(other) => Err(format!("CONNECTEDUSERS answered {other:?}")),
                        Err(e) => Err(format!("CONNECTEDUSERS: {e}")),
                    }
                }
                Kind::SendOnline | Kind::SendOffline => {
                    let online = kind == Kind::SendOnline;
                    let recipient = if online {
                        // Another online user: pick among the n-1 others.
                        let i = rng.below(pop.online.len() - 1);
                        let r = pop.online[i];
                        if r == sender {
                            pop.online[pop.online.len() - 1]
                        } else {
                            r
                        }
                    } else {
                        pop.offline[rng.below(pop.offline.len())]
                    };
                    let number = pop.next_number.fetch_add(1, Ordering::Relaxed);
                    wire::message_text(&mut text, number, args.size);
                    encode::send(&mut buf, &pop.aliases[sender as usize], &pop.aliases[recipient as usize], &text);
                    let sent_ns = pop.clock.now_ns();
                    match wire::request(pop.addr, &buf, Op::Send, pop.timeout) {
                        Ok(Reply::Send(SendReply::Accepted(id))) => {
                            let at_ns = pop.clock.now_ns();
                            out.accepted.push(Accepted { number, sender, recipient, id, sent_ns, at_ns, online });
                            Ok(())
                        }
                        Ok(other) => Err(format!("SEND answered {other:?}")),
                        Err(e) => {
                            out.unconfirmed.push(number);
                            Err(format!("SEND: {e}"))
                        }
                    }
                }
            };
            match result {
                Ok(()) if measured => out.lat[kind as usize].record(t0.elapsed()),
                Ok(()) => {}
                Err(e) => {
                    live.errors.fetch_add(1, Ordering::Relaxed);
                    out.error(kind, e);
                }
            }
            live.done.fetch_add(1, Ordering::Relaxed);
        }
        out
    });
    let offline_queued = out.accepted.iter().filter(|a| !a.online).count();
    Phase { threads, window, out, mem: Vec::new(), server_cpu: None, issued, offline_queued }
}

/// The delivery check.
#[derive(Debug, Default)]
struct Verdict {
    accepted: u64,
    delivered: u64,
    lost: u64,
    duplicated: u64,
    misdelivered: u64,
    /// Delivered although its SEND got no valid reply (the server accepted it; the reply was lost).
    unconfirmed_delivered: u64,
    /// Pushes that are not messages of this run, or not valid pushes at all.
    foreign: u64,
    acks_expected: u64,
    acks_ok: u64,
    acks_duplicated: u64,
    acks_unexpected: u64,
    /// From the SEND's reply read to the push read (0 when the push overtook the reply).
    latency: Summary,
    /// From the SEND issued to the push read (includes the SEND's own round trip).
    latency_from_send: Summary,
}

impl Verdict {
    fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.misdelivered == 0
            && self.acks_duplicated == 0
            && self.acks_ok == self.acks_expected
    }

    fn json(&self, j: &mut Json) {
        j.open();
        j.num("accepted", self.accepted as f64);
        j.num("delivered", self.delivered as f64);
        j.num("lost", self.lost as f64);
        j.num("duplicated", self.duplicated as f64);
        j.num("misdelivered", self.misdelivered as f64);
        j.num("unconfirmed_delivered", self.unconfirmed_delivered as f64);
        j.num("foreign", self.foreign as f64);
        j.num("acks_expected", self.acks_expected as f64);
        j.num("acks_ok", self.acks_ok as f64);
        j.num("acks_duplicated", self.acks_duplicated as f64);
        j.num("acks_unexpected", self.acks_unexpected as f64);
        j.field("delivery_latency");
        self.latency.json(j);
        j.field("delivery_latency_from_send");
        self.latency_from_send.json(j);
        j.close();
    }
}

fn verify(accepted: &[Accepted], unconfirmed: &[u64], receptions: &[(u32, Received)]) -> Verdict {
    let mut v = Verdict { accepted: accepted.len() as u64, ..Verdict::default() };
    let index: HashMap<u64, usize> = accepted.iter().enumerate().map(|(i, a)| (a.number, i)).collect();
    let unconfirmed: std::collections::HashSet<u64> = unconfirmed.iter().copied().collect();
    let mut seen = vec![0u32; accepted.len()];
    let (mut latency, mut from_send) = (Samples::default(), Samples::default());
    for &(listener, r) in receptions {
        let Received::Message { at_ns, number, sender, id } = r else { continue };
        let Some(number) = number else {
            v.foreign += 1;
            continue;
        };
        let Some(&i) = index.get(&number) else {
            if unconfirmed.contains(&number) {
                v.unconfirmed_delivered += 1;
            } else {
                v.misdelivered += 1;
            }
            continue;
        };
        let a = &accepted[i];
        if a.recipient != listener || sender != Some(a.sender) || id != a.id {
            v.misdelivered += 1;
            continue;
        }
        seen[i] += 1;
        if seen[i] == 1 {
            v.delivered += 1;
            if a.online {
                // The push can overtake the reply (the server writes the reply first, but our worker may read
                // it later than the listener reads the push): such a delivery counts as zero.
                latency.record_ns(at_ns.saturating_sub(a.at_ns));
                from_send.record_ns(at_ns.saturating_sub(a.sent_ns));
            }
        } else {
            v.duplicated += 1;
        }
    }
    v.lost = seen.iter().filter(|&&n| n == 0).count() as u64;
    // Every delivered message owes its sender one acknowledgement carrying its id.
    let mut acks: HashMap<(u32, u32), u32> = HashMap::new();
    for (a, _) in accepted.iter().zip(&seen).filter(|(_, &n)| n > 0) {
        *acks.entry((a.sender, a.id)).or_default() += 1;
    }
    v.acks_expected = acks.values().map(|&n| u64::from(n)).sum();
    for &(listener, r) in receptions {
        match r {
            Received::Ack { id } => match acks.get_mut(&(listener, id)) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    v.acks_ok += 1;
                }
                Some(_) => v.acks_duplicated += 1,
                None => v.acks_unexpected += 1,
            },
            Received::Malformed => v.foreign += 1,
            Received::Message { .. } => {}
        }
    }
    v.latency = latency.summary();
    v.latency_from_send = from_send.summary();
    v
}

fn phase_json(base: Option<&Phase>, phase: &Phase, j: &mut Json) {
    j.open();
    j.num("threads", phase.threads as f64);
    if let Some(b) = base {
        j.field("baseline");
        j.open();
        j.num("conn_per_s", b.rate());
        j.num("errors", b.out.errors.iter().sum::<u64>() as f64);
        if let Some(c) = b.cpu_per_request() {
            j.num("server_cpu_us_per_conn", c);
        }
        j.field("latency");
        b.out.lat[0].clone().summary().json(j);
        j.close();
        j.num("ratio", phase.rate() / b.rate().max(1e-9));
    }
    j.num("window_s", phase.window.as_secs_f64());
    j.num("requests", phase.total() as f64);
    j.num("req_per_s", phase.rate());
    j.num("errors", phase.out.errors.iter().sum::<u64>() as f64);
    if let Some(c) = phase.cpu_per_request() {
        j.num("server_cpu_us_per_req", c);
    }
    let mut all = Samples::default();
    for kind in KINDS {
        let s = phase.out.lat[kind as usize].clone();
        all.merge(s.clone());
        j.field(kind.name());
        let sum = s.summary();
        j.open();
        j.num("req_per_s", sum.count as f64 / phase.window.as_secs_f64().max(1e-9));
        j.num("errors", phase.out.errors[kind as usize] as f64);
        j.field("latency");
        sum.json(j);
        j.close();
    }
    j.field("all");
    all.summary().json(j);
    j.array("error_examples");
    for e in &phase.out.examples {
        j.string(e);
    }
    j.close_array();
    j.num("offline_queued", phase.offline_queued as f64);
    if !phase.mem.is_empty() {
        j.nums("rss_t_s", &phase.mem.iter().map(|m| (m.t * 10.0).round() / 10.0).collect::<Vec<_>>());
        j.nums("rss_kb", &phase.mem.iter().map(|m| m.rss_kb as f64).collect::<Vec<_>>());
        j.nums("threads_seen", &phase.mem.iter().map(|m| m.threads as f64).collect::<Vec<_>>());
    }
    j.close();
}

fn print_phase(base: Option<&Phase>, phase: &Phase, args: &Args) {
    println!();
    println!("== {} client threads, {:.1} s ==", phase.threads, phase.window.as_secs_f64());
    if let Some(b) = base {
        let s = b.out.lat[0].clone().summary();
        println!(
            "baseline (trivial server): {:.0} conn/s  p50 {}  p99 {}  errors {}{}",
            b.rate(),
            us(s.p50_us),
            us(s.p99_us),
            b.out.errors.iter().sum::<u64>(),
            b.cpu_per_request().map_or(String::new(), |c| format!("  server CPU {c:.0} µs/conn"))
        );
    }
    let mut table = Table::new(&["request", "count", "req/s", "p50", "p90", "p99", "max", "errors"]);
    let mut all = Samples::default();
    for kind in KINDS {
        let s = phase.out.lat[kind as usize].clone();
        all.merge(s.clone());
        let sum = s.summary();
        table.row(vec![
            kind.name().into(),
            sum.count.to_string(),
            format!("{:.0}", sum.count as f64 / phase.window.as_secs_f64().max(1e-9)),
            us(sum.p50_us),
            us(sum.p90_us),
            us(sum.p99_us),
            us(sum.max_us),
            phase.out.errors[kind as usize].to_string(),
        ]);
    }
    let sum = all.summary();
    table.row(vec![
        "all".into(),
        sum.count.to_string(),
        format!("{:.0}", phase.rate()),
        us(sum.p50_us),
        us(sum.p90_us),
        us(sum.p99_us),
        us(sum.max_us),
        phase.out.errors.iter().sum::<u64>().to_string(),
    ]);
    print!("{}", table.render());
    if let Some(b) = base {
        println!("mix req/s / baseline conn/s = {:.3}", phase.rate() / b.rate().max(1e-9));
    }
    if let Some(c) = phase.cpu_per_request() {
        println!("server CPU {c:.0} µs per request");
    }
    for e in &phase.out.examples {
        println!("  error: {e}");
    }
    if let (Some(first), Some(last)) = (phase.mem.first(), phase.mem.last()) {
        let max = phase.mem.iter().map(|m| m.rss_kb).max().unwrap_or(0);
        let threads = phase.mem.iter().map(|m| m.threads).max().unwrap_or(0);
        let queued = phase.offline_queued;
        println!(
            "server RSS {} kB -> {} kB (max {max} kB), at most {threads} threads; {queued} messages queued for offline users meanwhile",
            first.rss_kb, last.rss_kb
        );
    }
    let _ = args;
    let _ = std::io::stdout().flush();
}

fn print_verdict(v: &Verdict, wait: Duration, complete: bool) {
    println!();
    println!(
        "delivery: {} accepted, {} delivered exactly once, {} lost, {} duplicated, {} misdelivered{}",
        v.accepted,
        v.delivered,
        v.lost,
        v.duplicated,
        v.misdelivered,
        if complete { String::new() } else { " (gave up waiting)".into() }
    );
    if v.unconfirmed_delivered > 0 || v.foreign > 0 {
        println!(
            "  {} delivered whose SEND had no valid reply; {} foreign or malformed pushes",
            v.unconfirmed_delivered, v.foreign
        );
    }
    println!(
        "acknowledgements: {}/{} received, {} duplicated, {} unexpected",
        v.acks_ok, v.acks_expected, v.acks_duplicated, v.acks_unexpected
    );
    for (what, l) in [("SEND issued", &v.latency_from_send), ("SEND reply read", &v.latency)] {
        println!(
            "delivery latency to online recipients, {what} -> push read: p50 {}  p90 {}  p99 {}  max {}  ({} samples)",
            us(l.p50_us),
            us(l.p90_us),
            us(l.p99_us),
            us(l.max_us),
            l.count
        );
    }
    println!("final delivery (offline recipients connected) took {:.2} s", wait.as_secs_f64());
}

fn report_baseline_only(args: &Args, phases: &[Phase]) {
    let mut json = Json::new();
    json.open();
    json.str("tool", "bench");
    json.str("mode", "baseline-only");
    json.array("phases");
    for p in phases {
        let s = p.out.lat[0].clone().summary();
        json.open();
        json.num("threads", p.threads as f64);
        json.num("conn_per_s", p.rate());
        json.num("errors", p.out.errors.iter().sum::<u64>() as f64);
        if let Some(c) = p.cpu_per_request() {
            json.num("server_cpu_us_per_conn", c);
        }
        json.field("latency");
        s.json(&mut json);
        json.close();
        if !args.json {
            println!(
                "baseline c={}: {:.0} conn/s  p50 {}  p99 {}  errors {}  server CPU {:.1} µs/conn",
                p.threads,
                p.rate(),
                us(s.p50_us),
                us(s.p99_us),
                p.out.errors.iter().sum::<u64>(),
                p.cpu_per_request().unwrap_or(f64::NAN)
            );
        }
    }
    json.close_array();
    json.str("load_avg", &load_average());
    json.close();
    if args.json {
        println!("{}", json.into_string());
    } else {
        println!("load average: {}", load_average());
    }
}
