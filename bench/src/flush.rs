//! `bench flush`: how fast the server empties a queue. A sender queues `--queued` messages for a recipient who
//! is offline; the recipient then CONNECTs with a listener, and the server pushes the whole queue, one
//! connection per message, each delivery followed by an acknowledgement push to the sender (docs/protocol.md
//! 5.3 and 5.4). Reports messages and acknowledgements per second and checks that each message
//! arrived exactly once, in order of ids.

use std::time::{Duration, Instant};

use clap::Args;

use crate::cli::{Output, Target};
use crate::output::Json;
use crate::population::{random_prefix, Population};
use crate::procs::Server;
use crate::verify::{verify, wait_for, Verdict};
use crate::wire::Received;
use crate::BenchError;

/// Messages queued when not given: a queue as long as the server's default cap allows.
const DEFAULT_QUEUED: u64 = 10_000;

#[derive(Debug, Args)]
pub struct FlushArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub output: Output,
    /// Messages queued for the recipient before it connects. Past the server's queue cap (10,000 by default)
    /// the SENDs fail: raise it, e.g. `-- --max-queue 100000`.
    #[arg(long, env = "MSG_BENCH_QUEUED", default_value_t = DEFAULT_QUEUED)]
    pub queued: u64,
    /// Message text size in bytes (at least 18: the text carries the message number).
    #[arg(long, env = "MSG_BENCH_SIZE", default_value_t = 64)]
    pub size: usize,
    /// Threads that queue the messages.
    #[arg(long, default_value_t = 8)]
    pub setup_threads: usize,
    /// Seconds to wait for the whole queue and its acknowledgements.
    #[arg(long, default_value_t = 300)]
    pub drain_timeout: u64,
}

/// The flush's timeline, in nanoseconds of the run's clock.
#[derive(Debug, Default)]
struct Timeline {
    connect_sent_ns: u64,
    first_message_ns: u64,
    last_message_ns: u64,
    first_ack_ns: u64,
    last_ack_ns: u64,
    messages: u64,
    acks: u64,
    /// Messages that arrived with a lower id than the one before (the queue is FIFO: must be 0).
    out_of_order: u64,
    /// The longest time between two consecutive messages: a stall of about a second points at a connection
    /// attempt that the kernel retried (a full accept queue, or a SYN refused by a TIME_WAIT socket).
    longest_gap_ns: u64,
}

impl Timeline {
    fn from(receptions: &[(u32, Received)], recipient: u32, connect_sent_ns: u64) -> Timeline {
        let mut t =
            Timeline { connect_sent_ns, first_message_ns: u64::MAX, first_ack_ns: u64::MAX, ..Timeline::default() };
        let mut last_id = 0;
        let mut last_at = None;
        for &(user, r) in receptions {
            match r {
                Received::Message { at_ns, id, .. } if user == recipient => {
                    if let Some(prev) = last_at {
                        t.longest_gap_ns = t.longest_gap_ns.max(at_ns.saturating_sub(prev));
                    }
                    last_at = Some(at_ns);
                    t.messages += 1;
                    t.first_message_ns = t.first_message_ns.min(at_ns);
                    t.last_message_ns = t.last_message_ns.max(at_ns);
                    if id < last_id {
                        t.out_of_order += 1;
                    }
                    last_id = id;
                }
                Received::Ack { at_ns, .. } => {
                    t.acks += 1;
                    t.first_ack_ns = t.first_ack_ns.min(at_ns);
                    t.last_ack_ns = t.last_ack_ns.max(at_ns);
                }
                _ => {}
            }
        }
        t
    }

    /// Per second over `ns` nanoseconds.
    fn rate(n: u64, ns: u64) -> f64 {
        n as f64 / (ns as f64 / 1e9).max(1e-9)
    }

    fn messages_per_s(&self) -> f64 {
        Timeline::rate(self.messages, self.last_message_ns.saturating_sub(self.connect_sent_ns))
    }

    fn acks_per_s(&self) -> f64 {
        Timeline::rate(self.acks, self.last_ack_ns.saturating_sub(self.connect_sent_ns))
    }

    /// Milliseconds from the CONNECT being sent to `at_ns` (0 when nothing arrived).
    fn since_connect_ms(&self, at_ns: u64) -> f64 {
        if at_ns == u64::MAX {
            return 0.0;
        }
        at_ns.saturating_sub(self.connect_sent_ns) as f64 / 1e6
    }
}

