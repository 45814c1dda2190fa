//! Durability with a data directory (docs/operations.md): nothing acknowledged is lost across a clean
//! stop or a `kill -9`, ids are never reused, a torn journal tail is cut off, damage before the end stops the
//! start-up, a crash at any step of compaction recovers the same state, and the directory stays small. The
//! `kill -9` of the real binary during a stream of SENDs is in kill_9.rs.
//!
//! Every wait is bounded; nothing sleeps to synchronise; only 127.0.0.1 is used.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use protocol::{ConnectStatus, Push, RegisterStatus, Reply, Request, UnregisterStatus};
use server::journal::{segment_name, CompactStep, FileJournal, JournalError, Options};
use server::store::{Entry, UserState};
use server::{Config, Server, ServerHandle, Store};
use testkit::typed::{connect, exchange, register, send, sent_id};
use testkit::{dir_size, file_names, Listener};

/// Length of a journal file header (magic, generation, CRC).
const FILE_HEADER_LEN: u64 = 20;

fn config(dir: &Path) -> Config {
    Config { data_dir: Some(dir.to_owned()), ..Config::default() }
}

fn start(dir: &Path) -> ServerHandle {
    Server::bind(config(dir)).and_then(Server::spawn).unwrap()
}

/// The registry as it must look after a restart: nobody is connected.
fn offline(mut users: Vec<UserState>) -> Vec<UserState> {
    for u in &mut users {
        u.connected = false;
    }
    users
}

fn message(sender: &str, id: u32, text: &str) -> Entry {
    Entry::Message { sender: sender.into(), id, text: text.into() }
}

// ---------------------------------------------------------------------------------------------------------------
// Store-level helpers: the journal driven directly, with a "crash" being a drop without any cleanup.

fn open(dir: &Path, compact_min_bytes: u64) -> Result<(Store, Arc<FileJournal>), JournalError> {
    let store = Store::new(1000);
    let journal = Arc::new(FileJournal::open(dir, &store, Options { compact_min_bytes })?);
    Ok((store.with_journal(journal.clone()), journal))
}

fn listener_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 9))
}

/// Connects `alias` (no push ever goes out: the CONNECT is never activated), so it may SEND.
fn online(store: &Store, alias: &str) {
    if store.is_connected(alias) == Some(false) {
        assert_eq!(store.connect(alias, listener_addr()).0, ConnectStatus::Ok);
    }
}

/// Plays one successful push of the head of `alias`'s queue (the Pop record and the acknowledgement it queues).
fn deliver_one(store: &Store, alias: &str) {
    let (status, epoch) = store.connect(alias, listener_addr());
    assert_eq!(status, ConnectStatus::Ok, "{alias} was offline");
    let ticket = store.activate(alias, epoch).expect("a non-empty queue");
    let job = store.next_job(&ticket).unwrap();
    store.delivered(&ticket, &job);
    store.disconnect(alias, None);
    assert!(store.next_job(&ticket).is_none(), "the ticket is released");
}

/// A deterministic mix of every kind of record: registrations, messages (also to oneself), pushes with their
/// acknowledgements, an unregistration with messages of the unregistered user left in other queues.
fn workload(store: &Store, round: u32) {
    for alias in ["ann", "bob", "cid", "dee"] {
        if store.is_connected(alias).is_none() {
            assert_eq!(store.register(&format!("{alias} {round}"), alias, "02/03/2004").0, RegisterStatus::Ok);
        }
    }
    for alias in ["ann", "bob", "cid"] {
        online(store, alias);
    }
    for i in 0..5 {
        store.send("ann", "bob", &format!("r{round} m{i}"), None).unwrap();
        store.send("bob", "cid", &format!("r{round} hello\nline {i}"), None).unwrap();
        store.send("cid", "cid", "note to self", None).unwrap();
    }
    store.send("dee", "ann", "x", None).unwrap_err(); // dee is offline: refused, not journalled
    for _ in 0..3 {
        store.send("cid", "dee", "for dee", None).unwrap();
    }
    for alias in ["ann", "bob", "cid", "dee"] {
        store.disconnect(alias, None);
    }
    deliver_one(store, "bob");
    deliver_one(store, "bob");
    deliver_one(store, "cid");
    deliver_one(store, "ann"); // the acknowledgement of bob's first push
    assert_eq!(store.unregister("cid", None).0, UnregisterStatus::Ok);
    assert_eq!(store.register("again", "cid", "").0, RegisterStatus::Ok);
}

