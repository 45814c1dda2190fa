//! `bench scale`: the cost of a request against the number of registered users (issue 11). For each size in
//! `--users`: populate a fresh data directory (`bench populate`'s code), start the server on it, and measure
//! the restart time (from the spawn until the port answers a request), the server's RSS once loaded, the
//! REGISTER rate, and the latency of CONNECT, SEND and CONNECTEDUSERS between the bench's own connected users
//! (real listeners, every delivery checked exactly once at the end). With `--sigusr1`, the server is asked to
//! compact (kill -USR1) during the SEND phase, and the slowest SEND while it compacts is reported.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use protocol::{ConnectStatus, DisconnectStatus, Op, RegisterStatus, Reply};

use crate::cli::{parse_list, ListError, Mix, Output, Target};
use crate::mix::{run_mix, MixPlan};
use crate::phase::Schedule;
use crate::populate::{self, Shape};
use crate::population::{random_prefix, Population};
use crate::procs::{self, Spawned};
use crate::scale_report::{report, Compaction, SizeResult};
use crate::stats::Latency;
use crate::verify::{verify, wait_for};
use crate::wire::{self, encode};
use crate::BenchError;

/// Pattern of the server's console line that ends a compaction.
const COMPACTION_LINE: &str = "compaction";
/// How long to wait after the SEND phase for the compaction's line.
const COMPACTION_WAIT: Duration = Duration::from_secs(120);
/// Polling step of the restart probe.
const PROBE_POLL: Duration = Duration::from_millis(5);
/// Seconds to wait for the last deliveries of a size.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Args)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub output: Output,
    /// Registered users per size, e.g. `100,10000,1000000`.
    #[arg(short = 'u', long, env = "MSG_BENCH_USERS", default_value = "100,10000,1000000", value_parser = users_list)]
    pub users: UserList,
    /// Queued messages per size: one value for every size, or one per size (default: as many as users).
    #[arg(long, value_parser = users_list)]
    pub queued: Option<UserList>,
    /// New users registered at each size (the REGISTER rate).
    #[arg(long, default_value_t = 1000)]
    pub register: usize,
    /// Of those, users connected with a listener (senders and recipients of the SEND phase).
    #[arg(long, default_value_t = 50)]
    pub connected: usize,
    /// Measured requests per operation (SEND, CONNECT, CONNECTEDUSERS).
    #[arg(short = 'n', long, default_value_t = 2000)]
    pub requests: u64,
    /// Client threads of the SEND and CONNECTEDUSERS phases.
    #[arg(short = 'c', long, default_value_t = 1)]
    pub threads: usize,
    /// Messages queued live (to one offline user) to measure the server's bytes per queued message.
    #[arg(long, default_value_t = 5000)]
    pub probe_queue: u64,
    /// Message text size in bytes (populated and sent).
    #[arg(long, env = "MSG_BENCH_SIZE", default_value_t = 64)]
    pub size: usize,
    /// Where the temporary data directories go (default: the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Seconds the server may take to load a data directory and answer.
    #[arg(long, default_value_t = 600)]
    pub start_timeout: u64,
    /// Send SIGUSR1 (compact now) to the server during the SEND phase; report the slowest SEND meanwhile.
    #[arg(long)]
    pub sigusr1: bool,
    /// Milliseconds into the SEND phase at which SIGUSR1 is sent.
    #[arg(long, default_value_t = 200)]
    pub sigusr1_after_ms: u64,
    /// Threads for setup work (registration, connects, the queue probe).
    #[arg(long, default_value_t = 8)]
    pub setup_threads: usize,
}

/// A comma-separated list of counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserList(pub Vec<u64>);

fn users_list(s: &str) -> Result<UserList, ListError> {
    parse_list::<u64>(s).map(UserList)
}

