//! The TUI's sender and receiver threads: the same split as the shell's (`sender.rs`, `receiver.rs`), reporting
//! structured [`Net`] events to the UI loop instead of printing lines.
//!
//! The sender thread runs one [`Job`] at a time against the server (one request per connection, every step
//! bounded: docs/protocol.md, section 2.3) and owns the listener while a user is connected. The
//! listener's accept loop is the receiver thread; it turns each push into a [`Net::Message`] or [`Net::Ack`].
//! Which user we are lives in the UI's state; this thread only remembers which alias its listener serves.

use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::{SystemTime, UNIX_EPOCH};

use client::conn::{self, ConnError, DEFAULT_TIMEOUT};
use client::listener::{ListenerHandle, PushListener, PushSource};
use crossbeam_channel::{Receiver, Sender};
use protocol::reply::{ConnectStatus, SendReply, UsersReply};
use protocol::{Op, Push, Reply, Request, MAX_FIELD_LEN};

use super::event::{Event, Job, Net};
use crate::format::result_line;
use crate::normalizer::{Mode, NormalizeError, Normalizer};
use crate::sender::field_problem;

/// The current Unix time in seconds (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Starts the sender thread. It ends after [`Job::Quit`] or when the UI drops its end of `jobs`.
pub fn spawn(
    server: SocketAddr,
    push_source: PushSource,
    mode: Mode,
    jobs: Receiver<Job>,
    events: Sender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new().name("sender".into()).spawn(move || {
        let normalizer = Normalizer::new(mode.clone());
        let mut worker = Worker { server, push_source, normalizer, mode, events, listener: None };
        worker.report_normalizer(None);
        for job in jobs.iter() {
            if job == Job::Quit {
                break;
            }
            worker.run(job);
        }
        worker.quit();
    })
}

struct Worker {
    server: SocketAddr,
    /// Whose connections the listener reads (docs/protocol.md, section 8, "Client: the push listener").
    push_source: PushSource,
    normalizer: Normalizer,
    mode: Mode,
    events: Sender<Event>,
    /// The alias our listener serves, and the listener.
    listener: Option<(String, ListenerHandle)>,
}

impl Worker {
    fn emit(&self, net: Net) {
        // The UI loop is gone only when the program is ending: nothing left to tell.
        let _ = self.events.send(Event::Net(net));
    }

    fn run(&mut self, job: Job) {
        match job {
            Job::Register { alias, full_name, birth_date } => {
                let reply = self.call(Request::Register { full_name, alias: alias.clone(), birth_date });
                self.done(Op::Register, alias, reply, |r| matches!(r, Reply::Register(protocol::RegisterStatus::Ok)));
            }
            Job::Unregister { alias } => {
                let reply = self.call(Request::Unregister { alias: alias.clone() });
                let ok = matches!(reply, Ok(Reply::Unregister(protocol::reply::UnregisterStatus::Ok)));
                // The server pushes nothing more to a removed user: its listener has no purpose left.
                if ok && self.listener.as_ref().is_some_and(|(a, _)| *a == alias) {
                    self.close_listener();
                }
                self.done(Op::Unregister, alias, reply, |_| ok);
            }
            Job::Connect { alias } => self.connect(alias),
            Job::Disconnect { alias } => self.disconnect(alias),
            Job::Send { local, from, to, text } => {
                let result = self.send(from, to, &text);
                self.emit(Net::Sent { local, result });
            }
            Job::Users { alias } => match self.call(Request::ConnectedUsers { alias }) {
                Ok(Reply::ConnectedUsers(UsersReply::List(users))) => self.emit(Net::Users(users)),
                Ok(Reply::ConnectedUsers(UsersReply::NotConnected)) => self.emit(Net::NotConnected),
                Ok(_) => {
                    log::warn!("CONNECTEDUSERS failed");
                    self.emit(Net::UsersFailed);
                }
                Err(e) => {
                    log::warn!("CONNECTEDUSERS: {e}");
                    self.emit(Net::UsersFailed);
                }
            },
            Job::Quit => {}
        }
    }

    /// Reports the result of an operation whose outcome is a status line.
    fn done(&self, op: Op, alias: String, reply: Result<Reply, String>, ok: impl Fn(&Reply) -> bool) {
        let (ok, line) = match &reply {
            Ok(r) => (ok(r), result_line(op, Some(r))),
            Err(why) => (false, format!("{} ({why})", result_line(op, None))),
        };
        self.emit(Net::Done { op, alias, ok, line });
    }

