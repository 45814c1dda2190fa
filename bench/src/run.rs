//! The standard run, step by step: register `--users` users, connect `--connected` of them with real push
//! listeners, optionally preload queues; then for each client thread count the trivial servers (with
//! `--baseline`) and the mix, back to back so that they see the same machine load; at the end connect every
//! offline recipient, wait for every delivery and acknowledgement, and check that each accepted message
//! arrived exactly once.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::baseline::Baselines;
use crate::cli::MixArgs;
use crate::mix::{run_mix, Accepted, MixPlan};
use crate::output::Json;
use crate::phase::Schedule;
use crate::population::{random_prefix, Population, MAX_DEFAULT_OFFLINE_RECIPIENTS};
use crate::procs::{self, Sampler, Server};
use crate::report::{self, load_average, Step};
use crate::verify::{verify, wait_for};
use crate::BenchError;

/// Interval of the server's memory samples during a phase.
const MEM_SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Runs the standard benchmark; `Ok(false)` when a message was lost, duplicated or misdelivered.
pub fn run(args: &MixArgs) -> Result<bool, BenchError> {
    args.check().map_err(BenchError::Usage)?;
    let show = !args.output.quiet;
    let schedule = Schedule { requests: args.requests, warmup: args.warmup, duration: args.duration };
    let baselines = if args.baseline || args.baseline_only {
        Some(Baselines::start().map_err(|e| BenchError::Runtime(format!("cannot start a trivial server: {e}")))?)
    } else {
        None
    };
    if let (true, Some(b)) = (args.baseline_only, &baselines) {
        let phases: Vec<_> =
            args.threads.iter().map(|&t| b.measure(schedule, t, args.target.timeout(), show)).collect();
        report::report_baseline_only(args.output.json, &phases);
        return Ok(true);
    }

    let server = Server::start(&args.target)?;
    let prefix = args.prefix.clone().unwrap_or_else(random_prefix);
    let wanted = args.offline_recipients.unwrap_or_else(|| args.connected.min(MAX_DEFAULT_OFFLINE_RECIPIENTS));
    let sizes = (args.users, args.connected, wanted);
    let mut pop = Population::new(server.addr, &prefix, sizes, args.target.timeout());
    pop.nodes = server.nodes.clone();
    if args.mix.send_offline > 0 && pop.offline.is_empty() {
        return Err(BenchError::Usage("the mix sends to offline users but --offline-recipients is 0".into()));
    }

    let mut json = Json::new();
    json.open();
    json.str("tool", "bench");
    json.str("server", &server.addr.to_string());
    json.num("nodes", server.nodes.len() as f64);
    if server.nodes.len() > 1 && !args.output.json {
        println!(
            "{} server nodes on one Redis; client thread t talks to node t mod {}",
            server.nodes.len(),
            server.nodes.len()
        );
    }
    let load_start = load_average();
    json.str("load_avg_start", &load_start);
    json.field("config");
    report::config_json(args, &mut json);
    let preloaded = setup(args, &server, &mut pop, &prefix, &mut json)?;

    let mut steps = Vec::new();
    let mut online_accepted: u64 = 0;
    for &threads in &args.threads {
        let baselines = baselines.as_ref().map(|b| b.measure(schedule, threads, args.target.timeout(), show));
        let sampler = server.pid.map(|p| Sampler::start(p, MEM_SAMPLE_EVERY));
        let cpu0 = server.pid.and_then(procs::cpu_of);
        let plan = MixPlan { mix: args.mix, size: args.size, seed: args.seed, schedule, record_times: false };
        let mut mix = run_mix(&pop, &plan, threads, show);
        mix.server_cpu = cpu0.zip(server.pid.and_then(procs::cpu_of)).map(|(a, b)| b - a);
        mix.mem = sampler.map(Sampler::finish).unwrap_or_default();
        online_accepted += mix.out.accepted.iter().filter(|a| a.online).count() as u64;
        // Let this phase's live deliveries land before the next phase measures anything.
        let drain = Duration::from_secs(args.drain_timeout);
        wait_for(&pop.counters, online_accepted, online_accepted, drain, show, "settling");
        let step = Step { baselines, mix };
        if !args.output.json {
            report::print_step(&step);
        }
        steps.push(step);
    }
    drop(baselines);
    finish(args, server, pop, preloaded, steps, json, &load_start)
}