impl ScaleArgs {
    fn check(&self) -> Result<Vec<Shape>, String> {
        if self.target.spawn_server.is_none() {
            return Err("scale starts the server on each population: give --spawn-server PATH".into());
        }
        if self.connected < 2 || self.connected >= self.register {
            return Err("--connected must be at least 2 and less than --register".into());
        }
        if self.size < wire::MIN_TEXT || self.size > protocol::MAX_FIELD_LEN {
            return Err(format!("--size must be between {} and {}", wire::MIN_TEXT, protocol::MAX_FIELD_LEN));
        }
        let users = &self.users.0;
        let queued = match &self.queued {
            None => users.clone(),
            Some(UserList(q)) if q.len() == 1 => vec![q[0]; users.len()],
            Some(UserList(q)) if q.len() == users.len() => q.clone(),
            Some(_) => return Err("--queued: one value, or one per --users size".into()),
        };
        let shapes: Vec<Shape> =
            users.iter().zip(queued).map(|(&users, queued)| Shape { users, queued, size: self.size }).collect();
        for s in &shapes {
            s.check().map_err(|e| e.to_string())?;
        }
        Ok(shapes)
    }
}

pub fn run(args: &ScaleArgs) -> Result<bool, BenchError> {
    let shapes = args.check().map_err(BenchError::Usage)?;
    let mut results = Vec::new();
    for shape in shapes {
        results.push(measure_size(args, shape)?);
    }
    report(args.output.json, &results);
    Ok(results.iter().all(SizeResult::ok))
}

/// Populates, starts, measures and stops one size.
fn measure_size(args: &ScaleArgs, shape: Shape) -> Result<SizeResult, BenchError> {
    let show = !args.output.quiet;
    let root = args.data_root.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("bench-scale-")
        .tempdir_in(&root)
        .map_err(|e| BenchError::Runtime(format!("cannot create a data directory in {}: {e}", root.display())))?;
    let step = |what: &str| {
        if show {
            eprintln!("scale: {} users, {} queued: {what}", shape.users, shape.queued);
        }
    };
    step("populating");
    let started = Instant::now();
    populate::write(dir.path(), shape)?;
    let mut r = SizeResult { shape, populate_s: started.elapsed().as_secs_f64(), ..SizeResult::default() };
    step(&format!("populated in {:.2} s; starting the server", r.populate_s));

    let path = args.target.spawn_server.as_deref().unwrap_or(std::path::Path::new("server"));
    let mut server_args = args.target.extra_server_args();
    server_args.extend(["--data-dir".to_owned(), dir.path().display().to_string()]);
    let timeout = Duration::from_secs(args.start_timeout);
    let watch = args.sigusr1.then_some(COMPACTION_LINE);
    let (spawned, watched) = Spawned::server_with(path, &server_args, timeout, watch)
        .map_err(|e| BenchError::Runtime(format!("cannot start the server on {} users: {e}", shape.users)))?;
    r.restart_s = answered(spawned.addr, spawned.started() + timeout, args.target.timeout())?
        .duration_since(spawned.started())
        .as_secs_f64();
    r.rss_kb = procs::mem_of(spawned.pid()).map_or(0, |(rss, _)| rss);
    check_recovered(spawned.addr, shape, args.target.timeout())?;
    step(&format!("answering after {:.2} s; registering, connecting, measuring", r.restart_s));

    let mut pop =
        Population::new(spawned.addr, &random_prefix(), (args.register, args.connected, 1), args.target.timeout());
    let t = Instant::now();
    pop.register_all(args.setup_threads).map_err(BenchError::Runtime)?;
    r.register_per_s = args.register as f64 / t.elapsed().as_secs_f64().max(1e-9);
    let online = pop.online.clone();
    pop.connect_users(&online, args.setup_threads).map_err(BenchError::Runtime)?;
    let before = procs::mem_of(spawned.pid());
    let (mut accepted, errors) = pop.preload(args.probe_queue, args.size, args.setup_threads);
    let after = procs::mem_of(spawned.pid());
    if let (Some((a, _)), Some((b, _))) = (before, after) {
        r.bytes_per_message = (b as f64 - a as f64) * 1024.0 / accepted.len().max(1) as f64;
    }
    r.errors += errors;
    r.connect = connect_cycles(&pop, args.requests);

    let schedule = Schedule { requests: Some(args.requests), warmup: 0.0, duration: 1.0 };
    let send_mix = Mix { send_online: 1, send_offline: 0, users: 0 };
    let plan = MixPlan { mix: send_mix, size: args.size, seed: 1, schedule, record_times: args.sigusr1 };
    let (send, signal) = thread::scope(|s| {
        let signal = args.sigusr1.then(|| {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(args.sigusr1_after_ms));
                (pop.clock.now_ns(), Instant::now(), spawned.signal("USR1"))
            })
        });
        let send = run_mix(&pop, &plan, args.threads, show);
        (send, signal.map(|h| h.join()))
    });
    r.send = send.out.lat[0].clone();
    r.errors += send.errors();
    accepted.extend(send.out.accepted.iter().copied());
    if let Some(Ok((at_ns, at, sent))) = signal {
        let done = sent.is_ok().then(|| wait_line(&watched, at)).flatten();
        r.compaction = Some(Compaction::from_times(&send.out.times, at_ns, at, done, sent.err()));
    }
    let users_mix = Mix { send_online: 0, send_offline: 0, users: 1 };
    let users = run_mix(&pop, &MixPlan { mix: users_mix, record_times: false, ..plan }, args.threads, show);
    r.connected_users = users.out.lat[2].clone();
    r.errors += users.errors();

    // The queue probe's recipient connects; everything accepted must arrive exactly once.
    let offline = pop.offline.clone();
    pop.connect_users(&offline, args.setup_threads).map_err(BenchError::Runtime)?;
    let n = accepted.len() as u64;
    r.complete = wait_for(&pop.counters, n, n, DRAIN_TIMEOUT, show, "delivery");
    let receptions = pop.stop_listeners();
    r.verdict = verify(&accepted, &send.out.unconfirmed, &receptions);
    r.server_exit = spawned.stop();
    Ok(r)
}