// ---------------------------------------------------------------------------------------------------------------
// Tests.

#[test]
fn replay_after_a_clean_stop_restores_users_counters_and_queues() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let addr = server.addr();
    for alias in ["alice", "bob", "carol"] {
        assert_eq!(register(addr, alias), Reply::Register(RegisterStatus::Ok));
    }
    let alice = Listener::bind();
    assert_eq!(connect(addr, "alice", alice.port()), Reply::Connect(ConnectStatus::Ok));
    let ids: Vec<u32> = (1..=3).map(|i| sent_id(send(addr, "alice", "bob", &format!("m{i}")).unwrap())).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(
        exchange(addr, &Request::Unregister { alias: "carol".into() }).unwrap(),
        Reply::Unregister(UnregisterStatus::Ok)
    );
    let before = offline(server.store().snapshot());
    server.shutdown();

    let server = start(dir.path());
    let addr = server.addr();
    assert_eq!(server.store().snapshot(), before, "same users, counters and queues; nobody connected");
    assert_eq!(before.iter().map(|u| u.alias.as_str()).collect::<Vec<_>>(), ["alice", "bob"]);
    assert_eq!(before[0].last_id, 3);
    assert_eq!(before[1].queue, [message("alice", 1, "m1"), message("alice", 2, "m2"), message("alice", 3, "m3")]);

    // The queue is delivered in order when bob connects; alice's counter goes on.
    let bob = Listener::bind();
    assert_eq!(connect(addr, "bob", bob.port()), Reply::Connect(ConnectStatus::Ok));
    for i in 1..=3 {
        assert_eq!(bob.next_push(), Push::Message { sender: "alice".into(), id: i, text: format!("m{i}") });
    }
    assert_eq!(connect(addr, "alice", alice.port()), Reply::Connect(ConnectStatus::Ok));
    assert_eq!(sent_id(send(addr, "alice", "bob", "m4").unwrap()), 4);
    assert_eq!(bob.next_push(), Push::Message { sender: "alice".into(), id: 4, text: "m4".into() });
    let mut acks: Vec<u32> = (0..4)
        .map(|_| match alice.next_push() {
            Push::Ack { id } => id,
            other => panic!("expected an acknowledgement, got {other:?}"),
        })
        .collect();
    acks.sort_unstable();
    assert_eq!(acks, [1, 2, 3, 4]);
    server.shutdown();

    // A clean stop repeats no push: every successful push was journalled before the connection threads ended.
    let server = start(dir.path());
    let after = server.store().snapshot();
    assert_eq!(after.iter().map(|u| (u.alias.as_str(), u.last_id)).collect::<Vec<_>>(), [("alice", 4), ("bob", 0)]);
    assert!(after.iter().all(|u| u.queue.is_empty()), "{after:?}");
}

#[test]
fn a_second_server_on_the_same_directory_is_refused_until_the_first_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::bind(config(dir.path())).unwrap();
    let err = Server::bind(config(dir.path())).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("in use by another server") && text.contains("LOCK"), "{text}");
    assert!(text.contains(&format!("pid {}", std::process::id())), "the holder is named: {text}");
    drop(first);
    Server::bind(config(dir.path())).expect("the lock goes with the server that held it");
}

