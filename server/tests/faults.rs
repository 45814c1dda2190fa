//! What a failing disk does to the journal (docs/operations.md, "When the disk fails"): a change whose record
//! cannot be made durable is refused and leaves no trace, a delivery that cannot be recorded is never repeated
//! after a restart, the journal is rewritten from memory once the disk works again, and after any of it the
//! state recovered from the directory equals the state the server had in memory.
//!
//! Failures are injected into the real `FileJournal` (`Faults`); a "crash" is dropping the store and the journal
//! without any cleanup.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use protocol::{ConnectStatus, RegisterStatus, SendReply, UnregisterStatus};
use server::journal::{Failure, Faults, FileJournal, JournalError, Options};
use server::store::{Entry, Journal, Record, UserState};
use server::Store;

fn open(dir: &Path) -> (Store, Arc<FileJournal>) {
    let store = Store::new(1000);
    // No compaction by size: only the rewrites the tests ask for.
    let journal = Arc::new(FileJournal::open(dir, &store, Options { compact_min_bytes: u64::MAX }).unwrap());
    (store.with_journal(journal.clone()), journal)
}

fn offline(mut users: Vec<UserState>) -> Vec<UserState> {
    for u in &mut users {
        u.connected = false;
    }
    users
}

/// Crashes (drops everything without a final sync) and recovers; the recovered state must be `expected`.
fn crash_and_recover(
    dir: &Path,
    state: (Store, Arc<FileJournal>),
    expected: &[UserState],
) -> (Store, Arc<FileJournal>) {
    drop(state);
    let (store, journal) = open(dir);
    assert_eq!(store.snapshot(), expected, "the recovered state is the state the server had in memory");
    (store, journal)
}

fn listener() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 9))
}

fn connect(store: &Store, alias: &str) {
    if store.is_connected(alias) == Some(false) {
        let (status, epoch) = store.connect(alias, listener());
        assert_eq!(status, ConnectStatus::Ok);
        store.activate(alias, epoch);
    }
}

/// A SEND as the handler makes it: accepted, then made durable before the reply.
fn send(store: &Store, from: &str, to: &str, text: &str) -> Result<u32, SendReply> {
    connect(store, from);
    let accepted = store.send(from, to, text, None)?;
    store.commit(accepted.position).map_err(|_| SendReply::Fail)?;
    Ok(accepted.id)
}

/// Pushes the head of `alias`'s queue successfully (as a deliverer does), if it has one; `alias` is offline
/// afterwards.
fn deliver_head(store: &Store, alias: &str) -> Option<Entry> {
    store.disconnect(alias, None);
    let (status, epoch) = store.connect(alias, listener());
    assert_eq!(status, ConnectStatus::Ok);
    let pushed = store.activate(alias, epoch).and_then(|mut ticket| {
        let job = ticket_job(store, &mut ticket)?;
        store.delivered(&ticket, &job);
        Some(job.entry)
    });
    store.disconnect(alias, None);
    pushed
}

fn ticket_job(store: &Store, ticket: &mut server::store::Ticket) -> Option<server::store::Job> {
    store.next_job(ticket)
}

/// The sequence of issue 17: a delivery whose `Pop` cannot be written must not make a later message come back
/// after a restart, and the failed SEND must never appear.
#[test]
fn a_delivery_lost_to_a_disk_error_is_not_repeated_and_a_failed_send_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (store, journal) = open(dir.path());
    for alias in ["alice", "bob"] {
        assert_eq!(store.register("", alias, "").0, RegisterStatus::Ok);
    }
    assert_eq!(send(&store, "alice", "bob", "m1"), Ok(1));

    journal.inject(Faults::DISK_DOWN);
    assert_eq!(send(&store, "alice", "bob", "m2"), Err(SendReply::Fail), "its record cannot be written");
    let pushed = deliver_head(&store, "bob").expect("m1 goes out: the push does not need the disk");
    assert!(matches!(pushed, Entry::Message { id: 1, .. }));
    assert!(journal.diverged(), "memory moved on without the journal");
    assert_eq!(send(&store, "alice", "bob", "m2 again"), Err(SendReply::Fail), "refused until rewritten");
    let refusal = journal.append(&Record::Unregister { alias: "alice" }).expect_err("refused while diverged");
    let why = refusal.get_ref().and_then(|e| e.downcast_ref::<JournalError>());
    assert!(matches!(why, Some(JournalError::Diverged { reason: Failure::Delivery(_) })), "{refusal:?}");
    assert!(journal.rewrite(&store).is_err(), "the disk is still down");

    journal.inject(Faults::NONE);
    journal.rewrite(&store).unwrap();
    assert!(!journal.diverged());
    assert_eq!(send(&store, "alice", "bob", "m3"), Ok(2), "ids go on from the last accepted one");
    assert!(matches!(deliver_head(&store, "bob"), Some(Entry::Message { id: 2, .. })));

    let expected = offline(store.snapshot());
    assert!(expected[1].queue.is_empty(), "bob has everything");
    let (store, _journal) = crash_and_recover(dir.path(), (store, journal), &expected);
    assert!(deliver_head(&store, "bob").is_none(), "nothing comes back to bob after the restart");
    assert_eq!(send(&store, "alice", "bob", "m4"), Ok(3));
}

