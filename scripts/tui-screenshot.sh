#!/usr/bin/env bash
# Renders docs/tui.svg from a real session: a server on a free loopback port, three `client --tui` in a private
# tmux server (80x24), a short conversation, then alice's screen captured with its colours
# (`tmux capture-pane -e -p`) and turned into SVG by scripts/ansi2svg.py.
# Needs tmux and python3. Every wait is a bounded poll of the screen.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/tui.svg}
cargo build -q -p server -p client
work=$(mktemp -d)
sock="tui-screenshot-$$"
tm() { LC_ALL=C.UTF-8 tmux -u -L "$sock" -f /dev/null "$@"; }
cleanup() {
  socket_path=$(tm display-message -p '#{socket_path}' 2>/dev/null || true)
  tm kill-server 2>/dev/null || true
  [ -n "$socket_path" ] && rm -f "$socket_path"
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/debug/server -p "$port" --bind 127.0.0.1 >"$work/server.log" 2>&1 &
server_pid=$!

# wait_for SESSION TEXT: poll the screen for TEXT, at most 20 s.
wait_for() {
  for _ in $(seq 200); do
    tm capture-pane -p -t "$1" | grep -qF -- "$2" && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1:" >&2
  tm capture-pane -p -t "$1" >&2
  exit 1
}
say() { tm send-keys -t "$1" -l "$2"; tm send-keys -t "$1" Enter; }

for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
for user in alice bob carol; do
  tm new-session -d -s "$user" -x 80 -y 24 \
    target/debug/client -s 127.0.0.1 -p "$port" --local-normalize --tui --history-dir "$work/$user"
  wait_for "$user" "not connected"
  say "$user" "/register $user"
  wait_for "$user" "REGISTER OK"
  say "$user" "/connect $user"
  wait_for "$user" "$user │ connected"
done

say bob "/open alice"
say bob "hi alice! lunch at noon?"
wait_for alice "bob: hi alice"
say alice "sure, see you at the usual place"
wait_for alice "usual place ✓✓"
say bob "great. I will book a table for three, carol is coming too"
wait_for alice "is coming too"
say carol "/open alice"
say carol "see you at noon"
say carol "shall I bring the slides?"
wait_for alice "(2)"
say bob "/disconnect"
wait_for bob "not connected"
wait_for alice "○ bob"
say alice "perfect, thanks"
wait_for alice "perfect, thanks ✓"
tm send-keys -t alice -l "the new menu looks good"
wait_for alice "the new menu looks good"
tm capture-pane -e -p -t alice >"$work/alice.ansi"
python3 scripts/ansi2svg.py "$work/alice.ansi" "$out" 80 24
echo "wrote $out"