#[test]
fn a_torn_final_record_is_cut_off_and_everything_before_it_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let segment = dir.path().join(segment_name(1));
    let (expected, good_len) = {
        let (store, _journal) = open(dir.path(), u64::MAX).unwrap();
        workload(&store, 0);
        let expected = offline(store.snapshot());
        let good_len = fs::metadata(&segment).unwrap().len();
        online(&store, "ann");
        store.send("ann", "bob", "this one is torn", None).unwrap();
        (expected, good_len)
    };
    // Every cut of the last record, as a crash in the middle of its write would leave it, and a zero-filled tail.
    let whole = fs::read(&segment).unwrap();
    let mut tails: Vec<Vec<u8>> = (good_len as usize + 1..whole.len()).map(|cut| whole[..cut].to_vec()).collect();
    tails.push([&whole[..good_len as usize], &[0u8; 300][..]].concat());
    for (i, tail) in tails.iter().enumerate() {
        fs::write(&segment, tail).unwrap();
        let (store, _journal) = open(dir.path(), u64::MAX).unwrap_or_else(|e| panic!("tail {i}: {e}"));
        assert_eq!(store.snapshot(), expected, "tail {i}");
        assert_eq!(fs::metadata(&segment).unwrap().len(), good_len, "tail {i}: cut back to the last whole record");
    }
    // And the journal goes on from there.
    let (store, _journal) = open(dir.path(), u64::MAX).unwrap();
    online(&store, "ann");
    store.send("ann", "bob", "after the cut", None).unwrap();
    let expected = offline(store.snapshot());
    drop(store);
    drop(_journal);
    let (store, _journal) = open(dir.path(), u64::MAX).unwrap();
    assert_eq!(store.snapshot(), expected);
}

#[test]
fn damage_before_the_end_stops_the_start_with_the_file_and_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let segment = dir.path().join(segment_name(1));
    let second_record = {
        let (store, _journal) = open(dir.path(), u64::MAX).unwrap();
        let (_, first_end) = store.register("A", "ann", "");
        store.register("B", "bob", "");
        store.register("C", "cid", "");
        FILE_HEADER_LEN + first_end.unwrap()
    };
    let mut bytes = fs::read(&segment).unwrap();
    let len = bytes.len();
    bytes[second_record as usize + 12] ^= 0x01; // a bit in the second record's payload
    fs::write(&segment, &bytes).unwrap();

    let err = open(dir.path(), u64::MAX).map(|_| ()).unwrap_err();
    match &err {
        JournalError::Corrupt { path, offset, .. } => {
            assert_eq!(path, &segment);
            assert_eq!(*offset, second_record);
        }
        other => panic!("expected a Corrupt error, got {other:?}"),
    }
    let text = Server::bind(config(dir.path())).unwrap_err().to_string();
    assert!(text.contains(&segment.display().to_string()), "{text}");
    assert!(text.contains(&format!("offset {second_record}")), "{text}");
    assert_eq!(fs::metadata(&segment).unwrap().len(), len as u64, "a damaged journal is left as it was");

    // A record that is intact but does not fit (a missing segment in the middle of the history) is refused too.
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, journal) = open(dir.path(), u64::MAX).unwrap();
        workload(&store, 0);
        journal.compact_until(&store, CompactStep::Rotated).unwrap();
        workload(&store, 1);
        journal.compact_until(&store, CompactStep::Rotated).unwrap();
    }
    fs::remove_file(dir.path().join(segment_name(2))).unwrap();
    match open(dir.path(), u64::MAX).map(|_| ()).unwrap_err() {
        JournalError::Missing { path, .. } => assert_eq!(path, dir.path().join(segment_name(2))),
        other => panic!("expected a Missing error, got {other:?}"),
    }

    // So is a snapshot without the segment of its generation (the changes made after it would be lost).
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, journal) = open(dir.path(), u64::MAX).unwrap();
        workload(&store, 0);
        journal.compact(&store).unwrap();
        workload(&store, 1);
    }
    fs::remove_file(dir.path().join(segment_name(2))).unwrap();
    match open(dir.path(), u64::MAX).map(|_| ()).unwrap_err() {
        JournalError::Missing { path, .. } => assert_eq!(path, dir.path().join(segment_name(2))),
        other => panic!("expected a Missing error, got {other:?}"),
    }
}