/// A failed fsync: the SEND waiting for it is refused and its message taken back from the recipient's queue; its
/// id is never given out again.
#[test]
fn a_failed_sync_takes_back_the_change_and_burns_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let (store, journal) = open(dir.path());
    for alias in ["alice", "bob"] {
        store.register("", alias, "");
    }
    assert_eq!(send(&store, "alice", "bob", "kept"), Ok(1));
    journal.inject(Faults { sync: true, ..Faults::NONE });
    assert_eq!(send(&store, "alice", "bob", "lost"), Err(SendReply::Fail));
    let users = store.snapshot();
    assert_eq!(users[1].queue.len(), 1, "the refused message is not queued: {:?}", users[1].queue);
    assert_eq!(store.register("", "carol", "").0, RegisterStatus::Fail, "no change until the rewrite");

    journal.inject(Faults::NONE);
    journal.rewrite(&store).unwrap();
    assert_eq!(send(&store, "alice", "bob", "after"), Ok(3), "id 2 was given to a refused SEND: never reused");
    let expected = offline(store.snapshot());
    crash_and_recover(dir.path(), (store, journal), &expected);
}

/// A REGISTER and an UNREGISTER whose sync fails are taken back too.
#[test]
fn registrations_whose_sync_fails_are_taken_back() {
    let dir = tempfile::tempdir().unwrap();
    let (store, journal) = open(dir.path());
    store.register("", "alice", "");
    journal.sync_all().unwrap();
    journal.inject(Faults { sync: true, ..Faults::NONE });
    let (status, position) = store.register("", "bob", "");
    assert_eq!(status, RegisterStatus::Ok);
    assert!(store.commit(position).is_err());
    assert_eq!(store.is_connected("bob"), None, "bob's registration is taken back");
    journal.inject(Faults::NONE);
    journal.rewrite(&store).unwrap();

    journal.inject(Faults { sync: true, ..Faults::NONE });
    let (status, position) = store.unregister("alice", None);
    assert_eq!(status, UnregisterStatus::Ok);
    assert!(store.commit(position).is_err());
    assert_eq!(store.is_connected("alice"), Some(false), "alice is back");
    journal.inject(Faults::NONE);
    journal.rewrite(&store).unwrap();
    let expected = offline(store.snapshot());
    crash_and_recover(dir.path(), (store, journal), &expected);
}

/// One failed append of each kind of record, then a rewrite and a crash: always the state in memory.
#[test]
fn a_failed_append_of_any_kind_of_record_recovers_the_state_in_memory() {
    let kinds: [(&str, Faults); 5] = [
        ("register", Faults { register: true, ..Faults::NONE }),
        ("unregister", Faults { unregister: true, ..Faults::NONE }),
        ("message", Faults { message: true, ..Faults::NONE }),
        ("ack", Faults { ack: true, ..Faults::NONE }),
        ("pop", Faults { pop: true, ..Faults::NONE }),
    ];
    for (kind, fault) in kinds {
        let dir = tempfile::tempdir().unwrap();
        let (store, journal) = open(dir.path());
        for alias in ["a", "b", "c"] {
            store.register("", alias, "");
        }
        send(&store, "a", "b", "before").unwrap();
        journal.inject(fault);
        let _ = store.register("", "d", "");
        let _ = store.unregister("c", None);
        let _ = send(&store, "a", "b", "during");
        deliver_head(&store, "b");
        deliver_head(&store, "a");
        journal.inject(Faults::NONE);
        journal.rewrite(&store).unwrap();
        let _ = send(&store, "b", "a", "after");
        let expected = offline(store.snapshot());
        let recovered = {
            drop((store, journal));
            let (store, _journal) = open(dir.path());
            store.snapshot()
        };
        assert_eq!(recovered, expected, "after a failed {kind} append");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Register(u8),
    Unregister(u8),
    Send(u8, u8),
    Deliver(u8),
    Fail(u8),
    Heal,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4).prop_map(Op::Register),
        (0u8..4).prop_map(Op::Unregister),
        ((0u8..4), (0u8..4)).prop_map(|(a, b)| Op::Send(a, b)),
        (0u8..4).prop_map(Op::Deliver),
        (0u8..7).prop_map(Op::Fail),
        Just(Op::Heal),
    ]
}

fn fault(which: u8) -> Faults {
    let mut f = Faults::NONE;
    match which {
        0 => f.register = true,
        1 => f.unregister = true,
        2 => f.message = true,
        3 => f.ack = true,
        4 => f.pop = true,
        5 => f.sync = true,
        _ => f = Faults::DISK_DOWN,
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any interleaving of operations and disk failures, healed and rewritten at the end, then a crash: the
    /// directory recovers exactly the state in memory.
    #[test]
    fn any_mix_of_operations_and_failures_recovers_the_state_in_memory(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let (store, journal) = open(dir.path());
        let name = |i: u8| format!("u{i}");
        for op in ops {
            match op {
                Op::Register(i) => { let _ = store.register("", &name(i), ""); }
                Op::Unregister(i) => {
                    let (status, position) = store.unregister(&name(i), None);
                    if status == UnregisterStatus::Ok { let _ = store.commit(position); }
                }
                Op::Send(a, b) => {
                    if store.is_connected(&name(a)).is_some() && store.is_connected(&name(b)).is_some() {
                        let _ = send(&store, &name(a), &name(b), "text");
                        store.disconnect(&name(a), None);
                    }
                }
                Op::Deliver(i) => { if store.is_connected(&name(i)).is_some() { deliver_head(&store, &name(i)); } }
                Op::Fail(which) => journal.inject(fault(which)),
                Op::Heal => {
                    journal.inject(Faults::NONE);
                    let _ = journal.rewrite(&store);
                }
            }
        }
        journal.inject(Faults::NONE);
        journal.rewrite(&store).unwrap();
        journal.sync_all().unwrap();
        let expected = offline(store.snapshot());
        drop((store, journal));
        let (store, _journal) = open(dir.path());
        prop_assert_eq!(store.snapshot(), expected);
    }
}
