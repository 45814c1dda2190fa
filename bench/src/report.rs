//! The standard run's report: a table per phase and the delivery verdict for people, or the same figures in
//! one JSON line (`--json`, read by scripts/perf_summary.py and scripts/plot.py).
//!
//! JSON shape of a phase: `baseline` is the thread-per-connection trivial server and `ratio` the mix against
//! it (the keys older result files have); `baseline_inline` and `ratio_inline` are the server that answers on
//! its accept thread.

use std::io::Write as _;
use std::thread;
use std::time::Duration;

use crate::cli::MixArgs;
use crate::mix::KINDS;
use crate::output::{us, Json, Table};
use crate::phase::Phase;
use crate::stats::Latency;
use crate::verify::Verdict;

/// One thread count's figures: the two trivial servers (with `--baseline`) and the mix.
pub struct Step {
    pub baselines: Option<(Phase, Phase)>,
    pub mix: Phase,
}

/// `/proc/loadavg`'s three averages, for the report (the machine is shared; figures need their context).
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

pub fn config_json(args: &MixArgs, json: &mut Json) {
    json.open();
    json.num("users", args.users as f64);
    json.num("connected", args.connected as f64);
    json.num("size", args.size as f64);
    json.str("mix", &format!("{},{},{}", args.mix.send_online, args.mix.send_offline, args.mix.users));
    json.num("duration_s", args.duration);
    json.num("warmup_s", args.warmup);
    if let Some(n) = args.requests {
        json.num("requests", n as f64);
    }
    json.num("preload", args.preload as f64);
    json.bool("baseline", args.baseline);
    json.num("cores", thread::available_parallelism().map_or(0, |n| n.get()) as f64);
    json.close();
}

/// A trivial server's phase as a JSON object.
fn baseline_json(b: &Phase, j: &mut Json) {
    j.open();
    j.num("conn_per_s", b.rate());
    j.num("errors", b.errors() as f64);
    if let Some(c) = b.cpu_per_request() {
        j.num("server_cpu_us_per_conn", c);
    }
    j.field("latency");
    b.out.lat[0].summary().json(j);
    j.close();
}

pub fn step_json(step: &Step, j: &mut Json) {
    let phase = &step.mix;
    j.open();
    j.num("threads", phase.threads as f64);
    if let Some((spawn, inline)) = &step.baselines {
        j.field("baseline");
        baseline_json(spawn, j);
        j.num("ratio", phase.rate() / spawn.rate().max(1e-9));
        j.field("baseline_inline");
        baseline_json(inline, j);
        j.num("ratio_inline", phase.rate() / inline.rate().max(1e-9));
    }
    j.num("window_s", phase.window.as_secs_f64());
    j.num("requests", phase.total() as f64);
    j.num("req_per_s", phase.rate());
    j.num("errors", phase.errors() as f64);
    if let Some(c) = phase.cpu_per_request() {
        j.num("server_cpu_us_per_req", c);
    }
    let mut all = Latency::default();
    for kind in KINDS {
        let s = &phase.out.lat[kind as usize];
        all.merge(s);
        let sum = s.summary();
        j.field(kind.name());
        j.open();
        j.num("req_per_s", sum.count as f64 / phase.window.as_secs_f64().max(1e-9));
        j.num("errors", phase.out.errors[kind as usize] as f64);
        j.field("latency");
        sum.json(j);
        j.close();
    }
    j.field("all");
    all.summary().json(j);
    j.array("error_examples");
    for e in &phase.out.examples {
        j.string(e);
    }
    j.close_array();
    j.num("offline_queued", phase.offline_queued as f64);
    if !phase.mem.is_empty() {
        j.nums("rss_t_s", &phase.mem.iter().map(|m| (m.t * 10.0).round() / 10.0).collect::<Vec<_>>());
        j.nums("rss_kb", &phase.mem.iter().map(|m| m.rss_kb as f64).collect::<Vec<_>>());
        j.nums("threads_seen", &phase.mem.iter().map(|m| m.threads as f64).collect::<Vec<_>>());
    }
    j.close();
}

/// One line per trivial server: its rate, latency, errors and CPU per connection.
pub fn baseline_line(kind: &str, b: &Phase) -> String {
    let s = b.out.lat[0].summary();
    let cpu = b.cpu_per_request().map_or(String::new(), |c| format!("  server CPU {c:.0} µs/conn"));
    format!("{kind}: {:.0} conn/s  p50 {}  p99 {}  errors {}{cpu}", b.rate(), us(s.p50_us), us(s.p99_us), b.errors())
}

/// The mix's table: one row per request kind and a total.
fn mix_table(phase: &Phase) -> Table {
    let mut table = Table::new(&["request", "count", "req/s", "p50", "p90", "p99", "max", "errors"]);
    let window = phase.window.as_secs_f64().max(1e-9);
    let mut all = Latency::default();
    let mut row = |name: &str, lat: &Latency, errors: u64| {
        let sum = lat.summary();
        table.row(vec![
            name.into(),
            sum.count.to_string(),
            format!("{:.0}", sum.count as f64 / window),
            us(sum.p50_us),
            us(sum.p90_us),
            us(sum.p99_us),
            us(sum.max_us),
            errors.to_string(),
        ]);
    };
    for kind in KINDS {
        let lat = &phase.out.lat[kind as usize];
        all.merge(lat);
        row(kind.name(), lat, phase.out.errors[kind as usize]);
    }
    row("all", &all, phase.errors());
    table
}

