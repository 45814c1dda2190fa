//! Every row of every reply table of docs/protocol.md section 4, with the exact reply bytes.

use server::Config;
use testkit::rows::{self, long};
use testkit::*;

#[test]
fn register_rows() {
    let (s, a) = serve();
    rows::register_rows(a);
    let users = s.store().snapshot();
    let aliases: Vec<_> = users.iter().map(|u| u.alias.as_str()).collect();
    assert_eq!(aliases, ["alice", "bob", "Alice"]);
    assert_eq!(users[0].full_name, "Alice Liddell");
    assert_eq!(users[0].birth_date, "04/05/1852");
    assert!(users.iter().all(|u| !u.connected && u.last_id == 0 && u.queue.is_empty()));
}

#[test]
fn unregister_rows() {
    let (s, a) = serve();
    let _l = rows::unregister_rows(a);
    assert!(s.store().is_empty());
    // Re-registering starts from scratch.
    register(a, "alice");
    assert_eq!(s.store().snapshot()[0].last_id, 0);
}

#[test]
fn connect_rows() {
    let (s, a) = serve();
    let l = Listener::bind();
    rows::connect_refusals(a, &l.port_field());
    assert_eq!(s.store().is_connected("alice"), Some(false), "failures change nothing");
    rows::connect_accepted(a, &l.port_field());
    assert_eq!(s.store().is_connected("alice"), Some(true));
}

#[test]
fn disconnect_rows() {
    let (s, a) = serve();
    let _l = rows::disconnect_refusals(a);
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
    let (_s, a, [_l]) = serve_online_with(Config { ip_check: false, ..Config::default() }, ["alice"]);
    assert_eq!(raw_from(Some(OTHER_HOST.into()), a, &fields(&["DISCONNECT", "alice"])), [0]);
}

#[test]
fn send_rows_and_ids() {
    let (s, a) = serve();
    let _l = rows::send_refusals(a);
    rows::send_ids(a);
    let users = s.store().snapshot();
    assert_eq!(users[0].last_id, 4);
    assert_eq!(users[1].queue.len(), 3, "bob, offline, holds three messages");
}

#[test]
fn ids_are_per_sender() {
    let (_s, a, [_la, _lb]) = serve_online(["alice", "bob"]);
    register(a, "carol");
    assert_eq!(send(a, "alice", "carol", "a1"), 1);
    assert_eq!(send(a, "bob", "carol", "b1"), 1);
    assert_eq!(send(a, "alice", "carol", "a2"), 2);
}

#[test]
fn send_to_a_full_queue_fails_and_consumes_no_id() {
    let (s, a) = serve_with(Config { max_queue: 2, ..Config::default() });
    let _l = rows::full_queue_rows(a);
    assert_eq!(s.store().snapshot()[0].last_id, 2);
}

#[test]
fn connectedusers_rows() {
    let (_s, a) = serve_registered(&["alice", "bob", "carol"]);
    let (la, lc) = (Listener::bind(), Listener::bind());
    connect(a, "carol", &lc);
    connect(a, "alice", &la);
    rows::connectedusers_rows(a, a);
}
