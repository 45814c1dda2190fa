//! The command line: the standard run (no subcommand) and its options, the options every mode shares, and the
//! parsing of lists such as `--mix 60,20,20`.
//!
//! The same option means the same thing in every program of the workspace: `-s/--server HOST` and
//! `-p/--port PORT` name the server, and each setting has an environment variable (prefix `MSG_BENCH_`).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::BenchError;

/// Load generator and delivery checker for the message delivery server.
///
/// Without a subcommand: registers users, connects some with real push listeners, runs a request mix for each
/// client thread count, then checks that every accepted message reached its recipient exactly once.
/// Example: `bench --spawn-server target/release/server --baseline -c 8,64 -d 10`.
#[derive(Debug, Parser)]
#[command(name = "bench", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub mix: MixArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a data directory holding user0 … user{N-1} and M queued messages, for the server's --data-dir.
    Populate(crate::populate::PopulateArgs),
    /// For each population size: populate, restart the server on it, measure restart time, memory and the
    /// latency of SEND, CONNECT and CONNECTEDUSERS.
    Scale(crate::scale::ScaleArgs),
    /// Flush throughput: messages per second to one user who connects with `--queued` messages waiting.
    Flush(crate::flush::FlushArgs),
    /// Slow peers: many connections trickling endless requests from 127.0.0.2 onwards while a good client on
    /// 127.0.0.1 runs its cycles; reports the good client's failures and latency.
    Slowloris(crate::slowloris::SlowlorisArgs),
    /// Internal: a trivial server of `--baseline` (the bench runs it as a child process).
    #[command(hide = true)]
    ServeTrivial(ServeTrivialArgs),
}

/// Which trivial server `--baseline` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TrivialKind {
    /// One new thread per accepted connection, as our server and the C original do.
    Spawn,
    /// Every connection answered on the accepting thread: the cost of the connections alone.
    Inline,
}

#[derive(Debug, Args)]
pub struct ServeTrivialArgs {
    #[arg(long, value_enum)]
    pub kind: TrivialKind,
    pub bind: SocketAddr,
}

/// The server under test: one that is running, or one the bench starts.
#[derive(Debug, Args)]
pub struct Target {
    /// Host of a running server to load. Loopback only: the server pushes to the address a CONNECT came from,
    /// and the bench's listeners are on 127.0.0.1.
    #[arg(short = 's', long, env = "MSG_BENCH_SERVER", value_name = "HOST", default_value = "127.0.0.1")]
    pub server: String,
    /// TCP port of a running server.
    #[arg(short = 'p', long, env = "MSG_BENCH_PORT", default_value_t = 8888,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Start this server binary on 127.0.0.1 and a free port instead (`-p PORT --bind 127.0.0.1`), read and
    /// discard its console through a pipe, stop it with SIGTERM at the end; its memory and CPU are sampled.
    #[arg(long, env = "MSG_BENCH_SPAWN_SERVER", value_name = "PATH")]
    pub spawn_server: Option<PathBuf>,
    /// Extra argument for the spawned server (repeatable), e.g. `--server-arg=--max-queue=200000`; arguments
    /// after `--` are passed as well.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
    /// Arguments after `--`: passed to the spawned server, e.g. `-- --max-connections 256`.
    #[arg(last = true, value_name = "SERVER_ARGS")]
    pub trailing_server_args: Vec<String>,
    /// Sample the memory and CPU time of this process (the server's pid, when the bench did not start it).
    #[arg(long, env = "MSG_BENCH_SERVER_PID")]
    pub server_pid: Option<u32>,
    /// Seconds allowed for each connect and each read.
    #[arg(long, env = "MSG_BENCH_TIMEOUT", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// With --spawn-server: start this many server nodes on one Redis (`--redis`), each with `--cluster URL`;
    /// the mix's client threads are spread over them (thread t talks to node t mod N).
    #[arg(long, env = "MSG_BENCH_CLUSTER_NODES", default_value_t = 1, requires = "redis",
          value_parser = clap::value_parser!(u64).range(1..=16))]
    pub cluster_nodes: u64,
    /// With --spawn-server: the Redis the spawned nodes share (`redis://127.0.0.1:PORT`).
    #[arg(long, env = "MSG_BENCH_REDIS", value_name = "URL", requires = "spawn_server")]
    pub redis: Option<String>,
}

