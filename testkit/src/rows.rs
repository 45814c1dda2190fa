//! The rows of docs/protocol.md's reply tables that every server answers alike, in exact bytes: the in-memory
//! server (tests/operations.rs) and a cluster node (server/tests/cluster/rows.rs) run these, and each adds the
//! checks of its own state (the store, or Redis) between them.

use std::net::SocketAddr;

use crate::{call, online, register, register_all, send, Listener};

/// One byte over the field limit.
pub fn long() -> String {
    "x".repeat(protocol::MAX_FIELD_LEN + 1)
}

/// REGISTER 0, 1 and 2 on a server without users; then alice (Alice Liddell, 04/05/1852), bob and Alice exist.
pub fn register_rows(a: SocketAddr) {
    assert_eq!(call(a, &["REGISTER", "Alice Liddell", "alice", "04/05/1852"]), [0], "new user");
    assert_eq!(call(a, &["REGISTER", "Someone Else", "alice", "01/01/2000"]), [1], "alias in use");
    assert_eq!(call(a, &["REGISTER", "Nobody", "", "01/01/2000"]), [2], "empty alias");
    assert_eq!(call(a, &["REGISTER", &long(), "bob", "01/01/2000"]), [2], "over-long full name");
    assert_eq!(call(a, &["REGISTER", "Bob", "bob", ""]), [0], "empty date and name are fine");
    assert_eq!(call(a, &["REGISTER", "", "Alice", ""]), [0], "aliases are case-sensitive");
}

/// UNREGISTER 0, 1 and 2 of alice (registered) and bob (connected, whose listener is returned); then nobody is
/// registered.
pub fn unregister_rows(a: SocketAddr) -> Listener {
    register_all(a, &["alice", "bob"]);
    let listener = online(a, "bob");
    assert_eq!(call(a, &["UNREGISTER", "alice"]), [0], "disconnected user");
    assert_eq!(call(a, &["UNREGISTER", "bob"]), [0], "connected user");
    assert_eq!(call(a, &["UNREGISTER", "alice"]), [1], "no such user");
    assert_eq!(call(a, &["UNREGISTER", &long()]), [2], "over-long alias");
    listener
}

/// Registers alice and refuses CONNECTs with status 1 and 3 (the listener's port as CONNECT carries it: `port`).
pub fn connect_refusals(a: SocketAddr, port: &str) {
    register(a, "alice");
    assert_eq!(call(a, &["CONNECT", "nobody", port]), [1], "no such user");
    for bad in ["0", "65536", "abc", "-1", "", " 80"] {
        assert_eq!(call(a, &["CONNECT", "alice", bad]), [3], "port {bad:?}");
    }
    assert_eq!(call(a, &["CONNECT", &long(), port]), [3], "over-long alias");
}

/// After [`connect_refusals`]: CONNECT 0, then 2.
pub fn connect_accepted(a: SocketAddr, port: &str) {
    assert_eq!(call(a, &["CONNECT", "alice", port]), [0], "connected");
    assert_eq!(call(a, &["CONNECT", "alice", port]), [2], "already connected");
}

/// Registers alice and bob, connects alice (her listener is returned) and refuses DISCONNECT with status 1 and 2.
pub fn disconnect_refusals(a: SocketAddr) -> Listener {
    register_all(a, &["alice", "bob"]);
    let listener = online(a, "alice");
    assert_eq!(call(a, &["DISCONNECT", "nobody"]), [1], "no such user");
    assert_eq!(call(a, &["DISCONNECT", "bob"]), [2], "not connected");
    listener
}

/// Registers alice and bob, connects alice (her listener is returned), and refuses SEND with status 1 and 2.
pub fn send_refusals(a: SocketAddr) -> Listener {
    register_all(a, &["alice", "bob"]);
    assert_eq!(call(a, &["SEND", "alice", "bob", "hi"]), [2], "sender not connected");
    let listener = online(a, "alice");
    assert_eq!(call(a, &["SEND", "alice", "nobody", "hi"]), [1], "unknown recipient");
    assert_eq!(call(a, &["SEND", "nobody", "bob", "hi"]), [1], "unknown sender");
    assert_eq!(call(a, &["SEND", "alice", "bob", &long()]), [2], "text over 255 bytes");
    listener
}

/// After [`send_refusals`]: alice's first four SENDs get ids 1 to 4, with texts of 255 and of 0 bytes; bob,
/// offline, then holds three messages.
pub fn send_ids(a: SocketAddr) {
    // 255 bytes made of two-byte characters and one ASCII byte: the limit counts bytes.
    let max_text = format!("{}x", "é".repeat(127));
    assert_eq!(max_text.len(), 255);
    assert_eq!(call(a, &["SEND", "alice", "bob", &max_text]), b"\x001\x00", "first id is 1; failures used none");
    assert_eq!(call(a, &["SEND", "alice", "bob", "two"]), b"\x002\x00");
    assert_eq!(call(a, &["SEND", "alice", "alice", "to myself"]), b"\x003\x00", "sending to oneself");
    assert_eq!(call(a, &["SEND", "alice", "bob", ""]), b"\x004\x00", "empty text is accepted");
}

/// A queue cap of 2: alice's two SENDs to bob are accepted, the third is refused (alice's listener is returned).
pub fn full_queue_rows(a: SocketAddr) -> Listener {
    register_all(a, &["alice", "bob"]);
    let listener = online(a, "alice");
    assert_eq!(send(a, "alice", "bob", "1"), 1);
    assert_eq!(send(a, "alice", "bob", "2"), 2);
    assert_eq!(call(a, &["SEND", "alice", "bob", "3"]), [2], "queue full");
    listener
}

/// With alice, bob and carol registered and alice and carol connected through `carol_at` (carol) and `a`
/// (alice): CONNECTEDUSERS 0, 1 and 2; after carol's DISCONNECT, one user.
pub fn connectedusers_rows(a: SocketAddr, carol_at: SocketAddr) {
    assert_eq!(call(a, &["CONNECTEDUSERS", "alice"]), b"\x002\x00alice\x00carol\x00", "registration order");
    assert_eq!(call(a, &["CONNECTEDUSERS", "bob"]), [1], "requester not connected");
    assert_eq!(call(a, &["CONNECTEDUSERS", "nobody"]), [2], "requester not registered");
    assert_eq!(call(a, &["CONNECTEDUSERS", &long()]), [2], "over-long alias");
    assert_eq!(call(carol_at, &["DISCONNECT", "carol"]), [0]);
    assert_eq!(call(a, &["CONNECTEDUSERS", "alice"]), b"\x001\x00alice\x00");
}
