#!/usr/bin/env bash
# Runs README.md's commands as a newcomer would: the server command of "Two commands" and the scripted client
# example, taken from README.md itself, and checks what the client prints. The server is bound to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
server_cmd=$(grep -m1 -E '^cargo run --release -p server -- -p [0-9]+$' README.md)
client_cmd=$(grep -m1 -E "^printf '.*' \| cargo run -q -p client -- " README.md)
[ -n "$server_cmd" ] && [ -n "$client_cmd" ] || { echo "README.md: the server or the scripted client command is missing"; exit 1; }
port=$(sed -E 's/.* -p ([0-9]+)$/\1/' <<<"$server_cmd")
log=$(mktemp)
# `cargo run` does not pass signals on: stop the server itself, cargo's child.
stop() { pkill -TERM -P "$server_pid" 2>/dev/null || true; }
trap 'stop; rm -f "$log"' EXIT
echo "\$ $server_cmd --bind 127.0.0.1"
eval "$server_cmd --bind 127.0.0.1" >"$log" 2>&1 &
server_pid=$!
# The first run compiles: wait up to 10 minutes for the start-up line, while the process lives.
for _ in $(seq 6000); do
  grep -q '^s> init server' "$log" && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q '^s> init server' "$log" || { echo "the server did not start:"; cat "$log"; exit 1; }
echo "\$ $client_cmd"
out=$(eval "$client_cmd" 2>/dev/null)
echo "$out"
# At the end of its input the client quits, which disconnects carol.
expected=$'REGISTER OK\nCONNECT OK\nCONNECTED USERS (1 users connected) OK - carol\nDISCONNECT OK'
[ "$out" = "$expected" ] || { echo "unexpected output; expected:"; echo "$expected"; exit 1; }
stop
wait "$server_pid" && echo "server stopped cleanly on SIGTERM (port $port)"
