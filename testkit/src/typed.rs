//! Requests and replies as `protocol` values, for tests about what the server keeps rather than its bytes: the
//! requests fail with an error, not a panic, where the server is gone (a test that kills it counts on this).

use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use protocol::{FieldReader, Reply, Request, SendReply};

use crate::TIMEOUT;

/// One request on a fresh connection; its reply.
pub fn exchange(addr: SocketAddr, req: &Request) -> io::Result<Reply> {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    (&stream).write_all(&req.to_bytes())?;
    let _ = stream.shutdown(Shutdown::Write);
    Reply::read_from(req.op(), &mut FieldReader::new(BufReader::new(&stream))).map_err(io::Error::other)
}

/// REGISTER with a full name and date derived from the alias; the reply (the server must answer).
pub fn register(addr: SocketAddr, alias: &str) -> Reply {
    let req =
        Request::Register { full_name: format!("{alias} full"), alias: alias.into(), birth_date: "01/01/2000".into() };
    exchange(addr, &req).unwrap()
}

/// CONNECT `alias` with the listener on `port`; the reply (the server must answer).
pub fn connect(addr: SocketAddr, alias: &str, port: u16) -> Reply {
    exchange(addr, &Request::Connect { alias: alias.into(), port }).unwrap()
}

/// SEND; the reply, or an error where the server is gone.
pub fn send(addr: SocketAddr, sender: &str, recipient: &str, text: &str) -> io::Result<Reply> {
    exchange(addr, &Request::Send { sender: sender.into(), recipient: recipient.into(), text: text.into() })
}

/// The id of an accepted SEND; a refusal fails the test.
pub fn sent_id(reply: Reply) -> u32 {
    match reply {
        Reply::Send(SendReply::Accepted(id)) => id,
        other => panic!("SEND refused: {other:?}"),
    }
}
