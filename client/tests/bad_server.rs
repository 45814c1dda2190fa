//! The real `client` binary against fake servers that misbehave: every command must end with its FAIL line,
//! never a hang or a panic, and a bad push must be dropped without harm.

mod support;

use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};
use protocol::dialect::PushForm;
use protocol::{FieldReader, Push, Request};
use support::Client;

/// Most connections one fake server serves before it stops (a bound on its loop).
const FAKE_MAX_CONNECTIONS: usize = 64;

/// How long a fake server waits for a request's bytes.
const FAKE_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A fake server: for each request, `answer` gives the bytes to write (`None`: close without a word). Every
/// request it decoded is also sent on the returned channel.
fn fake(answer: fn(&Request) -> Option<Vec<u8>>) -> (SocketAddr, Receiver<Request>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a fake server");
    let addr = listener.local_addr().expect("fake server address");
    let (tx, rx) = unbounded();
    thread::spawn(move || {
        for stream in listener.incoming().take(FAKE_MAX_CONNECTIONS) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(FAKE_READ_TIMEOUT));
            let Ok(read_half) = stream.try_clone() else { continue };
            // Our client never opens a connection without a whole request (client/tests/original_servers.rs); a
            // connection that carries an incomplete one is not answered.
            let Ok(req) = Request::read_from(&mut FieldReader::new(BufReader::new(read_half))) else { continue };
            // The request is on the channel before its answer is written: a test that saw the client print the
            // answer finds the request with `try_iter`, with no race.
            let bytes = answer(&req);
            let _ = tx.send(req);
            if let Some(bytes) = bytes {
                let _ = stream.write_all(&bytes);
            }
        }
    });
    (addr, rx)
}

/// Runs every command against a fake that accepts only `REGISTER ok` (so that there is a current user) and
/// misbehaves on everything else: each must print its "no answer" line (docs/protocol.md, "Client: output lines").
fn every_command_fails(c: &mut Client) {
    c.run_all(&[
        ("REGISTER bad", "REGISTER FAIL"),
        ("REGISTER ok", "REGISTER OK"),
        ("UNREGISTER x", "UNREGISTER FAIL"),
        ("CONNECT x", "CONNECT FAIL"),
        ("DISCONNECT x", "DISCONNECT FAIL"),
        ("SEND x hello", "SEND FAIL"),
        ("CONNECTEDUSERS", "CONNECTED USERS FAIL"),
    ]);
    c.type_line("QUIT");
    assert!(c.expect_exit(&[]).success());
}

fn register_ok_else(req: &Request, bad: Option<Vec<u8>>) -> Option<Vec<u8>> {
    match req {
        Request::Register { alias, .. } if alias == "ok" => Some(vec![0]),
        _ => bad,
    }
}

#[test]
fn a_server_that_closes_without_replying_gives_fail_lines() {
    let (addr, _) = fake(|req| register_ok_else(req, None));
    every_command_fails(&mut Client::start("closes", addr, &[]));
}

#[test]
fn a_server_that_sends_garbage_gives_fail_lines() {
    let (addr, _) = fake(|req| register_ok_else(req, Some(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec())));
    every_command_fails(&mut Client::start("garbage", addr, &[]));
}

#[test]
fn a_server_that_sends_unknown_codes_gives_fail_lines() {
    // 9 is no status at all; "4\0" is an ASCII status no operation defines.
    let (addr, _) = fake(|req| register_ok_else(req, Some(vec![9])));
    every_command_fails(&mut Client::start("code9", addr, &[]));
    let (addr, _) = fake(|req| register_ok_else(req, Some(b"4\0".to_vec())));
    every_command_fails(&mut Client::start("code4", addr, &[]));
}

#[test]
fn truncated_or_malformed_reply_bodies_give_fail_lines() {
    let (addr, _) = fake(|req| match req {
        Request::Register { .. } => Some(vec![0]),
        Request::Send { text, .. } if text == "cut" => Some(vec![0]), // status 0, then the id never comes
        Request::Send { .. } => Some(b"\x00twelve\0".to_vec()),       // an id that is not a number
        Request::ConnectedUsers { .. } => Some(b"\x003\0a\0b\0".to_vec()), // 3 announced, 2 sent
        _ => None,
    });
    Client::start("truncated", addr, &[])
        .run_all(&[
            ("REGISTER ok", "REGISTER OK"),
            ("SEND x cut", "SEND FAIL"),
            ("SEND x other", "SEND FAIL"),
            ("CONNECTEDUSERS", "CONNECTED USERS FAIL"),
        ])
        .end_quietly();
}

#[test]
fn a_server_that_never_answers_costs_one_timeout_not_a_hang() {
    // The fake keeps the connection open without a word for longer than the client's read timeout.
    let (addr, _) = fake(|req| {
        if matches!(req, Request::Register { .. }) {
            thread::sleep(Duration::from_secs(7));
        }
        None
    });
    let mut c = Client::start("silent", addr, &[]);
    c.run("REGISTER ok", "REGISTER FAIL");
    c.end_input();
    assert!(c.expect_exit(&[]).success());
    assert!(c.stderr_all().contains("timed out"));
}

