//! The reply tables of docs/protocol.md ("Shape of a conversation"), row by row in exact bytes, against a node of
//! a two-node cluster: the same answers as the in-memory server's (tests/operations.rs).

use server::Config;

use crate::redis::Redis;
use crate::{node, node_with};
use testkit::{call, online, register, request_from, send, OTHER_HOST};

/// One byte over the field limit.
fn long() -> String {
    "x".repeat(protocol::MAX_FIELD_LEN + 1)
}

#[test]
fn register_rows() {
    let redis = Redis::start();
    let (n, _other) = (node(&redis), node(&redis));
    let a = n.addr();
    assert_eq!(call(a, &["REGISTER", "Alice Liddell", "alice", "04/05/1852"]), [0], "new user");
    assert_eq!(call(a, &["REGISTER", "Someone Else", "alice", "01/01/2000"]), [1], "alias in use");
    assert_eq!(call(a, &["REGISTER", "Nobody", "", "01/01/2000"]), [2], "empty alias");
    assert_eq!(call(a, &["REGISTER", &long(), "bob", "01/01/2000"]), [2], "over-long full name");
    assert_eq!(call(a, &["REGISTER", "Bob", "bob", ""]), [0], "empty date and name are fine");
    assert_eq!(call(a, &["REGISTER", "", "Alice", ""]), [0], "aliases are case-sensitive");
    assert_eq!(call(a, &["REGISTER", "", "{tag}:u", ""]), [0], "braces in an alias are only characters");
    assert_eq!(call(a, &["REGISTER", "", "{tag}:u", ""]), [1]);
    let hash = redis.command(&["HGET", "msg:{alice}:u", "name"]);
    assert!(hash.contains("Alice Liddell"), "the user's hash holds the full name: {hash:?}");
}

#[test]
fn unregister_rows() {
    let redis = Redis::start();
    let (n, _other) = (node(&redis), node(&redis));
    let a = n.addr();
    register(a, "alice");
    register(a, "bob");
    let _l = online(a, "bob");
    assert_eq!(call(a, &["UNREGISTER", "alice"]), [0], "disconnected user");
    assert_eq!(call(a, &["UNREGISTER", "bob"]), [0], "connected user");
    assert_eq!(call(a, &["UNREGISTER", "alice"]), [1], "no such user");
    assert_eq!(call(a, &["UNREGISTER", &long()]), [2], "over-long alias");
    // Re-registering starts from scratch: offline, counter at 0.
    register(a, "alice");
    register(a, "carol");
    let _c = online(a, "carol");
    assert_eq!(call(a, &["CONNECTEDUSERS", "carol"]), b"\x001\x00carol\x00");
    let _l = online(a, "alice");
    assert_eq!(send(a, "alice", "carol", "again"), 1);
}

#[test]
fn connect_rows() {
    let redis = Redis::start();
    let (n, _other) = (node(&redis), node(&redis));
    let a = n.addr();
    register(a, "alice");
    let l = testkit::Listener::bind();
    let port = l.port_field();
    assert_eq!(call(a, &["CONNECT", "nobody", &port]), [1], "no such user");
    for bad in ["0", "65536", "abc", "-1", "", " 80"] {
        assert_eq!(call(a, &["CONNECT", "alice", bad]), [3], "port {bad:?}");
    }
    assert_eq!(call(a, &["CONNECT", &long(), &port]), [3], "over-long alias");
    assert_eq!(call(a, &["CONNECT", "alice", &port]), [0], "connected");
    assert_eq!(call(a, &["CONNECT", "alice", &port]), [2], "already connected");
}

#[test]
fn disconnect_rows() {
    let redis = Redis::start();
    let (n, _other) = (node(&redis), node(&redis));
    let a = n.addr();
    register(a, "alice");
    register(a, "bob");
    let _l = online(a, "alice");
    assert_eq!(call(a, &["DISCONNECT", "nobody"]), [1], "no such user");
    assert_eq!(call(a, &["DISCONNECT", "bob"]), [2], "not connected");
    assert_eq!(request_from(Some(OTHER_HOST.into()), a, &["DISCONNECT", "alice"]), [3], "from another address");
    assert_eq!(call(a, &["DISCONNECT", &long()]), [3], "over-long alias");
    assert_eq!(call(a, &["DISCONNECT", "alice"]), [0], "disconnected");
    assert_eq!(call(a, &["DISCONNECT", "alice"]), [2], "twice");
}

