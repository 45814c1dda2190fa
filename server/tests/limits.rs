//! The slow-peer limits reach the server through the binary's flags (docs/protocol.md 2.5); their behaviour in detail is tested in-process by the e2e crate (tests/slow_peers.rs).

use std::io::Write;
use std::time::{Duration, Instant};

use testkit::{closed_within, connect_from, request, ServerProcess, TIMEOUT};

#[test]
fn the_binary_cuts_a_slow_request_at_its_deadline() {
    let srv = ServerProcess::start(&["--request-deadline", "1", "--request-timeout", "60"]);
    let started = Instant::now();
    let mut slow = connect_from(None, srv.addr);
    slow.write_all(b"REGISTER\0half").expect("written");
    // Well before the 60 s idle timeout.
    assert!(closed_within(&mut slow, TIMEOUT), "closed at the deadline");
    assert!(started.elapsed() >= Duration::from_secs(1), "not before it");
    assert_eq!(request(srv.addr, &["CONNECTEDUSERS", "nobody"]), b"\x02");
}

#[test]
fn the_binary_sheds_an_address_over_its_limit() {
    let srv = ServerProcess::start(&[
        "--max-pending-per-address",
        "1",
        "--max-deliveries",
        "4",
        "--request-deadline",
        "60",
        "--request-timeout",
        "60",
    ]);
    let mut first = connect_from(None, srv.addr);
    first.write_all(b"SEND\0").expect("written");
    // A second connection from the same address sheds the first, long before any timeout.
    assert_eq!(request(srv.addr, &["CONNECTEDUSERS", "nobody"]), b"\x02");
    assert!(closed_within(&mut first, TIMEOUT), "the older incomplete request was shed");
}

#[test]
fn zero_limits_are_refused() {
    for flag in ["--request-deadline", "--max-pending-per-address", "--max-deliveries"] {
        let (code, _) = ServerProcess::run_to_exit(&[flag, "0"]);
        assert_eq!(code, Some(2), "{flag} 0");
    }
}