#[test]
fn a_crash_at_every_step_of_compaction_recovers_the_same_state() {
    for step in CompactStep::ALL {
        let dir = tempfile::tempdir().unwrap();
        let expected = {
            let (store, journal) = open(dir.path(), u64::MAX).unwrap();
            workload(&store, 0);
            journal.compact_until(&store, step).unwrap();
            // Changes after the crash point land in whichever segment is current at that step.
            workload(&store, 1);
            offline(store.snapshot())
            // Dropped here without any cleanup or final sync: a crash, as far as the directory can tell.
        };
        let (store, journal) = open(dir.path(), u64::MAX).unwrap_or_else(|e| panic!("after {step:?}: {e}"));
        assert_eq!(store.snapshot(), expected, "after a crash at {step:?}");
        assert!(!file_names(dir.path()).iter().any(|n| n.ends_with(".tmp")), "{step:?}: leftovers removed");

        // The recovered directory goes on working: more changes, a whole compaction, another recovery.
        workload(&store, 2);
        journal.compact(&store).unwrap();
        workload(&store, 3);
        let expected = offline(store.snapshot());
        drop((store, journal));
        let (store, _journal) = open(dir.path(), u64::MAX).unwrap();
        assert_eq!(store.snapshot(), expected, "{step:?}, then a whole compaction");
        let names = file_names(dir.path());
        assert_eq!(names.len(), 3, "{step:?}: LOCK, one snapshot and one segment: {names:?}");
    }
}

#[test]
fn compaction_keeps_the_directory_as_small_as_the_live_state() {
    const MIN_BYTES: u64 = 16 * 1024;
    const ROUNDS: u32 = 4000;
    let dir = tempfile::tempdir().unwrap();
    let (store, journal) = open(dir.path(), MIN_BYTES).unwrap();
    for alias in ["ann", "bob"] {
        store.register("", alias, "");
    }
    let mut largest = 0;
    let mut history = 0;
    for i in 0..ROUNDS {
        online(&store, "ann");
        let accepted = store.send("ann", "bob", &format!("message number {i} with some text"), None).unwrap();
        history = accepted.position.unwrap();
        store.disconnect("ann", None);
        deliver_one(&store, "bob");
        deliver_one(&store, "ann");
        // This test plays the compactor thread itself, so the sizes it sees do not depend on scheduling.
        if journal.wants_compaction() {
            journal.compact(&store).unwrap();
        }
        if i % 100 == 0 {
            largest = largest.max(dir_size(dir.path()));
        }
    }
    assert!(journal.compactions() > 10, "{} compactions", journal.compactions());
    assert!(history > 20 * MIN_BYTES, "the history ({history} bytes) is far longer than the threshold");
    assert!(largest < 2 * MIN_BYTES, "the directory peaked at {largest} bytes for {history} bytes of history");
    let expected = offline(store.snapshot());
    assert_eq!(expected[0].last_id, ROUNDS);
    drop((store, journal));
    let (store, _journal) = open(dir.path(), MIN_BYTES).unwrap();
    assert_eq!(store.snapshot(), expected);
}

#[test]
fn the_background_compactor_runs_while_requests_commit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bind(Config { compact_min_bytes: 4096, ..config(dir.path()) }).unwrap().spawn().unwrap();
    let addr = server.addr();
    register(addr, "ann");
    register(addr, "bob");
    let (ann, bob) = (Listener::bind(), Listener::bind());
    connect(addr, "ann", ann.port());
    connect(addr, "bob", bob.port());
    // Everything is delivered and acknowledged at once, so the history grows while the live state stays small:
    // exactly when compaction pays. Bounded: each SEND waits for its sync, which leaves the compactor time to run.
    let mut sent = 0;
    while sent < 3000 && !file_names(dir.path()).iter().any(|n| n.ends_with(".snap")) {
        sent += 1;
        assert_eq!(sent_id(send(addr, "ann", "bob", "some text to make the journal grow").unwrap()), sent);
        assert!(matches!(bob.next_push(), Push::Message { id, .. } if id == sent));
        assert_eq!(ann.next_push(), Push::Ack { id: sent });
    }
    assert!(file_names(dir.path()).iter().any(|n| n.ends_with(".snap")), "no compaction after {sent} SENDs");
    server.shutdown();
    let server = start(dir.path());
    let after = server.store().snapshot();
    assert_eq!(after.iter().map(|u| (u.alias.as_str(), u.last_id)).collect::<Vec<_>>(), [("ann", sent), ("bob", 0)]);
    assert!(after.iter().all(|u| u.queue.is_empty()), "{after:?}");
}