/// Registration, connects and preload; their figures go into the JSON's `setup` object.
fn setup(
    args: &MixArgs,
    server: &Server,
    pop: &mut Population,
    prefix: &str,
    json: &mut Json,
) -> Result<Vec<Accepted>, BenchError> {
    // Registration: one walk of the server's registry per REGISTER in the list design, so it is timed.
    let mem0 = server.pid.and_then(procs::mem_of);
    let started = Instant::now();
    pop.register_all(args.setup_threads).map_err(BenchError::Runtime)?;
    let register_time = started.elapsed();
    let mem1 = server.pid.and_then(procs::mem_of);
    if !args.output.json {
        let secs = register_time.as_secs_f64();
        let rate = args.users as f64 / secs.max(1e-9);
        println!("registered {} users in {secs:.2} s ({rate:.0}/s); alias prefix {prefix:?}", args.users);
    }
    json.field("setup");
    json.open();
    json.num("register_s", register_time.as_secs_f64());
    if let (Some((a, _)), Some((b, _))) = (mem0, mem1) {
        json.num("rss_before_register_kb", a as f64);
        json.num("rss_after_register_kb", b as f64);
        let per_user = (b as f64 - a as f64) * 1024.0 / args.users as f64;
        json.num("bytes_per_user", per_user);
        if !args.output.json {
            println!("server RSS {a} kB -> {b} kB: {per_user:.0} bytes per registered user");
        }
    }
    let online = pop.online.clone();
    pop.connect_users(&online, args.setup_threads).map_err(BenchError::Runtime)?;
    let preloaded = if args.preload > 0 { preload(args, server, pop, json) } else { Vec::new() };
    json.close();
    Ok(preloaded)
}

/// `--preload`: queues messages for offline users and reports the server's memory per queued message.
fn preload(args: &MixArgs, server: &Server, pop: &Population, json: &mut Json) -> Vec<Accepted> {
    let before = server.pid.and_then(procs::mem_of);
    let started = Instant::now();
    let (accepted, errors) = pop.preload(args.preload, args.size, args.setup_threads);
    let took = started.elapsed();
    let after = server.pid.and_then(procs::mem_of);
    json.num("preload_messages", accepted.len() as f64);
    json.num("preload_errors", errors as f64);
    json.num("preload_s", took.as_secs_f64());
    if let (Some((a, _)), Some((b, _))) = (before, after) {
        let per = (b as f64 - a as f64) * 1024.0 / accepted.len().max(1) as f64;
        json.num("rss_before_preload_kb", a as f64);
        json.num("rss_after_preload_kb", b as f64);
        json.num("bytes_per_queued_message", per);
        if !args.output.json {
            let (n, secs) = (accepted.len(), took.as_secs_f64());
            println!(
                "queued {n} messages of {} bytes in {secs:.2} s: server RSS {a} kB -> {b} kB, {per:.0} bytes per message",
                args.size
            );
        }
    }
    if errors > 0 && !args.output.json {
        println!("preload: {errors} SENDs failed");
    }
    accepted
}

/// "Connect everybody", wait for the last deliveries, clean up, verify and report.
fn finish(
    args: &MixArgs,
    server: Server,
    mut pop: Population,
    preloaded: Vec<Accepted>,
    mut steps: Vec<Step>,
    mut json: Json,
    load_start: &str,
) -> Result<bool, BenchError> {
    let show = !args.output.quiet;
    // The offline recipients get listeners and CONNECT, which flushes their queues. The pushes still due from
    // here on (queued messages and every acknowledgement not yet received) give the drain's rate.
    let (m0, a0) = (pop.counters.messages.load(Ordering::Relaxed), pop.counters.acks.load(Ordering::Relaxed));
    let drain_started = Instant::now();
    let offline = pop.offline.clone();
    pop.connect_users(&offline, args.setup_threads).map_err(BenchError::Runtime)?;
    let mut all_accepted = preloaded;
    let mut unconfirmed = Vec::new();
    for step in &mut steps {
        all_accepted.append(&mut step.mix.out.accepted);
        unconfirmed.append(&mut step.mix.out.unconfirmed);
    }
    let total = all_accepted.len() as u64;
    let started = Instant::now();
    let drain = Duration::from_secs(args.drain_timeout);
    let complete = wait_for(&pop.counters, total, total, drain, show, "final delivery");
    let final_wait = started.elapsed();
    let pushes = (2 * total).saturating_sub(m0 + a0);
    let drain_rate = pushes as f64 / drain_started.elapsed().as_secs_f64().max(1e-9);

    // Clean up the server's state (unless we own the server: then we just stop it after the listeners).
    if server.spawned.is_none() && !args.keep_users {
        pop.cleanup(args.setup_threads);
    }
    let receptions = pop.stop_listeners();
    let server_exit = server.stop();
    let verdict = verify(&all_accepted, &unconfirmed, &receptions);
    let ok = verdict.ok() && complete;

    json.array("phases");
    for step in &steps {
        report::step_json(step, &mut json);
    }
    json.close_array();
    json.field("verify");
    verdict.json(&mut json);
    json.num("final_delivery_s", final_wait.as_secs_f64());
    json.num("final_pushes", pushes as f64);
    json.num("final_pushes_per_s", drain_rate);
    json.bool("complete", complete);
    if let Some(exit) = &server_exit {
        json.str("server_exit", exit);
    }
    json.str("load_avg_end", &load_average());
    json.bool("ok", ok);
    json.close();
    if args.output.json {
        println!("{}", json.into_string());
    } else {
        report::print_verdict(&verdict, final_wait, complete);
        println!("final drain: {pushes} pushes (queued messages and acknowledgements) at {drain_rate:.0}/s");
        if let Some(exit) = &server_exit {
            println!("server stopped: {exit}");
        }
        println!("load average at start: {load_start}");
        println!("load average at end:   {}", load_average());
        println!("{}", if ok { "OK" } else { "FAILED: messages lost, duplicated or misdelivered" });
    }
    Ok(ok)
}
