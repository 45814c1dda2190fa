#!/usr/bin/env python3
"""Scripted session for the leak check: drives a running server through every operation and every reply code,
queued deliveries with their acknowledgements, a dead listener, and malformed input, checking each reply.

Usage: leak_session.py HOST PORT

Standard library only. Every socket has a timeout, and every wait is bounded, so a wedged server fails the
session instead of hanging CI. The session deliberately leaves state behind (registered and connected users, a
queue of undelivered messages): the server must free all of it when it stops, which is what valgrind then checks.
Exits 0 when every reply was as expected, 1 otherwise.
"""

import socket
import sys
import threading
import time

# Bound on every connect and read. Generous: under valgrind the server runs 20-50 times slower.
TIMEOUT = 30.0
# How long to wait for pushes that should arrive.
PUSH_WAIT = 60.0
# Messages queued for a user that stays offline at the end (state the server must free at shutdown).
LEFT_QUEUED = 40
# A text of the maximum length (255 bytes), to exercise the largest allocations.
LONG_TEXT = "x" * 255

failures = []


def field(s):
    return (s if isinstance(s, bytes) else s.encode()) + b"\0"


def request(host, port, raw, expect_reply=True):
    """Sends raw bytes on a fresh connection and returns everything the server answers until it closes."""
    with socket.create_connection((host, port), timeout=TIMEOUT) as s:
        s.settimeout(TIMEOUT)
        try:
            if raw:
                s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            # The server may close early on purpose (an unknown operation, the request cap): not an error.
            pass
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


def call(host, port, *fields):
    return request(host, port, b"".join(field(f) for f in fields))


def expect(what, got, want):
    if got != want:
        failures.append(f"{what}: got {got!r}, want {want!r}")
        print(f"FAIL {what}: got {got!r}, want {want!r}", flush=True)


