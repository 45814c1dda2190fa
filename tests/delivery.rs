//! Pushes: order, no loss, no duplicate, acknowledgements, dead listeners, the grace period (docs/protocol.md 5).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use server::Config;
use testkit::*;

#[test]
fn offline_messages_arrive_in_order_on_connect_then_acks_reach_the_sender() {
    let (s, a) = serve_registered(&["alice", "bob"]);
    let (la, lb) = (Listener::bind(), Listener::bind());
    connect(a, "alice", &la);
    let texts = ["first", "second\nwith a line break", "third"];
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(send(a, "alice", "bob", t), i as u32 + 1);
    }
    la.assert_quiet(Duration::from_millis(100));
    connect(a, "bob", &lb);
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(lb.next(), message("alice", i as u32 + 1, t));
    }
    for i in 1..=3 {
        assert_eq!(la.next(), ack(i));
    }
    eventually("bob's queue drained", || s.store().snapshot()[1].queue.is_empty());
}

#[test]
fn live_send_is_pushed_and_acknowledged() {
    let (_s, a, [la, lb]) = serve_online(["alice", "bob"]);
    send_pushed(a, ("alice", &la), ("bob", &lb), "hello bob");
}

#[test]
fn message_to_oneself_then_its_ack() {
    let (_s, a, [l]) = serve_online(["alice"]);
    send_pushed(a, ("alice", &l), ("alice", &l), "note to self");
}

#[test]
fn push_goes_to_the_address_the_connect_came_from() {
    let (_s, a) = serve_with(Config { bind: "0.0.0.0:0".parse().unwrap(), ..Config::default() });
    register_all(a, &["alice", "bob"]);
    let la = online(a, "alice");
    // Bob's listener exists only on 127.0.0.2; a push to 127.0.0.1 at that port would be refused.
    let lb = Listener::bind_on(SocketAddr::new(OTHER_HOST.into(), 0));
    let reply = raw_from(Some(OTHER_HOST.into()), a, &fields(&["CONNECT", "bob", &lb.port().to_string()]));
    assert_eq!(reply, [0]);
    send_pushed(a, ("alice", &la), ("bob", &lb), "over there");
}

#[test]
fn concurrent_senders_lose_nothing_duplicate_nothing_and_keep_per_sender_order() {
    const SENDERS: usize = 6;
    const EACH: u32 = 60;
    let (_s, a, [sink]) = serve_online(["sink"]);
    let mut sender_listeners = Vec::new();
    for i in 0..SENDERS {
        let name = format!("s{i}");
        let l = register_online(a, &name);
        sender_listeners.push(l);
    }
    let workers: Vec<_> = (0..SENDERS)
        .map(|i| {
            thread::spawn(move || {
                let name = format!("s{i}");
                (1..=EACH).map(|n| send(a, &name, "sink", &format!("{name} #{n}"))).collect::<Vec<_>>()
            })
        })
        .collect();
    for w in workers {
        assert_eq!(w.join().unwrap(), (1..=EACH).collect::<Vec<_>>(), "ids 1..=N per sender");
    }
    let mut last: HashMap<String, u32> = HashMap::new();
    for push in sink.take(SENDERS * EACH as usize) {
        let parts: Vec<_> = push.split(|&b| b == 0).map(|p| String::from_utf8(p.to_vec()).unwrap()).collect();
        assert_eq!(parts[0], "SEND_MESSAGE");
        let (sender, id) = (parts[1].clone(), parts[2].parse::<u32>().unwrap());
        assert_eq!(parts[3], format!("{sender} #{id}"), "text matches sender and id");
        let prev = last.insert(sender.clone(), id).unwrap_or(0);
        assert_eq!(id, prev + 1, "{sender}: in order, no loss, no duplicate");
    }
    sink.assert_quiet(Duration::from_millis(100));
    for l in &sender_listeners {
        let acks = l.take(EACH as usize);
        assert_eq!(acks, (1..=EACH).map(ack).collect::<Vec<_>>());
    }
}

