#!/usr/bin/env python3
"""Slow peers against a running server, beside a good client (docs/protocol.md 2.5).

Opens CONNS connections from SOURCES loopback addresses (127.0.0.2, 127.0.0.3, ...) that trickle one byte of a
never-ending request per PACE seconds, reopening each one the server closes. Meanwhile a good client on 127.0.0.1
runs REGISTER / CONNECT / SEND / CONNECTEDUSERS / DISCONNECT in a loop, each with a 5 s timeout, and the script
reports its failures and latency percentiles. Linux only (all of 127/8 is loopback).

    server -p 9000 --max-connections 256 &
    scripts/slowloris.py --port 9000 --conns 512 --sources 16 --duration 30

Exit status 1 when the good client had a failed or timed-out operation.
"""

import argparse
import socket
import threading
import time

TIMEOUT = 5.0


def field(*parts):
    return b"".join(p.encode() + b"\0" for p in parts)


def call(addr, payload):
    """One request on a fresh connection; the whole reply up to the server's close."""
    with socket.create_connection(addr, timeout=TIMEOUT) as s:
        s.sendall(payload)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out
            out += chunk


class Tricklers:
    """CONNS slow connections, reopened when closed; one byte each per PACE seconds."""

    def __init__(self, addr, conns, sources, pace):
        self.addr, self.pace = addr, pace
        self.sources = ["127.0.0.%d" % (2 + i) for i in range(sources)]
        self.socks = [None] * conns
        self.reopened = 0
        self.stop = threading.Event()

    def open(self, i):
        s = socket.socket()
        s.setblocking(False)
        s.bind((self.sources[i % len(self.sources)], 0))
        try:
            s.connect(self.addr)
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return None
        return s

    def run(self):
        head = b"REGISTER\0"
        while not self.stop.is_set():
            started = time.monotonic()
            for i, s in enumerate(self.socks):
                if s is not None:
                    try:
                        # A peer that the server shut down reads as closed; anything else keeps trickling.
                        if s.recv(16, socket.MSG_PEEK) == b"":
                            raise ConnectionResetError
                    except BlockingIOError:
                        pass
                    except OSError:
                        s.close()
                        s = None
                if s is None:
                    s = self.open(i)
                    self.reopened += 1
                    if s is not None:
                        try:
                            s.send(head)
                        except OSError:
                            pass
                else:
                    try:
                        s.send(b"x")
                    except OSError:
                        pass
                self.socks[i] = s
            self.stop.wait(max(0.0, self.pace - (time.monotonic() - started)))
        for s in self.socks:
            if s is not None:
                s.close()


def good_client(addr, duration, results):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = str(listener.getsockname()[1])

    def accept_pushes():
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            with c:
                c.settimeout(TIMEOUT)
                try:
                    while c.recv(4096):
                        pass
                except OSError:
                    pass

    threading.Thread(target=accept_pushes, daemon=True).start()
    alias = "good%d" % int(time.time() * 1000 % 1000000)
    steps = [
        ("REGISTER", field("REGISTER", "Good G", alias, "01/01/2000"), lambda r: r[:1] in (b"\0", b"\1")),
        ("CONNECT", field("CONNECT", alias, port), lambda r: r[:1] == b"\0"),
        ("SEND", field("SEND", alias, alias, "still here"), lambda r: r[:1] == b"\0"),
        ("CONNECTEDUSERS", field("CONNECTEDUSERS", alias), lambda r: r[:1] == b"\0"),
        ("DISCONNECT", field("DISCONNECT", alias), lambda r: r[:1] == b"\0"),
    ]
    end = time.monotonic() + duration
    while time.monotonic() < end:
        for name, payload, ok in steps:
            started = time.monotonic()
            try:
                reply = call(addr, payload)
                good = ok(reply)
            except OSError as e:
                reply, good = repr(e).encode(), False
            results.append((name, time.monotonic() - started, good, reply))
    listener.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, default=512)
    p.add_argument("--sources", type=int, default=16)
    p.add_argument("--pace", type=float, default=1.0, help="seconds between two bytes of one slow connection")
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of trickling before the good client starts")
    a = p.parse_args()
    addr = (a.host, a.port)
    tricklers = Tricklers(addr, a.conns, a.sources, a.pace)
    t = threading.Thread(target=tricklers.run, daemon=True)
    t.start()
    time.sleep(a.warmup)
    results = []
    good_client(addr, a.duration, results)
    tricklers.stop.set()
    t.join(timeout=10)
    lat = sorted(r[1] for r in results)
    failed = [r for r in results if not r[2]]

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    print("operations %d, failed %d, p50 %.1f ms, p99 %.1f ms, max %.1f ms, slow connections (re)opened %d"
          % (len(results), len(failed), pct(0.50), pct(0.99), pct(1.0), tricklers.reopened))
    for name, took, _, reply in failed[:5]:
        print("  failed %s after %.2f s: %r" % (name, took, reply[:60]))
    return 1 if failed or not results else 0


if __name__ == "__main__":
    raise SystemExit(main())
