use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use protocol::Op;

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
            Job::Register { alias: "alice".into(), full_name: "Alice Liddell".into(), birth_date: "04/05/1852".into() },
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