#[test]
fn send_rows_and_ids() {
    let redis = Redis::start();
    let (n, _other) = (node(&redis), node(&redis));
    let a = n.addr();
    register(a, "alice");
    register(a, "bob");
    assert_eq!(call(a, &["SEND", "alice", "bob", "hi"]), [2], "sender not connected");
    let _l = online(a, "alice");
    assert_eq!(call(a, &["SEND", "alice", "nobody", "hi"]), [1], "unknown recipient");
    assert_eq!(call(a, &["SEND", "nobody", "bob", "hi"]), [1], "unknown sender");
    assert_eq!(call(a, &["SEND", "alice", "bob", &long()]), [2], "text over 255 bytes");
    assert_eq!(request_from(Some(OTHER_HOST.into()), a, &["SEND", "alice", "bob", "hi"]), [2], "not the listener's IP");
    let max_text = format!("{}x", "é".repeat(127));
    assert_eq!(call(a, &["SEND", "alice", "bob", &max_text]), b"\x001\x00", "first id is 1; failures used none");
    assert_eq!(call(a, &["SEND", "alice", "bob", "two"]), b"\x002\x00");
    assert_eq!(call(a, &["SEND", "alice", "alice", "to myself"]), b"\x003\x00", "sending to oneself");
    assert_eq!(call(a, &["SEND", "alice", "bob", ""]), b"\x004\x00", "empty text is accepted");
    assert!(redis.command(&["LLEN", "msg:{bob}:q"]).starts_with(":3"), "bob, offline, holds three messages");
}

#[test]
fn send_to_a_full_queue_fails_and_consumes_no_id() {
    let redis = Redis::start();
    let n = node_with(&redis, Config { max_queue: 2, ..Config::default() });
    let a = n.addr();
    register(a, "alice");
    register(a, "bob");
    let _l = online(a, "alice");
    assert_eq!(send(a, "alice", "bob", "1"), 1);
    assert_eq!(send(a, "alice", "bob", "2"), 2);
    assert_eq!(call(a, &["SEND", "alice", "bob", "3"]), [2], "queue full");
    assert_eq!(send(a, "alice", "alice", "to myself"), 3, "the refused SEND used no id");
}

#[test]
fn connectedusers_rows() {
    let redis = Redis::start();
    let (n, other) = (node(&redis), node(&redis));
    let a = n.addr();
    for u in ["alice", "bob", "carol"] {
        register(a, u);
    }
    let _lc = online(other.addr(), "carol");
    let _la = online(a, "alice");
    assert_eq!(call(a, &["CONNECTEDUSERS", "alice"]), b"\x002\x00alice\x00carol\x00", "registration order");
    assert_eq!(call(a, &["CONNECTEDUSERS", "bob"]), [1], "requester not connected");
    assert_eq!(call(a, &["CONNECTEDUSERS", "nobody"]), [2], "requester not registered");
    assert_eq!(call(a, &["CONNECTEDUSERS", &long()]), [2], "over-long alias");
    assert_eq!(call(other.addr(), &["DISCONNECT", "carol"]), [0]);
    assert_eq!(call(a, &["CONNECTEDUSERS", "alice"]), b"\x001\x00alice\x00");
}

#[test]
fn unregistered_sender_gets_no_ack_and_its_message_is_still_delivered() {
    let redis = Redis::start();
    let (n, other) = (node(&redis), node(&redis));
    let a = n.addr();
    register(a, "alice");
    register(a, "bob");
    let _la = online(a, "alice");
    assert_eq!(send(a, "alice", "bob", "hello"), 1);
    assert_eq!(call(a, &["UNREGISTER", "alice"]), [0]);
    let lb = online(other.addr(), "bob");
    assert_eq!(lb.next(), testkit::message("alice", 1, "hello"));
}
