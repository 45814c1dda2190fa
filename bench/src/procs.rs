//! Child processes the bench may start (the server under test, the trivial baseline server) and the memory
//! sampler that watches the server's resident set through `/proc`.

use std::io::{self, BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::cli::{Target, TrivialKind};
use crate::BenchError;

/// How long a started server may take to print its start-up line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Polling step while waiting for a child to exit.
const EXIT_POLL: Duration = Duration::from_millis(20);
/// Connect timeout of one attempt while waiting for a started server to listen.
const START_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest sleep of the sampler between two checks of its stop flag.
const SAMPLER_STEP: Duration = Duration::from_millis(50);

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped, so no server outlives the bench.
pub struct Spawned {
    child: Child,
    pub addr: SocketAddr,
    drain: Option<JoinHandle<()>>,
    started: Instant,
}

/// Most console lines a [`Watched`] record keeps.
pub const MAX_WATCHED_LINES: usize = 64;

/// Console lines of a spawned server that contained a watched pattern, with their arrival times.
#[derive(Debug, Clone, Default)]
pub struct Watched(Arc<Mutex<Vec<(Instant, String)>>>);

impl Watched {
    /// Reads the console line by line to its end, keeping the lines that contain `pattern`.
    fn scan(&self, stdout: ChildStdout, pattern: &str) {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        // Bounded by the child's stdout: it ends when the server exits.
        while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            if line.contains(pattern) {
                let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
                if lines.len() < MAX_WATCHED_LINES {
                    lines.push((Instant::now(), line.trim_end().to_owned()));
                }
            }
            line.clear();
        }
    }

    /// The first line seen at or after `since`.
    pub fn first_since(&self, since: Instant) -> Option<(Instant, String)> {
        let lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        lines.iter().find(|(at, _)| *at >= since).cloned()
    }
}

impl Spawned {
    /// Starts the message server at `path` on 127.0.0.1 and a free port, with `extra` arguments, and waits
    /// until it accepts connections. The port is found by binding port 0 and releasing it (the start-up line
    /// cannot be relied on: it is not printed when `RUST_LOG` hides info lines). Its console (one line per
    /// request at the default level) is read and discarded by a thread, as a terminal or a log file would take
    /// it, so the logging cost stays in the measurement.
    pub fn server(path: &Path, extra: &[String]) -> io::Result<Spawned> {
        Spawned::server_with(path, extra, START_TIMEOUT, None).map(|(s, _)| s)
    }

    /// [`Spawned::server`] with a start-up limit of `start_timeout` (a server recovering a large data directory
    /// takes a while), and, when `watch` is given, a record of every console line containing it (with its
    /// arrival time; at most [`MAX_WATCHED_LINES`]). Returns the server and the record.
    pub fn server_with(
        path: &Path,
        extra: &[String],
        start_timeout: Duration,
        watch: Option<&'static str>,
    ) -> io::Result<(Spawned, Watched)> {
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        let addr: SocketAddr = (Ipv4Addr::LOCALHOST, port).into();
        let mut cmd = Command::new(path);
        cmd.args(["-p", &port.to_string(), "--bind", "127.0.0.1"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?;
        let watched = Watched::default();
        let record = watched.clone();
        let drain = thread::Builder::new().name("server-stdout".into()).spawn(move || match watch {
            None => {
                let _ = io::copy(&mut { stdout }, &mut io::sink());
            }
            Some(pattern) => record.scan(stdout, pattern),
        })?;
        let mut spawned = Spawned { child, addr, drain: Some(drain), started };
        let deadline = Instant::now() + start_timeout;
        loop {
            if crate::wire::probe(addr, START_PROBE_TIMEOUT).is_ok() {
                return Ok((spawned, watched));
            }
            if let Ok(Some(status)) = spawned.child.try_wait() {
                return Err(io::Error::other(format!("the server exited at start: {status}")));
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the server did not start listening in time"));
            }
            thread::sleep(EXIT_POLL);
        }
    }

    /// When the process was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Sends `signal` (a name such as `USR1`) to the process with kill(1).
    pub fn signal(&self, signal: &str) -> io::Result<()> {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("kill -{signal} failed: {status}")))
        }
    }

    /// Starts this very program as a trivial baseline server of `kind`. Its stdin is a pipe that closes when
    /// we exit, which ends it even if we die without cleaning up.
    pub fn trivial(kind: TrivialKind) -> io::Result<Spawned> {
        let exe = std::env::current_exe()?;
        let kind = match kind {
            TrivialKind::Spawn => "spawn",
            TrivialKind::Inline => "inline",
        };
        let mut child = Command::new(exe)
            .args(["serve-trivial", "--kind", kind, "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?;
        match first_port(stdout, |line| line.strip_prefix("listening ")?.trim().parse().ok()) {
            Ok((port, _)) => {
                Ok(Spawned { child, addr: (Ipv4Addr::LOCALHOST, port).into(), drain: None, started: Instant::now() })
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (the server's clean stop), then SIGKILL if it has not exited in time. Returns the exit status
    /// text for the report.
    pub fn stop(mut self) -> String {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            return format!("already exited: {status}");
        }
        // std has no portable SIGTERM; kill(1) is everywhere the server runs.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        let text = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break format!("{status}"),
                Ok(None) if Instant::now() < deadline => thread::sleep(EXIT_POLL),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break "killed after SIGTERM timeout".to_owned();
                }
            }
        };
        if let Some(d) = self.drain.take() {
            let _ = d.join();
        }
        text
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop_inner();
        }
    }
}

