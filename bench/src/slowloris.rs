//! `bench slowloris`: does the server stay prompt for a good client while many peers trickle requests that
//! never end?
//!
//! Attackers: `--connections` sockets spread over `--sources` loopback source addresses (127.0.0.2, 127.0.0.3,
//! …; each socket is bound to its address before connecting), each sending one byte of an endless REGISTER
//! every `--trickle-ms`, and reopened when the server closes or resets it. A good client on 127.0.0.1
//! meanwhile runs REGISTER, CONNECT, SEND, CONNECTEDUSERS, DISCONNECT, UNREGISTER cycles (docs/protocol.md
//! 2.1 and 4) for `--duration` seconds. The report: failed and timed-out operations and
//! latency percentiles of the good client, and how often the attackers' connections were shed.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use socket2::{Domain, Socket, Type};

use crate::cli::{Output, Target};
use crate::output::{us, Json, Table};
use crate::procs::Server;
use crate::progress::Progress;
use crate::slowloris_client::{good_client, GoodClient, OPS};
use crate::BenchError;

/// Attacker sockets handled by one attacker thread.
const SOCKETS_PER_THREAD: usize = 64;
/// Connect timeout of an attacker socket (a full accept queue drops SYNs; the kernel retries after 1 s).
const ATTACK_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The first bytes trickled: a REGISTER whose full-name field never ends. The server keeps reading a field
/// past its 255-byte limit (to answer the generic failure), so only a whole-request deadline can end it.
const ATTACK_PREFIX: &[u8] = b"REGISTER\0";
/// The byte trickled after the prefix.
const ATTACK_BYTE: u8 = b'x';
/// Most source addresses: 127.0.0.2 up to 127.0.0.201.
const MAX_SOURCES: u8 = 200;
/// Refresh interval of the progress bar during the ramp.
const RAMP_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Args)]
pub struct SlowlorisArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub output: Output,
    /// Trickling connections kept open.
    #[arg(long, env = "MSG_BENCH_SLOW_CONNECTIONS", default_value_t = 512)]
    pub connections: usize,
    /// Loopback source addresses of the attackers: 127.0.0.2 onwards.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_SOURCES)))]
    pub sources: u8,
    /// Milliseconds between two bytes of one attacker connection.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    pub trickle_ms: u64,
    /// Seconds the good client runs its cycles (the attack starts a little earlier, see --ramp).
    #[arg(short = 'd', long, env = "MSG_BENCH_DURATION", default_value_t = 30.0)]
    pub duration: f64,
    /// Seconds the attack runs alone before the good client starts.
    #[arg(long, default_value_t = 3.0)]
    pub ramp: f64,
    /// The good client's target: no failed or timed-out operation, and p99 over all its operations at most
    /// this many milliseconds (issue 12's target is 500). The run exits 1 when it is missed.
    #[arg(long, default_value_t = 500)]
    pub p99_target_ms: u64,
    /// Alias prefix of the good client's users (default: random per run).
    #[arg(long)]
    pub prefix: Option<String>,
}

/// Attack counters, shared by the attacker threads.
#[derive(Debug, Default)]
struct AttackStats {
    opened: AtomicU64,
    /// Connections the server ended (end of stream, reset, or an answer to the endless request).
    shed: AtomicU64,
    /// Connects that failed or timed out (a full accept queue, or the server refusing).
    connect_failed: AtomicU64,
    open_now: AtomicU64,
    bytes: AtomicU64,
}

/// One attacker connection.
struct Trickler {
    source: Ipv4Addr,
    stream: Option<TcpStream>,
    sent: usize,
}

