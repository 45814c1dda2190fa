//! Slow and idle peers against the connection limits, and the thread pool behind them (docs/protocol.md 2.5;
//! docs/architecture.md, "The server's threads"): a trickle is cut at the whole-request
//! deadline, an address over its limit sheds its own oldest incomplete connections, a full server sheds one
//! to answer a newcomer, deliveries hold no connection slot, threads are reused and stop in order.
//!
//! Promptness is asserted as generous upper bounds far below the timeouts that would apply without the feature
//! under test (60 s here), so a loaded machine cannot fail a correct server.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use server::Config;
use testkit::*;

/// A well-behaved request must be answered this fast even while slow peers are around.
const PROMPT: Duration = Duration::from_secs(3);
/// Timeouts that the features under test must beat by far.
const LONG: Duration = Duration::from_secs(60);

/// A configuration whose idle timeout and deadline never end a connection during a test.
fn patient() -> Config {
    Config { request_timeout: LONG, request_deadline: LONG, ..Config::default() }
}

/// The loopback address 127.0.0.`n`, to play one more host.
fn host(n: u8) -> IpAddr {
    Ipv4Addr::new(127, 0, 0, n).into()
}

fn assert_served_promptly(from: Option<IpAddr>, addr: SocketAddr) {
    let started = Instant::now();
    assert_eq!(raw_from(from, addr, &fields(&["CONNECTEDUSERS", "nobody"])), [2], "answered (from {from:?})");
    assert!(started.elapsed() < PROMPT, "answered in {:?} (from {from:?})", started.elapsed());
}

#[test]
fn a_trickling_peer_is_cut_at_the_request_deadline() {
    const PACE: Duration = Duration::from_millis(100);
    let deadline = Duration::from_secs(1);
    let s = start_with(Config { request_deadline: deadline, ..patient() });
    let started = Instant::now();
    let mut peer = connect_from(None, s.addr());
    peer.set_read_timeout(Some(PACE)).expect("timeout");
    peer.write_all(b"REGISTER\0").expect("written");
    // One byte of a field that never ends, every PACE (the read timeout paces it): never a silence the idle
    // timeout would notice. Bounded: 100 bytes, 10 s.
    let cut = (0..100).find_map(|_| {
        if peer.write_all(b"x").is_err() {
            return Some(started.elapsed());
        }
        let mut buf = [0u8; 16];
        match peer.read(&mut buf) {
            Ok(0) => Some(started.elapsed()),
            Ok(n) => panic!("unexpected reply {:?}", &buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
            Err(_) => Some(started.elapsed()),
        }
    });
    let cut = cut.expect("the trickle was cut");
    assert!(cut >= deadline, "not before the deadline ({cut:?})");
    assert!(cut < deadline + Duration::from_secs(5), "cut at the deadline ({cut:?})");
    assert!(s.store().is_empty());
    assert_served_promptly(None, s.addr());
}

#[test]
fn an_address_over_its_limit_sheds_its_oldest_incomplete_connections() {
    const LIMIT: usize = 4;
    const IDLE: usize = 12;
    let (s, a) = serve_with(Config { max_pending_per_address: Some(LIMIT), ..patient() });
    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            let mut c = connect_from(None, a);
            if i % 2 == 0 {
                c.write_all(b"SEND\0someone\0").expect("half a request");
            }
            c
        })
        .collect();
    // A fresh request from the same address, and one from another, are answered at once.
    assert_served_promptly(None, a);
    assert_served_promptly(Some(OTHER_HOST.into()), a);
    // The oldest of that address were closed without reply, long before their 60 s timeouts.
    for (i, c) in idle[..IDLE - LIMIT].iter_mut().enumerate() {
        assert!(closed_within(c, TIMEOUT), "idle connection {i} was shed");
    }
    assert!(s.store().is_empty());
}

#[test]
fn with_every_slot_held_by_incomplete_requests_a_new_request_is_answered_promptly() {
    let (s, a) = serve_with(Config { max_connections: 4, max_pending_per_address: Some(4), ..patient() });
    // Four hosts, one silent connection each: every slot is taken.
    let mut idle: Vec<TcpStream> = (2..6).map(|n| connect_from(Some(host(n)), a)).collect();
    eventually("every slot is taken", || s.connections_in_flight() == 4);
    assert_served_promptly(None, a);
    // The oldest one paid for it (all addresses hold one: the oldest overall).
    assert!(closed_within(&mut idle[0], TIMEOUT), "the oldest was shed");
    // Again, from one of those hosts.
    assert_served_promptly(Some(host(3)), a);
}