pub fn run(args: &FlushArgs) -> Result<bool, BenchError> {
    if args.size < crate::wire::MIN_TEXT || args.size > protocol::MAX_FIELD_LEN {
        let (min, max) = (crate::wire::MIN_TEXT, protocol::MAX_FIELD_LEN);
        return Err(BenchError::Usage(format!("--size must be between {min} and {max}")));
    }
    let show = !args.output.quiet;
    let server = Server::start(&args.target)?;
    // Two users: 0 sends (online, gets the acknowledgements), 1 receives (offline until the flush).
    let mut pop = Population::new(server.addr, &random_prefix(), (2, 1, 1), args.target.timeout());
    pop.register_all(2).map_err(BenchError::Runtime)?;
    pop.connect_users(&[0], 1).map_err(BenchError::Runtime)?;
    let started = Instant::now();
    let (accepted, errors) = pop.preload(args.queued, args.size, args.setup_threads);
    let queue_s = started.elapsed().as_secs_f64();
    if errors > 0 {
        let hint = "past the server's queue cap? raise it, e.g. `-- --max-queue 100000`";
        return Err(BenchError::Runtime(format!("{errors} of {} SENDs failed ({hint})", args.queued)));
    }
    let connect_sent_ns = pop.clock.now_ns();
    pop.connect_users(&[1], 1).map_err(BenchError::Runtime)?;
    let n = accepted.len() as u64;
    let complete = wait_for(&pop.counters, n, n, Duration::from_secs(args.drain_timeout), show, "flush");
    let receptions = pop.stop_listeners();
    let server_exit = server.stop();
    let verdict = verify(&accepted, &[], &receptions);
    let timeline = Timeline::from(&receptions, 1, connect_sent_ns);
    let ok = complete && verdict.ok() && timeline.out_of_order == 0;
    report(args, queue_s, &timeline, &verdict, server_exit.as_deref(), ok);
    Ok(ok)
}

fn report(args: &FlushArgs, queue_s: f64, t: &Timeline, v: &Verdict, exit: Option<&str>, ok: bool) {
    if args.output.json {
        let mut j = Json::new();
        j.open();
        j.str("tool", "bench");
        j.str("mode", "flush");
        j.num("queued", args.queued as f64);
        j.num("size", args.size as f64);
        j.num("queue_s", queue_s);
        j.num("first_message_ms", t.since_connect_ms(t.first_message_ns));
        j.num("last_message_ms", t.since_connect_ms(t.last_message_ns));
        j.num("first_ack_ms", t.since_connect_ms(t.first_ack_ns));
        j.num("last_ack_ms", t.since_connect_ms(t.last_ack_ns));
        j.num("messages", t.messages as f64);
        j.num("messages_per_s", t.messages_per_s());
        j.num("acks", t.acks as f64);
        j.num("acks_per_s", t.acks_per_s());
        j.num("out_of_order", t.out_of_order as f64);
        j.num("longest_gap_ms", t.longest_gap_ns as f64 / 1e6);
        j.field("verify");
        v.json(&mut j);
        j.close_report(exit, ok);
        println!("{}", j.into_string());
        return;
    }
    println!("queued {} messages of {} bytes in {queue_s:.2} s", args.queued, args.size);
    let ms = |at_ns| t.since_connect_ms(at_ns);
    println!(
        "messages: {} at {:.0}/s (first {:.1} ms, last {:.1} ms after the CONNECT was sent)",
        t.messages,
        t.messages_per_s(),
        ms(t.first_message_ns),
        ms(t.last_message_ns)
    );
    println!("longest gap between two messages: {:.1} ms", t.longest_gap_ns as f64 / 1e6);
    println!(
        "acknowledgements to the sender: {} at {:.0}/s (first {:.1} ms, last {:.1} ms)",
        t.acks,
        t.acks_per_s(),
        ms(t.first_ack_ns),
        ms(t.last_ack_ns)
    );
    println!(
        "delivery: {} delivered exactly once, {} lost, {} duplicated, {} out of order; acknowledgements {}/{}",
        v.delivered, v.lost, v.duplicated, t.out_of_order, v.acks_ok, v.acks_expected
    );
    if let Some(exit) = exit {
        println!("server stopped: {exit}");
    }
    println!("{}", if ok { "OK" } else { "FAILED: incomplete, lost, duplicated or out of order" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_counts_from_the_connect() {
        let msg = |at_ns, id| Received::Message { at_ns, number: Some(u64::from(id)), sender: Some(0), id };
        let rec = [(1, msg(2_000_000, 1)), (0, Received::Ack { at_ns: 2_500_000, id: 1 }), (1, msg(1_000_000_000, 2))];
        let t = Timeline::from(&rec, 1, 0);
        assert_eq!((t.messages, t.acks, t.out_of_order), (2, 1, 0));
        assert_eq!(t.longest_gap_ns, 998_000_000);
        assert!((t.messages_per_s() - 2.0).abs() < 1e-9);
        assert!((t.since_connect_ms(t.first_message_ns) - 2.0).abs() < 1e-9);
        assert!((t.since_connect_ms(t.first_ack_ns) - 2.5).abs() < 1e-9);
    }

    #[test]
    fn a_lower_id_after_a_higher_one_is_out_of_order() {
        let msg = |at_ns, id| Received::Message { at_ns, number: None, sender: None, id };
        let t = Timeline::from(&[(1, msg(1, 2)), (1, msg(2, 1))], 1, 0);
        assert_eq!(t.out_of_order, 1);
    }
}
