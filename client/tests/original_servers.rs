//! Our client against a stand-in for the original C servers, which do not survive a connection that ends without
//! a complete request (docs/compatibility.md, "What an original server cannot survive").
//!
//! The stand-in ([`Fragile`]) sits in front of a real server and forwards every complete request to it, one
//! connection at a time, as an original would serve it. It copies their failure modes:
//! - a connection that closes before its first byte replays the previous request (molinalg's reader leaves the
//!   last request's fields in its buffers) and then kills it (all four originals crash or stop answering);
//! - a request cut short, or one that does not arrive within [`READ_TIMEOUT`], does the same;
//! - a reply it cannot write because the client went away kills it (SIGPIPE).
//!
//! Once dead it closes its socket, so later connections are refused, as with a crashed process.

mod support;

use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use protocol::{FieldReader, Op, Request};
use support::Client;

/// Most connections the stand-in serves before it stops (a bound on its loop).
const MAX_CONNECTIONS: usize = 256;

/// How long the stand-in waits for a request's bytes, and for the real server's reply.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the stand-in went through.
#[derive(Debug, Default)]
struct Record {
    /// Operations of the requests it forwarded, in order.
    served: Vec<Op>,
    /// Requests it forwarded a second time because a connection carried nothing.
    replayed: Vec<Op>,
    /// Why it died, if it did.
    death: Option<String>,
}

struct Fragile {
    addr: SocketAddr,
    record: Arc<Mutex<Record>>,
}

impl Fragile {
    /// Starts the stand-in on 127.0.0.1:0 in front of the server at `upstream`.
    fn start(upstream: SocketAddr) -> Fragile {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the stand-in");
        let addr = listener.local_addr().expect("stand-in address");
        let record = Arc::new(Mutex::new(Record::default()));
        let rec = Arc::clone(&record);
        thread::spawn(move || {
            let mut previous: Option<Request> = None;
            for stream in listener.incoming().take(MAX_CONNECTIONS) {
                let Ok(stream) = stream else { continue };
                match serve(&stream, upstream, &mut previous, &rec) {
                    Ok(()) => {}
                    Err(why) => {
                        lock(&rec).death = Some(why);
                        // Dropping the listener: the process is gone.
                        return;
                    }
                }
            }
        });
        Fragile { addr, record }
    }

    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        lock(&self.record)
    }

    /// The stand-in is alive and never replayed a request.
    fn assert_unharmed(&self, moment: &str) {
        let r = self.record();
        assert_eq!(r.death, None, "{moment}: the stand-in died; {r:?}");
        assert!(r.replayed.is_empty(), "{moment}: a request was replayed; {r:?}");
    }
}

fn lock(m: &Mutex<Record>) -> std::sync::MutexGuard<'_, Record> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves one connection; an error is the stand-in's death.
fn serve(
    stream: &TcpStream,
    upstream: SocketAddr,
    previous: &mut Option<Request>,
    rec: &Mutex<Record>,
) -> Result<(), String> {
    stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(|e| e.to_string())?;
    let mut reader = FieldReader::new(BufReader::new(stream));
    match reader.peek_byte() {
        Ok(Some(_)) => {}
        Ok(None) => {
            if let Some(req) = previous.as_ref() {
                // The fields still hold the last request: it runs again, and its reply goes nowhere.
                lock(rec).replayed.push(req.op());
                let _ = forward(upstream, req);
            }
            return Err("a connection closed without sending a byte".into());
        }
        Err(e) => return Err(format!("no request: {e}")),
    }
    let req = match Request::read_from(&mut reader) {
        Ok(req) => req,
        Err(e) => {
            // The fields that did not arrive keep the last request's values: that one runs again.
            if let Some(req) = previous.as_ref() {
                lock(rec).replayed.push(req.op());
                let _ = forward(upstream, req);
            }
            return Err(format!("a request cut short: {e}"));
        }
    };
    let reply = forward(upstream, &req).map_err(|e| format!("the real server failed: {e}"))?;
    // Recorded before the client sees the reply, so a test that saw the reply finds the request here.
    lock(rec).served.push(req.op());
    let mut out = stream;
    out.write_all(&reply).map_err(|e| format!("broken pipe writing the reply: {e}"))?;
    let _ = stream.shutdown(Shutdown::Write);
    *previous = Some(req);
    Ok(())
}

