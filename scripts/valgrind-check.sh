#!/usr/bin/env bash
# Leak check of the server, for CI: runs the release server (built with debug info, `[profile.release] debug = 1`)
# under valgrind memcheck, drives scripts/leak_session.py through every operation, queued deliveries, a dead
# listener and malformed input, stops the server with SIGTERM (its clean stop: no new connection, every connection
# thread joined, `main` returns), and fails on:
#   - any memory error or any definitely / indirectly / possibly lost block (valgrind's own exit code);
#   - more "still reachable" bytes at exit than MAX_STILL_REACHABLE (process-lifetime statics such as the boxed
#     logger are about 1.6 KB; the state the session leaves behind — users, a queue of undelivered messages —
#     is far more, so a registry that is not freed at shutdown fails here);
#   - file descriptors opened by the server and still open at exit;
#   - a server that does not stop within STOP_TIMEOUT, or a session reply that is not the expected one.
#
# Usage: scripts/valgrind-check.sh        (from anywhere; about 10 s plus the build on a 2-core machine)
# Logs: target/valgrind/memcheck.log (valgrind), console.log (the server's console), session.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Seconds for the server to start listening under valgrind (it runs 20-50 times slower there).
START_TIMEOUT=${START_TIMEOUT:-60}
# Seconds for the server to exit after SIGTERM (it joins its connection threads; a drain lasts 0.5 s at most).
STOP_TIMEOUT=${STOP_TIMEOUT:-60}
# Bound on the whole scripted session, in seconds.
SESSION_TIMEOUT=${SESSION_TIMEOUT:-300}
# Bytes still reachable at exit that are accepted as process-lifetime statics.
MAX_STILL_REACHABLE=${MAX_STILL_REACHABLE:-16384}
LOG_DIR=${LOG_DIR:-$ROOT/target/valgrind}
# Extra server arguments, e.g. SERVER_ARGS="--data-dir /tmp/x" to check the journalled server too.
SERVER_ARGS=${SERVER_ARGS:-}

if ! command -v valgrind > /dev/null; then
    echo "valgrind-check: valgrind is not installed (Debian: apt-get install valgrind)" >&2
    exit 1
fi
mkdir -p "$LOG_DIR"

echo "valgrind-check: building the release server"
cargo build --release --quiet -p server --bin server
BIN="$ROOT/target/release/server"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
valgrind --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=definite,indirect,possible \
    --error-exitcode=1 --track-fds=yes --log-file="$LOG_DIR/memcheck.log" \
    "$BIN" -p "$PORT" --bind 127.0.0.1 $SERVER_ARGS > "$LOG_DIR/console.log" 2>&1 &
VG_PID=$!
# Whatever happens below, no server is left running.
trap 'kill -KILL "$VG_PID" 2> /dev/null || true' EXIT

echo "valgrind-check: server under valgrind on 127.0.0.1:$PORT (pid $VG_PID)"
python3 - "$PORT" "$START_TIMEOUT" <<'EOF'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    try:
        # A connection that sends nothing is ignored by the server (docs/protocol.md 2.4).
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit("valgrind-check: the server did not start listening in time")
EOF

SESSION_RC=0
timeout "$SESSION_TIMEOUT" python3 "$ROOT/scripts/leak_session.py" 127.0.0.1 "$PORT" > "$LOG_DIR/session.log" 2>&1 \
    || SESSION_RC=$?
cat "$LOG_DIR/session.log"

echo "valgrind-check: stopping the server with SIGTERM"
kill -TERM "$VG_PID"
STOPPED=0
for _ in $(seq 1 $((STOP_TIMEOUT * 10))); do
    if ! kill -0 "$VG_PID" 2> /dev/null; then
        STOPPED=1
        break
    fi
    sleep 0.1
done
VG_RC=0
if [ "$STOPPED" = 1 ]; then
    wait "$VG_PID" || VG_RC=$?
else
    echo "valgrind-check: FAIL: the server did not exit within ${STOP_TIMEOUT}s of SIGTERM" >&2
    kill -KILL "$VG_PID" 2> /dev/null || true
    wait "$VG_PID" 2> /dev/null || true
    exit 1
fi
trap - EXIT

LOG="$LOG_DIR/memcheck.log"
summary() { grep -E "$1" "$LOG" | tail -1 | sed -E 's/^==[0-9]+== +//'; }
bytes_of() { grep -E "$1" "$LOG" | tail -1 | sed -E 's/.*: +([0-9,]+) bytes.*/\1/' | tr -d ,; }
echo "valgrind-check: $(summary 'definitely lost:')"
echo "valgrind-check: $(summary 'indirectly lost:')"
echo "valgrind-check: $(summary 'possibly lost:')"
echo "valgrind-check: $(summary 'still reachable:')"
echo "valgrind-check: $(summary 'ERROR SUMMARY:')"
echo "valgrind-check: $(summary 'FILE DESCRIPTORS:')"

FAIL=0
if [ "$SESSION_RC" != 0 ]; then
    echo "valgrind-check: FAIL: the scripted session failed (exit $SESSION_RC)" >&2
    FAIL=1
fi
if [ "$VG_RC" != 0 ]; then
    echo "valgrind-check: FAIL: valgrind reported memory errors or leaks (exit $VG_RC); see $LOG" >&2
    FAIL=1
fi
if ! grep -q "ERROR SUMMARY: 0 errors" "$LOG"; then
    echo "valgrind-check: FAIL: memory errors; see $LOG" >&2
    FAIL=1
fi
REACHABLE=$(bytes_of 'still reachable:')
# No leak summary at all means every block was freed ("All heap blocks were freed").
if [ -n "$REACHABLE" ] && [ "$REACHABLE" -gt "$MAX_STILL_REACHABLE" ]; then
    echo "valgrind-check: FAIL: $REACHABLE bytes still reachable at exit (> $MAX_STILL_REACHABLE): state not freed" >&2
    FAIL=1
fi
# Descriptors the server opened itself and did not close (inherited ones, such as valgrind's log, are the
# caller's business): each is listed as "Open ..." followed by where it was opened.
LEAKED_FDS=$(awk '/Open (file descriptor|AF_)/ { getline nxt; if (nxt !~ /inherited from parent/) n++ } END { print n + 0 }' "$LOG")
if [ "$LEAKED_FDS" -gt 0 ]; then
    echo "valgrind-check: FAIL: $LEAKED_FDS file descriptors opened by the server still open at exit; see $LOG" >&2
    FAIL=1
fi
if [ "$FAIL" != 0 ]; then
    exit 1
fi
echo "valgrind-check: OK: no leak, no memory error, clean stop"
