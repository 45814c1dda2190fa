//! Durability with a data directory (docs/operations.md): nothing acknowledged is lost across a clean
//! stop or a `kill -9`, ids are never reused, a torn journal tail is cut off, damage before the end stops the
//! start-up, a crash at any step of compaction recovers the same state, and the directory stays small.
//!
//! Every wait is bounded; nothing sleeps to synchronise; only 127.0.0.1 is used.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use protocol::{ConnectStatus, FieldReader, Push, RegisterStatus, Reply, Request, SendReply, UnregisterStatus};
use server::journal::{segment_name, CompactStep, FileJournal, JournalError, Options};
use server::store::{Entry, UserState};
use server::{Config, Server, ServerHandle, Store};

/// Upper bound on any single wait.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Length of a journal file header (magic, generation, CRC).
const FILE_HEADER_LEN: u64 = 20;

// ---------------------------------------------------------------------------------------------------------------
// Raw protocol helpers.

fn request(addr: SocketAddr, req: &Request) -> io::Result<Reply> {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    (&stream).write_all(&req.to_bytes())?;
    let _ = stream.shutdown(Shutdown::Write);
    Reply::read_from(req.op(), &mut FieldReader::new(BufReader::new(&stream))).map_err(io::Error::other)
}

fn register(addr: SocketAddr, alias: &str) -> Reply {
    let req =
        Request::Register { full_name: format!("{alias} full"), alias: alias.into(), birth_date: "01/01/2000".into() };
    request(addr, &req).unwrap()
}

fn connect(addr: SocketAddr, alias: &str, port: u16) -> Reply {
    request(addr, &Request::Connect { alias: alias.into(), port }).unwrap()
}

fn send(addr: SocketAddr, sender: &str, recipient: &str, text: &str) -> io::Result<Reply> {
    request(addr, &Request::Send { sender: sender.into(), recipient: recipient.into(), text: text.into() })
}

fn sent_id(reply: Reply) -> u32 {
    match reply {
        Reply::Send(SendReply::Accepted(id)) => id,
        other => panic!("SEND refused: {other:?}"),
    }
}

