//! `webservice`: the SOAP normalization web service of docs/protocol.md, "Normalization web service".
//!
//! Flags (and their `MSG_WEBSERVICE_*` environment variables), logging, and the process's life: it serves until
//! SIGINT or SIGTERM, then lets every worker finish the request it is serving and exits 0. The handlers are
//! installed explicitly, so the signals work also when a shell started the service in the background with SIGINT
//! ignored. Exit status: 0 after a signal, 1 for a runtime error (the address cannot be bound), 2 for a usage
//! error.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::builder::TypedValueParser as _;
use clap::Parser;
use log::info;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use webservice::{Config, Service, DEFAULT_WORKERS, MAX_WORKERS};

/// webservice: the SOAP 1.1 whitespace normalization web service of the message delivery service
/// (docs/protocol.md, "Normalization web service").
///
/// Serves the WSDL at GET /?wsdl and the operations convert_text, eliminar_espacios, modify_text and remove at
/// POST /. Logs one line per request on stderr (RUST_LOG, default info); prints the address it listens on as
/// the first line of stdout. Stops on SIGINT or SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "webservice", version)]
struct Args {
    /// TCP port to listen on; 0 picks a free port (the startup line on stdout tells which).
    #[arg(short, long, env = "MSG_WEBSERVICE_PORT", default_value_t = 8000)]
    port: u16,

    /// IP address to bind; the default keeps the service reachable from this host only.
    #[arg(long, env = "MSG_WEBSERVICE_BIND", default_value = "127.0.0.1")]
    bind: IpAddr,

    /// Base URL to advertise as the WSDL's soap:address (e.g. behind a proxy), instead of http://<Host header>/.
    #[arg(long, env = "MSG_WEBSERVICE_PUBLIC_URL")]
    public_url: Option<String>,

    /// Worker threads, i.e. connections served at the same time; more wait in the listen backlog.
    #[arg(long, env = "MSG_WEBSERVICE_WORKERS", default_value_t = DEFAULT_WORKERS,
          value_parser = clap::value_parser!(u16).range(1..=MAX_WORKERS as i64).map(usize::from))]
    workers: usize,
}

/// Exit status of a usage error, as clap uses for its own.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    let addr = SocketAddr::new(args.bind, args.port);
    let config = Config { public_url: args.public_url, workers: args.workers, ..Config::default() };
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(USAGE);
    }
    // Installed before the service is announced, so that a signal sent as soon as the startup line is read is
    // handled rather than killing the process.
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("error: cannot install the SIGINT/SIGTERM handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let service = match Service::bind(addr, config) {
        Ok(service) => service,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = service.local_addr();
    let running = match service.spawn() {
        Ok(running) => running,
        Err(e) => {
            eprintln!("error: cannot start the worker threads: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The startup line goes to stdout whatever the log level, so that scripts starting the service with
    // --port 0 can learn the port; the WSDL line is for people.
    println!("webservice listening on http://{local}/ (WSDL at http://{local}/?wsdl)");
    let _ = std::io::stdout().flush();
    info!("serving with {} workers", args.workers);

    let signal = signals.forever().next();
    info!("{}: stopping (each worker finishes its request)", signal.map_or("signal", signal_name));
    running.shutdown();
    info!("webservice stopped");
    ExitCode::SUCCESS
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}
