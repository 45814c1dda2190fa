//! `bench scale`'s figures per size and their report (a table, or one JSON line with `--json`).
//!
//! Memory is read from `/proc/PID/status` (VmRSS) once the server has loaded its data directory. Bytes per
//! queued message are measured live at each size: the RSS growth while the bench queues `--probe-queue`
//! messages for one offline user. Bytes per user compare each size with the smallest: the RSS difference, less
//! the difference in populated messages at the measured cost per message, divided by the difference in users.
//! RSS counts pages, not bytes allocated, so small sizes give coarse figures; the largest size is the one to
//! quote.

use std::io;
use std::time::Instant;

use crate::output::{us, Json, Table};
use crate::populate::Shape;
use crate::stats::Latency;
use crate::verify::Verdict;

/// What a SIGUSR1 compaction during the SEND phase did to the SENDs.
#[derive(Debug, Default)]
pub struct Compaction {
    /// Milliseconds from the signal to the server's compaction line (None: no line in time).
    pub took_ms: Option<f64>,
    /// The server's line.
    pub line: Option<String>,
    /// SENDs that were in flight at some point between the signal and the line (or the end of the phase).
    pub sends: u64,
    /// The slowest of them, in microseconds.
    pub slowest_us: f64,
    /// Why the signal could not be sent.
    pub error: Option<String>,
}

impl Compaction {
    /// From the SEND phase's (start, duration) pairs and the signal's time (`at_ns` on `clock`, `at`).
    pub fn from_times(
        times: &[(u64, u64)],
        at_ns: u64,
        at: Instant,
        done: Option<(Instant, String)>,
        error: Option<io::Error>,
    ) -> Compaction {
        let took = done.as_ref().map(|(t, _)| t.saturating_duration_since(at));
        let end_ns = match took {
            Some(d) => at_ns.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            None => times.iter().map(|&(s, d)| s.saturating_add(d)).max().unwrap_or(at_ns),
        };
        let during: Vec<u64> =
            times.iter().filter(|&&(s, d)| s <= end_ns && s.saturating_add(d) >= at_ns).map(|&(_, d)| d).collect();
        Compaction {
            took_ms: took.map(|d| d.as_secs_f64() * 1e3),
            line: done.map(|(_, l)| l),
            sends: during.len() as u64,
            slowest_us: during.iter().copied().max().unwrap_or(0) as f64 / 1e3,
            error: error.map(|e| e.to_string()),
        }
    }
}

/// Everything measured at one size.
#[derive(Debug, Default)]
pub struct SizeResult {
    pub shape: Shape,
    pub populate_s: f64,
    pub restart_s: f64,
    pub rss_kb: u64,
    pub bytes_per_message: f64,
    pub register_per_s: f64,
    pub connect: Latency,
    pub send: Latency,
    pub connected_users: Latency,
    pub compaction: Option<Compaction>,
    pub errors: u64,
    pub complete: bool,
    pub verdict: Verdict,
    pub server_exit: String,
}

impl SizeResult {
    pub fn ok(&self) -> bool {
        self.complete && self.verdict.ok()
    }

    /// Bytes per user against the smallest size `base` (None for the smallest itself).
    pub fn bytes_per_user(&self, base: &SizeResult) -> Option<f64> {
        let users = self.shape.users.checked_sub(base.shape.users).filter(|&d| d > 0)? as f64;
        let messages = self.shape.queued as f64 - base.shape.queued as f64;
        let rss = (self.rss_kb as f64 - base.rss_kb as f64) * 1024.0;
        Some((rss - messages * self.bytes_per_message) / users)
    }

    fn json(&self, base: &SizeResult, j: &mut Json) {
        j.open();
        j.num("users", self.shape.users as f64);
        j.num("queued", self.shape.queued as f64);
        j.num("populate_s", self.populate_s);
        j.num("restart_s", self.restart_s);
        j.num("rss_kb", self.rss_kb as f64);
        j.num("bytes_per_user", self.bytes_per_user(base).unwrap_or(f64::NAN));
        j.num("bytes_per_queued_message", self.bytes_per_message);
        j.num("register_per_s", self.register_per_s);
        for (key, lat) in [("send", &self.send), ("connect", &self.connect), ("connected_users", &self.connected_users)]
        {
            j.field(key);
            lat.summary().json(j);
        }
        if let Some(c) = &self.compaction {
            j.field("sigusr1");
            j.open();
            j.num("compaction_ms", c.took_ms.unwrap_or(f64::NAN));
            j.str("line", c.line.as_deref().unwrap_or(""));
            j.num("sends_during", c.sends as f64);
            j.num("slowest_send_us", c.slowest_us);
            if let Some(e) = &c.error {
                j.str("error", e);
            }
            j.close();
        }
        j.num("errors", self.errors as f64);
        j.field("verify");
        self.verdict.json(j);
        j.bool("complete", self.complete);
        j.str("server_exit", &self.server_exit);
        j.close();
    }
}

