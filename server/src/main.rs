//! `server -p PORT`: the message delivery server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use protocol::Profile;
use server::{console, Config, Server};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

/// Message delivery server: users register, connect and exchange short messages through it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TCP port to listen on.
    #[arg(short, long, env = "MSG_SERVER_PORT")]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "MSG_SERVER_BIND", default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Connections served at once. When all are taken, a newcomer sheds the oldest incomplete request of the
    /// address with the most of them; it waits only while every slot holds a complete request.
    #[arg(long, env = "MSG_SERVER_MAX_CONNECTIONS", default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Incomplete requests one address may have at once; a newcomer beyond it sheds that address's oldest
    /// [default: max-connections / 8, at least 1].
    #[arg(long, env = "MSG_SERVER_MAX_PENDING_PER_ADDRESS", value_name = "N")]
    max_pending_per_address: Option<usize>,
    /// Deliveries (pushes after a reply) in progress at once; they do not hold connection slots.
    #[arg(long, env = "MSG_SERVER_MAX_DELIVERIES", value_name = "N", default_value_t = server::DEFAULT_MAX_DELIVERIES)]
    max_deliveries: usize,
    /// Pending messages and acknowledgements per user; a SEND to a full queue fails (code 2).
    #[arg(long, env = "MSG_SERVER_MAX_QUEUE", default_value_t = server::DEFAULT_MAX_QUEUE)]
    max_queue: usize,
    /// Seconds without a byte after which a request is abandoned.
    #[arg(long, env = "MSG_SERVER_REQUEST_TIMEOUT", default_value_t = server::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    request_timeout: u64,
    /// Seconds from accept within which a request must be complete, however its bytes trickle in.
    #[arg(long, env = "MSG_SERVER_REQUEST_DEADLINE", value_name = "SECS",
          default_value_t = server::DEFAULT_REQUEST_DEADLINE.as_secs())]
    request_deadline: u64,
    /// Byte-level dialect of replies and pushes: standard, ascii or ascii-u32 (for the original clients).
    #[arg(long, env = "MSG_SERVER_PROFILE", value_enum, default_value_t = ProfileName::Standard)]
    profile: ProfileName,
    /// Accept DISCONNECT from any address, not only from the listener's IP.
    #[arg(long, env = "MSG_SERVER_NO_IP_CHECK")]
    no_ip_check: bool,
    /// Accept a REGISTER that carries only a user name (sunniAngela's client, docs/protocol.md appendix A): when nothing
    /// follows its first field within 250 ms, that field is the alias and the full name, and the date is empty.
    #[arg(long, env = "MSG_SERVER_ACCEPT_SHORT_REGISTER")]
    accept_short_register: bool,
    /// Also serve the ttweet board (`u\n<message>` posts, `d\n` reads the last message) on this TCP port.
    #[arg(long, env = "MSG_SERVER_TTWEET_PORT", value_name = "PORT")]
    ttweet_port: Option<u16>,
    /// Append every console line to this file as well (created if missing).
    #[arg(long, env = "MSG_SERVER_LOG_FILE", value_name = "PATH")]
    log_file: Option<PathBuf>,
    /// Keep users and undelivered messages in this directory (created if missing), durably: nothing
    /// acknowledged is lost, even on a crash. Without it, a restart loses everything.
    #[arg(long, env = "MSG_SERVER_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// With --data-dir: the journal is compacted once it has grown past this many bytes since the last
    /// snapshot (and past twice the live state).
    #[arg(long, env = "MSG_SERVER_COMPACT_MIN_BYTES", value_name = "BYTES",
          default_value_t = server::journal::DEFAULT_COMPACT_MIN_BYTES)]
    compact_min_bytes: u64,
    /// Keep the state in Redis (one `redis://HOST:PORT`, or several / one seed for a Redis Cluster), so that
    /// several servers act as one service (docs/scale-out.md). Replaces --data-dir.
    #[arg(long, env = "MSG_SERVER_CLUSTER", value_name = "URL", value_delimiter = ',', conflicts_with = "data_dir")]
    cluster: Vec<String>,
    /// With --cluster: refuse to start unless Redis syncs every write (appendonly yes, appendfsync always),
    /// instead of only warning.
    #[arg(long, env = "MSG_SERVER_REQUIRE_DURABLE", requires = "cluster")]
    require_durable: bool,
    /// With --cluster: milliseconds a delivery claim lives unless renewed; a dead node's deliveries resume after
    /// it. Keep it above the 9 s one push can take.
    #[arg(long, env = "MSG_SERVER_CLAIM_TTL_MS", value_name = "MS",
          default_value_t = server::cluster::DEFAULT_CLAIM_TTL.as_millis() as u64)]
    claim_ttl_ms: u64,
}

/// The names of the dialects on the command line (docs/protocol.md appendix A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProfileName {
    /// Raw status byte, decimal id, SEND_MESSAGE (carlosiborra's and sunniAngela's clients).
    Standard,
    /// ASCII status, decimal id, RECEIVE_MESS (molinalg's client).
    Ascii,
    /// ASCII status, the id always as 4 bytes, SEND_MESSAGE (AngelMancha's client).
    #[value(name = "ascii-u32")]
    AsciiU32,
}

