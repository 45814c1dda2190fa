//! Helpers for the end-to-end tests: a real server on `127.0.0.1:0`, spoken to in raw protocol bytes, the way
//! a foreign client would, and listeners that collect the server's pushes.
//!
//! Every wait here is bounded by [`TIMEOUT`]; nothing sleeps to synchronise.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use server::{Config, Server, ServerHandle};

/// Upper bound on any single wait in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A second loopback address, to play a client on another host.
pub const OTHER_HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Starts a server with the default configuration on 127.0.0.1 and an ephemeral port.
pub fn start() -> ServerHandle {
    start_with(Config::default())
}

/// Starts a server with `config`.
pub fn start_with(config: Config) -> ServerHandle {
    Server::bind(config).and_then(Server::spawn).expect("server starts on 127.0.0.1:0")
}

/// Builds the wire form of a request or push from its fields: each one followed by `0x00`.
pub fn fields(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p.as_bytes());
        out.push(0);
    }
    out
}

/// Sends `bytes` on a fresh connection and returns everything the server writes before closing.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    raw_from(None, addr, bytes)
}

/// Like [`raw`], from the given local address (for example [`OTHER_HOST`]).
pub fn raw_from(local: Option<IpAddr>, addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect_from(local, addr);
    stream.write_all(bytes).expect("request written");
    read_all(&mut stream)
}

/// Sends a request given as fields and returns the reply bytes.
pub fn call(addr: SocketAddr, parts: &[&str]) -> Vec<u8> {
    raw(addr, &fields(parts))
}

/// Opens a connection from `local` (any port) to `addr`.
pub fn connect_from(local: Option<IpAddr>, addr: SocketAddr) -> TcpStream {
    let stream = match local {
        None => TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect to server"),
        Some(ip) => {
            use socket2::{Domain, Socket, Type};
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
            socket.bind(&SocketAddr::new(ip, 0).into()).expect("bind second loopback address");
            socket.connect_timeout(&addr.into(), TIMEOUT).expect("connect to server");
            socket.into()
        }
    };
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream
}

/// Reads until the peer closes (bounded by the stream's read timeout).
pub fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// REGISTER with a full name and date derived from the alias; asserts success.
pub fn register(addr: SocketAddr, alias: &str) {
    assert_eq!(call(addr, &["REGISTER", &format!("{alias} full"), alias, "01/01/2000"]), [0], "REGISTER {alias}");
}

/// CONNECT `alias` with `listener`'s port; asserts success.
pub fn connect(addr: SocketAddr, alias: &str, listener: &Listener) {
    assert_eq!(call(addr, &["CONNECT", alias, &listener.port().to_string()]), [0], "CONNECT {alias}");
}

/// Binds a listener for `alias` and CONNECTs it; asserts success and returns the listener.
pub fn online(addr: SocketAddr, alias: &str) -> Listener {
    let listener = Listener::bind();
    connect(addr, alias, &listener);
    listener
}

/// REGISTERs `alias`, then [`online`].
pub fn register_online(addr: SocketAddr, alias: &str) -> Listener {
    register(addr, alias);
    online(addr, alias)
}

/// SEND; asserts acceptance and returns the id.
pub fn send(addr: SocketAddr, from: &str, to: &str, text: &str) -> u32 {
    let reply = call(addr, &["SEND", from, to, text]);
    assert_eq!(reply.first(), Some(&0), "SEND {from} -> {to}: {reply:?}");
    assert_eq!(reply.last(), Some(&0), "id field terminated: {reply:?}");
    std::str::from_utf8(&reply[1..reply.len() - 1]).expect("ascii id").parse().expect("decimal id")
}

/// The bytes of a SEND_MESSAGE push.
pub fn message(sender: &str, id: u32, text: &str) -> Vec<u8> {
    fields(&["SEND_MESSAGE", sender, &id.to_string(), text])
}

/// The bytes of a SEND_MESS_ACK push.
pub fn ack(id: u32) -> Vec<u8> {
    fields(&["SEND_MESS_ACK", &id.to_string()])
}

/// Polls `cond` until it holds or [`TIMEOUT`] passes.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::yield_now();
        thread::sleep(Duration::from_millis(5));
    }
}

/// A listener like a client's: accepts push connections and hands over each push's bytes, in arrival order.
pub struct Listener {
    addr: SocketAddr,
    pushes: Receiver<Vec<u8>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// A listener on 127.0.0.1 and an ephemeral port.
    pub fn bind() -> Listener {
        Listener::bind_on(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0))
    }

    /// A listener on `addr`.
    pub fn bind_on(addr: SocketAddr) -> Listener {
        let listener = TcpListener::bind(addr).expect("listener binds");
        let addr = listener.local_addr().expect("listener address");
        let (tx, pushes) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(TIMEOUT));
                let bytes = read_all(&mut stream);
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
        Listener { addr, pushes, stop, thread: Some(thread) }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next push, waiting at most [`TIMEOUT`].
    pub fn next(&self) -> Vec<u8> {
        match self.pushes.recv_timeout(TIMEOUT) {
            Ok(bytes) => bytes,
            Err(RecvTimeoutError::Timeout) => panic!("no push arrived within {TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("listener thread ended"),
        }
    }

    /// The next `n` pushes.
    pub fn take(&self, n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|_| self.next()).collect()
    }

    /// Asserts that no push arrives within `wait` (a bounded negative check, not synchronisation).
    pub fn assert_quiet(&self, wait: Duration) {
        if let Ok(bytes) = self.pushes.recv_timeout(wait) {
            panic!("unexpected push {:?}", String::from_utf8_lossy(&bytes));
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (connections are refused).
pub fn dead_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    l.local_addr().expect("address").port()
}
