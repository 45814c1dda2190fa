//! `server -p PORT`: the message delivery server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use protocol::Profile;
use server::{Config, Server};
use signal_hook::consts::{SIGINT, SIGTERM};
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
    /// Connections served at once; further ones wait in the accept queue.
    #[arg(long, env = "MSG_SERVER_MAX_CONNECTIONS", default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Pending messages and acknowledgements per user; a SEND to a full queue fails (code 2).
    #[arg(long, env = "MSG_SERVER_MAX_QUEUE", default_value_t = server::DEFAULT_MAX_QUEUE)]
    max_queue: usize,
    /// Seconds without a byte after which a request is abandoned.
    #[arg(long, env = "MSG_SERVER_REQUEST_TIMEOUT", default_value_t = server::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    request_timeout: u64,
    /// Byte-level dialect of replies and pushes: standard, ascii or ascii-u32 (for the original clients).
    #[arg(long, env = "MSG_SERVER_PROFILE", default_value_t = Profile::Standard)]
    profile: Profile,
    /// Accept DISCONNECT from any address, not only from the listener's IP.
    #[arg(long, env = "MSG_SERVER_NO_IP_CHECK")]
    no_ip_check: bool,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .target(env_logger::Target::Stdout)
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
    let args = Args::parse();
    if args.request_timeout == 0 || args.max_connections == 0 || args.max_queue == 0 {
        eprintln!("error: --request-timeout, --max-connections and --max-queue must be at least 1");
        return ExitCode::from(2);
    }
    let config = Config {
        bind: SocketAddr::new(args.bind, args.port),
        max_connections: args.max_connections,
        max_queue: args.max_queue,
        request_timeout: Duration::from_secs(args.request_timeout),
        profile: args.profile,
        ip_check: !args.no_ip_check,
    };
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {}:{}: {e}", args.bind, args.port);
            return ExitCode::FAILURE;
        }
    };
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signal_handle = signals.handle();
    let stopper = server.stopper();
    let watcher = std::thread::Builder::new().name("signals".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            log::debug!("signal {sig}: stopping");
            stopper.stop();
        }
    });
    let port = server.local_addr().port();
    log::info!("s> init server {}:{port}", shown_address(args.bind));
    log::info!("s>");
    server.run();
    signal_handle.close();
    if let Ok(w) = watcher {
        let _ = w.join();
    }
    log::info!("s> server stopped");
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
