use super::*;
use std::net::Ipv4Addr;
use std::sync::Barrier;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)
}

fn connected(store: &Store, alias: &str) {
    assert_eq!(store.register("", alias, "").0, RegisterStatus::Ok);
    let (status, epoch) = store.connect(alias, addr(9));
    assert_eq!(status, ConnectStatus::Ok);
    let _ = store.activate(alias, epoch);
}

/// A store (queues of 10) with each of `aliases` registered and connected, in order.
fn store_with_connected(aliases: &[&str]) -> Store {
    let store = Store::new(10);
    for alias in aliases {
        connected(&store, alias);
    }
    store
}

fn send(store: &Store, from: &str, to: &str, text: &str) -> Accepted {
    store.send(from, to, text, None).unwrap()
}

#[test]
fn ids_start_at_one_and_wrap_to_one() {
    assert_eq!(next_id(0), 1);
    assert_eq!(next_id(41), 42);
    assert_eq!(next_id(u32::MAX - 1), u32::MAX);
    assert_eq!(next_id(u32::MAX), 1);
}

#[test]
fn send_after_the_last_id_wraps_to_one() {
    let store = store_with_connected(&["a"]);
    {
        let mut reg = store.lock();
        let key = reg.find("a").unwrap();
        reg.users[key].last_id = u32::MAX;
    }
    assert_eq!(send(&store, "a", "a", "x").id, 1);
    assert_eq!(store.snapshot()[0].last_id, 1);
}

#[test]
fn only_one_ticket_per_user_at_a_time() {
    let store = store_with_connected(&["a"]);
    let first = send(&store, "a", "a", "1").ticket;
    assert!(first.is_some(), "idle and connected: the sender thread delivers");
    assert!(send(&store, "a", "a", "2").ticket.is_none(), "a deliverer is already at work");
    let ticket = first.unwrap();
    let job = store.next_job(&ticket).unwrap();
    assert_eq!(job.entry, Entry::Message { sender: "a".into(), id: 1, text: "1".into() });
    // Delivering to oneself queues the ack behind message 2, and the same ticket goes on.
    assert!(store.delivered(&ticket, &job).ack_ticket.is_none());
    let ids: Vec<_> = store.snapshot()[0].queue.to_vec();
    assert_eq!(ids, [Entry::Message { sender: "a".into(), id: 2, text: "2".into() }, Entry::Ack { id: 1 }]);
}

#[test]
fn a_dropped_ticket_releases_its_claim_and_a_stale_one_cannot_release_a_newer_claim() {
    let store = store_with_connected(&["a"]);
    let ticket = send(&store, "a", "a", "1").ticket.unwrap();
    drop(ticket); // a deliverer that died (a panic, an early return) without telling the store
    let second = send(&store, "a", "a", "2").ticket.expect("the claim was released by the drop");
    // A ticket that finished normally does not touch a later claim when it is dropped.
    assert!(store.next_job(&second).is_some());
    let mut reg = store.lock();
    let key = reg.find("a").unwrap();
    assert_ne!(reg.users[key].claim, 0);
    drop(reg);
    drop(second);
    let reg = store.lock();
    assert_eq!(reg.users[key].claim, 0);
}

#[test]
fn a_failed_push_keeps_the_head_and_disconnects_only_the_same_connection() {
    let store = store_with_connected(&["a"]);
    let ticket = send(&store, "a", "a", "m").ticket.unwrap();
    let job = store.next_job(&ticket).unwrap();
    // The user reconnects meanwhile: the old connection's failure must not disconnect the new one.
    assert_eq!(store.disconnect("a", Some(Ipv4Addr::LOCALHOST.into())), DisconnectStatus::Ok);
    let (_, epoch) = store.connect("a", addr(10));
    let _ = store.activate("a", epoch);
    assert!(store.failed(&ticket, &job), "the deliverer goes on with the new listener");
    assert_eq!(store.is_connected("a"), Some(true));
    let retry = store.next_job(&ticket).unwrap();
    assert_eq!(retry.addr, addr(10));
    assert!(!store.failed(&ticket, &retry));
    assert_eq!(store.is_connected("a"), Some(false));
    assert_eq!(store.snapshot()[0].queue.len(), 1, "the message stays queued");
}

#[test]
fn a_poisoned_lock_does_not_stop_the_registry() {
    let store = Store::new(10);
    let clone = store.clone();
    let _ = std::thread::spawn(move || {
        let _guard = clone.lock();
        panic!("a connection thread dies holding the lock");
    })
    .join();
    assert_eq!(store.register("", "a", "").0, RegisterStatus::Ok);
    assert_eq!(store.len(), 1);
}

#[test]
fn a_ticket_carries_its_first_job_and_delivered_answers_the_next_one() {
    let store = store_with_connected(&["a", "b"]);
    let mut ticket = send(&store, "a", "b", "1").ticket.unwrap();
    assert!(send(&store, "a", "b", "2").ticket.is_none());
    let job = ticket.take_job().expect("the first push comes with the ticket");
    assert_eq!(job.entry, Entry::Message { sender: "a".into(), id: 1, text: "1".into() });
    let done = store.delivered(&ticket, &job);
    let mut ack = done.ack_ticket.expect("the sender is idle: its acknowledgement needs a deliverer");
    assert_eq!(ack.take_job().map(|j| j.entry), Some(Entry::Ack { id: 1 }));
    let next = done.next.expect("message 2 is next");
    assert_eq!(next.entry, Entry::Message { sender: "a".into(), id: 2, text: "2".into() });
    assert!(store.delivered(&ticket, &next).next.is_none(), "queue empty: the delivery is over");
    // The claim was released: the next message hands out a new ticket.
    assert!(send(&store, "a", "b", "3").ticket.is_some());
}