impl Target {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    /// Every extra argument for a spawned server, `--server-arg` ones first, and `--cluster URL` with `--redis`.
    pub fn extra_server_args(&self) -> Vec<String> {
        let cluster = self.redis.iter().flat_map(|url| ["--cluster".to_owned(), url.clone()]);
        self.server_args.iter().chain(&self.trailing_server_args).cloned().chain(cluster).collect()
    }

    /// The address of the running server named by `--server` and `--port`; a usage error unless it is on this
    /// machine's loopback.
    pub fn running_addr(&self) -> Result<SocketAddr, BenchError> {
        let addrs = (self.server.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| BenchError::Usage(format!("--server {}: {e}", self.server)))?;
        let all: Vec<SocketAddr> = addrs.collect();
        all.iter().copied().find(|a| a.ip().is_loopback()).ok_or_else(|| {
            BenchError::Usage(format!(
                "--server {} is not a loopback address: the bench runs on the server's machine only",
                self.server
            ))
        })
    }
}

/// How results are shown.
#[derive(Debug, Args)]
pub struct Output {
    /// Print one JSON line with every figure instead of the table.
    #[arg(long, env = "MSG_BENCH_JSON")]
    pub json: bool,
    /// No progress bar or progress lines.
    #[arg(short = 'q', long, env = "MSG_BENCH_QUIET")]
    pub quiet: bool,
}

/// The standard run: registration, the request mix per thread count, the delivery check.
#[derive(Debug, Args)]
pub struct MixArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub output: Output,
    /// Client threads; a comma-separated list runs one phase per value, e.g. `8,64`.
    #[arg(short = 'c', long, env = "MSG_BENCH_THREADS", default_value = "8", value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Registered users.
    #[arg(short = 'u', long, env = "MSG_BENCH_USERS", default_value_t = 100)]
    pub users: usize,
    /// Users connected with a listener (spread evenly over the registration order).
    #[arg(long, env = "MSG_BENCH_CONNECTED", default_value_t = 50)]
    pub connected: usize,
    /// Offline users that receive messages (default: as many as connected users, at most 1000).
    #[arg(long)]
    pub offline_recipients: Option<usize>,
    /// Seconds per phase (after the warm-up).
    #[arg(short = 'd', long, env = "MSG_BENCH_DURATION", default_value_t = 10.0)]
    pub duration: f64,
    /// Requests per phase instead of a duration (no warm-up).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Seconds of load before each phase whose requests are not counted.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Message text size in bytes (at least 18: the text carries the message number).
    #[arg(long, env = "MSG_BENCH_SIZE", default_value_t = 64)]
    pub size: usize,
    /// Request mix in percent: SEND to online users, SEND to offline users, CONNECTEDUSERS.
    #[arg(long, default_value = "60,20,20")]
    pub mix: Mix,
    /// Before the phases, queue this many messages for the offline recipients and measure the server's memory
    /// per queued message (needs a pid: `--spawn-server` or `--server-pid`).
    #[arg(long, default_value_t = 0)]
    pub preload: u64,
    /// Before each mix phase, measure both trivial servers (one thread per connection, and answering on the
    /// accept thread): the ceilings this machine puts on a one-connection-per-request protocol.
    #[arg(long)]
    pub baseline: bool,
    /// Only the two trivial servers: no message server is contacted.
    #[arg(long)]
    pub baseline_only: bool,
    /// Threads for setup work (registration, connects, preload, cleanup).
    #[arg(long, default_value_t = 8)]
    pub setup_threads: usize,
    /// Seconds to wait at the end for every accepted message and acknowledgement to arrive.
    #[arg(long, default_value_t = 120)]
    pub drain_timeout: u64,
    /// Leave the users registered and connected at the end (by default they are disconnected and
    /// unregistered, unless the bench started the server, which it simply stops).
    #[arg(long)]
    pub keep_users: bool,
    /// Alias prefix (default: random per run, so runs against one server never collide).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Seed of the request choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Percentages of the three request kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub send_online: u32,
    pub send_offline: u32,
    pub users: u32,
}