class Listener:
    """A push listener: accepts connections until closed, collecting every push (raw bytes)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.pushes = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(TIMEOUT)
                data = b""
                try:
                    while len(data) < 4096:
                        b = conn.recv(4096)
                        if not b:
                            break
                        data += b
                except OSError:
                    pass
            with self.lock:
                self.pushes.append(data)

    def wait(self, n, what):
        deadline = time.monotonic() + PUSH_WAIT
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.pushes) >= n:
                    return list(self.pushes)
            time.sleep(0.05)
        with self.lock:
            failures.append(f"{what}: {len(self.pushes)} pushes after {PUSH_WAIT}s, want {n}")
            print(f"FAIL {what}: got {self.pushes!r}", flush=True)
            return list(self.pushes)

    def close(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


def msg(sender, mid, text):
    return field("SEND_MESSAGE") + field(sender) + field(str(mid)) + field(text)


def ack(mid):
    return field("SEND_MESS_ACK") + field(str(mid))


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    c = lambda *f: call(host, port, *f)  # noqa: E731

    # REGISTER: ok, alias in use, empty alias, over-long field.
    expect("register alice", c("REGISTER", "Alice A", "alice", "01/01/2000"), b"\x00")
    expect("register bob", c("REGISTER", "Bob B", "bob", "02/02/2000"), b"\x00")
    expect("register carol", c("REGISTER", "Carol", "carol", ""), b"\x00")
    expect("register dave", c("REGISTER", "Dave", "dave", "04/04/2000"), b"\x00")
    expect("register alice again", c("REGISTER", "x", "alice", "x"), b"\x01")
    expect("register empty alias", c("REGISTER", "x", "", "x"), b"\x02")
    expect("register long name", c("REGISTER", "n" * 300, "zed", "x"), b"\x02")

    # UNREGISTER: ok, no such user.
    expect("register temp", c("REGISTER", "T", "temp", "x"), b"\x00")
    expect("unregister temp", c("UNREGISTER", "temp"), b"\x00")
    expect("unregister temp again", c("UNREGISTER", "temp"), b"\x01")

    # CONNECT: ok, no such user, already connected, bad port.
    la, lb = Listener(), Listener()
    expect("connect alice", c("CONNECT", "alice", str(la.port)), b"\x00")
    expect("connect bob", c("CONNECT", "bob", str(lb.port)), b"\x00")
    expect("connect nobody", c("CONNECT", "nobody", "5000"), b"\x01")
    expect("connect alice again", c("CONNECT", "alice", str(la.port)), b"\x02")
    expect("connect bad port", c("CONNECT", "carol", "70000"), b"\x03")
    expect("connect port 0", c("CONNECT", "carol", "0"), b"\x03")

    # CONNECTEDUSERS: list, requester not connected, not registered.
    expect("users", c("CONNECTEDUSERS", "alice"), b"\x00" + field("2") + field("alice") + field("bob"))
    expect("users not connected", c("CONNECTEDUSERS", "carol"), b"\x01")
    expect("users unknown", c("CONNECTEDUSERS", "nobody"), b"\x02")

    # SEND: live delivery and acknowledgement, to oneself, to an offline user (queued), failures.
    expect("send alice->bob", c("SEND", "alice", "bob", "hello bob"), b"\x00" + field("1"))
    expect("send bob->alice long", c("SEND", "bob", "alice", LONG_TEXT), b"\x00" + field("1"))
    expect("send alice->alice", c("SEND", "alice", "alice", "note to self"), b"\x00" + field("2"))
    expect("send alice->carol", c("SEND", "alice", "carol", "for later"), b"\x00" + field("3"))
    expect("send to nobody", c("SEND", "alice", "nobody", "x"), b"\x01")
    expect("send from nobody", c("SEND", "nobody", "bob", "x"), b"\x01")
    expect("send from offline", c("SEND", "carol", "bob", "x"), b"\x02")
    expect("send too long", c("SEND", "alice", "bob", "y" * 256), b"\x02")
    expect("send line feed", c("SEND", "bob", "alice", "two\nlines"), b"\x00" + field("2"))
    pushes_b = lb.wait(3, "bob's pushes")  # message 1 from alice, acks 1 and 2 for bob's sends
    for p in [msg("alice", 1, "hello bob"), ack(1), ack(2)]:
        if p not in pushes_b:
            failures.append(f"bob missing push {p!r}")
    pushes_a = la.wait(5, "alice's pushes")  # bob's two, her own note, and the acks 1 and 2 of hers
    for p in [msg("bob", 1, LONG_TEXT), msg("alice", 2, "note to self"), msg("bob", 2, "two\nlines"), ack(1), ack(2)]:
        if p not in pushes_a:
            failures.append(f"alice missing push {p!r}")

    # Queued delivery at CONNECT: carol's message is flushed, and alice gets its acknowledgement.
    lc = Listener()
    expect("connect carol", c("CONNECT", "carol", str(lc.port)), b"\x00")
    pushes_c = lc.wait(1, "carol's flush")
    expect("carol's flushed message", pushes_c[:1], [msg("alice", 3, "for later")])
    la.wait(6, "alice's ack for carol")

    # DISCONNECT: ok, no such user, not connected.
    expect("disconnect carol", c("DISCONNECT", "carol"), b"\x00")
    expect("disconnect carol again", c("DISCONNECT", "carol"), b"\x02")
    expect("disconnect nobody", c("DISCONNECT", "nobody"), b"\x01")
    lc.close()

    # A dead listener: dave connects with a port nobody listens on. After the 2 s grace period the push fails,
    # dave is marked disconnected, and the message stays queued.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    expect("connect dave (dead listener)", c("CONNECT", "dave", str(dead_port)), b"\x00")
    expect("send to dave", c("SEND", "bob", "dave", "lost in the mail"), b"\x00" + field("3"))
    deadline = time.monotonic() + PUSH_WAIT
    while time.monotonic() < deadline:
        if c("CONNECTEDUSERS", "dave") == b"\x01":
            break
        time.sleep(0.5)
    else:
        failures.append("dave was not marked disconnected after the failed push")

    # Bad input: each must end its connection without harming the server.
    for what, raw in [
        ("empty connection", b""),
        ("unknown op", field("SENDATTACH") + field("a")),
        ("lower-case op", field("register") + field("a") + field("b") + field("c")),
        ("endless op name", b"X" * 5000),
        ("truncated", field("SEND") + field("alice")),
        ("no terminator", field("SEND") + field("alice") + field("bob") + b"unterminated"),
        ("over the 64 KiB cap", field("REGISTER") + b"z" * (70 * 1024)),
        ("garbage", bytes(range(1, 256)) * 4),
    ]:
        got = request(host, port, raw)
        expect(what, got, b"")
    expect("invalid utf-8", request(host, port, field("UNREGISTER") + b"\xff\xfe\0"), b"\x02")
    expect("trailing bytes ignored", request(host, port, field("UNREGISTER") + field("nobody") + b"junk"), b"\x01")
    # A connection that sends half a request and then goes away.
    with socket.create_connection((host, port), timeout=TIMEOUT) as s:
        s.sendall(field("CONNECT") + b"ali")

    # State left for the shutdown to free: dave's queue (offline), alice and bob connected with listeners.
    for i in range(LEFT_QUEUED):
        expect(f"queue for dave {i}", c("SEND", "alice", "dave", LONG_TEXT)[:1], b"\x00")
    expect("server still answers", c("CONNECTEDUSERS", "alice"), b"\x00" + field("2") + field("alice") + field("bob"))

    la.close()
    lb.close()
    if failures:
        print(f"{len(failures)} unexpected replies:", flush=True)
        for f in failures:
            print("  " + f)
        return 1
    print("session OK: every reply as expected", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
