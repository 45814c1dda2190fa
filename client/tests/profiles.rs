//! The real `client` binary against a real server in each compatibility profile (docs/compatibility.md): the
//! client recognises a raw or an ASCII status, a decimal or a 4-byte SEND id, and the legacy `RECEIVE_MESS` push
//! by itself, so the same script prints the same result lines (docs/protocol.md, "Client: output lines") whatever the server's profile.

mod support;

use protocol::Profile;
use server::{Config, ServerHandle};
use support::Client;

fn server(profile: Profile) -> ServerHandle {
    testkit::start_with(Config { profile, ..Config::default() })
}

/// Two users talk; every status of every operation is produced by the server and printed by the client.
fn session(profile: Profile) {
    let srv = server(profile);
    let long = "x".repeat(256); // over the field limit: the operation's generic failure
    let mut alice = Client::online("alice", srv.addr());
    let mut bob = Client::online("bob", srv.addr());

    // REGISTER 1 and 2.
    alice.run_all(&[("REGISTER alice", "USERNAME IN USE"), (&format!("REGISTER {long}"), "REGISTER FAIL")]);

    // SEND 0 (ids 1 and 2: the decimal or the 4-byte form), the message push (SEND_MESSAGE or RECEIVE_MESS)
    // and the acknowledgement.
    alice.sends_to(&mut bob, "SEND bob hello   bob", 1, "hello bob");
    alice.sends_to(&mut bob, "SEND bob again", 2, "again");
    bob.sends_to(&mut alice, "SEND alice hi alice, ça va ? ✓", 1, "hi alice, ça va ? ✓");
    // SEND 1.
    alice.run_all(&[
        ("SEND nobody hi", "SEND FAIL / USER DOES NOT EXIST"),
        // CONNECTEDUSERS 0.
        ("CONNECTEDUSERS", "CONNECTED USERS (2 users connected) OK - alice, bob"),
    ]);

    // DISCONNECT 1 and 3, then 0 and 2; CONNECTEDUSERS 1; SEND 2 (the sender is not connected).
    bob.run_all(&[
        ("DISCONNECT nobody", "DISCONNECT FAIL / USER DOES NOT EXIST"),
        (&format!("DISCONNECT {long}"), "DISCONNECT FAIL"),
        ("DISCONNECT bob", "DISCONNECT OK"),
        ("DISCONNECT bob", "DISCONNECT FAIL / USER NOT CONNECTED"),
        ("CONNECTEDUSERS", "CONNECTED USERS FAIL / USER IS NOT CONNECTED"),
        ("SEND alice hi", "SEND FAIL"),
    ]);

    // A message for an offline user is pushed at its next CONNECT, in the profile's push form.
    alice.run("SEND bob while you were away", "SEND OK - MESSAGE 3");
    alice.expect_quiet();
    bob.run("CONNECT bob", "CONNECT OK");
    bob.expect_message(3, "alice", "while you were away");
    alice.expect("SEND MESSAGE 3 OK");

    // CONNECT 1 and 3, UNREGISTER 0 and 1.
    let mut carol = Client::start("carol", srv.addr(), &[]);
    carol.run_all(&[
        ("CONNECT carol", "CONNECT FAIL, USER DOES NOT EXIST"),
        (&format!("CONNECT {long}"), "CONNECT FAIL"),
        ("REGISTER carol", "REGISTER OK"),
        ("UNREGISTER carol", "UNREGISTER OK"),
        ("UNREGISTER carol", "USER DOES NOT EXIST"),
    ]);
    carol.end_input();
    assert!(carol.expect_exit(&[]).success());

    alice.end_input();
    bob.end_input();
    assert!(alice.expect_exit(&["DISCONNECT OK"]).success(), "{profile:?}");
    assert!(bob.expect_exit(&["DISCONNECT OK"]).success(), "{profile:?}");
    assert!(srv.store().connected_users().is_empty(), "{profile:?}");
}

#[test]
fn against_a_standard_server() {
    session(Profile::Standard);
}

#[test]
fn against_an_ascii_server() {
    session(Profile::Ascii);
}

#[test]
fn against_an_ascii_u32_server() {
    session(Profile::AsciiU32);
}
