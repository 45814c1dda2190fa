//! Who may act for a user (docs/protocol.md, "Origin checks") and what happens to a session whose client died
//! without DISCONNECT (docs/protocol.md, "Ghost sessions"), in raw protocol bytes against a real server.

use std::net::TcpListener;

use server::Config;
use testkit::*;

#[test]
fn a_connect_replaces_a_session_whose_listener_is_gone() {
    let (_s, a) = serve_registered(&["alice", "bob"]);
    let old = online(a, "alice");
    let old_port = old.port();
    drop(old); // the client was killed: its listener is gone, no DISCONNECT was sent
    let new = Listener::bind();
    assert_ne!(new.port(), old_port);
    assert_eq!(call(a, &["CONNECT", "alice", &new.port().to_string()]), [0], "the dead session is replaced");
    let lb = online(a, "bob");
    send_pushed(a, ("bob", &lb), ("alice", &new), "to the new session");
}

#[test]
fn a_connect_while_the_session_is_alive_is_refused_and_the_listener_sees_no_push() {
    let (_s, a) = serve();
    register(a, "alice");
    let first = online(a, "alice");
    let second = Listener::bind();
    assert_eq!(call(a, &["CONNECT", "alice", &second.port().to_string()]), [2], "already connected");
    // The probe reached the live listener, which shows nothing for it (the kit ignores it like a client does).
    first.assert_quiet(std::time::Duration::from_millis(100));
    second.assert_quiet(std::time::Duration::from_millis(100));
}

#[test]
fn a_listener_that_accepts_but_never_closes_counts_as_gone() {
    let (_s, a) = serve();
    register(a, "alice");
    // A client whose listener thread died: the port still accepts (the kernel queues connections), nobody reads.
    let stuck = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = stuck.local_addr().unwrap().port();
    assert_eq!(call(a, &["CONNECT", "alice", &port.to_string()]), [0]);
    let new = Listener::bind();
    assert_eq!(call(a, &["CONNECT", "alice", &new.port().to_string()]), [0], "the stuck session is replaced");
    drop(stuck);
}

#[test]
fn send_and_unregister_of_a_connected_user_are_accepted_only_from_its_address() {
    let (s, a, [_la, _lb]) = serve_online(["alice", "bob"]);
    let other = Some(OTHER_HOST.into());
    assert_eq!(raw_from(other, a, &fields(&["SEND", "alice", "bob", "forged"])), [2], "SEND forged from another host");
    assert_eq!(raw_from(other, a, &fields(&["UNREGISTER", "bob"])), [2], "UNREGISTER forged from another host");
    assert_eq!(raw_from(other, a, &fields(&["DISCONNECT", "bob"])), [3], "DISCONNECT forged from another host");
    assert_eq!(s.store().snapshot()[1].queue.len(), 0, "nothing forged was queued");
    assert_eq!(send(a, "alice", "bob", "real"), 1, "the forged SEND took no id");
    // An offline user has no address to compare with: anyone may unregister it, as before.
    register(a, "carol");
    assert_eq!(raw_from(other, a, &fields(&["UNREGISTER", "carol"])), [0]);
}

#[test]
fn no_ip_check_turns_every_origin_check_off() {
    let (_s, a, [_la, _lb]) = serve_online_with(Config { ip_check: false, ..Config::default() }, ["alice", "bob"]);
    let other = Some(OTHER_HOST.into());
    assert_eq!(raw_from(other, a, &fields(&["SEND", "alice", "bob", "x"])), [0, b'1', 0]);
    assert_eq!(raw_from(other, a, &fields(&["UNREGISTER", "bob"])), [0]);
}
