//! Command-line flags (README.md, and docs/protocol.md, section "Client").

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::Parser;
use client::listener::PushSource;

/// The normalization service used when neither `--ws-url` nor `MSG_WS_URL` names one (docs/protocol.md,
/// "Client: normalizing messages").
pub const DEFAULT_WS_URL: &str = "http://localhost:8000/";

/// The interactive client of the message delivery service.
///
/// Reads commands (REGISTER, UNREGISTER, CONNECT, DISCONNECT, CONNECTEDUSERS, SEND, QUIT; HELP lists them) from a
/// terminal with line editing, or one per line from a pipe or a file; prints the result line of each on stdout,
/// and the messages that arrive while a user is connected. Reasons for failures and other explanations go to
/// stderr, so stdout holds only the result lines (docs/protocol.md, "Client: output lines" and "Client:
/// explanations"). End of input and Ctrl-C act as QUIT. The server is first contacted by the first command.
///
/// Exit status: 0 when the session ends (QUIT, end of input, Ctrl-C), 1 when the client cannot run (the server's
/// name does not resolve, a thread cannot start), 2 for wrong arguments.
#[derive(Debug, Parser)]
#[command(name = "client", version)]
pub struct Args {
    /// Server host name or IPv4 address.
    #[arg(short = 's', long, env = "MSG_SERVER_HOST", value_name = "HOST")]
    pub server: String,

    /// Server TCP port.
    #[arg(short = 'p', long, env = "MSG_SERVER_PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// URL of the normalization web service [default: http://localhost:8000/]. When given (here or in the
    /// environment), a service that is down makes SEND fail; the default one, when down, is replaced by local
    /// normalization with a warning.
    #[arg(long, env = "MSG_WS_URL", value_name = "URL")]
    pub ws_url: Option<String>,

    /// Normalize messages in-process with the rule of the web service instead of calling it.
    #[arg(long)]
    pub local_normalize: bool,

    /// Read pushes only from this address, or from any address with `any` [default: the server's address]. Use
    /// it when the server is behind NAT or has several addresses and its pushes come from one the client does not
    /// know. Connections from other addresses are closed unread.
    #[arg(long, env = "MSG_CLIENT_ACCEPT_PUSHES_FROM", value_name = "ADDR|any")]
    pub accept_pushes_from: Option<PushSource>,

    /// Print the `c> ` prompt even when input is not a terminal (off by default so that a script's output holds
    /// only result lines and messages).
    #[arg(long)]
    pub prompt: bool,

    /// Run the full-screen terminal messenger instead of the line shell (keys and commands: docs/tui.md).
    #[arg(long)]
    pub tui: bool,

    /// Where the TUI keeps each user's conversations [default: the platform's data directory, e.g.
    /// ~/.local/share/msgclient on Linux].
    #[arg(long, env = "MSG_HISTORY_DIR", value_name = "DIR")]
    pub history_dir: Option<PathBuf>,
}

impl Args {
    /// The server's address, IPv4 first (the protocol runs over IPv4; `localhost` may list `::1` first).
    pub fn server_address(&self) -> io::Result<SocketAddr> {
        let addrs: Vec<SocketAddr> = (self.server.as_str(), self.port).to_socket_addrs()?.collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the name has no address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn short_and_long_forms() {
        let a = Args::try_parse_from(["client", "-s", "127.0.0.1", "-p", "8080"]).unwrap();
        assert_eq!((a.server.as_str(), a.port, a.local_normalize, a.prompt), ("127.0.0.1", 8080, false, false));
        let a = Args::try_parse_from([
            "client",
            "--server",
            "h",
            "--port",
            "1",
            "--ws-url",
            "http://x:1/",
            "--local-normalize",
            "--prompt",
        ])
        .unwrap();
        assert_eq!(a.ws_url.as_deref(), Some("http://x:1/"));
        assert!(a.local_normalize && a.prompt);
        assert_eq!(a.accept_pushes_from, None);
        let a = Args::try_parse_from(["client", "-s", "h", "-p", "1", "--accept-pushes-from", "any"]).unwrap();
        assert_eq!(a.accept_pushes_from, Some(PushSource::Any));
        let a = Args::try_parse_from(["client", "-s", "h", "-p", "1", "--accept-pushes-from", "10.0.0.1"]).unwrap();
        assert_eq!(a.accept_pushes_from, Some(PushSource::Only("10.0.0.1".parse().unwrap())));
        assert!(Args::try_parse_from(["client", "-s", "h", "-p", "1", "--accept-pushes-from", "x"]).is_err());
        assert!(!a.tui && a.history_dir.is_none());
        let a = Args::try_parse_from(["client", "-s", "h", "-p", "1", "--tui", "--history-dir", "/tmp/h"]).unwrap();
        assert!(a.tui);
        assert_eq!(a.history_dir, Some(PathBuf::from("/tmp/h")));
    }

    #[test]
    fn bad_ports_are_refused() {
        for port in ["0", "65536", "x", "-1"] {
            assert!(Args::try_parse_from(["client", "-s", "h", "-p", port]).is_err(), "{port}");
        }
    }
}
