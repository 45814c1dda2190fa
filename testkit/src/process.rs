//! The real `server` binary on 127.0.0.1 and ephemeral ports, driven through its console as an operator would.
//!
//! Where the binary is: a library cannot name `env!("CARGO_BIN_EXE_server")` (Cargo sets it only when it builds
//! the server crate's own tests), so [`server_binary`] finds it next to the running test executable: Cargo puts
//! test executables in `target/<profile>/deps/` and binaries in `target/<profile>/`. Cargo builds the binary for
//! the server crate's integration tests; another crate's tests that start it need `cargo build -p server` first
//! (the panic says so).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Instant;

use crate::TIMEOUT;

/// The path of the `server` binary of the build the running test belongs to.
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable's directory");
    let profile = if deps.ends_with("deps") { deps.parent().expect("the profile directory") } else { deps };
    let path = profile.join(format!("server{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "no server binary at {} (run `cargo build -p server` first)", path.display());
    path
}

/// The real `server` binary on 127.0.0.1 and ephemeral ports, read through its console.
pub struct ServerProcess {
    child: Child,
    lines: Receiver<String>,
    /// Every console line read so far.
    pub seen: Vec<String>,
    pub addr: SocketAddr,
    pub ttweet: Option<SocketAddr>,
}

impl ServerProcess {
    /// Starts `server -p 0 --bind 127.0.0.1 <extra>` and reads its start-up lines.
    pub fn start(extra: &[&str]) -> ServerProcess {
        ServerProcess::start_with_env(extra, &[])
    }

    /// [`ServerProcess::start`] with more environment variables (they may override `RUST_LOG=info`).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        let mut child = command(extra, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server binary");
        let lines = lines_of(child.stdout.take().expect("piped stdout"));
        let mut server =
            ServerProcess { child, lines, seen: Vec::new(), addr: SocketAddr::from(([127, 0, 0, 1], 0)), ttweet: None };
        // With --data-dir, a line about the recovery comes first.
        server.addr = parse_addr(&server.wait_for("s> init server "));
        if extra.contains(&"--ttweet-port") {
            server.ttweet = Some(parse_addr(&server.expect_prefix("s> init ttweet ")));
        }
        server.expect_prefix("s>");
        server
    }

    /// Runs `server -p 0 --bind 127.0.0.1 <extra>` to its exit (bounded: a server still running after [`TIMEOUT`]
    /// is killed and fails the test); its exit code and standard error.
    pub fn run_to_exit(extra: &[&str]) -> (Option<i32>, String) {
        let mut child =
            command(extra, &[]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start the server binary");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = channel();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        // stderr closes when the process exits.
        let text = match rx.recv_timeout(TIMEOUT) {
            Ok(text) => text,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server {extra:?} did not exit");
            }
        };
        let status = child.wait().expect("wait for the server");
        (status.code(), text)
    }

    /// The next console line, which must start with `prefix`.
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        let line = match self.lines.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(e) => panic!("no console line ({e:?}) while expecting {prefix:?}; seen {:#?}", self.seen),
        };
        self.seen.push(line.clone());
        assert!(line.starts_with(prefix), "expected {prefix:?}, got {line:?}; seen {:#?}", self.seen);
        line
    }

    /// Kills the server with SIGKILL, as a crash would, and waits for it.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (bounded) for a console line containing `needle`, skipping others; returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!("no console line containing {needle:?} ({e:?}); seen {:#?}", self.seen),
            }
        }
    }

    /// Stops the server as an operator does (SIGTERM); returns its exit status and every console line it printed.
    pub fn stop(mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let signalled = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(signalled.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + TIMEOUT;
        let mut rest = Vec::new();
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("the server did not stop; printed {rest:#?}"),
            }
        }
        // stdout is closed: the process has exited or is about to, so this wait is short.
        let status = self.child.wait().expect("wait for the server");
        self.seen.extend(rest);
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Only a failing test gets here with the server still running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Lines of `r`, as they come, on a channel that closes at end of stream (a reader thread, which ends with the
/// stream).
pub fn lines_of<R: Read + Send + 'static>(r: R) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// `server -p 0 --bind 127.0.0.1 <extra>` with `RUST_LOG=info`, none of the server's own environment variables
/// but those in `env`, and no stdin.
fn command(extra: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(server_binary());
    cmd.args(["-p", "0", "--bind", "127.0.0.1"]).args(extra).env("RUST_LOG", "info").stdin(Stdio::null());
    for var in [
        "MSG_SERVER_PORT",
        "MSG_SERVER_PROFILE",
        "MSG_SERVER_NO_IP_CHECK",
        "MSG_SERVER_ACCEPT_SHORT_REGISTER",
        "MSG_SERVER_TTWEET_PORT",
        "MSG_SERVER_LOG_FILE",
        "MSG_SERVER_REQUEST_DEADLINE",
        "MSG_SERVER_MAX_PENDING_PER_ADDRESS",
        "MSG_SERVER_MAX_DELIVERIES",
        "MSG_SERVER_CLUSTER",
        "MSG_SERVER_REQUIRE_DURABLE",
        "MSG_SERVER_CLAIM_TTL_MS",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// The `IP:port` at the end of a start-up line.
fn parse_addr(line: &str) -> SocketAddr {
    let text = line.rsplit(' ').next().unwrap_or_default();
    text.parse().unwrap_or_else(|e| panic!("no address in {line:?}: {e}"))
}
