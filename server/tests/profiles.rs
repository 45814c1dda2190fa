//! The compatibility profiles of docs/protocol.md appendix A, byte by byte.
//!
//! The requests are the ones every original client sends (they are identical across the originals: each field
//! followed by `0x00`, here written piece by piece as the Python clients' `sendall` calls do); what differs is the
//! replies and pushes each original client reads:
//!
//! | profile | clients | how the client reads |
//! |---|---|---|
//! | `standard` | carlosiborra, sunniAngela | `recv(1)` for the status; the SEND id and the user list up to each `0x00` |
//! | `ascii` | molinalg | every status, id and name up to its `0x00`; pushes `RECEIVE_MESS`, id, sender, text |
//! | `ascii-u32` | AngelMancha | the status up to its `0x00`, then for SEND always `recv(4)`: a big-endian id |
//!
//! The exact bytes below are taken from table A.1 and from those clients' code, not from our encoder.

use std::io::Write;
use std::time::{Duration, Instant};

use protocol::Profile;
use server::handler::SHORT_REGISTER_WAIT;
use server::Config;
use testkit::{
    connect_from, read_to_close, request, request_from, start_with as start, write_fields, Listener, ServerProcess,
    OTHER_HOST,
};

/// What one profile answers in the scenario of [`session`].
struct Expected {
    /// Status 0, 1 and 2 of any operation.
    status: [&'static [u8]; 3],
    /// Reply to the first SEND of alice (id 1).
    send_first: &'static [u8],
    /// Reply to a SEND to an unknown recipient (status 1).
    send_unknown: &'static [u8],
    /// Reply to CONNECTEDUSERS while alice and bob are connected.
    users: &'static [u8],
    /// The push that delivers alice's message 1, "hello bob", to bob.
    message: &'static [u8],
}

const STANDARD: Expected = Expected {
    status: [b"\x00", b"\x01", b"\x02"],
    send_first: b"\x001\x00",
    send_unknown: b"\x01",
    users: b"\x002\x00alice\x00bob\x00",
    message: b"SEND_MESSAGE\x00alice\x001\x00hello bob\x00",
};

/// molinalg: the id before the sender in the push.
const ASCII: Expected = Expected::ascii(b"0\x001\x00", b"1\x00", b"RECEIVE_MESS\x001\x00alice\x00hello bob\x00");

/// AngelMancha: the id as 4 big-endian bytes after every SEND reply, 0 when it failed.
const ASCII_U32: Expected =
    Expected::ascii(b"0\x00\x00\x00\x00\x01", b"1\x00\x00\x00\x00\x00", b"SEND_MESSAGE\x00alice\x001\x00hello bob\x00");

impl Expected {
    /// An ASCII profile's answers: every status (CONNECTEDUSERS' too) as a digit and `0x00`; what the two ASCII
    /// profiles write differently is the SEND replies and the message push.
    const fn ascii(send_first: &'static [u8], send_unknown: &'static [u8], message: &'static [u8]) -> Expected {
        Expected {
            status: [b"0\x00", b"1\x00", b"2\x00"],
            send_first,
            send_unknown,
            users: b"0\x002\x00alice\x00bob\x00",
            message,
        }
    }
}

/// Acknowledgements are the same in every profile.
const ACK_1: &[u8] = b"SEND_MESS_ACK\x001\x00";

/// A whole session of two users, as any original client drives it, checked against `want`.
fn session(profile: Profile, date: &str, want: &Expected) {
    let srv = start(Config { profile, ..Config::default() });
    let a = srv.addr();
    let [ok, one, two] = want.status;

    assert_eq!(request(a, &["REGISTER", "Alice A", "alice", date]), ok, "{profile:?}: REGISTER");
    assert_eq!(request(a, &["REGISTER", "Alice A", "alice", date]), one, "{profile:?}: alias in use");
    assert_eq!(request(a, &["REGISTER", "Bob B", "bob", date]), ok, "{profile:?}: REGISTER bob");

    let (la, lb) = (Listener::bind(), Listener::bind());
    assert_eq!(request(a, &["CONNECT", "alice", &la.port_field()]), ok, "{profile:?}: CONNECT");
    assert_eq!(request(a, &["CONNECT", "bob", &lb.port_field()]), ok, "{profile:?}: CONNECT bob");
    assert_eq!(request(a, &["CONNECT", "alice", &la.port_field()]), two, "{profile:?}: already connected");

    // The whole reply, then the server's close: nothing more that a client reading exact bytes would misread.
    assert_eq!(request(a, &["SEND", "alice", "bob", "hello bob"]), want.send_first, "{profile:?}: SEND");
    assert_eq!(lb.next(), want.message, "{profile:?}: message push");
    assert_eq!(la.next(), ACK_1, "{profile:?}: acknowledgement push");
    assert_eq!(request(a, &["SEND", "alice", "nobody", "hi"]), want.send_unknown, "{profile:?}: unknown recipient");

    assert_eq!(request(a, &["CONNECTEDUSERS", "alice"]), want.users, "{profile:?}: CONNECTEDUSERS");

    assert_eq!(request(a, &["DISCONNECT", "bob"]), ok, "{profile:?}: DISCONNECT");
    assert_eq!(request(a, &["DISCONNECT", "bob"]), two, "{profile:?}: not connected");
    assert_eq!(request(a, &["CONNECTEDUSERS", "bob"]), one, "{profile:?}: requester not connected");
    assert_eq!(request(a, &["UNREGISTER", "bob"]), ok, "{profile:?}: UNREGISTER");
    assert_eq!(request(a, &["UNREGISTER", "bob"]), one, "{profile:?}: no such user");
}

#[test]
fn standard_profile_speaks_as_carlosiborra_and_sunniangela_expect() {
    session(Profile::Standard, "01/02/2000", &STANDARD);
}

#[test]
fn ascii_profile_speaks_as_molinalg_expects() {
    // molinalg's calendar writes DD-MM-YYYY; the date is stored as given.
    session(Profile::Ascii, "01-02-2000", &ASCII);
}

#[test]
fn ascii_u32_profile_speaks_as_angelmancha_expects() {
    session(Profile::AsciiU32, "01/02/2000", &ASCII_U32);
}

#[test]
fn every_failure_code_has_its_ascii_form() {
    for profile in [Profile::Ascii, Profile::AsciiU32] {
        let srv = start(Config { profile, ..Config::default() });
        let a = srv.addr();
        // CONNECT's generic failure is 3: a port that is not a number.
        assert_eq!(request(a, &["CONNECT", "alice", "x"]), b"3\x00", "{profile:?}");
        assert_eq!(request(a, &["REGISTER", "n", "alice", "d"]), b"0\x00", "{profile:?}");
        assert_eq!(request(a, &["CONNECT", "alice", "x"]), b"3\x00", "{profile:?}");
        assert_eq!(request(a, &["DISCONNECT", "nobody"]), b"1\x00", "{profile:?}");
    }
    // ascii-u32: a refused SEND (sender not connected, 2) still carries its 4 bytes, all zero.
    let srv = start(Config { profile: Profile::AsciiU32, ..Config::default() });
    let a = srv.addr();
    assert_eq!(request(a, &["REGISTER", "n", "alice", "d"]), b"0\x00");
    assert_eq!(request(a, &["SEND", "alice", "alice", "hi"]), b"2\x00\x00\x00\x00\x00");
}

#[test]
fn ascii_u32_ids_are_big_endian() {
    let srv = start(Config { profile: Profile::AsciiU32, ..Config::default() });
    let a = srv.addr();
    assert_eq!(request(a, &["REGISTER", "n", "alice", "d"]), b"0\x00");
    let l = Listener::bind();
    assert_eq!(request(a, &["CONNECT", "alice", &l.port_field()]), b"0\x00");
    for id in 1u32..=3 {
        let mut want = b"0\x00".to_vec();
        want.extend_from_slice(&id.to_be_bytes());
        assert_eq!(request(a, &["SEND", "alice", "alice", "to myself"]), want);
        assert_eq!(l.next(), format!("SEND_MESSAGE\0alice\0{id}\0to myself\0").into_bytes());
        assert_eq!(l.next(), format!("SEND_MESS_ACK\0{id}\0").into_bytes());
    }
}

#[test]
fn a_message_stored_for_an_offline_molinalg_user_is_flushed_as_receive_mess() {
    let srv = start(Config { profile: Profile::Ascii, ..Config::default() });
    let a = srv.addr();
    for alias in ["alice", "bob"] {
        assert_eq!(request(a, &["REGISTER", alias, alias, "01-01-1970"]), b"0\x00");
    }
    let la = Listener::bind();
    assert_eq!(request(a, &["CONNECT", "alice", &la.port_field()]), b"0\x00");
    assert_eq!(request(a, &["SEND", "alice", "bob", "first"]), b"0\x001\x00");
    assert_eq!(request(a, &["SEND", "alice", "bob", "second"]), b"0\x002\x00");
    let lb = Listener::bind();
    assert_eq!(request(a, &["CONNECT", "bob", &lb.port_field()]), b"0\x00");
    assert_eq!(lb.next(), b"RECEIVE_MESS\x001\x00alice\x00first\x00");
    assert_eq!(lb.next(), b"RECEIVE_MESS\x002\x00alice\x00second\x00");
    assert_eq!(la.next(), b"SEND_MESS_ACK\x001\x00");
    assert_eq!(la.next(), b"SEND_MESS_ACK\x002\x00");
}

/// sunniAngela's client: `REGISTER`, the user name, then it waits for the status (docs/protocol.md appendix A).
#[test]
fn a_one_field_register_is_accepted_after_the_wait() {
    let srv = start(Config { accept_short_register: true, ..Config::default() });
    let a = srv.addr();
    let started = Instant::now();
    let mut stream = connect_from(None, a);
    write_fields(&mut stream, &["REGISTER", "sunni"]);
    assert_eq!(read_to_close(&mut stream), b"\x00");
    assert!(started.elapsed() >= SHORT_REGISTER_WAIT, "answered before the wait was over");
    let users = srv.store().snapshot();
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].alias.as_str(), users[0].full_name.as_str(), users[0].birth_date.as_str()),
        ("sunni", "sunni", "")
    );

    // The same alias again is in use, as with a full REGISTER.
    assert_eq!(request(a, &["REGISTER", "sunni"]), b"\x01");
    // The rest of the session is the standard one.
    let l = Listener::bind();
    assert_eq!(request(a, &["CONNECT", "sunni", &l.port_field()]), b"\x00");
    assert_eq!(request(a, &["SEND", "sunni", "sunni", "hi me"]), b"\x001\x00");
    assert_eq!(l.next(), b"SEND_MESSAGE\x00sunni\x001\x00hi me\x00");
}