#[test]
fn a_full_server_sheds_from_the_address_holding_the_most_incomplete_requests() {
    let (s, a) = serve_with(Config { max_connections: 4, max_pending_per_address: Some(4), ..patient() });
    let mut lone = connect_from(Some(host(3)), a);
    let mut crowd: Vec<TcpStream> = (0..3).map(|_| connect_from(Some(host(2)), a)).collect();
    eventually("every slot is taken", || s.connections_in_flight() == 4);
    assert_served_promptly(None, a);
    assert!(closed_within(&mut crowd[0], TIMEOUT), "the crowd's oldest was shed");
    // The lone connection, although the oldest of all, is untouched (a bounded negative check).
    assert!(!closed_within(&mut lone, Duration::from_millis(300)), "the lone connection was kept");
    // It can still finish its request and be answered.
    lone.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    lone.write_all(&fields(&["CONNECTEDUSERS", "nobody"])).expect("written");
    assert_eq!(read_all(&mut lone), [2]);
}

/// A listening socket whose accept queue is full: a connection to it hangs until the connect timeout.
fn jammed_listener() -> (socket2::Socket, Vec<TcpStream>) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.bind(&SocketAddr::new(host(1), 0).into()).expect("bind");
    socket.listen(0).expect("listen");
    let addr = socket.local_addr().expect("address").as_socket().expect("inet");
    // Never accepted: they fill the queue (one is enough on Linux; the second may already hang, briefly).
    let fillers = (0..2).filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()).collect();
    (socket, fillers)
}

#[test]
fn deliveries_hold_no_connection_slot() {
    let (s, a, [_lb]) = serve_online_with(Config { max_connections: 1, ..Config::default() }, ["bob"]);
    register(a, "alice");
    // Alice's listener never completes a connection: her push waits for the 3 s connect timeout.
    let (jammed, _fillers) = jammed_listener();
    let port = jammed.local_addr().expect("address").as_socket().expect("inet").port();
    assert_eq!(call(a, &["CONNECT", "alice", &port.to_string()]), [0]);
    send(a, "bob", "alice", "are you there");
    // While that delivery waits, its request's slot is already free, and the next client is served.
    let mut seen = false;
    eventually("the delivery is in progress", || {
        if s.deliveries_in_progress() == 1 {
            seen = true;
            assert_eq!(s.connections_in_flight(), 0, "a delivery holds no connection slot");
        }
        seen
    });
    // Served (status 0); whether alice is still listed depends on whether her 3 s have run out meanwhile.
    let reply = call(a, &["CONNECTEDUSERS", "bob"]);
    assert!(
        reply == fields_reply(&["2", "bob", "alice"]) || reply == fields_reply(&["1", "bob"]),
        "served while the delivery waits: {reply:?}"
    );
}

/// The reply bytes of a successful CONNECTEDUSERS: status 0, then the fields.
fn fields_reply(parts: &[&str]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend(fields(parts));
    out
}

#[test]
fn connection_threads_are_reused() {
    const SEQUENTIAL: usize = 100;
    const CLIENTS: usize = 4;
    const EACH: usize = 50;
    let (s, a) = serve();
    for _ in 0..SEQUENTIAL {
        assert_eq!(call(a, &["CONNECTEDUSERS", "nobody"]), [2]);
    }
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..EACH {
                    assert_eq!(call(a, &["CONNECTEDUSERS", "nobody"]), [2]);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client thread");
    }
    let served = SEQUENTIAL + CLIENTS * EACH;
    let spawned = s.threads_spawned();
    assert!(spawned >= 1);
    assert!(spawned <= (served / 10) as u64, "{spawned} threads for {served} connections");
}

#[test]
fn stop_ends_idle_workers_and_waits_for_busy_ones() {
    let (s, a) = serve_with(patient());
    let store = s.store().clone();
    for _ in 0..10 {
        assert_eq!(call(a, &["CONNECTEDUSERS", "nobody"]), [2]);
    }
    // A busy worker: a request that has begun but not ended.
    let mut busy = connect_from(None, a);
    busy.write_all(&fields(&["REGISTER", "Late L", "late"])).expect("written");
    eventually("the request is in progress", || s.connections_in_flight() == 1);
    let (stopped_tx, stopped) = mpsc::channel();
    let stopping = thread::spawn(move || {
        s.shutdown();
        stopped_tx.send(()).expect("test alive");
    });
    // Once the listening socket is closed, the stop is under way; the busy connection is still served.
    eventually("the listener is closed", || TcpStream::connect_timeout(&a, TIMEOUT).is_err());
    assert!(stopped.try_recv().is_err(), "the stop waits for the busy connection");
    busy.write_all(&fields(&["01/01/2000"])).expect("rest written");
    assert_eq!(read_all(&mut busy), [0], "the busy connection was answered");
    // Then every worker, parked or busy, has ended and the stop returns (well before idle workers retire).
    stopped.recv_timeout(Duration::from_secs(5)).expect("the stop returned");
    stopping.join().expect("stopping thread");
    assert_eq!(store.len(), 1, "the late REGISTER was applied");
}