#[test]
fn a_dead_listener_keeps_the_message_for_the_next_connect() {
    let (s, a) = serve_registered(&["alice", "bob"]);
    let la = online(a, "alice");
    let dead = dead_port();
    assert_eq!(call(a, &["CONNECT", "bob", &dead.to_string()]), [0]);
    let id = send(a, "alice", "bob", "are you there?");
    // After the grace period the failed push marks bob disconnected; the message stays queued.
    eventually("bob marked disconnected", || s.store().is_connected("bob") == Some(false));
    assert_eq!(s.store().snapshot()[1].queue.len(), 1);
    la.assert_quiet(Duration::from_millis(50));
    let lb = online(a, "bob");
    assert_eq!(lb.next(), message("alice", id, "are you there?"));
    assert_eq!(la.next(), ack(id), "acknowledged only once really delivered");
}

#[test]
fn a_listener_that_starts_accepting_after_the_connect_reply_gets_its_messages() {
    // Some original clients bind their listener only after reading the CONNECT reply (docs/protocol.md 5.4).
    let (_s, a) = serve_registered(&["alice", "bob"]);
    let la = online(a, "alice");
    send(a, "alice", "bob", "queued");
    let port = dead_port();
    assert_eq!(call(a, &["CONNECT", "bob", &port.to_string()]), [0]);
    // The first pushes are refused; a listener opened a little later still gets the message.
    let late = TcpListener::bind(("127.0.0.1", port)).expect("rebind the same port");
    late.set_nonblocking(false).unwrap();
    let (mut stream, _) = late.accept().expect("push arrives within the grace period");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(read_all(&mut stream), message("alice", 1, "queued"));
    // The push counts as delivered once the listener has read it and closed (docs/protocol.md 5.3).
    drop(stream);
    assert_eq!(la.next(), ack(1));
}

#[test]
fn an_ack_owed_to_an_offline_sender_arrives_at_its_next_connect() {
    let (s, a) = serve_registered(&["alice", "bob"]);
    let la = online(a, "alice");
    let id = send(a, "alice", "bob", "read this later");
    assert_eq!(call(a, &["DISCONNECT", "alice"]), [0]);
    let lb = online(a, "bob");
    assert_eq!(lb.next(), message("alice", id, "read this later"));
    eventually("ack queued for alice", || s.store().snapshot()[0].queue.len() == 1);
    la.assert_quiet(Duration::from_millis(50));
    let la2 = online(a, "alice");
    assert_eq!(la2.next(), ack(id));
}

#[test]
fn unregister_discards_the_queue_and_drops_acks_for_a_departed_sender() {
    let (_s, a) = serve_registered(&["alice", "bob", "carol"]);
    let la = online(a, "alice");
    send(a, "alice", "bob", "never read");
    let id = send(a, "alice", "carol", "from a departed sender");
    assert_eq!(call(a, &["UNREGISTER", "bob"]), [0]);
    assert_eq!(call(a, &["UNREGISTER", "alice"]), [0]);
    let lc = online(a, "carol");
    assert_eq!(lc.next(), message("alice", id, "from a departed sender"), "still delivered");
    let lb = register_online(a, "bob");
    lb.assert_quiet(Duration::from_millis(100));
    la.assert_quiet(Duration::from_millis(10));
}

#[test]
fn a_new_message_never_overtakes_older_pending_ones() {
    let (_s, a) = serve_registered(&["alice", "bob"]);
    let _la = online(a, "alice"); // alive for the acknowledgements
    for n in 1..=20 {
        send(a, "alice", "bob", &format!("m{n}"));
    }
    let lb = online(a, "bob");
    // Live sends race with the flush of the stored ones; the queue keeps them in order.
    for n in 21..=40 {
        send(a, "alice", "bob", &format!("m{n}"));
    }
    for n in 1..=40u32 {
        assert_eq!(lb.next(), message("alice", n, &format!("m{n}")));
    }
}