pub fn report(json_out: bool, results: &[SizeResult]) {
    let Some(base) = results.iter().min_by_key(|r| r.shape.users) else { return };
    if json_out {
        let mut j = Json::new();
        j.open();
        j.str("tool", "bench");
        j.str("mode", "scale");
        j.array("sizes");
        for r in results {
            r.json(base, &mut j);
        }
        j.close_array();
        j.bool("ok", results.iter().all(SizeResult::ok));
        j.close();
        println!("{}", j.into_string());
        return;
    }
    print!("{}", table(results, base).render());
    println!(
        "B/user: RSS above the smallest size, less its extra populated messages at the measured B/msg, per extra \
         user. B/msg: RSS growth while queueing messages live."
    );
    for r in results {
        if let Some(c) = &r.compaction {
            let took = c.took_ms.map_or("no compaction line in time".to_owned(), |ms| format!("{ms:.0} ms"));
            println!(
                "{} users, SIGUSR1: compaction {took}; {} SENDs meanwhile, slowest {}{}",
                r.shape.users,
                c.sends,
                us(c.slowest_us),
                c.error.as_deref().map_or(String::new(), |e| format!(" (signal failed: {e})"))
            );
        }
        let v = &r.verdict;
        println!(
            "{} users: {} accepted, {} delivered exactly once, {} lost, {} duplicated; {} request errors; server {}",
            r.shape.users, v.accepted, v.delivered, v.lost, v.duplicated, r.errors, r.server_exit
        );
    }
    println!("{}", if results.iter().all(SizeResult::ok) { "OK" } else { "FAILED: deliveries lost or incomplete" });
}

fn table(results: &[SizeResult], base: &SizeResult) -> Table {
    let header = [
        "users",
        "queued",
        "populate",
        "restart",
        "RSS MB",
        "B/user",
        "B/msg",
        "REGISTER/s",
        "SEND p50",
        "SEND p99",
        "CONNECT p50",
        "CONNECT p99",
        "USERS p50",
        "USERS p99",
    ];
    let mut t = Table::new(&header);
    for r in results {
        let (send, connect, users) = (r.send.summary(), r.connect.summary(), r.connected_users.summary());
        t.row(vec![
            r.shape.users.to_string(),
            r.shape.queued.to_string(),
            format!("{:.2} s", r.populate_s),
            format!("{:.2} s", r.restart_s),
            format!("{:.1}", r.rss_kb as f64 / 1024.0),
            r.bytes_per_user(base).map_or("-".to_owned(), |b| format!("{b:.0}")),
            format!("{:.0}", r.bytes_per_message),
            format!("{:.0}", r.register_per_s),
            us(send.p50_us),
            us(send.p99_us),
            us(connect.p50_us),
            us(connect.p99_us),
            us(users.p50_us),
            us(users.p99_us),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn size(users: u64, queued: u64, rss_kb: u64, bytes_per_message: f64) -> SizeResult {
        SizeResult { shape: Shape { users, queued, size: 64 }, rss_kb, bytes_per_message, ..SizeResult::default() }
    }

    #[test]
    fn bytes_per_user_discount_the_extra_messages() {
        let base = size(100, 100, 4_000, 200.0);
        // 1,000,000 more users and messages; 200 B per message: 1000 kB for the users' part of 1e6 users...
        let big = size(1_000_100, 1_000_100, 4_000 + 400_000, 200.0);
        let per_user = big.bytes_per_user(&base).expect("a larger size");
        assert!((per_user - (400_000.0 * 1024.0 - 1_000_000.0 * 200.0) / 1_000_000.0).abs() < 1e-6);
        assert_eq!(base.bytes_per_user(&base), None);
    }

    #[test]
    fn the_slowest_send_is_taken_over_the_compaction_window() {
        let at = Instant::now();
        // Signal at 1000 ns, compaction line 1 µs later: the window is [1000, 2000] ns.
        let times = [(0, 500), (900, 300), (1500, 5000), (2500, 9000)];
        let c =
            Compaction::from_times(&times, 1000, at, Some((at + Duration::from_micros(1), "compaction".into())), None);
        assert_eq!(c.sends, 2);
        assert!((c.slowest_us - 5.0).abs() < 1e-9);
        assert!((c.took_ms.unwrap_or(0.0) - 0.001).abs() < 1e-9);
    }

    #[test]
    fn the_table_has_a_row_per_size() {
        let rows = [size(100, 100, 4_000, 200.0), size(10_000, 10_000, 8_000, 200.0)];
        let text = table(&rows, &rows[0]).render();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.lines().nth(3).unwrap_or_default().starts_with("10000"), "{text}");
    }
}