pub fn print_step(step: &Step) {
    let phase = &step.mix;
    println!();
    println!("== {} client threads, {:.1} s ==", phase.threads, phase.window.as_secs_f64());
    if let Some((spawn, inline)) = &step.baselines {
        println!("{}", baseline_line("trivial server, thread per connection", spawn));
        println!("{}", baseline_line("trivial server, answer on accept thread", inline));
    }
    print!("{}", mix_table(phase).render());
    if let Some((spawn, inline)) = &step.baselines {
        let rate = phase.rate();
        println!(
            "mix req/s against trivial conn/s: {:.3} (thread per connection), {:.3} (answer on accept thread)",
            rate / spawn.rate().max(1e-9),
            rate / inline.rate().max(1e-9)
        );
    }
    if let Some(c) = phase.cpu_per_request() {
        println!("server CPU {c:.0} µs per request");
    }
    for e in &phase.out.examples {
        println!("  error: {e}");
    }
    if let (Some(first), Some(last)) = (phase.mem.first(), phase.mem.last()) {
        let max = phase.mem.iter().map(|m| m.rss_kb).max().unwrap_or(0);
        let threads = phase.mem.iter().map(|m| m.threads).max().unwrap_or(0);
        println!(
            "server RSS {} kB -> {} kB (max {max} kB), at most {threads} threads; {} messages queued for offline users meanwhile",
            first.rss_kb, last.rss_kb, phase.offline_queued
        );
    }
    let _ = std::io::stdout().flush();
}

pub fn print_verdict(v: &Verdict, wait: Duration, complete: bool) {
    println!();
    let gave_up = if complete { "" } else { " (gave up waiting)" };
    println!(
        "delivery: {} accepted, {} delivered exactly once, {} lost, {} duplicated, {} misdelivered{gave_up}",
        v.accepted, v.delivered, v.lost, v.duplicated, v.misdelivered
    );
    if v.unconfirmed_delivered > 0 || v.foreign > 0 {
        println!(
            "  {} delivered whose SEND had no valid reply; {} foreign or malformed pushes",
            v.unconfirmed_delivered, v.foreign
        );
    }
    println!(
        "acknowledgements: {}/{} received, {} duplicated, {} unexpected",
        v.acks_ok, v.acks_expected, v.acks_duplicated, v.acks_unexpected
    );
    for (what, l) in [("SEND issued", &v.latency_from_send), ("SEND reply read", &v.latency)] {
        println!(
            "delivery latency to online recipients, {what} -> push read: p50 {}  p90 {}  p99 {}  max {}  ({} samples)",
            us(l.p50_us),
            us(l.p90_us),
            us(l.p99_us),
            us(l.max_us),
            l.count
        );
    }
    println!("final delivery (offline recipients connected) took {:.2} s", wait.as_secs_f64());
}

/// `--baseline-only`: both trivial servers per thread count, nothing else.
pub fn report_baseline_only(json_out: bool, phases: &[(Phase, Phase)]) {
    let mut json = Json::new();
    json.open();
    json.str("tool", "bench");
    json.str("mode", "baseline-only");
    json.array("phases");
    for (spawn, inline) in phases {
        json.open();
        json.num("threads", spawn.threads as f64);
        json.field("spawn");
        baseline_json(spawn, &mut json);
        json.field("inline");
        baseline_json(inline, &mut json);
        json.close();
        if !json_out {
            println!("c={}:", spawn.threads);
            println!("  {}", baseline_line("trivial server, thread per connection", spawn));
            println!("  {}", baseline_line("trivial server, answer on accept thread", inline));
        }
    }
    json.close_array();
    json.str("load_avg", &load_average());
    json.close();
    if json_out {
        println!("{}", json.into_string());
    } else {
        println!("load average: {}", load_average());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::WorkerOut;

    fn phase(threads: usize, requests: u64) -> Phase {
        let mut out = WorkerOut::default();
        for _ in 0..requests {
            out.lat[0].record(Duration::from_micros(100));
        }
        let window = Duration::from_secs(1);
        Phase { threads, window, out, mem: Vec::new(), server_cpu: None, issued: requests, offline_queued: 0 }
    }

    #[test]
    fn a_step_with_baselines_reports_both_ratios() {
        let step = Step { baselines: Some((phase(8, 400), phase(8, 1000))), mix: phase(8, 200) };
        let mut j = Json::new();
        step_json(&step, &mut j);
        let text = j.into_string();
        assert!(text.contains(r#""ratio":0.500"#), "{text}");
        assert!(text.contains(r#""ratio_inline":0.200"#), "{text}");
        assert!(text.contains(r#""baseline":{"conn_per_s":400"#), "{text}");
    }

    #[test]
    fn the_mix_table_ends_with_the_total() {
        let text = mix_table(&phase(1, 3)).render();
        let last = text.lines().last().unwrap_or_default();
        assert!(last.starts_with("all"), "{text}");
        assert!(last.contains("  3  "), "{text}");
    }
}
