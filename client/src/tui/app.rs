//! The state of the TUI and every change to it: [`App::update`] takes one [`Event`] and changes the state; it
//! never draws and never touches the network or the disk. What must happen outside (a request for the sender
//! thread, a history file to read) is queued as an [`Effect`] for the UI loop to carry out.
//!
//! So the whole behaviour — keys, commands, pushes, delivery marks, unread counts, timers — is tested by feeding
//! events and looking at the state, without a terminal.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use protocol::Op;
use ratatui::layout::{Position, Rect};

use super::command::{self, Typed};
use super::conversation::{Conversation, Message, Status};
use super::editor::LineEditor;
use super::event::{Event, Job, Net};
use super::layout::{self, Theme};

/// How often the list of connected users is asked for while connected (the issue asks for at least every 5 s).
pub const USERS_REFRESH: Duration = Duration::from_secs(3);

/// How long a notice stays on the status line.
pub const NOTICE_TTL: Duration = Duration::from_secs(6);

/// Acknowledgements remembered while their SEND result is still on its way (the two travel on different
/// connections and threads, so an acknowledgement can overtake its result).
pub const MAX_EARLY_ACKS: usize = 256;

/// Lines scrolled by one turn of the mouse wheel.
const WHEEL_LINES: usize = 3;

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

    // ----- keys and mouse

    fn on_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Char('c' | 'd') if ctrl => self.request_quit(Quit::User),
            _ if self.quit.is_some() => {}
            KeyCode::Char('w') if ctrl => self.editor.delete_word(),
            KeyCode::Char('u') if ctrl => self.editor.delete_to_start(),
            KeyCode::Char('a') if ctrl => self.editor.home(),
            KeyCode::Char('e') if ctrl => self.editor.end(),
            KeyCode::Char('n') if ctrl => self.cycle_contact(1),
            KeyCode::Char('p') if ctrl => self.cycle_contact(-1),
            KeyCode::Char(_) if ctrl || alt => {}
            KeyCode::Char(c) => self.editor.insert(c),
            KeyCode::Backspace => self.editor.backspace(),
            KeyCode::Delete => self.editor.delete(),
            KeyCode::Left => self.editor.left(),
            KeyCode::Right => self.editor.right(),
            KeyCode::Home => self.editor.home(),
            KeyCode::End => self.editor.end(),
            KeyCode::Up if ctrl || alt => self.cycle_contact(-1),
            KeyCode::Down if ctrl || alt => self.cycle_contact(1),
            KeyCode::Up => self.editor.up(),
            KeyCode::Down => self.editor.down(),
            KeyCode::Tab => self.cycle_contact(1),
            KeyCode::BackTab => self.cycle_contact(-1),
            KeyCode::PageUp => self.scroll_by(self.page() as isize),
            KeyCode::PageDown => self.scroll_by(-(self.page() as isize)),
            KeyCode::Esc => {
                self.show_help = false;
                self.notice = None;
            }
            KeyCode::Enter => {
                let line = self.editor.submit();
                self.on_line(&line);
            }
            _ => {}
        }
    }

    fn on_mouse(&mut self, mouse: MouseEvent) {
        if self.quit.is_some() {
            return;
        }
        let areas = layout::areas(self.screen());
        let at = Position::new(mouse.column, mouse.row);
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                let list = layout::inner(areas.contacts);
                if list.contains(at) {
                    let contacts = self.contacts();
                    let offset = layout::contacts_offset(self.open_index(&contacts), usize::from(list.height));
                    let row = usize::from(at.y - list.y) + offset;
                    if let Some(c) = contacts.get(row) {
                        let alias = c.alias.clone();
                        self.open_conversation(alias);
                    }
                }
            }
            MouseEventKind::ScrollUp if areas.conversation.contains(at) => self.scroll_by(WHEEL_LINES as isize),
            MouseEventKind::ScrollDown if areas.conversation.contains(at) => self.scroll_by(-(WHEEL_LINES as isize)),
            _ => {}
        }
    }

    fn screen(&self) -> Rect {
        Rect::new(0, 0, self.size.0, self.size.1)
    }

    /// Rows of text in the conversation pane.
    fn page(&self) -> usize {
        usize::from(layout::inner(layout::areas(self.screen()).conversation).height).max(1)
    }

    fn scroll_by(&mut self, lines: isize) {
        self.scroll = self.scroll.saturating_add_signed(lines);
        self.clamp_scroll();
    }

    /// Keeps the scroll within the open conversation (at most its first line at the top of the pane).
    fn clamp_scroll(&mut self) {
        let pane = layout::inner(layout::areas(self.screen()).conversation);
        let total = match self.open.as_ref().and_then(|o| self.conversations.get(o)) {
            Some(c) => layout::conversation_lines(&c.messages, usize::from(pane.width), self.theme).len(),
            None => 0,
        };
        self.scroll = self.scroll.min(total.saturating_sub(usize::from(pane.height)));
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

    // ----- network events

    fn on_net(&mut self, net: Net) {
        match net {
            Net::Connecting { alias } => {
                if self.owner.as_deref() != Some(alias.as_str()) {
                    self.owner_before_connect = self.owner.clone();
                }
                self.switch_owner(&alias);
            }
            Net::Done { op, alias, ok, line } => self.on_done(op, alias, ok, line),
            Net::Sent { local, result } => self.on_sent(local, result),
            Net::Users(users) => {
                self.users_in_flight = false;
                // An answer that arrives after a DISCONNECT is already out of date.
                if self.connected {
                    self.online = users.into_iter().collect();
                }
            }
            Net::UsersFailed => self.users_in_flight = false,
            Net::NotConnected => {
                self.users_in_flight = false;
                if self.connected {
                    self.connected = false;
                    self.online.clear();
                    self.users_due = None;
                    self.error("the server has you as disconnected: /connect again");
                }
            }
            Net::Message { from, id, text, at } => {
                let open = self.open.is_some();
                let conversation = self.conversations.entry(from.clone()).or_default();
                conversation.push(Message { at, from: from.clone(), text, status: Status::Received(id), local: 0 });
                if !open {
                    self.open = Some(from.clone());
                }
                if self.open.as_ref() != Some(&from) {
                    conversation.unread += 1;
                }
                self.history_dirty = true;
                // Whoever writes to us is probably online: refresh the list now rather than in a few seconds.
                self.refresh_users();
            }
            Net::Ack { id } => self.on_ack(id),
            // Connected, we had a live session: it is over, and the program says so on a restored terminal.
            // Before that, it is just a command that failed (the shell opens no connection before the first
            // command either, so this is how a server that is down shows).
            Net::ServerLost(why) if self.connected => {
                if self.quit.is_none() {
                    self.request_quit(Quit::ServerLost(why));
                }
            }
            Net::ServerLost(why) => self.error(format!("cannot reach the {why}")),
            Net::Normalizer(state) => self.normalizer = state,
            Net::Stopped => self.stopped = true,
        }
    }

    fn switch_owner(&mut self, alias: &str) {
        if self.owner.as_deref() != Some(alias) {
            self.effects.push(Effect::LoadHistory(alias.to_owned()));
        }
    }

    fn on_done(&mut self, op: Op, alias: String, ok: bool, line: String) {
        match op {
            Op::Register if ok => {
                self.me = Some(alias.clone());
                // While connected, pushes keep coming for the connected alias: keep saving into its history.
                if !self.connected {
                    self.switch_owner(&alias);
                }
            }
            Op::Connect if ok => {
                self.me = Some(alias);
                self.connected = true;
                self.owner_before_connect = None;
                self.refresh_users();
            }
            Op::Connect => {
                if let Some(previous) = self.owner_before_connect.take() {
                    self.switch_owner(&previous);
                }
            }
            Op::Disconnect if self.me.as_ref() == Some(&alias) => {
                // The listener is closed whatever the reply.
                self.connected = false;
                self.online.clear();
                self.users_due = None;
            }
            Op::Unregister if ok && self.me.as_ref() == Some(&alias) => {
                self.me = None;
                self.connected = false;
                self.online.clear();
                self.users_due = None;
            }
            _ => {}
        }
        if ok {
            self.info(line);
        } else {
            self.error(line);
        }
    }

    fn on_sent(&mut self, local: u64, result: Result<(u32, String), String>) {
        let Some(m) = self.conversations.values_mut().flat_map(|c| c.messages.iter_mut()).find(|m| m.local == local)
        else {
            return;
        };
        m.status = match result {
            Ok((id, text)) => {
                m.text = text;
                match self.early_acks.iter().position(|&a| a == id) {
                    Some(i) => {
                        self.early_acks.remove(i);
                        Status::Delivered(id)
                    }
                    None => Status::Sent(id),
                }
            }
            Err(why) => Status::Failed(why),
        };
        self.history_dirty = true;
    }

    fn on_ack(&mut self, id: u32) {
        // Ids are per sender, so ours are unique but for a re-registration or a wrap: take the newest match.
        let newest = self
            .conversations
            .values_mut()
            .flat_map(|c| c.messages.iter_mut())
            .filter(|m| m.status == Status::Sent(id))
            .max_by_key(|m| (m.at, m.local));
        match newest {
            Some(m) => {
                m.status = Status::Delivered(id);
                self.history_dirty = true;
            }
            None => {
                let waiting =
                    self.conversations.values().flat_map(|c| &c.messages).any(|m| m.status == Status::Sending);
                if waiting {
                    if self.early_acks.len() == MAX_EARLY_ACKS {
                        self.early_acks.pop_front();
                    }
                    self.early_acks.push_back(id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        let now = Instant::now();
        App::new("127.0.0.1:9".into(), Theme { color: false, utc_offset: 0 }, (80, 24), now, 3600)
    }

    fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn ctrl(c: char) -> Event {
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }

    fn type_line(app: &mut App, line: &str) {
        for c in line.chars() {
            app.update(key(KeyCode::Char(c)));
        }
        app.update(key(KeyCode::Enter));
    }

    fn jobs(app: &mut App) -> Vec<Job> {
        app.take_effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Job(j) => Some(j),
                Effect::LoadHistory(_) => None,
            })
            .collect()
    }

    fn done(op: Op, alias: &str, ok: bool, line: &str) -> Event {
        Event::Net(Net::Done { op, alias: alias.into(), ok, line: line.into() })
    }

    /// alice registered and connected, bob's conversation open.
    fn alice_talking_to_bob() -> App {
        let mut a = app();
        a.update(done(Op::Register, "alice", true, "REGISTER OK"));
        a.update(done(Op::Connect, "alice", true, "CONNECT OK"));
        type_line(&mut a, "/open bob");
        a.take_effects();
        a
    }

    fn statuses(app: &App, peer: &str) -> Vec<Status> {
        app.conversations[peer].messages.iter().map(|m| m.status.clone()).collect()
    }

    #[test]
    fn commands_become_jobs() {
        let mut a = app();
        type_line(&mut a, "/register alice Alice Liddell 04/05/1852");
        type_line(&mut a, "/connect alice");
        type_line(&mut a, "/unregister bob");
        assert_eq!(
            jobs(&mut a),
            [
                Job::Register {
                    alias: "alice".into(),
                    full_name: "Alice Liddell".into(),
                    birth_date: "04/05/1852".into()
                },
                Job::Connect { alias: "alice".into() },
                Job::Unregister { alias: "bob".into() },
            ]
        );
        type_line(&mut a, "/disconnect");
        assert!(jobs(&mut a).is_empty());
        assert!(a.notice.as_ref().is_some_and(|n| n.error));
    }

    #[test]
    fn register_then_connect_sets_the_user_loads_its_history_and_asks_who_is_online() {
        let mut a = app();
        a.update(done(Op::Register, "alice", true, "REGISTER OK"));
        assert_eq!(a.take_effects(), [Effect::LoadHistory("alice".into())]);
        assert_eq!((a.me.as_deref(), a.connected), (Some("alice"), false));
        a.update(done(Op::Connect, "alice", true, "CONNECT OK"));
        assert!(a.connected);
        assert_eq!(a.take_effects(), [Effect::Job(Job::Users { alias: "alice".into() })]);
        assert_eq!(a.notice.as_ref().map(|n| (n.text.as_str(), n.error)), Some(("CONNECT OK", false)));
    }

    #[test]
    fn a_failed_connect_shows_the_previous_history_again() {
        let mut a = app();
        a.update(Event::HistoryLoaded { alias: "alice".into(), conversations: BTreeMap::new(), note: None });
        a.update(Event::Net(Net::Connecting { alias: "alcie".into() }));
        assert_eq!(a.take_effects(), [Effect::LoadHistory("alcie".into())]);
        a.update(Event::HistoryLoaded { alias: "alcie".into(), conversations: BTreeMap::new(), note: None });
        a.update(done(Op::Connect, "alcie", false, "CONNECT FAIL, USER DOES NOT EXIST"));
        assert_eq!(a.take_effects(), [Effect::LoadHistory("alice".into())]);
        assert!(a.notice.as_ref().is_some_and(|n| n.error));
    }

    #[test]
    fn registering_another_alias_while_connected_keeps_the_connected_history() {
        let mut a = alice_talking_to_bob();
        a.update(Event::HistoryLoaded { alias: "alice".into(), conversations: BTreeMap::new(), note: None });
        a.update(done(Op::Register, "carol", true, "REGISTER OK"));
        assert_eq!(a.me.as_deref(), Some("carol"));
        assert!(a.take_effects().is_empty());
    }

    #[test]
    fn users_are_refreshed_every_few_seconds_while_connected_only() {
        let mut a = alice_talking_to_bob();
        let start = a.now;
        a.update(Event::Net(Net::Users(vec!["alice".into(), "bob".into()])));
        a.update(Event::Tick { now: start + USERS_REFRESH / 2, wall: 0 });
        assert!(jobs(&mut a).is_empty());
        a.update(Event::Tick { now: start + USERS_REFRESH, wall: 0 });
        assert_eq!(jobs(&mut a), [Job::Users { alias: "alice".into() }]);
        // One request at a time.
        a.update(Event::Tick { now: start + USERS_REFRESH * 2, wall: 0 });
        assert!(jobs(&mut a).is_empty());
        // A failed request does not stop the refresh.
        a.update(Event::Net(Net::UsersFailed));
        a.update(Event::Tick { now: start + USERS_REFRESH * 3, wall: 0 });
        assert_eq!(jobs(&mut a), [Job::Users { alias: "alice".into() }]);
        a.update(Event::Net(Net::Users(vec!["alice".into()])));
        a.update(done(Op::Disconnect, "alice", true, "DISCONNECT OK"));
        assert!(a.online.is_empty());
        a.update(Event::Tick { now: start + USERS_REFRESH * 10, wall: 0 });
        assert!(jobs(&mut a).is_empty());
    }

    #[test]
    fn a_sent_message_goes_sending_then_check_then_double_check() {
        let mut a = alice_talking_to_bob();
        type_line(&mut a, "  hello   bob ");
        assert_eq!(
            jobs(&mut a),
            [Job::Send { local: 1, from: "alice".into(), to: "bob".into(), text: "  hello   bob ".into() }]
        );
        assert_eq!(statuses(&a, "bob"), [Status::Sending]);
        a.update(Event::Net(Net::Sent { local: 1, result: Ok((7, "hello bob".into())) }));
        assert_eq!(statuses(&a, "bob"), [Status::Sent(7)]);
        assert_eq!(a.conversations["bob"].messages[0].text, "hello bob");
        a.update(Event::Net(Net::Ack { id: 7 }));
        assert_eq!(statuses(&a, "bob"), [Status::Delivered(7)]);
        assert!(a.history_dirty);
    }

    #[test]
    fn an_acknowledgement_that_overtakes_its_send_result_still_counts() {
        let mut a = alice_talking_to_bob();
        type_line(&mut a, "quick");
        a.update(Event::Net(Net::Ack { id: 3 }));
        a.update(Event::Net(Net::Sent { local: 1, result: Ok((3, "quick".into())) }));
        assert_eq!(statuses(&a, "bob"), [Status::Delivered(3)]);
    }

    #[test]
    fn a_refused_message_says_why() {
        let mut a = alice_talking_to_bob();
        type_line(&mut a, "anyone?");
        a.update(Event::Net(Net::Sent { local: 1, result: Err("user does not exist".into()) }));
        assert_eq!(statuses(&a, "bob"), [Status::Failed("user does not exist".into())]);
    }

    #[test]
    fn a_message_needs_a_user_and_an_open_conversation() {
        let mut a = app();
        type_line(&mut a, "hello");
        assert_eq!(a.notice.as_ref().map(|n| n.text.as_str()), Some("no open conversation: /open ALIAS first"));
        type_line(&mut a, "/open bob");
        type_line(&mut a, "hello");
        assert!(a.notice.as_ref().is_some_and(|n| n.text.starts_with("no user")));
        assert!(jobs(&mut a).is_empty());
    }

    #[test]
    fn incoming_messages_count_as_unread_until_opened() {
        let mut a = alice_talking_to_bob();
        a.update(Event::Net(Net::Users(vec!["alice".into()])));
        let msg = |from: &str, id| Event::Net(Net::Message { from: from.into(), id, text: "hi".into(), at: 0 });
        a.update(msg("bob", 1));
        a.update(msg("carol", 1));
        a.update(msg("carol", 2));
        let unread: Vec<(String, usize)> = a.contacts().into_iter().map(|c| (c.alias, c.unread)).collect();
        assert_eq!(unread, [("bob".into(), 0), ("carol".into(), 2)]);
        // Each incoming message asks who is online (bob's did; carol's wait for that answer).
        assert_eq!(jobs(&mut a), [Job::Users { alias: "alice".into() }]);
        a.update(key(KeyCode::Tab));
        assert_eq!(a.open.as_deref(), Some("carol"));
        assert_eq!(a.conversations["carol"].unread, 0);
    }

    #[test]
    fn the_first_message_opens_its_conversation_when_none_is_open() {
        let mut a = app();
        a.update(Event::Net(Net::Message { from: "bob".into(), id: 1, text: "hi".into(), at: 0 }));
        assert_eq!((a.open.as_deref(), a.conversations["bob"].unread), (Some("bob"), 0));
    }

    #[test]
    fn contacts_are_online_users_and_conversations_without_ourselves() {
        let mut a = alice_talking_to_bob();
        a.update(Event::Net(Net::Users(vec!["alice".into(), "dave".into()])));
        let rows: Vec<(String, bool)> = a.contacts().into_iter().map(|c| (c.alias, c.online)).collect();
        assert_eq!(rows, [("bob".into(), false), ("dave".into(), true)]);
        a.update(key(KeyCode::BackTab));
        assert_eq!(a.open.as_deref(), Some("dave"), "from the first, back to the last");
        a.update(Event::Key(KeyEvent::new(KeyCode::Down, KeyModifiers::CONTROL)));
        assert_eq!(a.open.as_deref(), Some("bob"));
    }

    #[test]
    fn a_click_in_the_contacts_pane_opens_that_contact() {
        let mut a = alice_talking_to_bob();
        a.update(Event::Net(Net::Users(vec!["carol".into()])));
        let click = |row| {
            Event::Mouse(MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column: 3,
                row,
                modifiers: KeyModifiers::NONE,
            })
        };
        a.update(click(2));
        assert_eq!(a.open.as_deref(), Some("carol"));
        a.update(click(1));
        assert_eq!(a.open.as_deref(), Some("bob"));
    }

    #[test]
    fn page_up_scrolls_within_the_conversation() {
        let mut a = alice_talking_to_bob();
        for i in 0..40 {
            a.update(Event::Net(Net::Message { from: "bob".into(), id: i, text: format!("line {i}"), at: 0 }));
        }
        a.update(key(KeyCode::PageUp));
        assert_eq!(a.scroll, 18);
        a.update(key(KeyCode::PageUp));
        a.update(key(KeyCode::PageUp));
        assert_eq!(a.scroll, 40 - 18, "never past the first line");
        a.update(key(KeyCode::PageDown));
        a.update(key(KeyCode::PageDown));
        assert_eq!(a.scroll, 0);
    }

    #[test]
    fn a_paste_is_one_line_of_input() {
        let mut a = alice_talking_to_bob();
        a.update(Event::Paste("first line\nsecond\tline".into()));
        assert_eq!(a.editor.text(), "first line second line");
        assert!(jobs(&mut a).is_empty(), "nothing sent before Enter");
    }

    #[test]
    fn ctrl_c_quits_through_the_sender_and_twice_forces() {
        let mut a = alice_talking_to_bob();
        a.update(ctrl('c'));
        assert_eq!(a.quit, Some(Quit::User));
        assert_eq!(jobs(&mut a), [Job::Quit]);
        type_line(&mut a, "ignored");
        assert!(jobs(&mut a).is_empty());
        a.update(ctrl('d'));
        assert!(a.force_quit);
        a.update(Event::Net(Net::Stopped));
        assert!(a.stopped);
    }

    #[test]
    fn a_lost_server_ends_the_session_with_its_reason() {
        let mut a = alice_talking_to_bob();
        a.update(Event::Net(Net::ServerLost("refused".into())));
        assert_eq!(a.quit, Some(Quit::ServerLost("refused".into())));
        assert_eq!(jobs(&mut a), [Job::Quit]);
    }

    #[test]
    fn an_unreachable_server_before_connecting_is_only_an_error() {
        let mut a = app();
        type_line(&mut a, "/register alice");
        a.take_effects();
        a.update(Event::Net(Net::ServerLost("server 127.0.0.1:9: cannot connect: refused".into())));
        assert_eq!(a.quit, None);
        assert!(a.notice.as_ref().is_some_and(|n| n.error && n.text.contains("cannot connect")));
    }

    #[test]
    fn notices_expire_and_log_lines_become_notices() {
        let mut a = app();
        a.update(Event::Log("warning: something".into()));
        assert!(a.notice.as_ref().is_some_and(|n| n.error && n.text == "warning: something"));
        let later = a.now + NOTICE_TTL;
        a.update(Event::Tick { now: later, wall: 0 });
        assert!(a.notice.is_none());
    }

    #[test]
    fn the_server_dropping_us_shows_and_stops_the_refresh() {
        let mut a = alice_talking_to_bob();
        a.update(Event::Net(Net::NotConnected));
        assert!(!a.connected);
        assert!(a.notice.as_ref().is_some_and(|n| n.text.contains("/connect again")));
    }

    #[test]
    fn loading_a_history_replaces_the_conversations() {
        let mut a = alice_talking_to_bob();
        let mut c = Conversation::default();
        c.push(Message { at: 1, from: "carol".into(), text: "old".into(), status: Status::Received(1), local: 0 });
        let conversations = BTreeMap::from([("carol".to_owned(), c)]);
        a.update(Event::HistoryLoaded { alias: "alice".into(), conversations, note: None });
        assert_eq!(a.owner.as_deref(), Some("alice"));
        assert_eq!(a.open.as_deref(), Some("carol"), "the newest conversation is open");
        assert_eq!(a.conversations["carol"].messages.len(), 1);
        assert!(!a.history_dirty);
    }
}
