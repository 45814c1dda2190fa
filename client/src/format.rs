//! The exact text the user sees: the result lines (docs/protocol.md, "Client: output lines"), the reasons given
//! after a failure ("Client: explanations") and the asynchronous lines of the listener.
//!
//! Pure functions, so every row of the table is pinned by a unit test.

use protocol::reply::{ConnectStatus, DisconnectStatus, RegisterStatus, SendReply, UnregisterStatus, UsersReply};
use protocol::{Op, Push, Reply, Request};

/// The result line of `op` for `reply`; `None` (no usable reply, or a local failure) gives the "other / network
/// error" column.
pub fn result_line(op: Op, reply: Option<&Reply>) -> String {
    let line = match (op, reply) {
        (Op::Register, Some(Reply::Register(s))) => match s {
            RegisterStatus::Ok => "REGISTER OK",
            RegisterStatus::AliasInUse => "USERNAME IN USE",
            RegisterStatus::Fail => "REGISTER FAIL",
        },
        (Op::Unregister, Some(Reply::Unregister(s))) => match s {
            UnregisterStatus::Ok => "UNREGISTER OK",
            UnregisterStatus::NoSuchUser => "USER DOES NOT EXIST",
            UnregisterStatus::Fail => "UNREGISTER FAIL",
        },
        (Op::Connect, Some(Reply::Connect(s))) => match s {
            ConnectStatus::Ok => "CONNECT OK",
            ConnectStatus::NoSuchUser => "CONNECT FAIL, USER DOES NOT EXIST",
            ConnectStatus::AlreadyConnected => "USER ALREADY CONNECTED",
            ConnectStatus::Fail => "CONNECT FAIL",
        },
        (Op::Disconnect, Some(Reply::Disconnect(s))) => match s {
            DisconnectStatus::Ok => "DISCONNECT OK",
            DisconnectStatus::NoSuchUser => "DISCONNECT FAIL / USER DOES NOT EXIST",
            DisconnectStatus::NotConnected => "DISCONNECT FAIL / USER NOT CONNECTED",
            DisconnectStatus::Fail => "DISCONNECT FAIL",
        },
        (Op::Send, Some(Reply::Send(r))) => match r {
            SendReply::Accepted(id) => return format!("SEND OK - MESSAGE {id}"),
            SendReply::NoSuchUser => "SEND FAIL / USER DOES NOT EXIST",
            SendReply::Fail => "SEND FAIL",
        },
        (Op::ConnectedUsers, Some(Reply::ConnectedUsers(r))) => match r {
            UsersReply::List(users) => {
                let names: Vec<String> = users.iter().map(|u| printable(u)).collect();
                return format!("CONNECTED USERS ({} users connected) OK - {}", users.len(), names.join(", "));
            }
            UsersReply::NotConnected => "CONNECTED USERS FAIL / USER IS NOT CONNECTED",
            UsersReply::Fail => "CONNECTED USERS FAIL",
        },
        // No reply, or a reply to another operation (impossible with `Reply::read_from`, harmless if it happens).
        (op, _) => failure_line(op),
    };
    line.to_owned()
}

/// The line of `op` for anything but a defined status, or no answer (the last column of docs/protocol.md,
/// "Client: output lines").
pub fn failure_line(op: Op) -> &'static str {
    match op {
        Op::Register => "REGISTER FAIL",
        Op::Unregister => "UNREGISTER FAIL",
        Op::Connect => "CONNECT FAIL",
        Op::Disconnect => "DISCONNECT FAIL",
        Op::Send => "SEND FAIL",
        Op::ConnectedUsers => "CONNECTED USERS FAIL",
    }
}

/// The line printed for SENDATTACH until an attachment extension exists.
pub const SENDATTACH_UNSUPPORTED: &str = "SENDATTACH FAIL / NOT SUPPORTED";

/// Why SENDATTACH fails.
pub const SENDATTACH_REASON: &str = "attachments are not part of the protocol yet: nothing was sent";