#[test]
fn with_the_option_a_full_register_is_still_read_whole() {
    let srv = start(Config { accept_short_register: true, ..Config::default() });
    let a = srv.addr();
    // Field by field, as carlosiborra's client sends it.
    assert_eq!(request(a, &["REGISTER", "Carlos I", "carlos", "01/02/2000"]), b"\x00");
    // In one write.
    let mut stream = connect_from(None, a);
    stream.write_all(b"REGISTER\0Bob B\0bob\x0003/04/2001\0").expect("request written");
    assert_eq!(read_to_close(&mut stream), b"\x00");
    // The wait is only for what follows the first field: a slow first field is not cut short.
    let mut stream = connect_from(None, a);
    stream.write_all(b"REGISTER\0").expect("name written");
    stream.write_all(b"Slow S\0slow\0").expect("fields written");
    stream.write_all(b"05/06/2002\0").expect("date written");
    assert_eq!(read_to_close(&mut stream), b"\x00");

    let users = srv.store().snapshot();
    let shown: Vec<_> = users.iter().map(|u| (u.alias.as_str(), u.full_name.as_str(), u.birth_date.as_str())).collect();
    assert_eq!(
        shown,
        [("carlos", "Carlos I", "01/02/2000"), ("bob", "Bob B", "03/04/2001"), ("slow", "Slow S", "05/06/2002")]
    );
    // Field problems keep their answer: an empty one-field alias, an over-long full name.
    assert_eq!(request(a, &["REGISTER", ""]), b"\x02");
    assert_eq!(request(a, &["REGISTER", &"n".repeat(300), "long", "d"]), b"\x02");
    assert_eq!(request(a, &["REGISTER", &"n".repeat(300)]), b"\x02");
    assert_eq!(srv.store().len(), 3);
}