impl FromStr for Mix {
    type Err = MixError;
    fn from_str(s: &str) -> Result<Mix, MixError> {
        match parse_list::<u32>(s)?[..] {
            [a, b, c] if a.saturating_add(b).saturating_add(c) > 0 => {
                Ok(Mix { send_online: a, send_offline: b, users: c })
            }
            _ => Err(MixError::Weights),
        }
    }
}

/// Why a `--mix` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    /// A part of the list is not a number.
    #[error(transparent)]
    List(#[from] ListError),
    /// Not three weights, or all of them 0.
    #[error("expected three non-negative weights, not all 0, e.g. 60,20,20")]
    Weights,
}

/// Why a comma-separated list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// `part` (trimmed, underscores removed) does not parse: `reason` is the parser's message.
    #[error("{part:?}: {reason}")]
    Part { part: String, reason: String },
}

/// Parses a comma-separated list (`100,10000,1000000`); underscores inside a number are allowed (`1_000_000`).
pub fn parse_list<T: FromStr>(s: &str) -> Result<Vec<T>, ListError>
where
    T::Err: fmt::Display,
{
    s.split(',')
        .map(|p| {
            let p = p.trim().replace('_', "");
            p.parse::<T>().map_err(|e| ListError::Part { reason: e.to_string(), part: p })
        })
        .collect()
}

impl MixArgs {
    /// The checks clap cannot express; a failure is a usage error.
    pub fn check(&self) -> Result<(), String> {
        if self.threads.is_empty() || self.threads.contains(&0) {
            return Err("--threads: every value must be at least 1".into());
        }
        if self.baseline_only {
            return Ok(());
        }
        if self.size < crate::wire::MIN_TEXT || self.size > protocol::MAX_FIELD_LEN {
            return Err(format!("--size must be between {} and {}", crate::wire::MIN_TEXT, protocol::MAX_FIELD_LEN));
        }
        if self.connected < 2 || self.connected > self.users {
            return Err("--connected must be at least 2 (senders need another online user) and at most --users".into());
        }
        if (self.mix.send_offline > 0 || self.preload > 0) && self.connected == self.users {
            return Err("SEND to offline users needs --users greater than --connected".into());
        }
        if !(self.duration > 0.0 && self.duration.is_finite() && self.warmup >= 0.0 && self.warmup.is_finite()) {
            return Err("--duration must be positive and --warmup non-negative".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_accept_spaces_and_underscores() {
        assert_eq!(parse_list::<u64>("100, 10_000,1000000"), Ok(vec![100, 10_000, 1_000_000]));
        assert!(parse_list::<u64>("100,,3").is_err());
        assert!(parse_list::<u64>("-1").is_err());
    }

    #[test]
    fn a_mix_is_three_weights_not_all_zero() {
        assert_eq!("60,20,20".parse(), Ok(Mix { send_online: 60, send_offline: 20, users: 20 }));
        assert!("0,0,0".parse::<Mix>().is_err());
        assert!("60,40".parse::<Mix>().is_err());
    }

    #[test]
    fn list_and_mix_errors_keep_their_wording() {
        let list = parse_list::<u64>("1,-1").map_err(|e| e.to_string());
        assert_eq!(list, Err("\"-1\": invalid digit found in string".into()));
        let weights = "60,40".parse::<Mix>().map_err(|e| e.to_string());
        assert_eq!(weights, Err("expected three non-negative weights, not all 0, e.g. 60,20,20".into()));
        let part = "60,x,20".parse::<Mix>().map_err(|e| e.to_string());
        assert_eq!(part, Err("\"x\": invalid digit found in string".into()));
    }

    #[test]
    fn the_command_line_names_the_bench_and_parses_the_standard_run() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        assert_eq!(Cli::command().get_name(), "bench");
        let cli = Cli::try_parse_from(["bench", "-s", "localhost", "-p", "9000", "--size", "100", "-c", "8,64"])
            .expect("valid command line");
        assert!(cli.command.is_none());
        assert_eq!((cli.mix.target.port, cli.mix.size, cli.mix.threads.clone()), (9000, 100, vec![8, 64]));
        assert!(cli.mix.target.running_addr().expect("loopback").ip().is_loopback());
    }
}