/// Why the server answered `reply` to `req`, for every answer but a success; `None` for a success.
///
/// `connected_here` is the alias this client connected, if any: it tells a sender who is not connected from the
/// other causes of the same status.
pub fn reason(req: &Request, reply: &Reply, connected_here: Option<&str>) -> Option<String> {
    let why = match (req, reply) {
        (Request::Register { alias, .. }, Reply::Register(s)) => match s {
            RegisterStatus::Ok => return None,
            RegisterStatus::AliasInUse => format!("{} is already registered", printable(alias)),
            RegisterStatus::Fail => format!("the server could not register {}", printable(alias)),
        },
        (Request::Unregister { alias }, Reply::Unregister(s)) => match s {
            UnregisterStatus::Ok => return None,
            UnregisterStatus::NoSuchUser => format!("no user {} is registered", printable(alias)),
            UnregisterStatus::Fail => format!("the server could not unregister {}", printable(alias)),
        },
        (Request::Connect { alias, .. }, Reply::Connect(s)) => {
            let a = printable(alias);
            match s {
                ConnectStatus::Ok => return None,
                ConnectStatus::NoSuchUser => format!("no user {a} is registered: REGISTER {a} first"),
                ConnectStatus::AlreadyConnected if connected_here == Some(alias.as_str()) => {
                    format!("{a} is already connected by this client")
                }
                ConnectStatus::AlreadyConnected => format!(
                    "{a} is already connected, here or from another client; if that client is gone, DISCONNECT {a} \
                     from the same host first"
                ),
                ConnectStatus::Fail => format!("the server could not connect {a}"),
            }
        }
        (Request::Disconnect { alias }, Reply::Disconnect(s)) => {
            let a = printable(alias);
            match s {
                DisconnectStatus::Ok => return None,
                DisconnectStatus::NoSuchUser => format!("no user {a} is registered"),
                DisconnectStatus::NotConnected => format!("{a} is not connected"),
                DisconnectStatus::Fail => {
                    format!("the server refused: {a} was connected from another address, or the server failed")
                }
            }
        }
        (Request::Send { sender, recipient, .. }, Reply::Send(r)) => {
            let (s, r_) = (printable(sender), printable(recipient));
            match r {
                SendReply::Accepted(_) => return None,
                SendReply::NoSuchUser => format!("{r_} is not registered (or the sender, {s}, is not)"),
                SendReply::Fail if connected_here != Some(sender.as_str()) => {
                    format!("{s} is not connected: CONNECT {s} first (or {r_}'s queue is full)")
                }
                SendReply::Fail => {
                    format!("the server refused the message from {s} (for example {r_}'s queue is full)")
                }
            }
        }
        (Request::ConnectedUsers { alias }, Reply::ConnectedUsers(r)) => {
            let a = printable(alias);
            match r {
                UsersReply::List(_) => return None,
                UsersReply::NotConnected => format!("{a} is not connected: CONNECT {a} first"),
                UsersReply::Fail => format!("the server could not list the users for {a}"),
            }
        }
        _ => "the server answered another operation".to_owned(),
    };
    Some(why)
}

/// The asynchronous lines for one push, each ending in a newline, ready for one atomic write.
pub fn push_block(push: &Push) -> String {
    match push {
        Push::Message { sender, id, text } => {
            format!("MESSAGE {id} FROM {}\n{}\nEND\n", printable(sender), printable(text))
        }
        Push::Ack { id } => format!("SEND MESSAGE {id} OK\n"),
    }
}

