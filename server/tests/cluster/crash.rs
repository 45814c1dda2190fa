//! Nodes that die (the real binary, killed with SIGKILL), and nodes that must not start.

use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;

use crate::redis::{free_port, Redis};
use testkit::{ack, call, eventually, message, online, register, register_all, send, ServerProcess, TIMEOUT};

fn cluster_node(redis: &Redis, extra: &[&str]) -> ServerProcess {
    let url = redis.url();
    let mut args = vec!["--cluster", url.as_str()];
    args.extend_from_slice(extra);
    ServerProcess::start(&args)
}

#[test]
fn a_hundred_messages_to_an_offline_user_through_alternating_nodes_arrive_once_in_order_after_kill_9() {
    let redis = Redis::start();
    let (a, b) = (cluster_node(&redis, &[]), cluster_node(&redis, &[]));
    let (aa, ba) = (a.addr, b.addr);
    register(aa, "alice");
    register(ba, "bob");
    let la = online(aa, "alice");
    for i in 1..=100u32 {
        let through = if i % 2 == 0 { ba } else { aa };
        assert_eq!(send(through, "alice", "bob", &format!("m{i}")), i);
    }
    a.kill_9();
    let lb = online(ba, "bob");
    for i in 1..=100u32 {
        assert_eq!(lb.next(), message("alice", i, &format!("m{i}")), "message {i}, in order");
    }
    for i in 1..=100u32 {
        assert_eq!(la.next(), ack(i), "acknowledgement {i}");
    }
    assert_eq!(send(ba, "alice", "bob", "end"), 101);
    assert_eq!(lb.next(), message("alice", 101, "end"), "nothing was pushed twice");
    drop(b);
}

/// A listener that reads its first push and then holds the connection open (never confirms it) until told;
/// every later push it reads and closes at once.
fn stalling_listener() -> (u16, Receiver<Vec<u8>>, Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a listener");
    let port = listener.local_addr().expect("its address").port();
    let (pushes, rx) = channel();
    let (release, released) = channel::<()>();
    thread::spawn(move || {
        let mut first = true;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(TIMEOUT));
            let mut bytes = Vec::new();
            let _ = (&mut stream).take(1 << 16).read_to_end(&mut bytes);
            if bytes == b"PROBE\0" {
                continue;
            }
            let held = first;
            first = false;
            if pushes.send(bytes).is_err() {
                break;
            }
            if held {
                let _ = released.recv_timeout(TIMEOUT);
            }
        }
    });
    (port, rx, release)
}

#[test]
fn a_delivery_in_flight_on_a_killed_node_goes_out_again_by_itself_once_its_claim_lapses() {
    let redis = Redis::start();
    let ttl = ["--claim-ttl-ms", "1000"];
    let (a, b) = (cluster_node(&redis, &ttl), cluster_node(&redis, &ttl));
    let (aa, ba) = (a.addr, b.addr);
    register_all(aa, &["alice", "bob"]);
    let la = online(aa, "alice");
    let (port, pushes, release) = stalling_listener();
    assert_eq!(call(aa, &["CONNECT", "bob", &port.to_string()]), [0]);
    assert_eq!(send(aa, "alice", "bob", "m1"), 1);
    assert_eq!(pushes.recv_timeout(TIMEOUT).expect("the first push"), message("alice", 1, "m1"));
    // A now waits for bob's listener to confirm m1, holding bob's claim: kill it there.
    a.kill_9();
    release.send(()).expect("the listener goes on");
    assert_eq!(send(ba, "alice", "bob", "m2"), 2, "accepted; the dead node's claim still holds the delivery");
    // Nothing else happens: once the claim has lapsed, B's sweeper resumes bob's delivery by itself.
    for i in 1..=2u32 {
        let push = pushes.recv_timeout(TIMEOUT).expect("a push, without any further request");
        assert_eq!(push, message("alice", i, &format!("m{i}")), "m1 again (never confirmed), then m2");
    }
    assert_eq!(send(ba, "alice", "bob", "m3"), 3);
    assert_eq!(pushes.recv_timeout(TIMEOUT).expect("a push"), message("alice", 3, "m3"));
    for i in 1..=3u32 {
        assert_eq!(la.next(), ack(i), "one acknowledgement each");
    }
    assert!(redis.command(&["LLEN", "msg:{bob}:q"]).starts_with(":0"), "bob's queue is empty");
    drop(b);
}

#[test]
fn a_node_pointed_at_a_redis_that_is_not_there_exits_with_an_error_that_says_so() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let (code, stderr) = ServerProcess::run_to_exit(&["--cluster", &url]);
    assert_eq!(code, Some(1), "non-zero exit; stderr {stderr:?}");
    assert!(stderr.contains(&format!("error: cluster: cannot reach Redis at {url}")), "{stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr:?}");
}

#[test]
fn require_durable_refuses_a_redis_that_does_not_sync_every_write_and_its_absence_only_warns() {
    let redis = Redis::start_with("everysec");
    let url = redis.url();
    let (code, stderr) = ServerProcess::run_to_exit(&["--cluster", &url, "--require-durable"]);
    assert_eq!(code, Some(1), "refused; stderr {stderr:?}");
    assert!(stderr.contains("appendfsync everysec") && stderr.contains("not durable"), "{stderr:?}");
    let node = ServerProcess::start(&["--cluster", &url]);
    assert!(node.seen.iter().any(|l| l.starts_with("warn: cluster:") && l.contains("everysec")), "{:?}", node.seen);
    register(node.addr, "alice");
    let (status, _) = node.stop();
    assert!(status.success(), "a clean stop");
}

#[test]
fn an_acknowledgement_a_dead_node_left_pending_is_passed_on_by_the_sweeper() {
    let redis = Redis::start();
    let node = cluster_node(&redis, &["--claim-ttl-ms", "400"]);
    register_all(node.addr, &["alice", "bob"]);
    let la = online(node.addr, "alice");
    let _lb = online(node.addr, "bob");
    // As a node leaves it when it dies between popping bob's message from alice and passing the ack on.
    assert!(redis.command(&["RPUSH", "msg:{bob}:p", "alice\x007"]).starts_with(":1"));
    assert_eq!(la.next(), ack(7), "passed on and pushed without any request");
    eventually("bob owes nothing", || redis.command(&["LLEN", "msg:{bob}:p"]).starts_with(":0"));
    eventually("the sweeper's claim released", || redis.command(&["EXISTS", "msg:{bob}:c"]).starts_with(":0"));
}
