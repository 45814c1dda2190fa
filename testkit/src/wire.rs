//! Requests in raw protocol bytes on fresh connections, and the session steps built from them.
//!
//! Two ways to write a request: [`call`] and [`raw`] write it in one piece; [`request`] writes each field and its
//! `0x00` separately, as the original Python clients do (`sendall` per piece), so the server must not depend on
//! how the bytes are split.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};

use crate::{Listener, TIMEOUT};

/// Most bytes [`read_to_close`] reads from one connection.
const READ_CAP: u64 = 1 << 20;

/// Builds the wire form of a request or push from its fields: each one followed by `0x00`.
pub fn fields(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p.as_bytes());
        out.push(0);
    }
    out
}

/// Sends `bytes` on a fresh connection and returns everything the server writes before closing.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    raw_from(None, addr, bytes)
}

/// Like [`raw`], from the given local address (for example [`crate::OTHER_HOST`]).
pub fn raw_from(local: Option<IpAddr>, addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect_from(local, addr);
    stream.write_all(bytes).expect("request written");
    read_all(&mut stream)
}

/// Sends a request given as fields, in one write, and returns the reply bytes.
pub fn call(addr: SocketAddr, parts: &[&str]) -> Vec<u8> {
    raw(addr, &fields(parts))
}

/// One request written field by field ([`write_fields`]) from the default address; the whole reply, up to the
/// server's close.
pub fn request(addr: SocketAddr, parts: &[&str]) -> Vec<u8> {
    request_from(None, addr, parts)
}

/// [`request`] from `local`.
pub fn request_from(local: Option<IpAddr>, addr: SocketAddr, parts: &[&str]) -> Vec<u8> {
    let mut stream = connect_from(local, addr);
    write_fields(&mut stream, parts);
    read_to_close(&mut stream)
}

/// Writes a request as the original Python clients do: each field, then its `0x00`, as separate writes.
pub fn write_fields(stream: &mut TcpStream, parts: &[&str]) {
    for part in parts {
        stream.write_all(part.as_bytes()).expect("field written");
        stream.write_all(b"\0").expect("terminator written");
    }
}

/// Opens a connection from `local` (any port), or from the default address, to `addr`; reads and writes on it
/// time out after [`TIMEOUT`].
pub fn connect_from(local: Option<IpAddr>, addr: SocketAddr) -> TcpStream {
    let stream = match local {
        None => TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect to server"),
        Some(ip) => {
            use socket2::{Domain, Socket, Type};
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
            socket.bind(&SocketAddr::new(ip, 0).into()).expect("bind second loopback address");
            socket.connect_timeout(&addr.into(), TIMEOUT).expect("connect to server");
            socket.into()
        }
    };
    stream.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
    stream.set_write_timeout(Some(TIMEOUT)).expect("write timeout");
    // A request written field by field leaves at once: Nagle's algorithm would hold a field back until the
    // previous one is acknowledged, a gap the server may read as the end of a short request.
    stream.set_nodelay(true).expect("no delay");
    stream
}

/// Reads until the peer closes (bounded by the stream's read timeout); an error ends the read.
pub fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// Everything the peer sends until it closes, at most 1 MiB; a read error fails the test.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    stream.take(READ_CAP).read_to_end(&mut out).expect("read until the server closes");
    out
}

/// REGISTER with a full name and date derived from the alias; asserts success.
pub fn register(addr: SocketAddr, alias: &str) {
    assert_eq!(call(addr, &["REGISTER", &format!("{alias} full"), alias, "01/01/2000"]), [0], "REGISTER {alias}");
}

/// CONNECT `alias` with `listener`'s port; asserts success.
pub fn connect(addr: SocketAddr, alias: &str, listener: &Listener) {
    assert_eq!(call(addr, &["CONNECT", alias, &listener.port_field()]), [0], "CONNECT {alias}");
}

/// Binds a listener for `alias` and CONNECTs it; asserts success and returns the listener.
pub fn online(addr: SocketAddr, alias: &str) -> Listener {
    let listener = Listener::bind();
    connect(addr, alias, &listener);
    listener
}

/// REGISTERs `alias`, then [`online`].
pub fn register_online(addr: SocketAddr, alias: &str) -> Listener {
    register(addr, alias);
    online(addr, alias)
}

/// SEND; asserts acceptance and returns the id.
pub fn send(addr: SocketAddr, from: &str, to: &str, text: &str) -> u32 {
    let reply = call(addr, &["SEND", from, to, text]);
    assert_eq!(reply.first(), Some(&0), "SEND {from} -> {to} {text:?}: {reply:?}");
    assert_eq!(reply.last(), Some(&0), "id field terminated: {reply:?}");
    std::str::from_utf8(&reply[1..reply.len() - 1]).expect("ascii id").parse().expect("decimal id")
}

/// The bytes of a SEND_MESSAGE push.
pub fn message(sender: &str, id: u32, text: &str) -> Vec<u8> {
    fields(&["SEND_MESSAGE", sender, &id.to_string(), text])
}

/// The bytes of a SEND_MESS_ACK push.
pub fn ack(id: u32) -> Vec<u8> {
    fields(&["SEND_MESS_ACK", &id.to_string()])
}

/// Whether the server has closed `stream` without a reply: end of stream or a reset within `wait` (a reply fails
/// the test).
pub fn closed_within(stream: &mut TcpStream, wait: std::time::Duration) -> bool {
    stream.set_read_timeout(Some(wait)).expect("read timeout");
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("unexpected reply {:?}", &buf[..n]),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => false,
        Err(_) => true, // reset: closed with unread input
    }
}

/// SEND from `from` (whose listener is `from_listener`) to `to` (listening on `to_listener`), which must be
/// accepted; then the message must be pushed to `to` and its acknowledgement to `from`, in that order. The id.
pub fn send_pushed(a: SocketAddr, from: (&str, &Listener), to: (&str, &Listener), text: &str) -> u32 {
    let id = send(a, from.0, to.0, text);
    assert_eq!(to.1.next(), message(from.0, id, text), "{} -> {} {text:?} pushed", from.0, to.0);
    assert_eq!(from.1.next(), ack(id), "{} -> {} {text:?} acknowledged", from.0, to.0);
    id
}

/// [`register`] each of `aliases`, in order.
pub fn register_all(addr: SocketAddr, aliases: &[&str]) {
    for alias in aliases {
        register(addr, alias);
    }
}