    fn connect(&mut self, alias: String) {
        let port = match &self.listener {
            // Same alias again: ask the server with the listener we have (it normally answers "already connected").
            Some((a, l)) if *a == alias => l.port(),
            Some((a, _)) => {
                let line = format!("CONNECT FAIL (connected as {a}: /disconnect first)");
                return self.emit(Net::Done { op: Op::Connect, alias, ok: false, line });
            }
            None => return self.connect_new(alias),
        };
        let reply = self.call(Request::Connect { alias: alias.clone(), port });
        self.done(Op::Connect, alias, reply, |r| matches!(r, Reply::Connect(ConnectStatus::Ok)));
    }

    fn connect_new(&mut self, alias: String) {
        // The listener accepts before CONNECT is sent: the server may push right after its reply
        // (docs/protocol.md, section 8, "Client: the push listener").
        let events = self.events.clone();
        let listener = PushListener::bind().and_then(|l| {
            l.spawn(self.push_source, move |push| {
                let net = match push {
                    Push::Message { sender, id, text } => Net::Message { from: sender, id, text, at: unix_now() },
                    Push::Ack { id } => Net::Ack { id },
                };
                let _ = events.send(Event::Net(net));
            })
        });
        let listener = match listener {
            Ok(l) => l,
            Err(e) => {
                let line = format!("CONNECT FAIL (cannot open a listener: {e})");
                return self.emit(Net::Done { op: Op::Connect, alias, ok: false, line });
            }
        };
        self.emit(Net::Connecting { alias: alias.clone() });
        let reply = self.call(Request::Connect { alias: alias.clone(), port: listener.port() });
        let ok = matches!(reply, Ok(Reply::Connect(ConnectStatus::Ok)));
        if ok {
            self.listener = Some((alias.clone(), listener));
        } else {
            listener.stop();
        }
        self.done(Op::Connect, alias, reply, |_| ok);
    }

    fn disconnect(&mut self, alias: String) {
        let reply = self.call(Request::Disconnect { alias: alias.clone() });
        if self.listener.as_ref().is_some_and(|(a, _)| *a == alias) {
            // Whatever the reply, as the shell does (sender.rs): after a DISCONNECT the listener goes.
            self.close_listener();
        }
        self.done(Op::Disconnect, alias, reply, |r| {
            matches!(r, Reply::Disconnect(protocol::reply::DisconnectStatus::Ok))
        });
    }

    fn close_listener(&mut self) {
        if let Some((_, l)) = self.listener.take() {
            l.stop();
        }
    }

    /// Normalizes and sends one message: its id and the text sent, or the reason shown after `✗`.
    fn send(&mut self, from: String, to: String, text: &str) -> Result<(u32, String), String> {
        let normalized = self.normalizer.normalize(text);
        self.report_normalizer(normalized.as_ref().err());
        let text = normalized.map_err(|_| "normalization service failed".to_owned())?;
        if text.is_empty() {
            return Err("empty message".into());
        }
        if text.len() > MAX_FIELD_LEN {
            return Err(format!("too long: {} bytes, the limit is {MAX_FIELD_LEN}", text.len()));
        }
        match self.call(Request::Send { sender: from, recipient: to, text: text.clone() }) {
            Ok(Reply::Send(SendReply::Accepted(id))) => Ok((id, text)),
            Ok(Reply::Send(SendReply::NoSuchUser)) => Err("user does not exist".into()),
            Ok(_) => Err("refused: not connected, or the recipient's queue is full".into()),
            Err(why) => Err(why),
        }
    }

    /// Tells the UI how messages are normalized now.
    fn report_normalizer(&self, error: Option<&NormalizeError>) {
        let state = match (&self.mode, error) {
            (Mode::Local, _) => "local rule".to_owned(),
            (Mode::Remote { .. }, Some(e)) => {
                log::warn!("{e}");
                "service failing".to_owned()
            }
            (Mode::Remote { .. }, None) if self.normalizer.fell_back() => "service down, local rule".to_owned(),
            (Mode::Remote { url, .. }, None) => url.clone(),
        };
        self.emit(Net::Normalizer(state));
    }

    /// One request; a failure is described in words. A server that cannot be reached at all is also reported
    /// as [`Net::ServerLost`].
    fn call(&self, req: Request) -> Result<Reply, String> {
        if let Some(why) = field_problem(&req) {
            return Err(why);
        }
        match conn::request(self.server, &req, DEFAULT_TIMEOUT) {
            Ok(reply) => Ok(reply),
            Err(e @ ConnError::Connect(_)) => {
                let why = format!("server {}: {e}", self.server);
                self.emit(Net::ServerLost(why.clone()));
                Err(why)
            }
            Err(e) => Err(format!("server {}: {e}", self.server)),
        }
    }

    /// End of the session: disconnect the user we connected, close the listener, say so.
    fn quit(&mut self) {
        if let Some(alias) = self.listener.as_ref().map(|(a, _)| a.clone()) {
            self.disconnect(alias);
        }
        self.emit(Net::Stopped);
    }
}
