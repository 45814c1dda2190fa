//! Two and three in-process nodes on one Redis: any node answers any request, with the same state.

use std::collections::{HashMap, HashSet};
use std::thread;

use crate::redis::Redis;
use crate::{node, two_nodes};
use testkit::{ack, call, eventually, message, online, register, register_all, send, send_pushed};

#[test]
fn a_duplicate_register_across_nodes_is_refused() {
    let (_redis, a, b) = two_nodes();
    assert_eq!(call(a.addr(), &["REGISTER", "Alice", "alice", "01/01/2000"]), [0]);
    assert_eq!(call(b.addr(), &["REGISTER", "Other", "alice", "02/02/2002"]), [1], "alias in use on the other node");
    assert_eq!(call(b.addr(), &["UNREGISTER", "alice"]), [0]);
    assert_eq!(call(a.addr(), &["REGISTER", "Other", "alice", "02/02/2002"]), [0]);
}

#[test]
fn a_message_sent_through_a_reaches_a_listener_connected_through_b_and_its_ack_comes_back() {
    let (_redis, a, b) = two_nodes();
    register(a.addr(), "alice");
    register(b.addr(), "bob");
    let la = online(a.addr(), "alice");
    let lb = online(b.addr(), "bob");
    assert_eq!(send(a.addr(), "alice", "bob", "hello bob"), 1);
    assert_eq!(lb.next(), message("alice", 1, "hello bob"), "pushed by A to the listener B recorded");
    assert_eq!(la.next(), ack(1));
    // And the other way round, through B.
    assert_eq!(send_pushed(b.addr(), ("bob", &lb), ("alice", &la), "hi alice"), 1);
}

#[test]
fn three_nodes_share_users_presence_queues_and_ids() {
    let redis = Redis::start();
    let nodes = [node(&redis), node(&redis), node(&redis)];
    let addr = |i: usize| nodes[i % 3].addr();
    for (i, u) in ["alice", "bob", "carol"].into_iter().enumerate() {
        register(addr(i), u);
    }
    let la = online(addr(1), "alice");
    let lc = online(addr(2), "carol");
    assert_eq!(call(addr(0), &["CONNECTEDUSERS", "alice"]), b"\x002\x00alice\x00carol\x00");
    // bob is offline: his messages wait, whichever node took them.
    for i in 0..6 {
        assert_eq!(send(addr(i), "alice", "bob", &format!("m{i}")), i as u32 + 1, "ids go on across nodes");
    }
    // A listener that is gone (nothing listens there), then a DISCONNECT through yet another node.
    let gone = crate::redis::free_port().to_string();
    assert_eq!(call(addr(1), &["CONNECT", "bob", &gone]), [0]);
    assert_eq!(call(addr(2), &["DISCONNECT", "bob"]), [0], "any node disconnects");
    let lb = online(addr(0), "bob");
    for i in 0..6 {
        assert_eq!(lb.next(), message("alice", i + 1, &format!("m{i}")), "in order after the CONNECT flush");
    }
    for i in 0..6 {
        assert_eq!(la.next(), ack(i + 1));
    }
    assert_eq!(send_pushed(addr(2), ("carol", &lc), ("alice", &la), "c"), 1);
}

