//! The exactly-once check: every accepted SEND reached its recipient once, from the right sender, under the
//! id its reply gave, and every delivered message's acknowledgement reached its sender (docs/protocol.md
//! 5.2 and 5.3). Workers and listeners log into their own vectors; this module joins them once, at the end.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crate::mix::Accepted;
use crate::output::Json;
use crate::progress::Progress;
use crate::stats::{Latency, Summary};
use crate::wire::{Counters, Received};

/// Polling step while waiting for deliveries to arrive.
const WAIT_POLL: Duration = Duration::from_millis(20);

/// The delivery check.
#[derive(Debug, Default)]
pub struct Verdict {
    pub accepted: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub misdelivered: u64,
    /// Delivered although its SEND got no valid reply (the server accepted it; the reply was lost).
    pub unconfirmed_delivered: u64,
    /// Pushes that are not messages of this run, or not valid pushes at all.
    pub foreign: u64,
    pub acks_expected: u64,
    pub acks_ok: u64,
    pub acks_duplicated: u64,
    pub acks_unexpected: u64,
    /// From the SEND's reply read to the push read (0 when the push overtook the reply).
    pub latency: Summary,
    /// From the SEND issued to the push read (includes the SEND's own round trip).
    pub latency_from_send: Summary,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.misdelivered == 0
            && self.acks_duplicated == 0
            && self.acks_ok == self.acks_expected
    }

    pub fn json(&self, j: &mut Json) {
        j.open();
        for (key, value) in [
            ("accepted", self.accepted),
            ("delivered", self.delivered),
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("misdelivered", self.misdelivered),
            ("unconfirmed_delivered", self.unconfirmed_delivered),
            ("foreign", self.foreign),
            ("acks_expected", self.acks_expected),
            ("acks_ok", self.acks_ok),
            ("acks_duplicated", self.acks_duplicated),
            ("acks_unexpected", self.acks_unexpected),
        ] {
            j.num(key, value as f64);
        }
        j.field("delivery_latency");
        self.latency.json(j);
        j.field("delivery_latency_from_send");
        self.latency_from_send.json(j);
        j.close();
    }
}

/// Checks `receptions` (listener user, what it read) against the `accepted` SENDs.
pub fn verify(accepted: &[Accepted], unconfirmed: &[u64], receptions: &[(u32, Received)]) -> Verdict {
    let mut v = Verdict { accepted: accepted.len() as u64, ..Verdict::default() };
    let seen = check_messages(&mut v, accepted, unconfirmed, receptions);
    check_acks(&mut v, accepted, &seen, receptions);
    v
}

/// Counts deliveries per accepted SEND (returned, in `accepted` order) and fills the message figures.
fn check_messages(
    v: &mut Verdict,
    accepted: &[Accepted],
    unconfirmed: &[u64],
    receptions: &[(u32, Received)],
) -> Vec<u32> {
    let index: HashMap<u64, usize> = accepted.iter().enumerate().map(|(i, a)| (a.number, i)).collect();
    let unconfirmed: HashSet<u64> = unconfirmed.iter().copied().collect();
    let mut seen = vec![0u32; accepted.len()];
    let (mut latency, mut from_send) = (Latency::default(), Latency::default());
    for &(listener, r) in receptions {
        let Received::Message { at_ns, number, sender, id } = r else { continue };
        let Some(number) = number else {
            v.foreign += 1;
            continue;
        };
        let Some(&i) = index.get(&number) else {
            if unconfirmed.contains(&number) {
                v.unconfirmed_delivered += 1;
            } else {
                v.misdelivered += 1;
            }
            continue;
        };
        let a = &accepted[i];
        if a.recipient != listener || sender != Some(a.sender) || id != a.id {
            v.misdelivered += 1;
            continue;
        }
        seen[i] += 1;
        if seen[i] > 1 {
            v.duplicated += 1;
            continue;
        }
        v.delivered += 1;
        if a.online {
            // The push can overtake the reply (the server writes the reply first, but our worker may read it
            // later than the listener reads the push): such a delivery counts as zero.
            latency.record_ns(at_ns.saturating_sub(a.at_ns));
            from_send.record_ns(at_ns.saturating_sub(a.sent_ns));
        }
    }
    v.lost = seen.iter().filter(|&&n| n == 0).count() as u64;
    v.latency = latency.summary();
    v.latency_from_send = from_send.summary();
    seen
}

