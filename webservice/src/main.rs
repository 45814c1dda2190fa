//! `webservice`: the SOAP normalization service of PROTOCOL.md section 7.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::builder::TypedValueParser as _;
use clap::Parser;
use log::info;
use webservice::{Config, Service, DEFAULT_WORKERS, MAX_WORKERS};

/// SOAP 1.1 whitespace normalization service (PROTOCOL.md section 7).
///
/// Serves the WSDL at GET /?wsdl and the operations convert_text, eliminar_espacios, modify_text and remove at
/// POST /. Logs one line per request on stderr (RUST_LOG, default info); prints the address it listens on as
/// the first line of stdout.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TCP port to listen on; 0 picks a free port (the startup line on stdout tells which).
    #[arg(long, env = "WEBSERVICE_PORT", default_value_t = 8000)]
    port: u16,

    /// IP address to bind; the default keeps the service reachable from this host only (PROTOCOL.md 7.1).
    #[arg(long, env = "WEBSERVICE_BIND", default_value = "127.0.0.1")]
    bind: IpAddr,

    /// Base URL to advertise as the WSDL's soap:address (e.g. behind a proxy), instead of http://<Host header>/.
    #[arg(long, env = "WEBSERVICE_PUBLIC_URL")]
    public_url: Option<String>,

    /// Worker threads, i.e. connections served at the same time; more wait in the listen backlog.
    #[arg(long, env = "WEBSERVICE_WORKERS", default_value_t = DEFAULT_WORKERS,
          value_parser = clap::value_parser!(u16).range(1..=MAX_WORKERS as i64).map(usize::from))]
    workers: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    let addr = SocketAddr::new(args.bind, args.port);
    let config = Config { public_url: args.public_url, workers: args.workers, ..Config::default() };
    if let Err(e) = config.validate() {
        eprintln!("webservice: {e}");
        return ExitCode::from(2);
    }
    let service = match Service::bind(addr, config) {
        Ok(service) => service,
        Err(e) => {
            eprintln!("webservice: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = service.local_addr();
    // The startup line goes to stdout whatever the log level, so that scripts starting the service with
    // --port 0 can learn the port; the WSDL line is for people.
    println!("webservice listening on http://{local}/ (WSDL at http://{local}/?wsdl)");
    let _ = std::io::stdout().flush();
    info!("serving with {} workers", args.workers);
    match service.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webservice: cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}
