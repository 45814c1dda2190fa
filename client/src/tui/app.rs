//! The state of the TUI and every change to it: [`App::update`] takes one [`Event`] and changes the state; it
//! never draws and never touches the network or the disk. What must happen outside (a request for the sender
//! thread, a history file to read) is queued as an [`Effect`] for the UI loop to carry out.
//!
//! So the whole behaviour — keys, commands, pushes, delivery marks, unread counts, timers — is tested by feeding
//! events and looking at the state, without a terminal.
//!
//! One `impl App` per kind of event: this file holds the state, ticks, contacts and typed lines;
//! [`input`] the keys and the mouse; [`net`] what the sender thread reports.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::command::{self, Typed};
use super::conversation::{Conversation, Message, Status};
use super::editor::LineEditor;
use super::event::{Event, Job, Net};
use super::layout::{self, Theme};

mod input;
mod net;

/// How often the list of connected users is asked for while connected (the issue asks for at least every 5 s).
pub const USERS_REFRESH: Duration = Duration::from_secs(3);

/// How long a notice stays on the status line.
pub const NOTICE_TTL: Duration = Duration::from_secs(6);

/// Acknowledgements remembered while their SEND result is still on its way (the two travel on different
/// connections and threads, so an acknowledgement can overtake its result).
pub const MAX_EARLY_ACKS: usize = 256;

/// Something the UI loop must do for the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Hand this to the sender thread.
    Job(Job),
    /// Save the shown history (if it changed), then read the history of this alias and feed it back as
    /// [`Event::HistoryLoaded`].
    LoadHistory(String),
}

/// Why the session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quit {
    /// `/quit`, Ctrl-C, Ctrl-D or a signal.
    User,
    /// The server cannot be reached: the program ends with this explanation.
    ServerLost(String),
}

/// A short text on the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    until: Instant,
}

/// One row of the contacts pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub alias: String,
    pub online: bool,
    pub unread: usize,
}

/// The whole state of the TUI.
#[derive(Debug)]
pub struct App {
    /// `host:port` of the server, for the status line.
    pub server: String,
    /// Our alias: the last successful REGISTER or CONNECT (or the owner of the history shown at start).
    pub me: Option<String>,
    pub connected: bool,
    /// The alias whose history is shown and saved.
    pub owner: Option<String>,
    pub conversations: BTreeMap<String, Conversation>,
    /// Who is connected, from the last CONNECTEDUSERS.
    pub online: BTreeSet<String>,
    /// The open conversation.
    pub open: Option<String>,
    pub editor: LineEditor,
    /// Lines scrolled up from the newest message.
    pub scroll: usize,
    pub show_help: bool,
    pub notice: Option<Notice>,
    /// How messages are normalized (the status line's "ws:" field).
    pub normalizer: String,
    /// Columns and rows of the terminal.
    pub size: (u16, u16),
    pub theme: Theme,
    pub quit: Option<Quit>,
    /// The sender thread finished its QUIT: the loop may end.
    pub stopped: bool,
    /// A second Ctrl-C while quitting: end now, without waiting for the disconnect.
    pub force_quit: bool,
    /// The history changed since it was last saved.
    pub history_dirty: bool,
    /// Whose history was shown before a CONNECT switched to the history of its alias: shown again if the
    /// CONNECT fails (a mistyped alias should not hide the conversations).
    owner_before_connect: Option<String>,
    now: Instant,
    wall: i64,
    next_local: u64,
    early_acks: VecDeque<u32>,
    users_due: Option<Instant>,
    users_in_flight: bool,
    effects: Vec<Effect>,
}

impl App {
    pub fn new(server: String, theme: Theme, size: (u16, u16), now: Instant, wall: i64) -> App {
        App {
            server,
            me: None,
            connected: false,
            owner: None,
            conversations: BTreeMap::new(),
            online: BTreeSet::new(),
            open: None,
            editor: LineEditor::default(),
            scroll: 0,
            show_help: false,
            notice: None,
            normalizer: String::new(),
            size,
            theme,
            quit: None,
            stopped: false,
            force_quit: false,
            history_dirty: false,
            owner_before_connect: None,
            now,
            wall,
            next_local: 1,
            early_acks: VecDeque::new(),
            users_due: None,
            users_in_flight: false,
            effects: Vec::new(),
        }
    }