#[test]
fn eight_hundred_concurrent_messages_through_both_nodes_arrive_exactly_once() {
    const SENDERS: usize = 4;
    const THREADS: usize = 8;
    const PER_THREAD: usize = 100;
    let (_redis, a, b) = two_nodes();
    let addrs = [a.addr(), b.addr()];
    register(a.addr(), "rcpt");
    let lr = online(b.addr(), "rcpt");
    let senders: Vec<String> = (0..SENDERS).map(|i| format!("s{i}")).collect();
    let mut listeners = Vec::new();
    for (i, s) in senders.iter().enumerate() {
        register(addrs[i % 2], s);
        listeners.push(online(addrs[i % 2], s));
    }
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            // Each sender sends through both nodes at once.
            let (addr, sender) = (addrs[(t / SENDERS) % 2], senders[t % SENDERS].clone());
            thread::spawn(move || {
                (0..PER_THREAD).map(|k| send(addr, &sender, "rcpt", &format!("t{t}-{k}"))).collect::<Vec<u32>>()
            })
        })
        .collect();
    let ids: Vec<Vec<u32>> = workers.into_iter().map(|w| w.join().expect("a sending thread")).collect();
    let mut per_sender: HashMap<usize, HashSet<u32>> = HashMap::new();
    for (t, list) in ids.iter().enumerate() {
        for id in list {
            assert!(per_sender.entry(t % SENDERS).or_default().insert(*id), "id {id} handed out twice");
        }
    }
    // Every message exactly once, and each thread's in the order it sent them.
    let mut seen = HashSet::new();
    let mut next_k = [0usize; THREADS];
    for _ in 0..THREADS * PER_THREAD {
        let push = String::from_utf8(lr.next()).expect("a UTF-8 push");
        let text = push.trim_end_matches('\0').rsplit('\0').next().expect("a text field").to_string();
        assert!(seen.insert(text.clone()), "{text} pushed twice");
        let (t, k) = text[1..].split_once('-').expect("t<thread>-<k>");
        let (t, k): (usize, usize) = (t.parse().expect("thread"), k.parse().expect("k"));
        assert_eq!(k, next_k[t], "thread {t}'s messages in order");
        next_k[t] += 1;
    }
    // Each sender gets one acknowledgement per message, each id once.
    for (i, l) in listeners.iter().enumerate() {
        let mut acks = HashSet::new();
        for _ in 0..per_sender[&i].len() {
            let push = String::from_utf8(l.next()).expect("a UTF-8 push");
            assert!(acks.insert(push), "an acknowledgement pushed twice");
        }
    }
    // Nothing more is queued anywhere: the next push of the recipient is a new message.
    assert_eq!(send(a.addr(), "s0", "rcpt", "last"), per_sender[&0].len() as u32 + 1);
    let last = lr.next();
    assert!(last.ends_with(b"\0last\0"), "no duplicate before the last message: {last:?}");
}

#[test]
fn a_restarted_node_sees_the_state() {
    let redis = Redis::start();
    let b = node(&redis);
    let a = node(&redis);
    register_all(a.addr(), &["alice", "bob"]);
    let la = online(a.addr(), "alice");
    assert_eq!(send(a.addr(), "alice", "bob", "before the restart"), 1);
    a.shutdown();
    let a = node(&redis);
    assert_eq!(call(a.addr(), &["REGISTER", "x", "alice", "x"]), [1], "the user is still there");
    assert_eq!(call(a.addr(), &["CONNECT", "alice", "1"]), [2], "and still connected");
    let lb = online(a.addr(), "bob");
    assert_eq!(lb.next(), message("alice", 1, "before the restart"));
    assert_eq!(la.next(), ack(1));
    assert_eq!(send(b.addr(), "alice", "bob", "after"), 2, "the id counter went on");
}

#[test]
fn a_redis_lost_while_running_gives_failure_codes_then_the_node_reconnects() {
    let mut redis = Redis::start();
    let a = node(&redis);
    register_all(a.addr(), &["alice", "bob"]);
    let _la = online(a.addr(), "alice");
    redis.kill();
    assert_eq!(call(a.addr(), &["REGISTER", "c", "carol", "d"]), [2], "REGISTER: generic failure");
    assert_eq!(call(a.addr(), &["CONNECT", "bob", "1"]), [3], "CONNECT: generic failure");
    assert_eq!(call(a.addr(), &["SEND", "alice", "bob", "x"]), [2], "SEND: generic failure");
    assert_eq!(call(a.addr(), &["CONNECTEDUSERS", "alice"]), [2], "CONNECTEDUSERS: generic failure");
    assert_eq!(call(a.addr(), &["DISCONNECT", "alice"]), [3], "DISCONNECT: generic failure");
    assert_eq!(call(a.addr(), &["UNREGISTER", "alice"]), [2], "UNREGISTER: generic failure");
    redis.restart();
    assert_eq!(call(a.addr(), &["REGISTER", "x", "alice", "x"]), [1], "reconnected; alice survived in the AOF");
    assert_eq!(send(a.addr(), "alice", "bob", "again"), 1);
}

