#!/usr/bin/env python3
"""Interoperability test of the normalization service with zeep, the SOAP client of the original programs.

Usage: zeep_interop.py PATH_TO_WEBSERVICE_BINARY [--random N] [--seed S]

Starts the service on a free loopback port (--port 0; the port is read from the service's startup line on
stdout), loads its WSDL with zeep.Client, and calls convert_text and the three compatibility operations of
docs/protocol.md ("Operations") with every example of the table in "The rule" and N random Unicode strings
(characters XML 1.0 can carry, seeded RNG). Each answer must equal Python's ' '.join(s.split()), the rule every original
service used (zeep returns None for an empty result: it counts as ''). Prints one final line
"zeep interop: <passed> passed, <failed> failed" and exits 1 on any failure.

Every wait is bounded: startup, readiness, each call (zeep transport timeout) and the whole run.
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import requests
import zeep
import zeep.transports

# Longest wait for the startup line and for the WSDL to be served.
STARTUP_TIMEOUT_S = 15.0
# Pause between readiness polls (pacing, not synchronization: the loop ends on success or at the deadline).
POLL_INTERVAL_S = 0.05
# Timeout of every HTTP call zeep makes.
CALL_TIMEOUT_S = 10.0
# Upper bound for the whole run.
RUN_DEADLINE_S = 300.0
# Longest random string.
MAX_RANDOM_LEN = 60
# Failures printed in detail.
MAX_REPORTED_FAILURES = 10

# (operation, parameter) of the WSDL: the canonical one and the aliases of docs/protocol.md, "Operations".
OPERATIONS = [
    ("convert_text", "text"),
    ("eliminar_espacios", "texto"),
    ("modify_text", "mensaje"),
    ("remove", "string"),
]

# The examples of docs/protocol.md, "The rule" (input, output); protocol::normalize::EXAMPLES in Rust.
TABLE = [
    ("  hello    world  ", "hello world"),
    ("a\tb\nc", "a b c"),
    ("a\u00a0\u00a0b", "a b"),
    ("\u3000a\u2003\u2003b", "a b"),
    ("single", "single"),
    ("   ", ""),
    ("", ""),
    ("<&>", "<&>"),
]

# Whitespace of the rule that XML 1.0 can carry (U+001C..U+001F cannot), plus U+200B, which is not whitespace.
WHITESPACE = [
    " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x85", "\xa0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003",
    "\u2004", "\u2005", "\u2006", "\u2007", "\u2008", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f",
    "\u3000", "\u200b",
]
MARKUP = ["<", ">", "&", '"', "'", "]]>", "&amp;", "<![CDATA[", "-->"]


def rule(s):
    return " ".join(s.split())


def is_xml_char(c):
    o = ord(c)
    return (
        o in (0x9, 0xA, 0xD)
        or 0x20 <= o <= 0xD7FF
        or 0xE000 <= o <= 0xFFFD
        or 0x10000 <= o <= 0x10FFFF
    )


def random_text(rng):
    parts = []
    for _ in range(rng.randrange(0, MAX_RANDOM_LEN + 1)):
        kind = rng.random()
        if kind < 0.35:
            parts.append(rng.choice(WHITESPACE))
        elif kind < 0.45:
            parts.append(rng.choice(MARKUP))
        elif kind < 0.75:
            parts.append(chr(rng.randrange(0x21, 0x7F)))
        else:
            while True:
                c = chr(rng.randrange(0x80, 0x110000))
                if is_xml_char(c):
                    parts.append(c)
                    break
    # Vertical tab and form feed are whitespace but not XML characters; keep only what XML 1.0 can carry.
    return "".join(c for c in "".join(parts) if is_xml_char(c))


def read_startup_line(proc):
    """The service's first stdout line, or None if it does not come in time."""
    box = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(STARTUP_TIMEOUT_S)
    return box[0] if box else None


def wait_until_serving(wsdl_url):
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_error = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(wsdl_url, timeout=CALL_TIMEOUT_S) as response:
                if response.status == 200:
                    return None
        except OSError as e:
            last_error = e
        time.sleep(POLL_INTERVAL_S)
    return last_error or "timed out"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", help="path of the built webservice binary")
    parser.add_argument("--random", type=int, default=300, help="random strings per operation")
    parser.add_argument("--seed", type=int, default=20261121, help="seed of the random strings")
    args = parser.parse_args()

    started = time.monotonic()
    log = tempfile.TemporaryFile(mode="w+")
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
    proc = subprocess.Popen(
        [args.binary, "--port", "0", "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    passed = 0
    failed = 0
    failures = []

    def check(label, got, expected):
        nonlocal passed, failed
        got = "" if got is None else got
        if got == expected:
            passed += 1
        else:
            failed += 1
            if len(failures) < MAX_REPORTED_FAILURES:
                failures.append(f"{label}: expected {expected!r}, got {got!r}")

    try:
        line = read_startup_line(proc)
        match = re.search(r"http://(\S+?)/", line or "")
        if not match:
            raise RuntimeError(f"no startup line from the service (got {line!r})")
        base_url = f"http://{match.group(1)}/"
        wsdl_url = base_url + "?wsdl"
        problem = wait_until_serving(wsdl_url)
        if problem is not None:
            raise RuntimeError(f"the service does not serve its WSDL: {problem}")

        transport = zeep.transports.Transport(timeout=CALL_TIMEOUT_S, operation_timeout=CALL_TIMEOUT_S)
        client = zeep.Client(wsdl_url, transport=transport)

        rng = random.Random(args.seed)
        samples = [text for text, _ in TABLE] + [random_text(rng) for _ in range(args.random)]
        for op, param in OPERATIONS:
            call = getattr(client.service, op)
            for text, expected in TABLE:
                check(f"{op}({param}={text!r})", call(**{param: text}), expected)
            for text in samples:
                if time.monotonic() - started > RUN_DEADLINE_S:
                    raise RuntimeError(f"run deadline of {RUN_DEADLINE_S} s exceeded")
                check(f"{op}({text!r})", call(text), rule(text))
            # A nil or absent parameter: the empty string, except molinalg's sentence (docs/protocol.md, "Operations").
            nil_expected = "Texto no proporcionado." if op == "eliminar_espacios" else ""
            check(f"{op}(None)", call(None), nil_expected)

        # Faults: a malformed envelope and an unknown operation are HTTP 500 with a Client faultcode.
        for label, body in [
            ("malformed envelope", "<soap:Envelope"),
            (
                "unknown operation",
                '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
                '<t:shout xmlns:t="http://tests.python-zeep.org/"/></s:Body></s:Envelope>',
            ),
        ]:
            response = requests.post(
                base_url,
                data=body.encode(),
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"convert_text"'},
                timeout=CALL_TIMEOUT_S,
            )
            client_fault = response.status_code == 500 and "<faultcode>soap:Client</faultcode>" in response.text
            check(label, "Client fault" if client_fault else f"{response.status_code} {response.text[:200]}", "Client fault")
    except Exception as e:  # noqa: BLE001 - any error is a failed run, reported below
        failed += 1
        failures.append(f"run aborted: {type(e).__name__}: {e}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    for failure in failures:
        print("FAIL", failure)
    if failed:
        log.seek(0)
        tail = log.read().splitlines()[-20:]
        print("service log (last lines):", *tail, sep="\n  ")
    print(f"zeep interop: {passed} passed, {failed} failed ({time.monotonic() - started:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
