//! Every row of every reply table of docs/protocol.md section 4, with the exact reply bytes.

use server::Config;
use testkit::*;

/// One byte over the field limit.
fn long() -> String {
    "x".repeat(protocol::MAX_FIELD_LEN + 1)
}

#[test]
fn register_rows() {
    let s = start();
    let a = s.addr();
    assert_eq!(call(a, &["REGISTER", "Alice Liddell", "alice", "04/05/1852"]), [0], "new user");
    assert_eq!(call(a, &["REGISTER", "Someone Else", "alice", "01/01/2000"]), [1], "alias in use");
    assert_eq!(call(a, &["REGISTER", "Nobody", "", "01/01/2000"]), [2], "empty alias");
    assert_eq!(call(a, &["REGISTER", &long(), "bob", "01/01/2000"]), [2], "over-long full name");
    assert_eq!(call(a, &["REGISTER", "Bob", "bob", ""]), [0], "empty date and name are fine");
    assert_eq!(call(a, &["REGISTER", "", "Alice", ""]), [0], "aliases are case-sensitive");
    let users = s.store().snapshot();
    let aliases: Vec<_> = users.iter().map(|u| u.alias.as_str()).collect();
    assert_eq!(aliases, ["alice", "bob", "Alice"]);
    assert_eq!(users[0].full_name, "Alice Liddell");
    assert_eq!(users[0].birth_date, "04/05/1852");
    assert!(users.iter().all(|u| !u.connected && u.last_id == 0 && u.queue.is_empty()));
}

#[test]
fn unregister_rows() {
    let s = start();
    let a = s.addr();
    register(a, "alice");
    let _l = register_online(a, "bob");
    assert_eq!(call(a, &["UNREGISTER", "alice"]), [0], "disconnected user");
    assert_eq!(call(a, &["UNREGISTER", "bob"]), [0], "connected user");
    assert_eq!(call(a, &["UNREGISTER", "alice"]), [1], "no such user");
    assert_eq!(call(a, &["UNREGISTER", &long()]), [2], "over-long alias");
    assert!(s.store().is_empty());
    // Re-registering starts from scratch.
    register(a, "alice");
    assert_eq!(s.store().snapshot()[0].last_id, 0);
}

#[test]
fn connect_rows() {
    let s = start();
    let a = s.addr();
    register(a, "alice");
    let l = Listener::bind();
    let port = l.port().to_string();
    assert_eq!(call(a, &["CONNECT", "nobody", &port]), [1], "no such user");
    for bad in ["0", "65536", "abc", "-1", "", " 80"] {
        assert_eq!(call(a, &["CONNECT", "alice", bad]), [3], "port {bad:?}");
    }
    assert_eq!(call(a, &["CONNECT", &long(), &port]), [3], "over-long alias");
    assert_eq!(s.store().is_connected("alice"), Some(false), "failures change nothing");
    assert_eq!(call(a, &["CONNECT", "alice", &port]), [0], "connected");
    assert_eq!(call(a, &["CONNECT", "alice", &port]), [2], "already connected");
    assert_eq!(s.store().is_connected("alice"), Some(true));
}

#[test]
fn disconnect_rows() {
    let s = start();
    let a = s.addr();
    register(a, "alice");
    register(a, "bob");
    let _l = online(a, "alice");
    assert_eq!(call(a, &["DISCONNECT", "nobody"]), [1], "no such user");
    assert_eq!(call(a, &["DISCONNECT", "bob"]), [2], "not connected");
    let other = raw_from(Some(OTHER_HOST.into()), a, &fields(&["DISCONNECT", "alice"]));
    assert_eq!(other, [3], "from another address");
    assert_eq!(s.store().is_connected("alice"), Some(true), "the refused DISCONNECT changed nothing");
    assert_eq!(call(a, &["DISCONNECT", &long()]), [3], "over-long alias");
    assert_eq!(call(a, &["DISCONNECT", "alice"]), [0], "disconnected");
    assert_eq!(s.store().is_connected("alice"), Some(false));
    assert_eq!(call(a, &["DISCONNECT", "alice"]), [2], "twice");
}