/// Waits until the server answers a request ([`wire::probe`]).
fn answered(addr: SocketAddr, deadline: Instant, timeout: Duration) -> Result<Instant, BenchError> {
    // Bounded by `deadline`.
    loop {
        if wire::probe(addr, timeout).is_ok() {
            return Ok(Instant::now());
        }
        if Instant::now() >= deadline {
            return Err(BenchError::Runtime(format!("the server at {addr} accepted but never answered")));
        }
        thread::sleep(PROBE_POLL);
    }
}

/// The last populated user must be registered already: a REGISTER of its alias answers "alias in use".
fn check_recovered(addr: SocketAddr, shape: Shape, timeout: Duration) -> Result<(), BenchError> {
    let Some(last) = shape.users.checked_sub(1) else { return Ok(()) };
    let mut buf = Vec::new();
    encode::register(&mut buf, &populate::alias(last));
    match wire::request(addr, &buf, Op::Register, timeout) {
        Ok(Reply::Register(RegisterStatus::AliasInUse)) => Ok(()),
        other => Err(BenchError::Runtime(format!(
            "the server did not recover the populated users: REGISTER {} answered {other:?}",
            populate::alias(last)
        ))),
    }
}

/// `n` measured CONNECTs, each after an unmeasured DISCONNECT of the same online user.
fn connect_cycles(pop: &Population, n: u64) -> Latency {
    let mut lat = Latency::default();
    let mut buf = Vec::with_capacity(128);
    let ports: Vec<(u32, u16)> = pop.listeners.iter().map(|(u, l)| (*u, l.port)).collect();
    for i in 0..n as usize {
        let (user, port) = ports[i % ports.len()];
        let alias = &pop.aliases[user as usize];
        encode::disconnect(&mut buf, alias);
        let down = wire::request(pop.addr, &buf, Op::Disconnect, pop.timeout);
        if !matches!(down, Ok(Reply::Disconnect(DisconnectStatus::Ok))) {
            continue;
        }
        encode::connect(&mut buf, alias, port);
        let t = Instant::now();
        if let Ok(Reply::Connect(ConnectStatus::Ok)) = wire::request(pop.addr, &buf, Op::Connect, pop.timeout) {
            lat.record(t.elapsed());
        }
    }
    lat
}

/// The first console line containing the compaction pattern after `since`, waiting up to [`COMPACTION_WAIT`].
fn wait_line(watched: &procs::Watched, since: Instant) -> Option<(Instant, String)> {
    let deadline = Instant::now() + COMPACTION_WAIT;
    // Bounded by the deadline.
    loop {
        if let Some(found) = watched.first_since(since) {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(PROBE_POLL);
    }
}
