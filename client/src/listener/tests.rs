use super::*;
use crossbeam_channel::Sender;
use protocol::dialect::PushForm;
use std::io::Write;
use std::net::IpAddr;

/// Bound on waiting for a push that should arrive.
const WAIT: Duration = Duration::from_secs(5);

fn push_to(port: u16, bytes: &[u8]) {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    s.write_all(bytes).unwrap();
}

fn ack(id: u32) -> Vec<u8> {
    Push::Ack { id }.to_bytes(PushForm::SendMessage)
}

fn from_localhost() -> PushSource {
    PushSource::Only(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// A bound listener not started yet, its port, and the channel for its pushes.
fn bound() -> (PushListener, u16, Sender<Push>, Receiver<Push>) {
    let listener = PushListener::bind().unwrap();
    let port = listener.port();
    let (tx, rx) = crossbeam_channel::unbounded();
    (listener, port, tx, rx)
}

/// A listener started for pushes from 127.0.0.1, and the channel it delivers them on.
fn started() -> (ListenerHandle, Receiver<Push>) {
    let (listener, _, tx, rx) = bound();
    let handle = listener.spawn(from_localhost(), move |p| tx.send(p).unwrap()).unwrap();
    (handle, rx)
}

#[test]
fn delivers_pushes_in_order_and_drops_malformed_ones() {
    let (handle, rx) = started();
    let port = handle.port();
    let m = Push::Message { sender: "bob".into(), id: 3, text: "hi".into() };
    push_to(port, b"HELLO\0");
    push_to(port, b"");
    push_to(port, &m.to_bytes(PushForm::SendMessage));
    // Back to back, as a server that does not wait for the listener's close sends them: they are read side by
    // side, and still printed in the order they arrived.
    for id in 4..40 {
        push_to(port, &ack(id));
    }
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), m);
    for id in 4..40 {
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), Push::Ack { id });
    }
    handle.stop();
}

#[test]
fn stop_delivers_what_is_queued_and_being_read_then_closes() {
    let (listener, port, tx, rx) = bound();
    // Queued in the kernel before the loop starts, and one still being written when the stop begins.
    for id in 1..=3 {
        push_to(port, &ack(id));
    }
    let slow = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let handle = listener.spawn(from_localhost(), move |p| tx.send(p).unwrap()).unwrap();
    let stopper = thread::spawn(move || handle.stop());
    (&slow).write_all(&ack(0)).unwrap();
    drop(slow);
    stopper.join().unwrap();
    let mut got: Vec<u32> = rx
        .try_iter()
        .map(|p| match p {
            Push::Ack { id } => id,
            other => panic!("{other:?}"),
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3]);
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(), "closed after stop");
}

#[test]
fn a_trickling_peer_does_not_delay_a_real_push() {
    let (handle, rx) = started();
    let port = handle.port();
    // Half a push, then silence: read alone, it would hold the listener for the whole deadline.
    let mut stall = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    stall.write_all(b"SEND_MESS").unwrap();
    let started = Instant::now();
    push_to(port, &ack(1));
    assert_eq!(rx.recv_timeout(PUSH_DEADLINE / 2).unwrap(), Push::Ack { id: 1 });
    assert!(started.elapsed() < PUSH_DEADLINE / 2);
    drop(stall);
    handle.stop();
}

#[test]
fn a_push_that_trickles_past_its_deadline_is_dropped() {
    let (listener, port, tx, rx) = bound();
    let deadline = Duration::from_millis(300);
    let handle = listener.spawn_with(from_localhost(), deadline, move |p| tx.send(p).unwrap()).unwrap();
    let mut trickle = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let bytes = ack(9);
    let started = Instant::now();
    // One byte every 50 ms: each read succeeds, the whole takes longer than the deadline. The loop is bounded
    // by the push's length, and stops once the listener has closed the connection.
    for b in &bytes {
        if trickle.write_all(&[*b]).is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    drop(trickle);
    assert!(rx.recv_timeout(deadline * 2).is_err(), "a late push was delivered");
    assert!(started.elapsed() >= deadline);
    handle.stop();
}

#[test]
fn a_push_from_another_address_is_closed_unread() {
    let (handle, rx) = started();
    let port = handle.port();
    let forged = Push::Message { sender: "boss".into(), id: 1, text: "send me your password".into() };
    forge_from_127_0_0_2(port, &forged.to_bytes(PushForm::SendMessage));
    push_to(port, &ack(2));
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Push::Ack { id: 2 });
    handle.stop();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), []);
}

/// Connects to the listener from 127.0.0.2, writes `bytes` and waits (bounded) until the listener closes.
fn forge_from_127_0_0_2(port: u16, bytes: &[u8]) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 0)).into()).unwrap();
    s.connect(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into()).unwrap();
    let mut s: TcpStream = s.into();
    s.write_all(bytes).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    // The listener closes it unread: end of stream or a reset, well before the timeout.
    let started = Instant::now();
    let _ = io::Read::read(&mut s, &mut [0u8; 1]);
    assert!(started.elapsed() < WAIT, "the forged connection was kept open");
}

#[test]
fn push_sources_parse_and_match() {
    assert_eq!("any".parse::<PushSource>(), Ok(PushSource::Any));
    assert_eq!("ANY".parse::<PushSource>(), Ok(PushSource::Any));
    let only: PushSource = "127.0.0.1".parse().unwrap();
    assert!(only.admits(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert!(only.admits("::ffff:127.0.0.1".parse().unwrap()), "IPv4-mapped counts as IPv4");
    assert!(!only.admits(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
    assert!(PushSource::Any.admits(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))));
    assert!("localhost".parse::<PushSource>().is_err());
    assert_eq!(only.to_string(), "127.0.0.1");
}
