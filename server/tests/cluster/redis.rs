//! A real `redis-server` for one test: a free loopback port, a temporary directory, the append-only file synced
//! at every write; killed (and its directory removed) when the guard is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::thread;

use testkit::TIMEOUT;

/// Attempts at finding a port nobody took between our probe and redis-server's bind.
const PORT_ATTEMPTS: usize = 5;

pub struct Redis {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    fsync: &'static str,
    cluster: bool,
}

impl Redis {
    /// A durable Redis (`appendonly yes`, `appendfsync always`).
    pub fn start() -> Redis {
        Redis::start_with("always")
    }

    /// A Redis with the given `appendfsync` policy.
    pub fn start_with(fsync: &'static str) -> Redis {
        Redis::launch(fsync, false)
    }

    /// A one-server Redis Cluster (`cluster-enabled yes`, every slot assigned to it): Redis then refuses any
    /// script or multi-key command whose keys are not all in one slot, as a real cluster does.
    pub fn start_cluster() -> Redis {
        let redis = Redis::launch("always", true);
        assert!(redis.command(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).starts_with("+OK"), "slots assigned");
        let deadline = std::time::Instant::now() + TIMEOUT;
        while !redis.command(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
            assert!(std::time::Instant::now() < deadline, "the one-server cluster never became ok");
            thread::sleep(std::time::Duration::from_millis(10));
        }
        redis
    }

    fn launch(fsync: &'static str, cluster: bool) -> Redis {
        let dir = tempfile::tempdir().expect("a temporary directory for redis-server");
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            if let Some(child) = spawn(port, dir.path(), fsync, cluster) {
                return Redis { child, port, dir, fsync, cluster };
            }
        }
        panic!("redis-server did not start on a free loopback port in {PORT_ATTEMPTS} attempts");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and directory (it reloads its append-only file).
    pub fn restart(&mut self) {
        self.kill();
        self.child =
            spawn(self.port, self.dir.path(), self.fsync, self.cluster).expect("redis-server restarts on its port");
    }

    /// One command in RESP, its raw reply (for tests that look at the keys).
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis-server");
        stream.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(out.as_bytes()).expect("command written");
        stream.shutdown(std::net::Shutdown::Write).expect("half-close");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("reply read");
        reply
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind a probe socket");
    probe.local_addr().expect("probe address").port()
}

/// Starts redis-server and waits (bounded) for its "Ready to accept connections" line; None when it exits
/// first (the port was taken meanwhile).
fn spawn(port: u16, dir: &Path, fsync: &str, cluster: bool) -> Option<Child> {
    let port_arg = port.to_string();
    let dir_arg = dir.to_str().expect("a UTF-8 temporary path");
    let mut child = Command::new("redis-server")
        .args(["--port", &port_arg, "--bind", "127.0.0.1", "--dir", dir_arg, "--save", ""])
        .args(["--appendonly", "yes", "--appendfsync", fsync])
        .args(if cluster { &["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"][..] } else { &[] })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run redis-server ({e}): these tests need a real Redis; install it (apt-get install redis-server)")
        });
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, ready) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("Ready to accept connections") {
                let _ = tx.send(());
            }
        }
    });
    match ready.recv_timeout(TIMEOUT) {
        Ok(()) => Some(child),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}