#[test]
fn on_a_redis_cluster_every_step_stays_in_its_slot() {
    let redis = Redis::start_cluster();
    let (a, b) = (node(&redis), node(&redis));
    for (i, u) in ["alice", "bob", "carol"].into_iter().enumerate() {
        register([a.addr(), b.addr()][i % 2], u);
    }
    assert_eq!(call(b.addr(), &["REGISTER", "x", "alice", "x"]), [1]);
    let la = online(a.addr(), "alice");
    let lb = online(b.addr(), "bob");
    assert_eq!(call(b.addr(), &["CONNECTEDUSERS", "bob"]), b"\x002\x00alice\x00bob\x00");
    for i in 1..=5u32 {
        let through = [a.addr(), b.addr()][i as usize % 2];
        assert_eq!(send(through, "alice", "bob", &format!("m{i}")), 2 * i - 1);
        assert_eq!(send(through, "alice", "carol", &format!("c{i}")), 2 * i);
    }
    for i in 1..=5u32 {
        assert_eq!(lb.next(), message("alice", 2 * i - 1, &format!("m{i}")));
    }
    for i in 1..=5u32 {
        assert_eq!(la.next(), ack(2 * i - 1));
    }
    let lc = online(a.addr(), "carol");
    for i in 1..=5u32 {
        assert_eq!(lc.next(), message("alice", 2 * i, &format!("c{i}")), "carol's queue, flushed at CONNECT");
    }
    for i in 1..=5u32 {
        assert_eq!(la.next(), ack(2 * i));
    }
    assert_eq!(call(a.addr(), &["DISCONNECT", "bob"]), [0]);
    assert_eq!(call(a.addr(), &["UNREGISTER", "carol"]), [0]);
    assert_eq!(call(b.addr(), &["CONNECTEDUSERS", "alice"]), b"\x001\x00alice\x00");
    // Braces in an alias do not split its keys over slots (an alias starting with `}` would, unencoded).
    for odd in ["}x{", "a}b", "{}"] {
        register(a.addr(), odd);
        let l = online(b.addr(), odd);
        send_pushed(a.addr(), ("alice", &la), (odd, &l), "odd");
    }
}

#[test]
fn a_connect_whose_activation_never_reached_redis_is_activated_after_the_fallback() {
    let redis = Redis::start();
    let a = node(&redis);
    register_all(a.addr(), &["alice", "bob"]);
    let la = online(a.addr(), "alice");
    let lb = online(a.addr(), "bob");
    // As if Redis had failed between bob's CONNECT and its activation: connected, never marked ready. (The
    // activation follows the CONNECT reply: wait for it, then take it back.)
    eventually("bob activated", || redis.command(&["HEXISTS", "msg:{bob}:u", "ready"]).starts_with(":1"));
    assert!(redis.command(&["HDEL", "msg:{bob}:u", "ready"]).starts_with(":1"));
    assert_eq!(send(a.addr(), "alice", "bob", "waits"), 1);
    assert!(redis.command(&["LLEN", "msg:{bob}:q"]).starts_with(":1"), "not pushed before the activation");
    // Once the fallback time has passed since the CONNECT (here: its time moved back), the next SEND delivers.
    assert!(redis.command(&["HSET", "msg:{bob}:u", "since", "0"]).starts_with(":0"));
    assert_eq!(send(a.addr(), "alice", "bob", "goes"), 2);
    assert_eq!(lb.next(), message("alice", 1, "waits"));
    assert_eq!(lb.next(), message("alice", 2, "goes"));
    assert_eq!((la.next(), la.next()), (ack(1), ack(2)));
}

#[test]
fn a_connect_through_b_replaces_a_dead_session_recorded_through_a() {
    let (_redis, a, b) = two_nodes();
    register_all(a.addr(), &["alice", "bob"]);
    let lb = online(a.addr(), "bob");
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = gone.local_addr().expect("its address").port().to_string();
    assert_eq!(call(a.addr(), &["CONNECT", "alice", &port]), [0]);
    drop(gone); // alice's client died without DISCONNECT
    let la = online(b.addr(), "alice");
    assert_eq!(send_pushed(a.addr(), ("bob", &lb), ("alice", &la), "to the new session"), 1);
    let live = testkit::Listener::bind();
    assert_eq!(call(a.addr(), &["CONNECT", "alice", &live.port_field()]), [2], "a live session is kept");
}