#[test]
fn unregistering_users_in_the_middle_keeps_the_others_and_their_order() {
    let store = store_with_connected(&["a", "b", "c", "d", "e"]);
    assert_eq!(store.unregister("c", None).0, UnregisterStatus::Ok);
    assert_eq!(store.unregister("b", None).0, UnregisterStatus::Ok);
    // The freed slots are reused; the order stays the order of registration.
    connected(&store, "c");
    connected(&store, "f");
    assert_eq!(store.connected_users(), ["a", "d", "e", "c", "f"]);
    assert_eq!(store.is_connected("b"), None);
    assert_eq!(send(&store, "d", "e", "x").id, 1);
}

#[test]
fn a_re_registered_alias_is_a_new_user_that_an_old_ticket_cannot_touch() {
    let store = store_with_connected(&["a"]);
    let ticket = send(&store, "a", "a", "old").ticket.unwrap();
    let job = store.next_job(&ticket).unwrap();
    assert_eq!(store.unregister("a", None).0, UnregisterStatus::Ok);
    connected(&store, "a");
    let _fresh = send(&store, "a", "a", "new");
    assert!(store.delivered(&ticket, &job).next.is_none());
    assert!(!store.failed(&ticket, &job));
    let users = store.snapshot();
    assert_eq!(users[0].last_id, 1, "a new registration starts its ids again");
    assert_eq!(users[0].queue, [Entry::Message { sender: "a".into(), id: 1, text: "new".into() }]);
    assert!(users[0].connected);
}

#[test]
fn concurrent_registers_of_one_alias_have_exactly_one_winner() {
    const THREADS: usize = 16;
    let store = Store::new(10);
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.register(&format!("thread {i}"), "same", "").0
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|s| **s == RegisterStatus::Ok).count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|s| **s == RegisterStatus::AliasInUse).count(), THREADS - 1);
    assert_eq!(store.len(), 1);
}

#[test]
fn requests_are_not_origin_checked_unless_asked_and_are_when_asked() {
    let store = store_with_connected(&["a", "b"]);
    let other: IpAddr = Ipv4Addr::new(127, 0, 0, 2).into();
    let own: IpAddr = Ipv4Addr::LOCALHOST.into();
    assert_eq!(store.send("a", "b", "x", Some(other)).unwrap_err(), SendReply::Fail);
    assert_eq!(store.send("a", "b", "x", Some(own)).unwrap().id, 1);
    assert_eq!(store.unregister("b", Some(other)).0, UnregisterStatus::Fail);
    assert_eq!(store.disconnect("b", Some(other)), DisconnectStatus::Fail);
    assert_eq!(store.disconnect("b", Some(own)), DisconnectStatus::Ok);
    // An offline user has no address to compare with.
    assert_eq!(store.unregister("b", Some(other)).0, UnregisterStatus::Ok);
}

/// The cost of a request does not grow with the number of registered users: count the users each request looks
/// at (an internal counter, not wall time) with 10 and with 20,000 users registered.
#[test]
fn the_cost_of_a_request_does_not_grow_with_users() {
    fn cost_per_round(population: usize) -> u64 {
        let store = Store::new(10);
        for i in 0..population {
            store.register("", &format!("user{i}"), "");
        }
        connected(&store, "alice");
        connected(&store, "bob");
        let before = store.steps().visited;
        for i in 0..10 {
            let mut ticket = send(&store, "alice", "bob", &format!("m{i}")).ticket.unwrap();
            let job = ticket.take_job().unwrap();
            let done = store.delivered(&ticket, &job);
            let ack = done.ack_ticket.unwrap();
            let ack_job = store.next_job(&ack).unwrap();
            store.delivered(&ack, &ack_job);
            let _ = store.connected_users_for("alice");
            store.disconnect("bob", None);
            let (_, epoch) = store.connect("bob", addr(9));
            store.activate("bob", epoch);
        }
        store.steps().visited - before
    }
    let small = cost_per_round(10);
    let large = cost_per_round(20_000);
    assert_eq!(small, large, "users looked at for the same requests with 10 and 20,000 users registered");
}

#[test]
fn connected_users_lists_only_the_connected_in_registration_order() {
    let store = store_with_connected(&["z"]);
    store.register("", "offline", "");
    connected(&store, "a");
    assert_eq!(store.connected_users_for("a"), UsersReply::List(vec!["z".into(), "a".into()]));
    assert_eq!(store.connected_users_for("offline"), UsersReply::NotConnected);
    assert_eq!(store.connected_users_for("nobody"), UsersReply::Fail);
}

#[test]
fn live_bytes_follow_every_change_back_to_zero() {
    let store = Store::new(10);
    assert_eq!(store.live_bytes(), 0);
    connected(&store, "a");
    connected(&store, "b");
    let with_users = store.live_bytes();
    let mut ticket = send(&store, "a", "b", "some text").ticket.unwrap();
    assert!(store.live_bytes() > with_users);
    let job = ticket.take_job().unwrap();
    let ack = store.delivered(&ticket, &job).ack_ticket.unwrap();
    let ack_job = store.next_job(&ack).unwrap();
    store.delivered(&ack, &ack_job);
    assert_eq!(store.live_bytes(), with_users);
    store.unregister("a", None);
    store.unregister("b", None);
    assert_eq!(store.live_bytes(), 0);
}