#[test]
fn a_slow_listener_does_not_stall_other_users() {
    let (_s, a) = serve_registered(&["alice", "bob", "carol"]);
    let _la = online(a, "alice");
    // Bob's "listener" accepts connections into the backlog but never reads: pushes to it still complete,
    // and carol is served normally meanwhile.
    let stuck = TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(call(a, &["CONNECT", "bob", &stuck.local_addr().unwrap().port().to_string()]), [0]);
    send(a, "alice", "bob", "hello?");
    let started = Instant::now();
    let lc = online(a, "carol");
    let id = send(a, "alice", "carol", "hi carol");
    assert_eq!(lc.next(), message("alice", id, "hi carol"));
    assert!(started.elapsed() < Duration::from_secs(2), "carol served promptly");
    drop(stuck);
}

#[test]
fn a_listener_that_resets_without_reading_gets_the_message_again_and_no_ack_is_sent() {
    // A push counts as delivered only once the listener has read it and closed in order (docs/protocol.md 5.3).
    let (s, a) = serve_registered(&["alice", "bob"]);
    let la = online(a, "alice");
    let id = send(a, "alice", "bob", "read me");
    let resetting = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = resetting.local_addr().unwrap().port();
    assert_eq!(call(a, &["CONNECT", "bob", &port.to_string()]), [0]);
    let (stream, _) = resetting.accept().expect("the push connection");
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream); // closed with a reset, nothing read
    eventually("bob marked disconnected", || s.store().is_connected("bob") == Some(false));
    la.assert_quiet(Duration::from_millis(100));
    assert_eq!(s.store().snapshot()[1].queue.len(), 1, "the message stays queued");
    let lb = online(a, "bob");
    assert_eq!(lb.next(), message("alice", id, "read me"));
    assert_eq!(la.next(), ack(id));
}

#[test]
fn a_recipient_with_a_long_queue_does_not_hold_up_other_users_pushes() {
    // bob's listener is slow (it takes a while before closing each push) and 8 turns of messages wait for him.
    // His deliverer claims alice's acknowledgements on the way; they, and a message carol sends alice meanwhile,
    // must not wait until bob's whole queue is out (docs/protocol.md 5.3, delivery::TURN). Eight turns leave
    // carol's SEND about a hundred pushes of slack on a slow machine.
    const QUEUED: usize = 8 * server::delivery::TURN;
    let (_s, a) = serve_registered(&["alice", "bob", "carol"]);
    let la = online(a, "alice");
    for i in 0..QUEUED {
        send(a, "alice", "bob", &format!("m{i}"));
    }
    let slow = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = slow.local_addr().unwrap().port();
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = received.clone();
    let reader = thread::spawn(move || {
        for _ in 0..QUEUED {
            let Ok((mut stream, _)) = slow.accept() else { return };
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            let _ = read_all(&mut stream);
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            thread::sleep(Duration::from_millis(20)); // a slow reader, not a synchronisation
        }
    });
    assert_eq!(call(a, &["CONNECT", "bob", &port.to_string()]), [0]);
    let lc = online(a, "carol");
    assert_eq!(la.next(), ack(1), "alice's first acknowledgement");
    let id = send(a, "carol", "alice", "while bob is busy");
    // The acknowledgements of bob's earlier pushes come first, in order, then carol's message.
    loop {
        let push = la.next();
        if push == message("carol", id, "while bob is busy") {
            break;
        }
    }
    let bob_had = received.load(std::sync::atomic::Ordering::SeqCst);
    assert!(bob_had < QUEUED, "carol's message reached alice only after bob's whole queue ({bob_had} of {QUEUED})");
    reader.join().unwrap();
    assert_eq!(lc.next(), ack(id));
}