/// Received text made safe to print: every control character becomes U+FFFD.
///
/// Text from the network goes straight to a terminal. A line break would let a sender forge an `END` line and a
/// fake block, an escape sequence could rewrite the screen; neither can come from a compliant client, whose
/// messages are normalized (docs/protocol.md, "Client: normalizing messages"), so the replacement only ever shows on hostile or broken input.
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { char::REPLACEMENT_CHARACTER } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_8_4_every_row() {
        use Reply::*;
        let users = |names: &[&str]| ConnectedUsers(UsersReply::List(names.iter().map(|n| n.to_string()).collect()));
        for (reply, want) in [
            (Register(RegisterStatus::Ok), "REGISTER OK"),
            (Register(RegisterStatus::AliasInUse), "USERNAME IN USE"),
            (Register(RegisterStatus::Fail), "REGISTER FAIL"),
            (Unregister(UnregisterStatus::Ok), "UNREGISTER OK"),
            (Unregister(UnregisterStatus::NoSuchUser), "USER DOES NOT EXIST"),
            (Unregister(UnregisterStatus::Fail), "UNREGISTER FAIL"),
            (Connect(ConnectStatus::Ok), "CONNECT OK"),
            (Connect(ConnectStatus::NoSuchUser), "CONNECT FAIL, USER DOES NOT EXIST"),
            (Connect(ConnectStatus::AlreadyConnected), "USER ALREADY CONNECTED"),
            (Connect(ConnectStatus::Fail), "CONNECT FAIL"),
            (Disconnect(DisconnectStatus::Ok), "DISCONNECT OK"),
            (Disconnect(DisconnectStatus::NoSuchUser), "DISCONNECT FAIL / USER DOES NOT EXIST"),
            (Disconnect(DisconnectStatus::NotConnected), "DISCONNECT FAIL / USER NOT CONNECTED"),
            (Disconnect(DisconnectStatus::Fail), "DISCONNECT FAIL"),
            (Send(SendReply::Accepted(42)), "SEND OK - MESSAGE 42"),
            (Send(SendReply::Accepted(0)), "SEND OK - MESSAGE 0"),
            (Send(SendReply::NoSuchUser), "SEND FAIL / USER DOES NOT EXIST"),
            (Send(SendReply::Fail), "SEND FAIL"),
            (users(&["alice", "bob"]), "CONNECTED USERS (2 users connected) OK - alice, bob"),
            (users(&["a"]), "CONNECTED USERS (1 users connected) OK - a"),
            (ConnectedUsers(UsersReply::NotConnected), "CONNECTED USERS FAIL / USER IS NOT CONNECTED"),
            (ConnectedUsers(UsersReply::Fail), "CONNECTED USERS FAIL"),
        ] {
            assert_eq!(result_line(reply.op(), Some(&reply)), want, "{reply:?}");
        }
        // No usable reply: the "other / network error" column.
        for (op, want) in [
            (Op::Register, "REGISTER FAIL"),
            (Op::Unregister, "UNREGISTER FAIL"),
            (Op::Connect, "CONNECT FAIL"),
            (Op::Disconnect, "DISCONNECT FAIL"),
            (Op::Send, "SEND FAIL"),
            (Op::ConnectedUsers, "CONNECTED USERS FAIL"),
        ] {
            assert_eq!(result_line(op, None), want, "{op:?}");
        }
    }

    #[test]
    fn a_reply_to_another_operation_is_a_failure() {
        assert_eq!(result_line(Op::Send, Some(&Reply::Register(RegisterStatus::Ok))), "SEND FAIL");
    }

    #[test]
    fn every_answer_but_success_has_a_reason() {
        let send = Request::Send { sender: "carol".into(), recipient: "bob".into(), text: "hi".into() };
        assert_eq!(reason(&send, &Reply::Send(SendReply::Accepted(1)), None), None);
        assert_eq!(
            reason(&send, &Reply::Send(SendReply::Fail), Some("alice")).as_deref(),
            Some("carol is not connected: CONNECT carol first (or bob's queue is full)")
        );
        assert_eq!(
            reason(&send, &Reply::Send(SendReply::Fail), Some("carol")).as_deref(),
            Some("the server refused the message from carol (for example bob's queue is full)")
        );
        let users = Request::ConnectedUsers { alias: "carol".into() };
        assert_eq!(
            reason(&users, &Reply::ConnectedUsers(UsersReply::NotConnected), None).as_deref(),
            Some("carol is not connected: CONNECT carol first")
        );
        let connect = Request::Connect { alias: "alice".into(), port: 1 };
        assert!(reason(&connect, &Reply::Connect(ConnectStatus::AlreadyConnected), None)
            .is_some_and(|r| r.starts_with("alice is already connected")));
        for (req, reply) in [
            (
                Request::Register { full_name: "a".into(), alias: "a".into(), birth_date: "d".into() },
                Reply::Register(RegisterStatus::Fail),
            ),
            (Request::Unregister { alias: "a".into() }, Reply::Unregister(UnregisterStatus::NoSuchUser)),
            (Request::Disconnect { alias: "a".into() }, Reply::Disconnect(DisconnectStatus::Fail)),
            (connect.clone(), Reply::Connect(ConnectStatus::NoSuchUser)),
            (send.clone(), Reply::Send(SendReply::NoSuchUser)),
            (users.clone(), Reply::ConnectedUsers(UsersReply::Fail)),
            (send.clone(), Reply::Register(RegisterStatus::Ok)),
        ] {
            assert!(reason(&req, &reply, None).is_some_and(|r| !r.is_empty() && !r.contains('\n')), "{reply:?}");
        }
    }

    #[test]
    fn push_blocks() {
        let m = Push::Message { sender: "alice".into(), id: 7, text: "hello bob".into() };
        assert_eq!(push_block(&m), "MESSAGE 7 FROM alice\nhello bob\nEND\n");
        assert_eq!(push_block(&Push::Ack { id: 7 }), "SEND MESSAGE 7 OK\n");
    }

    #[test]
    fn control_characters_cannot_forge_lines_or_drive_the_terminal() {
        let m = Push::Message { sender: "ev\nil".into(), id: 1, text: "a\nEND\nMESSAGE 2 FROM x\x1b[2J".into() };
        assert_eq!(
            push_block(&m),
            "MESSAGE 1 FROM ev\u{fffd}il\na\u{fffd}END\u{fffd}MESSAGE 2 FROM x\u{fffd}[2J\nEND\n"
        );
        assert_eq!(printable("café ✓ \u{fffd}"), "café ✓ \u{fffd}");
    }
}