    /// What the UI loop must do now, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Applies one event.
    pub fn update(&mut self, event: Event) {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Mouse(mouse) => self.on_mouse(mouse),
            Event::Paste(text) if self.quit.is_none() => {
                for c in text.chars() {
                    self.editor.insert(if c.is_control() { ' ' } else { c });
                }
            }
            Event::Paste(_) => {}
            Event::Resize(w, h) => {
                self.size = (w, h);
                self.clamp_scroll();
            }
            Event::Tick { now, wall } => self.on_tick(now, wall),
            Event::Net(net) => self.on_net(net),
            Event::Log(line) => self.error(line),
            Event::Signal => self.request_quit(Quit::User),
            Event::HistoryLoaded { alias, conversations, note } => {
                self.owner = Some(alias);
                // Open the conversation with the newest message, so a restart shows where we left off.
                self.open = conversations
                    .iter()
                    .filter_map(|(peer, c)| c.messages.back().map(|m| (m.at, peer)))
                    .max()
                    .map(|(_, peer)| peer.clone());
                self.conversations = conversations;
                self.scroll = 0;
                self.history_dirty = false;
                if let Some(note) = note {
                    self.error(note);
                }
            }
        }
    }

    fn on_tick(&mut self, now: Instant, wall: i64) {
        self.now = now;
        self.wall = wall;
        if self.notice.as_ref().is_some_and(|n| now >= n.until) {
            self.notice = None;
        }
        if self.users_due.is_some_and(|due| now >= due) {
            self.refresh_users();
        }
    }

    fn job(&mut self, job: Job) {
        self.effects.push(Effect::Job(job));
    }

    /// Shows `text` on the status line for [`NOTICE_TTL`].
    pub fn notify(&mut self, text: impl Into<String>, error: bool) {
        self.notice = Some(Notice { text: text.into(), error, until: self.now + NOTICE_TTL });
    }

    fn info(&mut self, text: impl Into<String>) {
        self.notify(text, false);
    }

    fn error(&mut self, text: impl Into<String>) {
        self.notify(text, true);
    }

    fn request_quit(&mut self, why: Quit) {
        if self.quit.is_some() {
            self.force_quit = true;
            return;
        }
        self.quit = Some(why);
        self.users_due = None;
        self.job(Job::Quit);
    }

    /// Asks for CONNECTEDUSERS now (unless a request is already out), and again after [`USERS_REFRESH`].
    fn refresh_users(&mut self) {
        let Some(me) = self.me.clone().filter(|_| self.connected && self.quit.is_none()) else {
            self.users_due = None;
            return;
        };
        self.users_due = Some(self.now + USERS_REFRESH);
        if !self.users_in_flight {
            self.users_in_flight = true;
            self.job(Job::Users { alias: me });
        }
    }

    // ----- contacts

    /// The contacts pane: everyone we have a conversation with and everyone online (but ourselves, unless we
    /// talk to ourselves), by alias.
    pub fn contacts(&self) -> Vec<Contact> {
        let mut names: BTreeSet<&String> = self.conversations.keys().collect();
        names.extend(self.online.iter().filter(|a| Some(*a) != self.me.as_ref()));
        if let Some(open) = &self.open {
            names.insert(open);
        }
        names
            .into_iter()
            .map(|alias| Contact {
                alias: alias.clone(),
                online: self.online.contains(alias),
                unread: self.conversations.get(alias).map_or(0, |c| c.unread),
            })
            .collect()
    }

    /// Where the open conversation is in `contacts`.
    pub fn open_index(&self, contacts: &[Contact]) -> Option<usize> {
        let open = self.open.as_ref()?;
        contacts.iter().position(|c| &c.alias == open)
    }

    fn cycle_contact(&mut self, step: isize) {
        let contacts = self.contacts();
        if contacts.is_empty() {
            return;
        }
        let n = contacts.len() as isize;
        let next = match self.open_index(&contacts) {
            Some(i) => (i as isize + step).rem_euclid(n),
            None if step > 0 => 0,
            None => n - 1,
        };
        let alias = contacts[next as usize].alias.clone();
        self.open_conversation(alias);
    }

    fn open_conversation(&mut self, alias: String) {
        self.conversations.entry(alias.clone()).or_default().unread = 0;
        self.open = Some(alias);
        self.scroll = 0;
        self.show_help = false;
    }

    // ----- typed lines

    fn on_line(&mut self, line: &str) {
        match command::parse(line) {
            Typed::Empty => {}
            Typed::Message(text) => self.send(text),
            Typed::Register { alias, full_name, birth_date } => {
                self.job(Job::Register { alias, full_name, birth_date })
            }
            Typed::Connect { alias } => self.job(Job::Connect { alias }),
            Typed::Disconnect { alias } => match alias.or_else(|| self.me.clone()) {
                Some(alias) => self.job(Job::Disconnect { alias }),
                None => self.error("no user to disconnect"),
            },
            Typed::Unregister { alias } => self.job(Job::Unregister { alias }),
            Typed::Open { alias } => self.open_conversation(alias),
            Typed::Users => {
                if self.connected {
                    self.refresh_users();
                    let list: Vec<&str> = self.online.iter().map(String::as_str).collect();
                    self.info(format!("online: {}", list.join(", ")));
                } else {
                    self.error("not connected: /connect ALIAS first");
                }
            }
            Typed::Help => self.show_help = !self.show_help,
            Typed::Quit => self.request_quit(Quit::User),
            Typed::Error(text) => self.error(text),
        }
    }

    fn send(&mut self, text: String) {
        let Some(to) = self.open.clone() else {
            return self.error("no open conversation: /open ALIAS first");
        };
        let Some(from) = self.me.clone() else {
            return self.error("no user: /register ALIAS or /connect ALIAS first");
        };
        let local = self.next_local;
        self.next_local += 1;
        let message = Message { at: self.wall, from: from.clone(), text: text.clone(), status: Status::Sending, local };
        self.conversations.entry(to.clone()).or_default().push(message);
        self.scroll = 0;
        self.history_dirty = true;
        self.job(Job::Send { local, from, to, text });
    }
}

#[cfg(test)]
mod tests;
