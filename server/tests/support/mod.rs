//! Test kit for the compatibility and ttweet tests: requests written the way the original clients write them, a
//! listener that records pushes, and the real `server` binary driven through its console.
//!
//! Every wait is bounded by [`IO_TIMEOUT`]; servers listen on 127.0.0.1 and ephemeral ports only.

#![allow(dead_code)] // Each test file uses a different part of the kit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// Bound on every wait of a test (generous: a slow machine must not fail a correct server).
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes a test reads from one connection.
const READ_CAP: u64 = 1 << 20;
/// A second loopback address, for a peer on "another host" (Linux routes all of 127/8 to loopback).
pub const OTHER_HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Connects to `addr` from `local` (any port), or from the default address.
pub fn connect_from(local: Option<IpAddr>, addr: SocketAddr) -> TcpStream {
    let stream = match local {
        None => TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect to the server"),
        Some(ip) => {
            use socket2::{Domain, Socket, Type};
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
            socket.bind(&SocketAddr::new(ip, 0).into()).expect("bind to the second loopback address");
            socket.connect_timeout(&addr.into(), IO_TIMEOUT).expect("connect to the server");
            socket.into()
        }
    };
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
    stream
}

/// Writes a request as the original Python clients do: each field, then its `0x00`, as separate writes (they
/// call `sendall` per piece), so the server must not depend on how the bytes are split.
pub fn write_fields(stream: &mut TcpStream, parts: &[&str]) {
    for part in parts {
        stream.write_all(part.as_bytes()).expect("field written");
        stream.write_all(b"\0").expect("terminator written");
    }
}

/// Everything the peer sends until it closes.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    stream.take(READ_CAP).read_to_end(&mut out).expect("read until the server closes");
    out
}

/// One request from the default address; the whole reply, up to the server's close.
pub fn request(addr: SocketAddr, parts: &[&str]) -> Vec<u8> {
    request_from(None, addr, parts)
}

/// One request from `local`; the whole reply, up to the server's close.
pub fn request_from(local: Option<IpAddr>, addr: SocketAddr, parts: &[&str]) -> Vec<u8> {
    let mut stream = connect_from(local, addr);
    write_fields(&mut stream, parts);
    read_to_close(&mut stream)
}

/// A client's listener: accepts the server's pushes and records the bytes of each.
pub struct PushListener {
    pub port: u16,
    pushes: Receiver<Vec<u8>>,
}

impl PushListener {
    pub fn bind() -> PushListener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a listener");
        let port = listener.local_addr().expect("listener address").port();
        let (tx, pushes) = channel();
        // The thread ends with the test process; it only ever blocks in accept or in a bounded read.
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
                let mut bytes = Vec::new();
                let _ = (&mut stream).take(READ_CAP).read_to_end(&mut bytes);
                // The server probing whether this listener is still there (a CONNECT of a user it believes
                // connected, docs/protocol.md "Ghost sessions") is not a push.
                if bytes == b"PROBE\0" {
                    continue;
                }
                if tx.send(bytes).is_err() {
                    break;
                }
            }
        });
        PushListener { port, pushes }
    }

    /// The port as the CONNECT request carries it.
    pub fn port_field(&self) -> String {
        self.port.to_string()
    }

    /// The bytes of the next push.
    pub fn next(&self) -> Vec<u8> {
        self.pushes.recv_timeout(IO_TIMEOUT).expect("a push within the timeout")
    }
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

    /// [`ServerProcess::start`] with more environment variables.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["-p", "0", "--bind", "127.0.0.1"])
            .args(extra)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env_remove("MSG_SERVER_PORT")
            .env_remove("MSG_SERVER_PROFILE")
            .env_remove("MSG_SERVER_NO_IP_CHECK")
            .env_remove("MSG_SERVER_ACCEPT_SHORT_REGISTER")
            .env_remove("MSG_SERVER_TTWEET_PORT")
            .env_remove("MSG_SERVER_LOG_FILE")
            .env_remove("MSG_SERVER_REQUEST_DEADLINE")
            .env_remove("MSG_SERVER_MAX_PENDING_PER_ADDRESS")
            .env_remove("MSG_SERVER_MAX_DELIVERIES")
            .env_remove("MSG_SERVER_CLUSTER")
            .env_remove("MSG_SERVER_REQUIRE_DURABLE")
            .env_remove("MSG_SERVER_CLAIM_TTL_MS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
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

    /// The next console line, which must start with `prefix`.
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        let line = match self.lines.recv_timeout(IO_TIMEOUT) {
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
        let deadline = Instant::now() + IO_TIMEOUT;
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
        let deadline = Instant::now() + IO_TIMEOUT;
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

/// The `IP:port` at the end of a start-up line.
fn parse_addr(line: &str) -> SocketAddr {
    let text = line.rsplit(' ').next().unwrap_or_default();
    text.parse().unwrap_or_else(|e| panic!("no address in {line:?}: {e}"))
}