impl From<ProfileName> for Profile {
    fn from(name: ProfileName) -> Profile {
        match name {
            ProfileName::Standard => Profile::Standard,
            ProfileName::Ascii => Profile::Ascii,
            ProfileName::AsciiU32 => Profile::AsciiU32,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let target = match &args.log_file {
        None => env_logger::Target::Stdout,
        Some(path) => match console::open_log_file(path) {
            Ok(file) => env_logger::Target::Pipe(Box::new(console::Tee::new(std::io::stdout(), file))),
            Err(e) => {
                eprintln!("error: cannot open the log file {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
    };
    // Not a terminal (a pipe, a file): lines go out in batches of at most 20 ms, as C's stdio buffers such a
    // stream; per-line writes cost about 9% of the CPU under load (server::batched). A terminal keeps lines as
    // they come.
    let (target, batch) = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        (target, None)
    } else {
        let out: Box<dyn std::io::Write + Send> = match target {
            env_logger::Target::Pipe(pipe) => pipe,
            _ => Box::new(std::io::stdout()),
        };
        let (writer, handle) = server::batched::BatchWriter::new(out);
        (env_logger::Target::Pipe(Box::new(writer)), Some(handle))
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(target)
        .format(|buf, record| {
            use std::io::Write;
            // Console lines look like the original server's (`s> ...`); anything else says its level.
            if record.level() == log::Level::Info {
                writeln!(buf, "{}", record.args())
            } else {
                writeln!(buf, "{}: {}", record.level().as_str().to_lowercase(), record.args())
            }
        })
        .init();
    if [args.request_timeout, args.request_deadline].contains(&0)
        || [args.max_connections, args.max_queue, args.max_deliveries].contains(&0)
        || args.max_pending_per_address == Some(0)
    {
        eprintln!(
            "error: --request-timeout, --request-deadline, --max-connections, --max-pending-per-address, \
             --max-deliveries and --max-queue must be at least 1"
        );
        return ExitCode::from(2);
    }
    let config = Config {
        bind: SocketAddr::new(args.bind, args.port),
        max_connections: args.max_connections,
        max_pending_per_address: args.max_pending_per_address,
        max_deliveries: args.max_deliveries,
        max_queue: args.max_queue,
        request_timeout: Duration::from_secs(args.request_timeout),
        request_deadline: Duration::from_secs(args.request_deadline),
        profile: args.profile.into(),
        ip_check: !args.no_ip_check,
        accept_short_register: args.accept_short_register,
        ttweet_port: args.ttweet_port,
        data_dir: args.data_dir.clone(),
        compact_min_bytes: args.compact_min_bytes,
        cluster: (!args.cluster.is_empty()).then(|| server::cluster::ClusterConfig {
            urls: args.cluster.clone(),
            require_durable: args.require_durable,
            claim_ttl: Duration::from_millis(args.claim_ttl_ms.max(1)),
        }),
    };
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut signals = match Signals::new([SIGINT, SIGTERM, SIGUSR1]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signal_handle = signals.handle();
    let stopper = server.stopper();
    let journal = server.journal();
    let watcher = std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            if sig == SIGUSR1 {
                // Operators ask for a compaction before a backup (docs/operations.md).
                match &journal {
                    Some(j) => j.request_compaction(),
                    None => log::warn!("SIGUSR1: no --data-dir, nothing to compact"),
                }
                continue;
            }
            log::info!("s> signal {sig}: stopping");
            stopper.stop();
            break;
        }
    });
    let port = server.local_addr().port();
    log::info!("s> init server {}:{port}", shown_address(args.bind));
    if let Some(board) = server.ttweet_addr() {
        log::info!("s> init ttweet {}:{}", shown_address(args.bind), board.port());
    }
    log::info!("s>");
    // The accept loop runs on a thread of its own rather than on `main`'s: handing a connection to a parked
    // thread gives the caller a thread handle (crossbeam's thread id), which std frees when a spawned thread ends
    // but never for the main thread, and the leak check (scripts/valgrind-check.sh) counts that as lost.
    match std::thread::Builder::new().name("accept".into()).spawn(move || server.run()) {
        Ok(accept) => {
            if accept.join().is_err() {
                log::error!("the accept loop panicked");
            }
        }
        Err(e) => {
            eprintln!("error: cannot start the accept loop: {e}");
            return ExitCode::FAILURE;
        }
    }
    signal_handle.close();
    if let Ok(w) = watcher {
        let _ = w.join();
    }
    log::info!("s> server stopped");
    // Every buffered console line is written before the process ends.
    drop(batch);
    ExitCode::SUCCESS
}

/// The address shown at start-up: the bound one, or for a wildcard bind the host's first non-loopback IPv4.
fn shown_address(bind: IpAddr) -> IpAddr {
    if !bind.is_unspecified() {
        return bind;
    }
    let first = if_addrs::get_if_addrs()
        .ok()
        .and_then(|ifs| ifs.into_iter().map(|i| i.ip()).find(|ip| ip.is_ipv4() && !ip.is_loopback()));
    first.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}