impl Trickler {
    /// Opens (or reopens) the connection from its source address.
    fn open(&mut self, server: SocketAddr, stats: &AttackStats) {
        let connected = (|| {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            socket.bind(&SocketAddr::V4(SocketAddrV4::new(self.source, 0)).into())?;
            socket.connect_timeout(&server.into(), ATTACK_CONNECT_TIMEOUT)?;
            let stream: TcpStream = socket.into();
            stream.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(stream)
        })();
        match connected {
            Ok(stream) => {
                stats.opened.fetch_add(1, Ordering::Relaxed);
                stats.open_now.fetch_add(1, Ordering::Relaxed);
                self.stream = Some(stream);
                self.sent = 0;
            }
            Err(_) => {
                stats.connect_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One tick: notices whether the server ended the connection, then sends the next byte.
    fn tick(&mut self, server: SocketAddr, stats: &AttackStats) {
        let Some(stream) = &mut self.stream else {
            self.open(server, stats);
            return;
        };
        let mut buf = [0u8; 64];
        let ended = match stream.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            // End of stream, an answer (the generic failure) or an error: the server is done with us.
            _ => true,
        };
        let byte = ATTACK_PREFIX.get(self.sent).copied().unwrap_or(ATTACK_BYTE);
        if ended || stream.write(&[byte]).is_err() {
            stats.shed.fetch_add(1, Ordering::Relaxed);
            stats.open_now.fetch_sub(1, Ordering::Relaxed);
            self.stream = None;
            self.open(server, stats);
            return;
        }
        self.sent += 1;
        stats.bytes.fetch_add(1, Ordering::Relaxed);
    }
}

/// One attacker thread: its sockets, one byte each per tick, until `until`.
fn attack(server: SocketAddr, sources: Vec<Ipv4Addr>, every: Duration, until: Instant, stats: &AttackStats) {
    let mut sockets: Vec<Trickler> =
        sources.into_iter().map(|source| Trickler { source, stream: None, sent: 0 }).collect();
    for s in &mut sockets {
        if Instant::now() >= until {
            return;
        }
        s.open(server, stats);
    }
    // Bounded by `until`.
    while Instant::now() < until {
        let tick_end = Instant::now() + every;
        for s in &mut sockets {
            if Instant::now() >= until {
                break;
            }
            s.tick(server, stats);
        }
        thread::sleep(
            tick_end.saturating_duration_since(Instant::now()).min(until.saturating_duration_since(Instant::now())),
        );
    }
    let open = sockets.iter().filter(|s| s.stream.is_some()).count() as u64;
    stats.open_now.fetch_sub(open, Ordering::Relaxed);
}

/// The source address of attacker connection `i`: 127.0.0.2 + (i mod sources).
fn source_of(i: usize, sources: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(sources)) as u8)
}

pub fn run(args: &SlowlorisArgs) -> Result<bool, BenchError> {
    if !(args.duration > 0.0 && args.duration.is_finite() && args.ramp >= 0.0 && args.ramp.is_finite()) {
        return Err(BenchError::Usage("--duration must be positive and --ramp non-negative".into()));
    }
    let server = Server::start(&args.target)?;
    let stats = Arc::new(AttackStats::default());
    let every = Duration::from_millis(args.trickle_ms);
    let ramp = Duration::from_secs_f64(args.ramp);
    let duration = Duration::from_secs_f64(args.duration);
    let until = Instant::now() + ramp + duration;
    let prefix = args.prefix.clone().unwrap_or_else(crate::population::random_prefix);
    let show = !args.output.quiet;

    let good = thread::scope(|s| {
        let sources: Vec<Ipv4Addr> = (0..args.connections).map(|i| source_of(i, args.sources)).collect();
        for (t, chunk) in sources.chunks(SOCKETS_PER_THREAD).enumerate() {
            let (stats, chunk) = (&*stats, chunk.to_vec());
            let spawned = thread::Builder::new()
                .name(format!("attack-{t}"))
                .spawn_scoped(s, move || attack(server.addr, chunk, every, until, stats));
            if let Err(e) = spawned {
                return Err(BenchError::Runtime(format!("cannot start an attacker thread: {e}")));
            }
        }
        let mut bar = Progress::new("slowloris", (ramp + duration).as_millis() as u64, show);
        let started = Instant::now();
        // The ramp: the attack alone, so that the good client meets it fully built.
        while started.elapsed() < ramp {
            thread::sleep(RAMP_POLL);
            bar.update(started.elapsed().as_millis() as u64, || attack_line(&stats));
        }
        let client = GoodClient::new(server.addr, &prefix, args.target.timeout());
        let result = good_client(client, duration, |cycles| {
            bar.update(started.elapsed().as_millis() as u64, || {
                format!("good cycles {cycles}  {}", attack_line(&stats))
            });
        });
        bar.finish();
        result.map_err(BenchError::Runtime)
    })?;
    let server_exit = server.stop();
    let p99_us = good.all().summary().p99_us;
    let ok = good.failed() == 0 && p99_us <= args.p99_target_ms as f64 * 1e3;
    report(args, &good, &stats, server_exit.as_deref(), ok);
    Ok(ok)
}