/// A listener on 127.0.0.1 that collects the server's pushes.
struct Inbox {
    port: u16,
    pushes: Receiver<Push>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Inbox {
    fn new() -> Inbox {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, pushes) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(TIMEOUT));
                if let Ok(push) = Push::read_from(&mut FieldReader::new(BufReader::new(&stream))) {
                    if tx.send(push).is_err() {
                        return;
                    }
                }
            }
        });
        Inbox { port, pushes, stop, thread: Some(thread) }
    }

    fn next(&self) -> Push {
        self.pushes.recv_timeout(TIMEOUT).expect("a push within the timeout")
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocked accept.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A child forked by `Command::spawn` holds a copy of every descriptor of this process until it execs, and a data
/// directory's lock (an `flock`) lives as long as any copy: a test that closes a journal and opens it again at that
/// very instant would find it still locked. So every spawn holds this for reading (`spawn` returns only once the
/// child has exec'd, which closes the copies), and every opening of a journal holds it for writing.
static FORK_GUARD: RwLock<()> = RwLock::new(());

fn spawn_child(cmd: &mut Command) -> Child {
    let _guard = FORK_GUARD.read().unwrap_or_else(|p| p.into_inner());
    cmd.spawn().unwrap()
}

fn bind(config: Config) -> io::Result<Server> {
    let _guard = FORK_GUARD.write().unwrap_or_else(|p| p.into_inner());
    Server::bind(config)
}

fn config(dir: &Path) -> Config {
    Config { data_dir: Some(dir.to_owned()), ..Config::localhost() }
}

fn start(dir: &Path) -> ServerHandle {
    bind(config(dir)).and_then(Server::spawn).unwrap()
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

fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir).unwrap().flatten().map(|e| e.metadata().map_or(0, |m| m.len())).sum()
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------------------------
// Store-level helpers: the journal driven directly, with a "crash" being a drop without any cleanup.

fn open(dir: &Path, compact_min_bytes: u64) -> Result<(Store, Arc<FileJournal>), JournalError> {
    let store = Store::new(1000);
    let _guard = FORK_GUARD.write().unwrap_or_else(|p| p.into_inner());
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
    let alice = Inbox::new();
    assert_eq!(connect(addr, "alice", alice.port), Reply::Connect(ConnectStatus::Ok));
    let ids: Vec<u32> = (1..=3).map(|i| sent_id(send(addr, "alice", "bob", &format!("m{i}")).unwrap())).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(
        request(addr, &Request::Unregister { alias: "carol".into() }).unwrap(),
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
    let bob = Inbox::new();
    assert_eq!(connect(addr, "bob", bob.port), Reply::Connect(ConnectStatus::Ok));
    for i in 1..=3 {
        assert_eq!(bob.next(), Push::Message { sender: "alice".into(), id: i, text: format!("m{i}") });
    }
    assert_eq!(connect(addr, "alice", alice.port), Reply::Connect(ConnectStatus::Ok));
    assert_eq!(sent_id(send(addr, "alice", "bob", "m4").unwrap()), 4);
    assert_eq!(bob.next(), Push::Message { sender: "alice".into(), id: 4, text: "m4".into() });
    let mut acks: Vec<u32> = (0..4)
        .map(|_| match alice.next() {
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
    let first = bind(config(dir.path())).unwrap();
    let err = bind(config(dir.path())).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("in use by another server") && text.contains("LOCK"), "{text}");
    assert!(text.contains(&format!("pid {}", std::process::id())), "the holder is named: {text}");
    drop(first);
    bind(config(dir.path())).expect("the lock goes with the server that held it");
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
    let text = bind(config(dir.path())).unwrap_err().to_string();
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
    let server = bind(Config { compact_min_bytes: 4096, ..config(dir.path()) }).unwrap().spawn().unwrap();
    let addr = server.addr();
    register(addr, "ann");
    register(addr, "bob");
    let (ann, bob) = (Inbox::new(), Inbox::new());
    connect(addr, "ann", ann.port);
    connect(addr, "bob", bob.port);
    // Everything is delivered and acknowledged at once, so the history grows while the live state stays small:
    // exactly when compaction pays. Bounded: each SEND waits for its sync, which leaves the compactor time to run.
    let mut sent = 0;
    while sent < 3000 && !file_names(dir.path()).iter().any(|n| n.ends_with(".snap")) {
        sent += 1;
        assert_eq!(sent_id(send(addr, "ann", "bob", "some text to make the journal grow").unwrap()), sent);
        assert!(matches!(bob.next(), Push::Message { id, .. } if id == sent));
        assert_eq!(ann.next(), Push::Ack { id: sent });
    }
    assert!(file_names(dir.path()).iter().any(|n| n.ends_with(".snap")), "no compaction after {sent} SENDs");
    server.shutdown();
    let server = start(dir.path());
    let after = server.store().snapshot();
    assert_eq!(after.iter().map(|u| (u.alias.as_str(), u.last_id)).collect::<Vec<_>>(), [("ann", sent), ("bob", 0)]);
    assert!(after.iter().all(|u| u.queue.is_empty()), "{after:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// kill -9 of the real binary in the middle of a stream of SENDs.

/// The server binary, running.
struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Process {
    fn start(dir: &Path) -> Process {
        let mut child = spawn_child(server_command(dir).stdout(Stdio::piped()).stderr(Stdio::null()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads the console to its end, so the server never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("s> init server ") {
                    let _ = tx.send(rest.trim().to_owned());
                }
            }
        });
        let shown = match rx.recv_timeout(TIMEOUT) {
            Ok(shown) => shown,
            Err(e) => {
                let _ = child.kill();
                panic!("no start-up line from the server: {e}");
            }
        };
        let addr: SocketAddr = shown.parse().unwrap_or_else(|e| panic!("start-up line {shown:?}: {e}"));
        Process { child, addr }
    }

    fn kill_9(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
    // A queue cap far above what a soak run queues, so that no SEND fails for a full queue.
    cmd.args(["--bind", "127.0.0.1", "-p", "0", "--max-queue", "1000000", "--compact-min-bytes", "8192", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to its end (bounded) and returns its exit success and standard error.
fn run_to_end(mut cmd: Command) -> (bool, String) {
    let mut child = spawn_child(cmd.stdout(Stdio::null()).stderr(Stdio::piped()));
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(text) => (child.wait().unwrap().success(), text),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the second server did not exit");
        }
    }
}

/// xorshift64: enough randomness for kill moments, and the seed is printed to replay a failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

const SENDERS: [&str; 4] = ["s0", "s1", "s2", "s3"];
/// Offline during the whole stream: its queue only grows, and is checked at the end for exactly-once, in order.
const OFFLINE: &str = "r0";
/// Connected in every round: its messages are pushed (and acknowledged) while the server may be killed, so the
/// journal holds the whole life cycle and compactions happen during the stream.
const ONLINE: &str = "r1";
/// Rounds of "start, stream SENDs, kill -9" (`DURABILITY_KILL_ROUNDS` overrides it for a longer soak).
const KILL_ROUNDS: usize = 4;
/// SENDs per sender thread per round, at most (the kill usually comes first).
const SENDS_PER_THREAD: usize = 400;

#[test]
fn kill_9_during_a_stream_of_sends_loses_no_acknowledged_message_and_reuses_no_id() {
    let seed = std::env::var("DURABILITY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    });
    println!("DURABILITY_SEED={seed}");
    let mut rng = Rng(seed);
    let rounds = std::env::var("DURABILITY_KILL_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(KILL_ROUNDS);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // (sender, id) -> (recipient, text) for every SEND that got status 0.
    let mut acked: HashMap<(String, u32), (String, String)> = HashMap::new();
    let mut last_id: HashMap<String, u32> = HashMap::new();
    // Listeners outlive the servers: every round's CONNECT names the same ports.
    let senders_inbox = Inbox::new();
    let online_inbox = Inbox::new();

    for round in 0..rounds {
        let server = Process::start(dir);
        let addr = server.addr;
        if round == 0 {
            for alias in SENDERS.iter().chain(&[OFFLINE, ONLINE]) {
                assert_eq!(register(addr, alias), Reply::Register(RegisterStatus::Ok));
            }
            let (ok, stderr) = run_to_end(server_command(dir));
            assert!(!ok && stderr.contains("in use by another server"), "second server: {stderr}");
        }
        // Everybody is offline after a restart; senders must be connected to send.
        for s in SENDERS {
            assert_eq!(connect(addr, s, senders_inbox.port), Reply::Connect(ConnectStatus::Ok), "round {round}");
        }
        assert_eq!(connect(addr, ONLINE, online_inbox.port), Reply::Connect(ConnectStatus::Ok), "round {round}");
        let kill_at = 50 + rng.next(600) as usize;
        let count = Arc::new(AtomicUsize::new(0));
        let (reached_tx, reached) = mpsc::channel::<()>();
        let threads: Vec<JoinHandle<Vec<(u32, String, String)>>> = SENDERS
            .iter()
            .enumerate()
            .map(|(t, sender)| {
                let (count, reached_tx) = (count.clone(), reached_tx.clone());
                thread::spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..SENDS_PER_THREAD {
                        let to = if (t + i) % 2 == 0 { OFFLINE } else { ONLINE };
                        let text = format!("round {round} {sender} #{i}");
                        // Once the server is killed, requests fail: the outcome of the ones in flight is unknown,
                        // and they are not counted as acknowledged.
                        let Ok(Reply::Send(SendReply::Accepted(id))) = send(addr, sender, to, &text) else { break };
                        mine.push((id, to.to_owned(), text));
                        if count.fetch_add(1, Ordering::SeqCst) + 1 == kill_at {
                            let _ = reached_tx.send(());
                        }
                    }
                    mine
                })
            })
            .collect();
        drop(reached_tx);
        // Either the target count is reached or every thread ran out of budget (the channel closes).
        let _ = reached.recv_timeout(Duration::from_secs(60));
        server.kill_9();
        for (t, thread) in threads.into_iter().enumerate() {
            let sender = SENDERS[t];
            for (id, to, text) in thread.join().unwrap() {
                let last = last_id.entry(sender.to_owned()).or_insert(0);
                assert!(id > *last, "{sender}: id {id} after {last} (round {round}, seed {seed})");
                *last = id;
                assert!(acked.insert((sender.to_owned(), id), (to, text)).is_none());
            }
        }
    }
    assert!(acked.len() >= rounds * 50, "only {} SENDs acknowledged", acked.len());

    // After the last kill: ids go on, and every acknowledged message is delivered.
    let server = Process::start(dir);
    let addr = server.addr;
    for s in SENDERS {
        assert_eq!(connect(addr, s, senders_inbox.port), Reply::Connect(ConnectStatus::Ok));
        let id = sent_id(send(addr, s, OFFLINE, "after the crashes").unwrap());
        let last = last_id.get(s).copied().unwrap_or(0);
        assert!(id > last, "{s}: id {id} reused after {last} (seed {seed})");
    }
    let offline_inbox = Inbox::new();
    assert_eq!(connect(addr, OFFLINE, offline_inbox.port), Reply::Connect(ConnectStatus::Ok));
    assert_eq!(connect(addr, ONLINE, online_inbox.port), Reply::Connect(ConnectStatus::Ok));
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = |r: &str| -> HashSet<(String, u32)> {
        acked.iter().filter(|(_, (to, _))| to == r).map(|(key, _)| key.clone()).collect()
    };
    let check_text = |sender: &str, id: u32, r: &str, text: &str| {
        if let Some((to, want)) = acked.get(&(sender.to_owned(), id)) {
            assert_eq!((to.as_str(), text), (r, want.as_str()), "{sender} #{id}");
        }
    };

    // The offline recipient never had a push before: exactly once, in order per sender.
    let mut wanted = missing(OFFLINE);
    let mut newest: HashMap<String, u32> = HashMap::new();
    while !wanted.is_empty() {
        assert!(Instant::now() < deadline, "{} acknowledged messages never delivered (seed {seed})", wanted.len());
        let Push::Message { sender, id, text } = offline_inbox.next() else { panic!("an ack pushed to {OFFLINE}") };
        let prev = newest.insert(sender.clone(), id).unwrap_or(0);
        assert!(id > prev, "{sender}: id {id} delivered after {prev}, or twice (seed {seed})");
        check_text(&sender, id, OFFLINE, &text);
        wanted.remove(&(sender, id));
    }
    // The online one was pushed to in every round: a push that succeeded just before a kill may come again
    // after the restart (at-least-once), but nothing acknowledged may be missing.
    let mut wanted = missing(ONLINE);
    let mut repeated = 0;
    let mut seen = HashSet::new();
    while !wanted.is_empty() {
        assert!(Instant::now() < deadline, "{} acknowledged messages never delivered (seed {seed})", wanted.len());
        let Push::Message { sender, id, text } = online_inbox.next() else { panic!("an ack pushed to {ONLINE}") };
        check_text(&sender, id, ONLINE, &text);
        if !seen.insert((sender.clone(), id)) {
            repeated += 1;
        }
        wanted.remove(&(sender, id));
    }
    let names = file_names(dir);
    assert!(names.iter().any(|n| n.ends_with(".snap")), "the journal was compacted along the way: {names:?}");
    let size = dir_size(dir);
    println!(
        "{} acknowledged SENDs over {rounds} kills, {repeated} pushes repeated after a kill; data directory {size} \
         bytes: {names:?}",
        acked.len()
    );
    drop(server);
}