/// Every delivered message owes its sender one acknowledgement carrying its id.
fn check_acks(v: &mut Verdict, accepted: &[Accepted], seen: &[u32], receptions: &[(u32, Received)]) {
    let mut acks: HashMap<(u32, u32), u32> = HashMap::new();
    for (a, _) in accepted.iter().zip(seen).filter(|(_, &n)| n > 0) {
        *acks.entry((a.sender, a.id)).or_default() += 1;
    }
    v.acks_expected = acks.values().map(|&n| u64::from(n)).sum();
    for &(listener, r) in receptions {
        match r {
            Received::Ack { id, .. } => match acks.get_mut(&(listener, id)) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    v.acks_ok += 1;
                }
                Some(_) => v.acks_duplicated += 1,
                None => v.acks_unexpected += 1,
            },
            Received::Malformed => v.foreign += 1,
            Received::Message { .. } => {}
        }
    }
}

/// Waits until the listeners have seen `messages` messages and `acks` acknowledgements, or `limit` passes.
pub fn wait_for(counters: &Counters, messages: u64, acks: u64, limit: Duration, show: bool, label: &str) -> bool {
    let started = Instant::now();
    let mut bar = Progress::new(label, messages + acks, show);
    // Bounded by `limit`.
    let complete = loop {
        let (m, a) = (counters.messages.load(Ordering::Relaxed), counters.acks.load(Ordering::Relaxed));
        if m >= messages && a >= acks {
            break true;
        }
        if started.elapsed() >= limit || crate::stopping() {
            bar.note(&format!("gave up after {:?}: {m}/{messages} messages, {a}/{acks} acks", started.elapsed()));
            break false;
        }
        bar.update(m.min(messages) + a.min(acks), || format!("{m}/{messages} messages, {a}/{acks} acks"));
        thread::sleep(WAIT_POLL);
    };
    bar.finish();
    complete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(number: u64, sender: u32, recipient: u32, id: u32) -> Accepted {
        Accepted { number, sender, recipient, id, sent_ns: 0, at_ns: 0, online: true }
    }

    fn message(number: u64, sender: u32, id: u32) -> Received {
        Received::Message { at_ns: 10, number: Some(number), sender: Some(sender), id }
    }

    #[test]
    fn one_delivery_and_one_ack_each_is_ok() {
        let acc = [accepted(1, 0, 1, 7), accepted(2, 1, 0, 3)];
        let rec = [
            (1, message(1, 0, 7)),
            (0, message(2, 1, 3)),
            (0, Received::Ack { at_ns: 0, id: 7 }),
            (1, Received::Ack { at_ns: 0, id: 3 }),
        ];
        let v = verify(&acc, &[], &rec);
        assert!(v.ok(), "{v:?}");
        assert_eq!((v.delivered, v.acks_ok), (2, 2));
    }

    #[test]
    fn lost_duplicated_and_misdelivered_are_told_apart() {
        let acc = [accepted(1, 0, 1, 7), accepted(2, 0, 1, 8), accepted(3, 0, 1, 9)];
        let rec = [
            (1, message(1, 0, 7)),
            (1, message(1, 0, 7)),
            (2, message(2, 0, 8)),
            (0, Received::Ack { at_ns: 0, id: 7 }),
        ];
        let v = verify(&acc, &[], &rec);
        assert_eq!((v.lost, v.duplicated, v.misdelivered), (2, 1, 1));
        assert!(!v.ok());
    }

    #[test]
    fn a_missing_acknowledgement_fails_the_run() {
        let acc = [accepted(1, 0, 1, 7)];
        let v = verify(&acc, &[], &[(1, message(1, 0, 7))]);
        assert_eq!((v.acks_expected, v.acks_ok), (1, 0));
        assert!(!v.ok());
    }
}