#[test]
fn disconnect_ip_check_can_be_disabled() {
    let s = start_with(Config { ip_check: false, ..Config::default() });
    let a = s.addr();
    let _l = register_online(a, "alice");
    assert_eq!(raw_from(Some(OTHER_HOST.into()), a, &fields(&["DISCONNECT", "alice"])), [0]);
}

#[test]
fn send_rows_and_ids() {
    let s = start();
    let a = s.addr();
    register(a, "alice");
    register(a, "bob");
    assert_eq!(call(a, &["SEND", "alice", "bob", "hi"]), [2], "sender not connected");
    let _l = online(a, "alice");
    assert_eq!(call(a, &["SEND", "alice", "nobody", "hi"]), [1], "unknown recipient");
    assert_eq!(call(a, &["SEND", "nobody", "bob", "hi"]), [1], "unknown sender");
    assert_eq!(call(a, &["SEND", "alice", "bob", &long()]), [2], "text over 255 bytes");
    // 255 bytes made of two-byte characters and one ASCII byte: the limit counts bytes.
    let max_text = format!("{}x", "é".repeat(127));
    assert_eq!(max_text.len(), 255);
    assert_eq!(call(a, &["SEND", "alice", "bob", &max_text]), b"\x001\x00", "first id is 1; failures used none");
    assert_eq!(call(a, &["SEND", "alice", "bob", "two"]), b"\x002\x00");
    assert_eq!(call(a, &["SEND", "alice", "alice", "to myself"]), b"\x003\x00", "sending to oneself");
    assert_eq!(call(a, &["SEND", "alice", "bob", ""]), b"\x004\x00", "empty text is accepted");
    let users = s.store().snapshot();
    assert_eq!(users[0].last_id, 4);
    assert_eq!(users[1].queue.len(), 3, "bob, offline, holds three messages");
}

#[test]
fn ids_are_per_sender() {
    let s = start();
    let a = s.addr();
    let _la = register_online(a, "alice");
    let _lb = register_online(a, "bob");
    register(a, "carol");
    assert_eq!(send(a, "alice", "carol", "a1"), 1);
    assert_eq!(send(a, "bob", "carol", "b1"), 1);
    assert_eq!(send(a, "alice", "carol", "a2"), 2);
}

#[test]
fn send_to_a_full_queue_fails_and_consumes_no_id() {
    let s = start_with(Config { max_queue: 2, ..Config::default() });
    let a = s.addr();
    register(a, "alice");
    register(a, "bob");
    let _l = online(a, "alice");
    assert_eq!(send(a, "alice", "bob", "1"), 1);
    assert_eq!(send(a, "alice", "bob", "2"), 2);
    assert_eq!(call(a, &["SEND", "alice", "bob", "3"]), [2], "queue full");
    assert_eq!(s.store().snapshot()[0].last_id, 2);
}

#[test]
fn connectedusers_rows() {
    let s = start();
    let a = s.addr();
    for u in ["alice", "bob", "carol"] {
        register(a, u);
    }
    let (la, lc) = (Listener::bind(), Listener::bind());
    connect(a, "carol", &lc);
    connect(a, "alice", &la);
    assert_eq!(call(a, &["CONNECTEDUSERS", "alice"]), b"\x002\x00alice\x00carol\x00", "registration order");
    assert_eq!(call(a, &["CONNECTEDUSERS", "bob"]), [1], "requester not connected");
    assert_eq!(call(a, &["CONNECTEDUSERS", "nobody"]), [2], "requester not registered");
    assert_eq!(call(a, &["CONNECTEDUSERS", &long()]), [2], "over-long alias");
    assert_eq!(call(a, &["DISCONNECT", "carol"]), [0]);
    assert_eq!(call(a, &["CONNECTEDUSERS", "alice"]), b"\x001\x00alice\x00");
}
