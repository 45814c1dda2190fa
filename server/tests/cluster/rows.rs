//! The reply tables of docs/protocol.md ("Shape of a conversation"), row by row in exact bytes, against a node of
//! a two-node cluster: the same answers as the in-memory server's (tests/operations.rs).

use server::Config;

use crate::redis::Redis;
use crate::{node_with, two_nodes};
use testkit::rows::{self, long};
use testkit::{call, online, register_all, request_from, send, OTHER_HOST};

#[test]
fn register_rows() {
    let (redis, n, _other) = two_nodes();
    let a = n.addr();
    rows::register_rows(a);
    assert_eq!(call(a, &["REGISTER", "", "{tag}:u", ""]), [0], "braces in an alias are only characters");
    assert_eq!(call(a, &["REGISTER", "", "{tag}:u", ""]), [1]);
    let hash = redis.command(&["HGET", "msg:{alice}:u", "name"]);
    assert!(hash.contains("Alice Liddell"), "the user's hash holds the full name: {hash:?}");
}

#[test]
fn unregister_rows() {
    let (_redis, n, _other) = two_nodes();
    let a = n.addr();
    let _l = rows::unregister_rows(a);
    // Re-registering starts from scratch: offline, counter at 0.
    register_all(a, &["alice", "carol"]);
    let _c = online(a, "carol");
    assert_eq!(call(a, &["CONNECTEDUSERS", "carol"]), b"\x001\x00carol\x00");
    let _l = online(a, "alice");
    assert_eq!(send(a, "alice", "carol", "again"), 1);
}

#[test]
fn connect_rows() {
    let (_redis, n, _other) = two_nodes();
    let a = n.addr();
    let l = testkit::Listener::bind();
    rows::connect_refusals(a, &l.port_field());
    rows::connect_accepted(a, &l.port_field());
}

#[test]
fn disconnect_rows() {
    let (_redis, n, _other) = two_nodes();
    let a = n.addr();
    let _l = rows::disconnect_refusals(a);
    assert_eq!(request_from(Some(OTHER_HOST.into()), a, &["DISCONNECT", "alice"]), [3], "from another address");
    assert_eq!(call(a, &["DISCONNECT", &long()]), [3], "over-long alias");
    assert_eq!(call(a, &["DISCONNECT", "alice"]), [0], "disconnected");
    assert_eq!(call(a, &["DISCONNECT", "alice"]), [2], "twice");
}

#[test]
fn send_rows_and_ids() {
    let (redis, n, _other) = two_nodes();
    let a = n.addr();
    let _l = rows::send_refusals(a);
    assert_eq!(request_from(Some(OTHER_HOST.into()), a, &["SEND", "alice", "bob", "hi"]), [2], "not the listener's IP");
    rows::send_ids(a);
    assert!(redis.command(&["LLEN", "msg:{bob}:q"]).starts_with(":3"), "bob, offline, holds three messages");
}

#[test]
fn send_to_a_full_queue_fails_and_consumes_no_id() {
    let redis = Redis::start();
    let n = node_with(&redis, Config { max_queue: 2, ..Config::default() });
    let a = n.addr();
    let _l = rows::full_queue_rows(a);
    assert_eq!(send(a, "alice", "alice", "to myself"), 3, "the refused SEND used no id");
}

#[test]
fn connectedusers_rows() {
    let (_redis, n, other) = two_nodes();
    let a = n.addr();
    register_all(a, &["alice", "bob", "carol"]);
    let _lc = online(other.addr(), "carol");
    let _la = online(a, "alice");
    rows::connectedusers_rows(a, other.addr());
}

#[test]
fn unregistered_sender_gets_no_ack_and_its_message_is_still_delivered() {
    let (_redis, n, other) = two_nodes();
    let a = n.addr();
    register_all(a, &["alice", "bob"]);
    let _la = online(a, "alice");
    assert_eq!(send(a, "alice", "bob", "hello"), 1);
    assert_eq!(call(a, &["UNREGISTER", "alice"]), [0]);
    let lb = online(other.addr(), "bob");
    assert_eq!(lb.next(), testkit::message("alice", 1, "hello"));
}
