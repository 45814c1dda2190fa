#!/usr/bin/env python3
"""Prints the tables of docs/performance.md (medians over repetitions) from the JSON lines of perf-sweep.sh.

Usage: perf_summary.py RESULTS_DIR
"""

import json
import os
import statistics
import sys


def load(results, name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def loads(rows):
    return ", ".join(sorted({r.get("load_avg_start", "?").split()[0] for r in rows}))


def targets(rows, title):
    if not rows:
        return
    print(f"## {title} ({len(rows)} runs; 1-min load average at start: {loads(rows)})")
    print("| client threads | trivial conn/s, thread per conn | trivial conn/s, on accept thread | mix req/s "
          "| ratio (thread per conn) | ratio (accept thread) | mix p50 ms | mix p99 ms | trivial p99 ms "
          "| server CPU µs/req | trivial CPU µs/conn | lost | duplicated |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    by_threads = {}
    for r in rows:
        for p in r["phases"]:
            by_threads.setdefault(p["threads"], []).append((r, p))
    for threads in sorted(by_threads):
        items = by_threads[threads]
        ps = [p for _, p in items]
        print(
            f"| {threads} | {med([p.get('baseline', {}).get('conn_per_s') for p in ps]):.0f} "
            f"| {med([p.get('baseline_inline', {}).get('conn_per_s') for p in ps]):.0f} "
            f"| {med([p['req_per_s'] for p in ps]):.0f} | {med([p.get('ratio') for p in ps]):.3f} "
            f"| {med([p.get('ratio_inline') for p in ps]):.3f} "
            f"| {med([p['all']['p50_us'] / 1e3 for p in ps]):.2f} | {med([p['all']['p99_us'] / 1e3 for p in ps]):.2f} "
            f"| {med([p.get('baseline', {}).get('latency', {}).get('p99_us', 0) / 1e3 for p in ps]):.2f} "
            f"| {med([p.get('server_cpu_us_per_req') for p in ps]):.0f} "
            f"| {med([p.get('baseline', {}).get('server_cpu_us_per_conn') for p in ps]):.0f} "
            f"| {sum(r['verify']['lost'] for r, _ in items)} | {sum(r['verify']['duplicated'] for r, _ in items)} |"
        )
    print()


def users(rows):
    if not rows:
        return
    print(f"## Request cost against registered users (1 client thread; load at start: {loads(rows)})")
    print("| users | registration s | SEND online p50 µs | SEND offline p50 µs | CONNECTEDUSERS p50 µs "
          "| server CPU µs/req | bytes/user |")
    print("|---|---|---|---|---|---|---|")
    by_users = {}
    for r in rows:
        by_users.setdefault(r["config"]["users"], []).append(r)
    for n in sorted(by_users):
        rs = by_users[n]
        ps = [r["phases"][0] for r in rs]
        print(
            f"| {n} | {med([r['setup']['register_s'] for r in rs]):.2f} "
            f"| {med([p['send_online']['latency']['p50_us'] for p in ps]):.0f} "
            f"| {med([p['send_offline']['latency']['p50_us'] for p in ps]):.0f} "
            f"| {med([p['connected_users']['latency']['p50_us'] for p in ps]):.0f} "
            f"| {med([p.get('server_cpu_us_per_req') for p in ps]):.0f} "
            f"| {med([r['setup'].get('bytes_per_user') for r in rs]):.0f} |"
        )
    print()


def memory(rows):
    for r in rows:
        s = r["setup"]
        print(f"## Memory: {s.get('preload_messages', 0):.0f} queued messages of {r['config']['size']} bytes: "
              f"RSS {s.get('rss_before_preload_kb')} kB -> {s.get('rss_after_preload_kb')} kB, "
              f"{s.get('bytes_per_queued_message', float('nan')):.0f} bytes per message")
    print()


def flat(rows):
    for r in rows:
        for p in r["phases"]:
            rss = p.get("rss_kb", [])
            if not rss:
                continue
            print(f"## Flatness, mix {r['config']['mix']}, {p['window_s']:.0f} s at {p['threads']} threads: "
                  f"{p['req_per_s']:.0f} req/s, RSS first {rss[0]} kB, at 10 s {rss[min(10, len(rss) - 1)]} kB, "
                  f"last {rss[-1]} kB, max {max(rss)} kB; {p['offline_queued']} messages queued for offline users; "
                  f"threads at most {max(p.get('threads_seen', [0]))}; lost {r['verify']['lost']}, "
                  f"duplicated {r['verify']['duplicated']}")
    print()


def scale(rows):
    if not rows:
        return
    print(f"## Scale: populated users, server restarted on each size ({len(rows)} runs; medians)")
    print("| users | queued | restart s | RSS MB | bytes/user | bytes/queued msg | REGISTER/s | SEND p50/p99 µs "
          "| CONNECT p50/p99 µs | CONNECTEDUSERS p50/p99 µs | SIGUSR1: compaction ms, slowest SEND ms | lost |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    by_users = {}
    for r in rows:
        for size in r["sizes"]:
            by_users.setdefault(size["users"], []).append(size)
    for n in sorted(by_users):
        ss = by_users[n]

        def lat(key):
            return f"{med([s[key]['p50_us'] for s in ss]):.0f} / {med([s[key]['p99_us'] for s in ss]):.0f}"

        sig = [s["sigusr1"] for s in ss if "sigusr1" in s]
        sig_text = (f"{med([x.get('compaction_ms') for x in sig]):.0f}, "
                    f"{med([x['slowest_send_us'] / 1e3 for x in sig]):.1f}") if sig else "-"
        print(
            f"| {n} | {ss[0]['queued']} | {med([s['restart_s'] for s in ss]):.2f} "
            f"| {med([s['rss_kb'] / 1024 for s in ss]):.1f} | {med([s.get('bytes_per_user') for s in ss]):.0f} "
            f"| {med([s['bytes_per_queued_message'] for s in ss]):.0f} | {med([s['register_per_s'] for s in ss]):.0f} "
            f"| {lat('send')} | {lat('connect')} | {lat('connected_users')} | {sig_text} "
            f"| {sum(s['verify']['lost'] for s in ss)} |"
        )
    print()


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else "target/perf"
    targets(load(results, "targets.jsonl"), "Targets: mix vs trivial server, same run")
    targets(load(results, "threads.jsonl"), "Thread sweep")
    users(load(results, "users.jsonl"))
    memory(load(results, "memory.jsonl"))
    flat(load(results, "flat.jsonl"))
    scale(load(results, "scale.jsonl"))


if __name__ == "__main__":
    main()
