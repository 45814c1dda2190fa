//! Compaction under real conditions: while requests go on, after a backlog drains, and from a directory that a
//! tool populated. Every wait is bounded; only the data directory is touched.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use protocol::ConnectStatus;
use server::journal::{self, Durability, FileJournal, Options, COMPACT_FACTOR};
use server::store::{Entry, UserState};
use server::Store;
use testkit::dir_size;

const TIMEOUT: Duration = Duration::from_secs(20);

fn listener() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 9))
}

fn online(store: &Store, alias: &str) {
    let (status, epoch) = store.connect(alias, listener());
    assert_eq!(status, ConnectStatus::Ok);
    store.activate(alias, epoch);
}

/// Delivers `alias`'s whole queue (as successful pushes), then takes it offline.
fn drain(store: &Store, alias: &str) -> Vec<Entry> {
    store.disconnect(alias, None);
    let (status, epoch) = store.connect(alias, listener());
    assert_eq!(status, ConnectStatus::Ok);
    let mut pushed = Vec::new();
    if let Some(ticket) = store.activate(alias, epoch) {
        let mut next = store.next_job(&ticket);
        while let Some(job) = next {
            pushed.push(job.entry.clone());
            next = store.delivered(&ticket, &job).next;
        }
    }
    store.disconnect(alias, None);
    pushed
}

fn offline(mut users: Vec<UserState>) -> Vec<UserState> {
    for u in &mut users {
        u.connected = false;
    }
    users
}

/// Issue 20: once a large backlog is delivered and nothing else happens, the directory shrinks back to about the
/// live state by itself, without waiting for new traffic — checked on the files.
#[test]
fn a_drained_backlog_leaves_a_small_directory_without_further_traffic() {
    const MIN_BYTES: u64 = 16 * 1024;
    const BACKLOG: u32 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let (store, durability) =
        Durability::open(dir.path(), Store::new(10_000), Options { compact_min_bytes: MIN_BYTES }).unwrap();
    for alias in ["ann", "bob"] {
        store.register("", alias, "");
    }
    online(&store, "ann");
    for i in 0..BACKLOG {
        let accepted = store.send("ann", "bob", &format!("backlog message {i:05} with a little text"), None).unwrap();
        store.commit(accepted.position).unwrap();
    }
    store.disconnect("ann", None);
    // A backlog alone never makes compaction due (it is all live); snapshot it, as SIGUSR1 or an earlier
    // history would have.
    durability.journal().compact(&store).unwrap();
    let peak = dir_size(dir.path());
    assert!(peak > 10 * MIN_BYTES, "the backlog is large: {peak} bytes");

    assert_eq!(drain(&store, "bob").len(), BACKLOG as usize);
    assert_eq!(drain(&store, "ann").len(), BACKLOG as usize, "the acknowledgements");
    let started = Instant::now();
    loop {
        let (size, live) = (dir_size(dir.path()), store.live_bytes());
        if size <= MIN_BYTES.max(COMPACT_FACTOR * live) {
            break;
        }
        assert!(started.elapsed() < TIMEOUT, "the directory stays at {size} bytes for {live} live bytes");
        thread::sleep(Duration::from_millis(20));
    }
    let expected = offline(store.snapshot());
    drop((store, durability));
    let (store, _d) = Durability::open(dir.path(), Store::new(10_000), Options::default()).unwrap();
    assert_eq!(store.snapshot(), expected);
}

/// Issue 11: compactions running while SENDs commit lose nothing and reorder nothing.
#[test]
fn compaction_while_sends_go_on_loses_nothing() {
    const SENDERS: usize = 4;
    const EACH: u32 = 400;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(100_000);
    let journal = Arc::new(FileJournal::open(dir.path(), &store, Options { compact_min_bytes: u64::MAX }).unwrap());
    let store = store.with_journal(journal.clone());
    store.register("", "sink", "");
    let stop = Arc::new(AtomicBool::new(false));
    let compactor = {
        let (store, journal, stop) = (store.clone(), journal.clone(), stop.clone());
        thread::spawn(move || {
            let mut rounds = 0;
            while !stop.load(Ordering::SeqCst) && rounds < 10_000 {
                journal.compact(&store).unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    let senders: Vec<_> = (0..SENDERS)
        .map(|k| {
            let store = store.clone();
            thread::spawn(move || {
                let me = format!("s{k}");
                store.register("", &me, "");
                online(&store, &me);
                for i in 0..EACH {
                    let accepted = store.send(&me, "sink", &format!("{me} {i}"), None).unwrap();
                    assert_eq!(accepted.id, i + 1);
                    store.commit(accepted.position).unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let rounds = compactor.join().unwrap();
    assert!(rounds > 1, "compactions ran meanwhile: {rounds}");
    let expected = offline(store.snapshot());
    drop((store, journal));
    let store = Store::new(100_000);
    let _journal = FileJournal::open(dir.path(), &store, Options::default()).unwrap();
    assert_eq!(store.snapshot(), expected);
    let queue = &expected.iter().find(|u| u.alias == "sink").unwrap().queue;
    assert_eq!(queue.len(), SENDERS * EACH as usize);
    for k in 0..SENDERS {
        let me = format!("s{k}");
        let ids: Vec<u32> = queue
            .iter()
            .filter_map(|e| match e {
                Entry::Message { sender, id, .. } if **sender == *me => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, (1..=EACH).collect::<Vec<_>>(), "{me}'s messages, in order, each once");
    }
}

/// Issue 11: a directory written by `journal::populate` (as `bench populate` does) is recovered, served, and
/// recovered again after more changes.
#[test]
fn a_populated_directory_is_recovered_and_goes_on() {
    const USERS: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let users = (0..USERS).map(|k| UserState {
        alias: format!("user{k}"),
        full_name: format!("User {k}"),
        birth_date: "01/01/2000".into(),
        last_id: 1,
        connected: false,
        queue: vec![Entry::Message {
            sender: format!("user{}", (k + USERS - 1) % USERS).into(),
            id: 1,
            text: "x".repeat(64).into(),
        }],
    });
    journal::populate(dir.path(), users).unwrap();
    assert!(journal::populate(dir.path(), std::iter::empty()).is_err(), "never over an existing directory");
    let store = Store::new(10);
    let journal = Arc::new(FileJournal::open(dir.path(), &store, Options::default()).unwrap());
    let store = store.with_journal(journal.clone());
    let users = store.snapshot();
    assert_eq!(users.len(), USERS);
    assert_eq!(users[7].alias, "user7", "registration order is the order given");
    assert_eq!(users[7].queue.len(), 1);
    assert!(matches!(&drain(&store, "user7")[..], [Entry::Message { id: 1, .. }]));
    online(&store, "user0");
    assert_eq!(store.send("user0", "user1", "hello", None).unwrap().id, 2);
    journal.sync_all().unwrap();
    let expected = offline(store.snapshot());
    drop((store, journal));
    let store = Store::new(10);
    let _journal = FileJournal::open(dir.path(), &store, Options::default()).unwrap();
    assert_eq!(store.snapshot(), expected);
}
