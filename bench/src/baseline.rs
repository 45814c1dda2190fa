//! The two trivial servers of `--baseline` and the phase that loads them.
//!
//! Both accept a connection, read a few bytes, answer one byte and close; they differ in one thing. The first
//! spawns a thread per connection, as our server and the C original do; the second answers on its accept
//! thread. The first is the ceiling of the thread-per-connection design on this machine; the gap between the
//! two is what creating and ending a thread costs per connection. Measuring only one of them hides that cost
//! (or blames the machine for it), so `--baseline` always measures both, in the same run as the mix.
//!
//! Each runs in its own process (the bench re-executes itself), so that it competes for the CPU as the real
//! server does, and ends when its standard input closes, i.e. when the bench exits.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::TrivialKind;
use crate::mix::{Kind, WorkerOut};
use crate::phase::{drive, Phase, Schedule};
use crate::procs::{self, Spawned};
use crate::wire;

/// Bytes a trivial server reads before answering: enough for the baseline client's few bytes.
const TRIVIAL_READ: usize = 64;
/// Read timeout of a trivial server's connection, so that a silent client cannot stall the inline server.
const TRIVIAL_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept or thread spawn (the process is out of descriptors or threads for a moment).
const BACKOFF: Duration = Duration::from_millis(1);

/// Both trivial servers, started once for the run.
pub struct Baselines {
    pub spawn: Spawned,
    pub inline: Spawned,
}

impl Baselines {
    pub fn start() -> io::Result<Baselines> {
        Ok(Baselines { spawn: Spawned::trivial(TrivialKind::Spawn)?, inline: Spawned::trivial(TrivialKind::Inline)? })
    }

    /// The phases of both servers at `threads` client threads, back to back: (spawn, inline).
    pub fn measure(&self, schedule: Schedule, threads: usize, timeout: Duration, show: bool) -> (Phase, Phase) {
        let spawn = run_baseline(&self.spawn, "baseline-spawn", schedule, threads, timeout, show);
        let inline = run_baseline(&self.inline, "baseline-inline", schedule, threads, timeout, show);
        (spawn, inline)
    }
}

/// `threads` clients connecting, writing a few bytes and reading one, as fast as they can.
pub fn run_baseline(
    trivial: &Spawned,
    label: &str,
    schedule: Schedule,
    threads: usize,
    timeout: Duration,
    show: bool,
) -> Phase {
    let addr = trivial.addr;
    let cpu0 = procs::cpu_of(trivial.pid());
    let mut phase = drive(schedule, label, threads, show, None, |_, plan, live| {
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
    phase.server_cpu = cpu0.zip(procs::cpu_of(trivial.pid())).map(|(a, b)| b - a);
    phase
}

/// The trivial server's body: prints `listening PORT`, then serves until stdin closes.
pub fn serve_trivial(kind: TrivialKind, bind: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(bind)?;
    println!("listening {}", listener.local_addr()?.port());
    io::stdout().flush()?;
    thread::spawn(|| {
        // EOF or error on stdin: the parent is gone.
        let _ = io::copy(&mut io::stdin(), &mut io::sink());
        std::process::exit(0);
    });
    // Ends with the process (above).
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                thread::sleep(BACKOFF);
                continue;
            }
        };
        match kind {
            TrivialKind::Inline => answer(stream),
            TrivialKind::Spawn => {
                if thread::Builder::new().spawn(move || answer(stream)).is_err() {
                    thread::sleep(BACKOFF);
                }
            }
        }
    }
}

/// Reads a few bytes and answers one.
fn answer(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(TRIVIAL_READ_TIMEOUT));
    let mut buf = [0u8; TRIVIAL_READ];
    if matches!(stream.read(&mut buf), Ok(n) if n > 0) {
        let _ = stream.write_all(&[0]);
    }
}
