//! Malformed, truncated, oversized, slow and abandoned connections (docs/protocol.md 2.4): each gets its documented
//! answer, changes nothing, and never delays a well-behaved client beyond the timeouts.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use server::Config;
use testkit::*;

/// A well-behaved request must be answered this fast even while bad peers are around: well below the server's
/// whole-request deadline (`server::DEFAULT_REQUEST_DEADLINE`, 5 s), with room for a slow machine.
const PROMPT: Duration = Duration::from_secs(3);

fn assert_still_serving(addr: std::net::SocketAddr) {
    let started = Instant::now();
    assert_eq!(call(addr, &["CONNECTEDUSERS", "nobody"]), [2]);
    assert!(started.elapsed() < PROMPT, "served in {:?}", started.elapsed());
}

#[test]
fn unknown_operations_are_closed_without_reply_and_change_nothing() {
    let (s, a) = serve();
    for op in ["QUIT", "SENDATTACH", "register", "HELLO WORLD", "CONNECTEDUSERSX"] {
        assert_eq!(call(a, &[op, "alice", "x", "y"]), b"", "{op}");
    }
    assert_eq!(raw(a, &[b'Z'; 5000]), b"");
    assert!(s.store().is_empty());
    assert_still_serving(a);
}

#[test]
fn empty_and_truncated_requests_get_no_reply_and_change_nothing() {
    let (s, a) = serve();
    assert_eq!(raw(a, b""), b"");
    for bytes in [&b"REGISTER\0full\0alice"[..], b"REGISTER\0full\0alice\0", b"REGI", b"SEND\0a\0b\0no end"] {
        let mut stream = connect_from(None, a);
        stream.write_all(bytes).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_all(&mut stream), b"", "{bytes:?}");
    }
    assert!(s.store().is_empty(), "the truncated REGISTER registered nobody");
    assert_still_serving(a);
}

#[test]
fn over_long_fields_get_the_generic_failure_and_the_request_is_read_to_its_end() {
    let (s, a) = serve();
    register(a, "alice");
    let long = "n".repeat(10_000);
    assert_eq!(call(a, &["REGISTER", &long, "bob", "01/01/2000"]), [2]);
    assert_eq!(call(a, &["CONNECT", "alice", &"9".repeat(300)]), [3]);
    assert_eq!(s.store().len(), 1, "bob was not registered");
    assert_eq!(s.store().is_connected("alice"), Some(false));
}

#[test]
fn a_request_past_the_cap_is_closed_without_reply() {
    let (s, a) = serve();
    let mut stream = connect_from(None, a);
    let mut bytes = b"REGISTER\0".to_vec();
    bytes.extend(vec![b'x'; protocol::MAX_REQUEST_LEN + 1000]);
    // The server stops reading at the cap and closes: the write may fail with a reset, which is expected.
    let _ = stream.write_all(&bytes);
    let _ = stream.shutdown(Shutdown::Write);
    assert_eq!(read_all(&mut stream), b"");
    assert!(s.store().is_empty());
    assert_still_serving(a);
}

#[test]
fn non_utf8_fields_get_the_generic_failure() {
    let (s, a) = serve();
    assert_eq!(raw(a, b"REGISTER\0name\0al\xffice\0date\0"), [2]);
    assert_eq!(raw(a, b"CONNECT\0\xc3\x28\x0080\0"), [3]);
    assert!(s.store().is_empty());
}

#[test]
fn bytes_after_the_last_field_are_ignored() {
    let (s, a) = serve();
    assert_eq!(raw(a, b"REGISTER\0Alice\0alice\0date\0trailing junk\0and more"), [0]);
    assert_eq!(s.store().len(), 1);
}

#[test]
fn a_silent_client_is_timed_out_and_does_not_delay_others() {
    let (s, a) = serve_with(Config { request_timeout: Duration::from_millis(500), ..Config::default() });
    let mut silent = connect_from(None, a);
    let mut half = connect_from(None, a);
    half.write_all(b"REGISTER\0half a request\0").unwrap();
    assert_still_serving(a);
    let started = Instant::now();
    assert_eq!(read_all(&mut silent), b"", "closed without reply");
    assert_eq!(read_all(&mut half), b"");
    assert!(started.elapsed() < Duration::from_secs(5), "closed by the idle timeout");
    assert!(s.store().is_empty());
}

#[test]
fn hundreds_of_idle_connections_do_not_stop_other_clients() {
    const IDLE: usize = 400;
    let (_s, a) = serve();
    let idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            let mut c = connect_from(None, a);
            if i % 2 == 0 {
                c.write_all(b"SEND\0someone\0").unwrap();
            }
            c
        })
        .collect();
    let la = Listener::bind();
    register(a, "alice");
    connect(a, "alice", &la);
    let id = send(a, "alice", "alice", "still here");
    assert_eq!(la.next(), message("alice", id, "still here"));
    assert_still_serving(a);
    drop(idle);
}