#[test]
fn replies_of_the_original_ascii_dialects_are_understood() {
    let (addr, _) = fake(|req| match req {
        Request::Register { .. } => Some(b"0\0".to_vec()),
        Request::Send { text, .. } if text == "u32" => Some(b"0\0\0\0\x01\x02".to_vec()), // 4-byte id 258
        Request::Send { .. } => Some(b"0\x0042\0".to_vec()),
        Request::ConnectedUsers { .. } => Some(b"1\0".to_vec()),
        _ => None,
    });
    Client::start("ascii", addr, &[])
        .run_all(&[
            ("REGISTER ok", "REGISTER OK"),
            ("SEND x decimal", "SEND OK - MESSAGE 42"),
            ("SEND x u32", "SEND OK - MESSAGE 258"),
            ("CONNECTEDUSERS", "CONNECTED USERS FAIL / USER IS NOT CONNECTED"),
        ])
        .end_quietly();
}

fn push(port: u16, bytes: &[u8]) {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to the client's listener");
    s.write_all(bytes).expect("write a push");
}

#[test]
fn malformed_pushes_are_logged_and_dropped_and_text_is_decoded_leniently() {
    let (mut c, port) = connected_client("pushed", &[]);
    push(port, b"HELLO\0world\0"); // unknown push
    push(port, b"SEND_MESSAGE\0bob\0"); // cut short
    push(port, b"SEND_MESS_ACK\0minus one\0"); // bad id
    push(port, &[b'z'; 5000]); // no terminator, over the cap
                               // The listener reads pushes side by side: like the server, wait for each one before the next.
    push(port, b"SEND_MESSAGE\0b\xffb\x001\0caf\xe9 \xe2\x9c\x93\0"); // invalid UTF-8 is replaced
    c.expect_message(1, "b\u{fffd}b", "caf\u{fffd} ✓");
    push(port, &Push::Message { sender: "old".into(), id: 2, text: "legacy".into() }.to_bytes(PushForm::ReceiveMess));
    c.expect_message(2, "old", "legacy");
    push(port, &Push::Ack { id: 5 }.to_bytes(PushForm::SendMessage));
    c.expect("SEND MESSAGE 5 OK");
    c.type_line("QUIT");
    assert!(c.expect_exit(&["DISCONNECT OK"]).success());
    let err = c.stderr_all();
    assert_eq!(err.matches("dropped a push").count(), 4, "{err}");
}

/// Writes `bytes` to the listener at `port` from the address `from` (a loopback address other than 127.0.0.1).
fn push_from(from: Ipv4Addr, port: u16, bytes: &[u8]) {
    let mut s = testkit::connect_from(Some(from.into()), SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    // The listener may close it unread before the write: a reset here is the expected outcome, not an error.
    let _ = s.write_all(bytes);
}

/// A client connected through a fake server on 127.0.0.1, and the port of its listener.
fn connected_client(name: &str, extra: &[&str]) -> (Client, u16) {
    let (addr, requests) = fake(|req| match req {
        Request::Register { .. } | Request::Connect { .. } | Request::Disconnect { .. } => Some(vec![0]),
        _ => None,
    });
    let mut c = Client::start(name, addr, extra);
    c.run("REGISTER me", "REGISTER OK");
    c.run("CONNECT me", "CONNECT OK");
    let port = requests
        .try_iter()
        .find_map(|r| match r {
            Request::Connect { port, .. } => Some(port),
            _ => None,
        })
        .expect("the fake saw CONNECT");
    (c, port)
}

#[test]
fn a_push_forged_from_another_address_is_not_printed() {
    let (mut c, port) = connected_client("forged", &[]);
    let forged = Push::Message { sender: "boss".into(), id: 1, text: "send me your password".into() };
    push_from(Ipv4Addr::new(127, 0, 0, 2), port, &forged.to_bytes(PushForm::SendMessage));
    // The server's own push, sent afterwards, is the next line.
    push(port, &Push::Ack { id: 7 }.to_bytes(PushForm::SendMessage));
    c.expect("SEND MESSAGE 7 OK");
    c.expect_quiet();
    c.type_line("QUIT");
    assert!(c.expect_exit(&["DISCONNECT OK"]).success());
}

#[test]
fn accept_pushes_from_any_reads_every_address() {
    let (mut c, port) = connected_client("nat", &["--accept-pushes-from", "any"]);
    let m = Push::Message { sender: "bob".into(), id: 3, text: "through NAT".into() };
    push_from(Ipv4Addr::new(127, 0, 0, 2), port, &m.to_bytes(PushForm::SendMessage));
    c.expect_message(3, "bob", "through NAT");
    c.type_line("QUIT");
    assert!(c.expect_exit(&["DISCONNECT OK"]).success());
}
