#!/usr/bin/env bash
# Collects the figures of docs/performance.md and redraws its plots.
#
#   scripts/perf-sweep.sh [RESULTS_DIR]        (default target/perf; about 25 minutes with the defaults)
#
# Each step appends `bench --json` lines to RESULTS_DIR/<step>.jsonl, then scripts/plot.py reduces repetitions to
# medians and writes docs/perf-threads.svg and docs/perf-users.svg. Steps can be chosen with STEPS, and the
# sizes with the variables below, e.g. `STEPS="threads" REPS=5 DURATION=20 scripts/perf-sweep.sh`.
# The machine's load average is in every JSON line (load_avg_start, load_avg_end): run it on a quiet machine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${1:-$ROOT/target/perf}
STEPS=${STEPS:-"targets threads users memory flat scale"}
# Repetitions of each measurement (the plots and tables use the median).
REPS=${REPS:-3}
# Seconds per phase (after a one-second warm-up).
DURATION=${DURATION:-10}
# Client threads of the thread sweep.
THREAD_COUNTS=${THREAD_COUNTS:-1,2,4,8,16,32,64}
# Registered-user counts of the scale sweep; the largest is measured once (its registration alone is O(n^2)).
USER_COUNTS=${USER_COUNTS:-"100 1000 10000"}
BIG_USERS=${BIG_USERS:-100000}
# Requests per scale measurement (one client thread).
SCALE_REQUESTS=${SCALE_REQUESTS:-3000}
# Population sizes of the scale step (bench scale: populated data directories, the server restarted on each).
SCALE_USERS=${SCALE_USERS:-100,10000,1000000}
# Seconds of the memory-flatness runs.
FLAT_SECONDS=${FLAT_SECONDS:-60}

mkdir -p "$OUT"
cargo build --release --quiet -p server -p bench
SERVER="$ROOT/target/release/server"
BENCH="$ROOT/target/release/bench"
bench() { "$BENCH" --spawn-server "$SERVER" --json -q "$@"; }

for step in $STEPS; do
    case "$step" in
    targets)
        # The targets of issue 6: the mix against the trivial server, at 8 and 64 client threads, same run.
        for _ in $(seq "$REPS"); do bench --baseline -c 8,64 -d "$DURATION" >> "$OUT/targets.jsonl"; done
        ;;
    threads)
        for _ in $(seq "$REPS"); do bench --baseline -c "$THREAD_COUNTS" -d "$DURATION" >> "$OUT/threads.jsonl"; done
        ;;
    users)
        for users in $USER_COUNTS; do
            for _ in $(seq "$REPS"); do
                bench -u "$users" --connected 50 -c 1 -n "$SCALE_REQUESTS" --warmup 0 >> "$OUT/users.jsonl"
            done
        done
        if [ -n "$BIG_USERS" ]; then
            bench -u "$BIG_USERS" --connected 50 -c 1 -n "$SCALE_REQUESTS" --warmup 0 --setup-threads 2 >> "$OUT/users.jsonl"
        fi
        ;;
    memory)
        # Bytes per registered user (100k users) and per queued 64-byte message (100k queued).
        bench -u 100 --preload 100000 -c 8 -d 2 >> "$OUT/memory.jsonl"
        ;;
    flat)
        # RSS sampled every second for a long run: with the standard mix (the offline queues grow by design) and
        # without SENDs to offline users (nothing accumulates: the RSS must stay flat).
        bench -c 8 -d "$FLAT_SECONDS" >> "$OUT/flat.jsonl"
        bench -c 8 -d "$FLAT_SECONDS" --mix 75,0,25 >> "$OUT/flat.jsonl"
        ;;
    scale)
        for _ in $(seq "$REPS"); do
            "$BENCH" scale --spawn-server "$SERVER" --users "$SCALE_USERS" --sigusr1 --json -q >> "$OUT/scale.jsonl"
        done
        ;;
    *)
        echo "perf-sweep: unknown step $step" >&2
        exit 2
        ;;
    esac
    echo "perf-sweep: $step done"
done
python3 "$ROOT/scripts/plot.py" "$OUT" "$ROOT/docs"
python3 "$ROOT/scripts/perf_summary.py" "$OUT"