fn attack_line(stats: &AttackStats) -> String {
    format!(
        "attackers open {}  shed {}  connect failures {}",
        stats.open_now.load(Ordering::Relaxed),
        stats.shed.load(Ordering::Relaxed),
        stats.connect_failed.load(Ordering::Relaxed)
    )
}

fn report(
    args: &SlowlorisArgs,
    good: &crate::slowloris_client::GoodOut,
    stats: &AttackStats,
    exit: Option<&str>,
    ok: bool,
) {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    let mut j = Json::new();
    j.open();
    j.str("tool", "bench");
    j.str("mode", "slowloris");
    j.num("connections", args.connections as f64);
    j.num("sources", f64::from(args.sources));
    j.num("trickle_ms", args.trickle_ms as f64);
    j.num("duration_s", args.duration);
    j.num("p99_target_ms", args.p99_target_ms as f64);
    j.field("attack");
    j.open();
    j.num("opened", load(&stats.opened));
    j.num("shed", load(&stats.shed));
    j.num("connect_failed", load(&stats.connect_failed));
    j.num("bytes", load(&stats.bytes));
    j.close();
    j.field("good_client");
    good.json(&mut j);
    j.close_report(exit, ok);
    if args.output.json {
        println!("{}", j.into_string());
        return;
    }
    let opened = stats.opened.load(Ordering::Relaxed);
    let shed = stats.shed.load(Ordering::Relaxed);
    let failed = stats.connect_failed.load(Ordering::Relaxed);
    println!(
        "attack: {} connections from {} addresses, 1 byte per {} ms: {opened} opened, {shed} shed by the server, \
         {failed} connects failed or timed out",
        args.connections, args.sources, args.trickle_ms
    );
    println!("good client on 127.0.0.1: {} cycles in {:.1} s", good.cycles, good.elapsed.as_secs_f64());
    let mut table = Table::new(&["operation", "count", "failed", "timed out", "p50", "p99", "max"]);
    for (i, op) in OPS.iter().enumerate() {
        let s = good.lat[i].summary();
        let row = [s.count.to_string(), good.failed[i].to_string(), good.timed_out[i].to_string()];
        table.row([op.to_string()].into_iter().chain(row).chain([us(s.p50_us), us(s.p99_us), us(s.max_us)]).collect());
    }
    print!("{}", table.render());
    for e in &good.examples {
        println!("  error: {e}");
    }
    if let Some(exit) = exit {
        println!("server stopped: {exit}");
    }
    let p99 = us(good.all().summary().p99_us);
    let target = format!("no failed operation and p99 at most {} ms (p99 {p99})", args.p99_target_ms);
    println!("{}", if ok { format!("OK: {target}") } else { format!("FAILED: target missed: {target}") });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_cycle_from_127_0_0_2() {
        assert_eq!(source_of(0, 16), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_of(15, 16), Ipv4Addr::new(127, 0, 0, 17));
        assert_eq!(source_of(16, 16), Ipv4Addr::new(127, 0, 0, 2));
    }
}
