use super::*;
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// Connected pairs on loopback: (the client's end, the server's end).
struct Pairs(TcpListener);

impl Pairs {
    fn new() -> Pairs {
        Pairs(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn pair(&self) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(self.0.local_addr().unwrap()).unwrap();
        let (server, _) = self.0.accept().unwrap();
        client.set_read_timeout(Some(WAIT)).unwrap();
        (client, server)
    }
}

fn ip(n: u8) -> IpAddr {
    Ipv4Addr::new(10, 0, 0, n).into()
}

fn admission(max_connections: usize, per_address: usize, deliveries: usize) -> Arc<Admission> {
    Arc::new(Admission::new(Limits {
        max_connections,
        max_pending_per_address: per_address,
        max_deliveries: deliveries,
    }))
}

fn shut_down(client: &mut TcpStream) -> bool {
    matches!(client.read(&mut [0u8; 1]), Ok(0) | Err(_))
}

#[test]
fn an_address_over_its_limit_loses_its_oldest_pending_connection() {
    let pairs = Pairs::new();
    let adm = admission(10, 2, 1);
    let (mut c1, s1) = pairs.pair();
    let (_c2, s2) = pairs.pair();
    let (_c3, s3) = pairs.pair();
    let mut p1 = adm.admit(&s1, ip(1), Instant::now()).unwrap();
    let mut p2 = adm.admit(&s2, ip(1), Instant::now()).unwrap();
    // Another address does not count against the first one's limit.
    let mut other = adm.admit(&s3, ip(2), Instant::now()).unwrap();
    let (_c4, s4) = pairs.pair();
    let mut p4 = adm.admit(&s4, ip(1), Instant::now()).unwrap();
    assert!(shut_down(&mut c1), "the oldest of the address was shut down");
    assert!(adm.lock().last_report.is_some(), "and reported");
    assert!(!p1.request_complete(), "and learns it was shed");
    assert!(p2.request_complete() && p4.request_complete() && other.request_complete());
    assert_eq!(adm.in_use(), 4, "a shed connection holds its slot until its thread lets go");
    drop((p1, p2, p4, other));
    assert_eq!(adm.in_use(), 0);
    assert_eq!(adm.lock().shedding, 0);
    assert!(adm.lock().pending.is_empty());
}

#[test]
fn a_full_server_sheds_the_busiest_address_oldest_and_serves_the_newcomer() {
    let pairs = Pairs::new();
    let adm = admission(3, 3, 1);
    let (mut lone_c, lone_s) = pairs.pair();
    let (mut b1_c, b1_s) = pairs.pair();
    let (_b2_c, b2_s) = pairs.pair();
    let mut lone = adm.admit(&lone_s, ip(1), Instant::now()).unwrap();
    let mut b1 = adm.admit(&b1_s, ip(2), Instant::now()).unwrap();
    let mut b2 = adm.admit(&b2_s, ip(2), Instant::now()).unwrap();
    let (_n_c, n_s) = pairs.pair();
    let (tx, admitted) = mpsc::channel();
    let waiting = adm.clone();
    let newcomer = thread::spawn(move || tx.send(waiting.admit(&n_s, ip(3), Instant::now()).is_some()).unwrap());
    // The victim's read ends; its thread then gives the slot back, and the newcomer gets it.
    assert!(shut_down(&mut b1_c), "the busiest address's oldest was shut down");
    assert!(!b1.request_complete());
    drop(b1);
    assert!(admitted.recv_timeout(WAIT).unwrap(), "the newcomer was admitted");
    newcomer.join().unwrap();
    // The lone connection, the oldest of all, was left alone.
    lone_c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert!(lone_c.read(&mut [0u8; 1]).is_err(), "still open: the read timed out");
    assert!(lone.request_complete() && b2.request_complete());
}

#[test]
fn complete_requests_are_never_shed_and_stop_ends_the_wait() {
    let pairs = Pairs::new();
    let adm = admission(1, 1, 1);
    let (_c1, s1) = pairs.pair();
    let mut p1 = adm.admit(&s1, ip(1), Instant::now()).unwrap();
    assert!(p1.request_complete());
    let (_c2, s2) = pairs.pair();
    let waiting = adm.clone();
    let (tx, refused) = mpsc::channel();
    let newcomer = thread::spawn(move || tx.send(waiting.admit(&s2, ip(1), Instant::now()).is_none()).unwrap());
    // Nothing is sheddable: the newcomer waits (a bounded negative check), until the stop.
    assert!(refused.recv_timeout(Duration::from_millis(50)).is_err());
    adm.stop();
    assert!(refused.recv_timeout(WAIT).unwrap(), "stop made admit give up");
    newcomer.join().unwrap();
    assert!(p1.request_complete(), "the complete request kept its slot");
}

#[test]
fn into_delivery_frees_the_connection_slot_within_the_delivery_cap() {
    let pairs = Pairs::new();
    let adm = admission(4, 4, 1);
    let (_c1, s1) = pairs.pair();
    let (_c2, s2) = pairs.pair();
    let mut p1 = adm.admit(&s1, ip(1), Instant::now()).unwrap();
    let mut p2 = adm.admit(&s2, ip(1), Instant::now()).unwrap();
    assert!(p1.request_complete() && p2.request_complete());
    let d1 = p1.into_delivery();
    assert_eq!((adm.in_use(), adm.deliveries()), (1, 1));
    // The cap is reached: a try gives the permit back, still holding its slot.
    let mut p2 = p2.try_into_delivery().expect_err("no delivery slot free");
    assert!(p2.request_complete(), "the permit is intact");
    assert_eq!(adm.in_use(), 1);
    let (tx, got) = mpsc::channel();
    let second = thread::spawn(move || {
        let d2 = p2.into_delivery();
        tx.send(()).unwrap();
        drop(d2);
    });
    // The cap is reached: the second waits, keeping its connection slot.
    assert!(got.recv_timeout(Duration::from_millis(50)).is_err());
    assert_eq!(adm.in_use(), 1);
    drop(d1);
    got.recv_timeout(WAIT).unwrap();
    second.join().unwrap();
    assert_eq!((adm.in_use(), adm.deliveries()), (0, 0));
}