/// The server under test: its address, the child process when the bench started it, and the pid to sample.
/// With `--cluster-nodes N`, the other nodes too (`addr` and `pid` are the first node's).
pub struct Server {
    pub addr: SocketAddr,
    pub spawned: Option<Spawned>,
    pub pid: Option<u32>,
    /// Every node's address, the first one included.
    pub nodes: Vec<SocketAddr>,
    others: Vec<Spawned>,
}

impl Server {
    /// Starts the server of `--spawn-server`, or checks that the one named by `--server`/`--port` answers
    /// connections (a refused connection is reported as such, before anything else is tried).
    pub fn start(target: &Target) -> Result<Server, BenchError> {
        if let Some(path) = &target.spawn_server {
            let start = || {
                Spawned::server(path, &target.extra_server_args())
                    .map_err(|e| BenchError::Runtime(format!("cannot start the server: {e}")))
            };
            let spawned = start()?;
            let mut others = Vec::new();
            for _ in 1..target.cluster_nodes {
                others.push(start()?);
            }
            let nodes = std::iter::once(spawned.addr).chain(others.iter().map(|s| s.addr)).collect();
            let pid = Some(spawned.pid());
            return Ok(Server { addr: spawned.addr, spawned: Some(spawned), pid, nodes, others });
        }
        let addr = target.running_addr()?;
        if let Err(e) = crate::wire::probe(addr, target.timeout()) {
            let hint = match &e {
                crate::wire::Failure::Connect(c) if c.kind() == io::ErrorKind::ConnectionRefused => {
                    "connection refused: is the server running? (or let the bench start one: --spawn-server PATH)"
                }
                crate::wire::Failure::Connect(_) => "no answer",
                _ => "no valid reply to a request",
            };
            return Err(BenchError::Runtime(format!("cannot connect to the server at {addr}: {hint} ({e})")));
        }
        Ok(Server { addr, spawned: None, pid: target.server_pid, nodes: vec![addr], others: Vec::new() })
    }

    /// Stops the spawned server(s); returns the exit status of the first for the report (None for a server we did
    /// not start).
    pub fn stop(self) -> Option<String> {
        for other in self.others {
            let status = other.stop();
            if status != "0" && !status.contains("exit status: 0") {
                eprintln!("bench: a cluster node ended with {status}");
            }
        }
        self.spawned.map(Spawned::stop)
    }
}

/// Reads lines from a child's stdout until `parse` finds a port in one, within [`START_TIMEOUT`]. Returns the
/// port and the rest of the stream.
fn first_port(
    stdout: ChildStdout,
    parse: impl Fn(&str) -> Option<u16> + Send + 'static,
) -> io::Result<(u16, BufReader<ChildStdout>)> {
    // Read on a helper thread so that a child that never prints cannot hang us past the timeout.
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        // Bounded: a child prints its start-up line among its first few lines.
        for _ in 0..100 {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Some(port) = parse(line.trim_end()) {
                        let _ = tx.send(Some((port, reader)));
                        return;
                    }
                }
            }
        }
        let _ = tx.send(None);
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(io::Error::other("the child exited or printed no start-up line")),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the child printed no start-up line in time")),
    }
}

/// One sample of a process's memory and threads.
#[derive(Debug, Clone, Copy)]
pub struct MemSample {
    /// Seconds since the sampler started.
    pub t: f64,
    pub rss_kb: u64,
    pub threads: u64,
}

/// Reads VmRSS and Threads of `pid` from `/proc/<pid>/status`.
pub fn mem_of(pid: u32) -> Option<(u64, u64)> {
    let mut text = String::new();
    std::fs::File::open(format!("/proc/{pid}/status")).ok()?.read_to_string(&mut text).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some((field("VmRSS:")?, field("Threads:")?))
}

/// CPU time (user + system, all threads including finished ones) consumed so far by `pid`, in seconds.
///
/// Under a noisy machine this is a steadier figure than throughput: it says what a request costs the server,
/// whatever else competes for the cores.
pub fn cpu_of(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after its closing parenthesis are fixed.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, i.e. 11 and 12 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / CLOCK_TICKS_PER_SECOND)
}

/// The unit of `/proc/<pid>/stat` times: USER_HZ, 100 on every Linux architecture the bench targets.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// Samples a process's memory at a fixed interval on a background thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<MemSample>>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    pub fn start(pid: u32, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (flag, out) = (stop.clone(), samples.clone());
        let thread = thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || {
                let started = Instant::now();
                while !flag.load(Ordering::SeqCst) {
                    if let Some((rss_kb, threads)) = mem_of(pid) {
                        let t = started.elapsed().as_secs_f64();
                        out.lock().unwrap_or_else(|p| p.into_inner()).push(MemSample { t, rss_kb, threads });
                    }
                    // Sleep in short steps so that stopping is prompt.
                    let until = Instant::now() + every;
                    while Instant::now() < until && !flag.load(Ordering::SeqCst) {
                        thread::sleep(SAMPLER_STEP.min(every));
                    }
                }
            })
            .ok();
        Sampler { stop, samples, thread }
    }

    pub fn finish(mut self) -> Vec<MemSample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
