//! `kill -9` of the real binary in the middle of a stream of SENDs (docs/operations.md): nothing acknowledged is
//! lost, no id is reused, every acknowledged message is delivered after the restart, exactly once to a recipient
//! that was offline throughout, and a second server on the same directory is refused.
//!
//! Every wait is bounded; nothing sleeps to synchronise; only 127.0.0.1 is used.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use protocol::{ConnectStatus, Push, RegisterStatus, Reply, SendReply};
use testkit::typed::{connect, register, send, sent_id};
use testkit::{dir_size, file_names, Listener, ServerProcess};

/// The flags of every server of the test: a queue cap far above what a soak run queues, so that no SEND fails for
/// a full queue, and compactions along the way.
const FLAGS: [&str; 4] = ["--max-queue", "1000000", "--compact-min-bytes", "8192"];

/// The server binary on `dir`, started and read up to its prompt.
fn start(dir: &Path) -> ServerProcess {
    ServerProcess::start(&data_dir_args(dir))
}

/// [`FLAGS`] and `--data-dir dir`.
fn data_dir_args(dir: &Path) -> Vec<&str> {
    let mut args = FLAGS.to_vec();
    args.extend(["--data-dir", dir.to_str().expect("a UTF-8 temporary directory")]);
    args
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
    let senders_inbox = Listener::bind();
    let online_inbox = Listener::bind();

    for round in 0..rounds {
        let server = start(dir);
        let addr = server.addr;
        if round == 0 {
            for alias in SENDERS.iter().chain(&[OFFLINE, ONLINE]) {
                assert_eq!(register(addr, alias), Reply::Register(RegisterStatus::Ok));
            }
            let (code, stderr) = ServerProcess::run_to_exit(&data_dir_args(dir));
            assert!(code != Some(0) && stderr.contains("in use by another server"), "second server: {stderr}");
        }
        // Everybody is offline after a restart; senders must be connected to send.
        for s in SENDERS {
            assert_eq!(connect(addr, s, senders_inbox.port()), Reply::Connect(ConnectStatus::Ok), "round {round}");
        }
        assert_eq!(connect(addr, ONLINE, online_inbox.port()), Reply::Connect(ConnectStatus::Ok), "round {round}");
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
    let server = start(dir);
    let addr = server.addr;
    for s in SENDERS {
        assert_eq!(connect(addr, s, senders_inbox.port()), Reply::Connect(ConnectStatus::Ok));
        let id = sent_id(send(addr, s, OFFLINE, "after the crashes").unwrap());
        let last = last_id.get(s).copied().unwrap_or(0);
        assert!(id > last, "{s}: id {id} reused after {last} (seed {seed})");
    }
    let offline_inbox = Listener::bind();
    assert_eq!(connect(addr, OFFLINE, offline_inbox.port()), Reply::Connect(ConnectStatus::Ok));
    assert_eq!(connect(addr, ONLINE, online_inbox.port()), Reply::Connect(ConnectStatus::Ok));
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
        let Push::Message { sender, id, text } = offline_inbox.next_push() else {
            panic!("an ack pushed to {OFFLINE}")
        };
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
        let Push::Message { sender, id, text } = online_inbox.next_push() else { panic!("an ack pushed to {ONLINE}") };
        check_text(&sender, id, ONLINE, &text);
        if !seen.insert((sender.clone(), id)) {
            repeated += 1;
        }
        wanted.remove(&(sender, id));
    }
    // The compactor runs on its own thread: the last round's compaction may still be under way.
    testkit::eventually("the journal compacted along the way (a snapshot)", || {
        file_names(dir).iter().any(|n| n.ends_with(".snap"))
    });
    let names = file_names(dir);
    let size = dir_size(dir);
    println!(
        "{} acknowledged SENDs over {rounds} kills, {repeated} pushes repeated after a kill; data directory {size} \
         bytes: {names:?}",
        acked.len()
    );
    drop(server);
}