/// Sends `req` to the real server and returns its whole reply (the server closes after it).
fn forward(upstream: SocketAddr, req: &Request) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&upstream, READ_TIMEOUT)?;
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    s.write_all(&req.to_bytes())?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    Ok(reply)
}

/// A client started and ended with no command, at some moment of another session.
fn start_and_leave(fragile: &Fragile, moment: &str) {
    let mut c = Client::start(moment, fragile.addr, &[]);
    c.end_input();
    assert!(c.expect_exit(&[]).success(), "{moment}");
    fragile.assert_unharmed(moment);
}

/// A client's REGISTER goes through the stand-in, then `wreck` opens a connection of its own to it: at the
/// client's next request the stand-in replays the last one and dies, for a reason that contains `death`.
fn the_stand_in_dies_after(wreck: impl FnOnce(SocketAddr), death: &str) {
    let srv = testkit::start();
    let fragile = Fragile::start(srv.addr());
    let mut c = Client::start("a", fragile.addr, &[]);
    c.run("REGISTER a", "REGISTER OK");
    wreck(fragile.addr);
    c.run("REGISTER b", "REGISTER FAIL");
    let r = fragile.record();
    assert_eq!(r.replayed, [Op::Register], "{r:?}");
    assert!(r.death.as_deref().is_some_and(|d| d.contains(death)), "{r:?}");
}

#[test]
fn the_stand_in_dies_on_an_empty_connection_after_replaying_the_last_request() {
    the_stand_in_dies_after(
        |addr| drop(TcpStream::connect(addr).expect("connect to the stand-in")),
        "without sending a byte",
    );
}

#[test]
fn the_stand_in_dies_on_a_request_cut_short_after_replaying_the_last_request() {
    the_stand_in_dies_after(
        |addr| {
            let mut cut = TcpStream::connect(addr).expect("connect to the stand-in");
            cut.write_all(b"SEND\0a\0").expect("write half a request");
        },
        "cut short",
    );
}

#[test]
fn clients_started_at_any_moment_leave_an_original_server_alive_and_cause_no_duplicate() {
    let srv = testkit::start();
    let fragile = Fragile::start(srv.addr());
    start_and_leave(&fragile, "before anything");

    let mut alice = Client::start("alice", fragile.addr, &[]);
    alice.run("REGISTER alice", "REGISTER OK");
    start_and_leave(&fragile, "after a REGISTER");
    alice.run("CONNECT alice", "CONNECT OK");
    let mut bob = Client::start("bob", fragile.addr, &[]);
    bob.run("REGISTER bob", "REGISTER OK");
    bob.run("CONNECT bob", "CONNECT OK");
    start_and_leave(&fragile, "after a CONNECT");

    alice.sends_to(&mut bob, "SEND bob hello bob", 1, "hello bob");
    // A replayed SEND here would push the message to bob a second time.
    start_and_leave(&fragile, "after a SEND");
    bob.sends_to(&mut alice, "SEND alice hello alice", 1, "hello alice");
    start_and_leave(&fragile, "after the answer");

    let mut carol = Client::start("carol", fragile.addr, &[]);
    carol.run("REGISTER carol", "REGISTER OK");
    bob.run("CONNECTEDUSERS", "CONNECTED USERS (2 users connected) OK - alice, bob");
    alice.expect_quiet();
    bob.expect_quiet();

    alice.run("DISCONNECT alice", "DISCONNECT OK");
    alice.end_input();
    assert!(alice.expect_exit(&[]).success());
    bob.end_input();
    assert!(bob.expect_exit(&["DISCONNECT OK"]).success());
    carol.end_input();
    assert!(carol.expect_exit(&[]).success());
    start_and_leave(&fragile, "after everyone left");

    // Still answering, and each SEND reached the server exactly once.
    let mut dave = Client::start("dave", fragile.addr, &[]);
    dave.run("REGISTER dave", "REGISTER OK");
    dave.end_input();
    assert!(dave.expect_exit(&[]).success());
    fragile.assert_unharmed("at the end");
    let r = fragile.record();
    assert_eq!(r.served.iter().filter(|op| **op == Op::Send).count(), 2, "{r:?}");
    assert!(srv.store().connected_users().is_empty());
}