#[test]
fn without_the_option_a_one_field_register_is_an_incomplete_request() {
    let timeout = Duration::from_secs(1);
    let srv = start(Config { request_timeout: timeout, ..Config::default() });
    let mut stream = connect_from(None, srv.addr());
    write_fields(&mut stream, &["REGISTER", "sunni"]);
    // Closed at the idle timeout, without a reply and without registering anybody (docs/protocol.md 2.4).
    assert_eq!(read_to_close(&mut stream), b"");
    assert!(srv.store().is_empty());
}

#[test]
fn a_one_field_register_that_closes_is_not_registered() {
    let srv = start(Config { accept_short_register: true, ..Config::default() });
    let mut stream = connect_from(None, srv.addr());
    write_fields(&mut stream, &["REGISTER", "gone"]);
    stream.shutdown(std::net::Shutdown::Write).expect("half-close");
    assert_eq!(read_to_close(&mut stream), b"");
    assert!(srv.store().is_empty());
}

/// The flags reach the server through the binary: `--profile`, `--no-ip-check`, `--accept-short-register`.
#[test]
fn the_binary_wires_the_compatibility_flags() {
    let mut srv = ServerProcess::start(&["--profile", "ascii", "--no-ip-check", "--accept-short-register"]);
    let a = srv.addr;
    assert_eq!(request(a, &["REGISTER", "molina"]), b"0\x00", "short REGISTER, ASCII status");
    srv.expect_prefix("s> REGISTER molina OK");
    let l = Listener::bind();
    assert_eq!(request(a, &["CONNECT", "molina", &l.port_field()]), b"0\x00");
    srv.expect_prefix("s> CONNECT molina OK");
    // Without the address check, a DISCONNECT from another address is obeyed.
    assert_eq!(request_from(Some(OTHER_HOST.into()), a, &["DISCONNECT", "molina"]), b"0\x00");
    srv.expect_prefix("s> DISCONNECT molina OK");
    let (status, _) = srv.stop();
    assert!(status.success(), "{status}");

    // And with it (the default), that DISCONNECT is refused with 3.
    let mut srv = ServerProcess::start(&[]);
    let a = srv.addr;
    assert_eq!(request(a, &["REGISTER", "Carlos I", "carlos", "01/02/2000"]), b"\x00");
    assert_eq!(request(a, &["CONNECT", "carlos", &l.port_field()]), b"\x00");
    assert_eq!(request_from(Some(OTHER_HOST.into()), a, &["DISCONNECT", "carlos"]), b"\x03");
    srv.expect_prefix("s> REGISTER carlos OK");
    srv.expect_prefix("s> CONNECT carlos OK");
    srv.expect_prefix("s> DISCONNECT carlos FAIL");
    let (status, _) = srv.stop();
    assert!(status.success(), "{status}");
}
