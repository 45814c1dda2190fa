#!/usr/bin/env python3
"""Draws the performance plots of docs/performance.md from the JSON lines that scripts/perf-sweep.sh collects.

Usage: plot.py RESULTS_DIR OUT_DIR

Reads RESULTS_DIR/threads.jsonl (one `bench --json` line per repetition of the client-thread sweep) and
RESULTS_DIR/users.jsonl (one line per registered-user count and repetition), and writes
OUT_DIR/perf-threads.svg (requests/s and p99 against client threads, with the trivial server's connections/s)
and OUT_DIR/perf-users.svg (request latency and server CPU per request against registered users).
Repetitions are reduced to their median. Standard library only: the SVG is written by hand, so the plots can be
regenerated anywhere python3 runs, without matplotlib.
"""

import json
import math
import os
import statistics
import sys

WIDTH, HEIGHT = 640, 360
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 70, 40, 50
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]


def load(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def nice_max(v):
    """A round number at or above v, for an axis end."""
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Chart:
    """A line chart with a logarithmic or linear x axis and one or two y axes."""

    def __init__(self, title, xlabel, xlog=True, ylog=False):
        self.title, self.xlabel, self.xlog, self.ylog = title, xlabel, xlog, ylog
        self.series = []  # (label, points, axis, dashed)
        self.ylabels = {0: "", 1: ""}

    def add(self, label, points, axis=0, dashed=False):
        pts = sorted((x, y) for x, y in points if y is not None)
        if pts:
            self.series.append((label, pts, axis, dashed))

    def svg(self):
        xs = [x for _, pts, _, _ in self.series for x, _ in pts]
        if not xs:
            return None
        x0, x1 = min(xs), max(xs)
        if x0 == x1:
            x1 = x0 + 1
        ymax, ymin = {}, {}
        for axis in (0, 1):
            ys = [y for _, pts, a, _ in self.series if a == axis for _, y in pts]
            ymax[axis] = nice_max(max(ys)) if ys else None
            if ys and self.ylog:
                ymin[axis] = 10 ** math.floor(math.log10(max(min(ys), 1e-9)))
                ymax[axis] = 10 ** math.ceil(math.log10(max(ys)))
        pw, ph = WIDTH - MARGIN_LEFT - MARGIN_RIGHT, HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

        def sx(x):
            if self.xlog:
                return MARGIN_LEFT + pw * (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return MARGIN_LEFT + pw * (x - x0) / (x1 - x0)

        def sy(y, axis):
            if self.ylog:
                lo, hi = math.log10(ymin[axis]), math.log10(ymax[axis])
                return MARGIN_TOP + ph * (1 - (math.log10(max(y, ymin[axis])) - lo) / (hi - lo))
            return MARGIN_TOP + ph * (1 - y / ymax[axis])

        def yticks(axis):
            if not self.ylog:
                return [ymax[axis] * i / 5 for i in range(6)]
            ticks, decade = [], ymin[axis]
            while decade <= ymax[axis]:
                ticks += [decade * m for m in (1, 2, 5) if decade * m <= ymax[axis]]
                decade *= 10
            return ticks

        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'font-family="sans-serif" font-size="11">',
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
            f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="13">{esc(self.title)}</text>',
            f'<rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>',
        ]
        # x ticks: the data's x values (thread counts, user counts)
        for x in sorted(set(xs)):
            px = sx(x)
            out.append(f'<line x1="{px:.1f}" y1="{MARGIN_TOP + ph}" x2="{px:.1f}" y2="{MARGIN_TOP + ph + 4}" stroke="#888"/>')
            out.append(f'<text x="{px:.1f}" y="{MARGIN_TOP + ph + 16}" text-anchor="middle">{x:g}</text>')
        out.append(f'<text x="{MARGIN_LEFT + pw / 2}" y="{HEIGHT - 12}" text-anchor="middle">{esc(self.xlabel)}</text>')
        for axis in (0, 1):
            if ymax[axis] is None:
                continue
            for y in yticks(axis):
                py = sy(y, axis)
                if axis == 0:
                    out.append(f'<line x1="{MARGIN_LEFT}" y1="{py:.1f}" x2="{MARGIN_LEFT + pw}" y2="{py:.1f}" stroke="#eee"/>')
                    out.append(f'<text x="{MARGIN_LEFT - 5}" y="{py + 4:.1f}" text-anchor="end">{y:g}</text>')
                else:
                    out.append(f'<text x="{MARGIN_LEFT + pw + 5}" y="{py + 4:.1f}">{y:g}</text>')
            lx = 16 if axis == 0 else WIDTH - 12
            ly = MARGIN_TOP + ph / 2
            out.append(
                f'<text x="{lx}" y="{ly}" text-anchor="middle" transform="rotate(-90 {lx} {ly})">'
                f"{esc(self.ylabels[axis])}</text>"
            )
        for i, (label, pts, axis, dashed) in enumerate(self.series):
            color = COLORS[i % len(COLORS)]
            path = " ".join(f"{sx(x):.1f},{sy(y, axis):.1f}" for x, y in pts)
            dash = ' stroke-dasharray="6,4"' if dashed else ""
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
            for x, y in pts:
                out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y, axis):.1f}" r="3" fill="{color}"/>')
            ly = MARGIN_TOP + 14 + 14 * i
            out.append(f'<line x1="{MARGIN_LEFT + 10}" y1="{ly - 4}" x2="{MARGIN_LEFT + 30}" y2="{ly - 4}" stroke="{color}" stroke-width="2"{dash}/>')
            side = "left axis" if axis == 0 else "right axis"
            out.append(f'<text x="{MARGIN_LEFT + 35}" y="{ly}">{esc(label)} ({side})</text>')
        out.append("</svg>")
        return "\n".join(out) + "\n"


def median_by(rows, key_fn, value_fn):
    """Groups values by key and returns [(key, median)]."""
    groups = {}
    for r in rows:
        k, v = key_fn(r), value_fn(r)
        if k is not None and v is not None:
            groups.setdefault(k, []).append(v)
    return [(k, statistics.median(v)) for k, v in groups.items()]


def threads_chart(rows):
    phases = [p for r in rows for p in r.get("phases", [])]
    c = Chart("Request mix against client threads (median of runs)", "client threads")
    c.ylabels = {0: "requests or connections per second", 1: "p99 latency (ms)"}
    c.add("mix requests/s", median_by(phases, lambda p: p["threads"], lambda p: p["req_per_s"]))
    c.add(
        "trivial server connections/s (thread per connection)",
        median_by(phases, lambda p: p["threads"], lambda p: p.get("baseline", {}).get("conn_per_s")),
        dashed=True,
    )
    inline = median_by(phases, lambda p: p["threads"], lambda p: p.get("baseline_inline", {}).get("conn_per_s"))
    if inline:
        c.add("trivial server connections/s (answer on accept thread)", inline, dashed=True)
    c.add("mix p99", median_by(phases, lambda p: p["threads"], lambda p: p["all"]["p99_us"] / 1e3), axis=1)
    c.add(
        "40% of trivial (target)",
        median_by(phases, lambda p: p["threads"], lambda p: 0.4 * p["baseline"]["conn_per_s"] if "baseline" in p else None),
        dashed=True,
    )
    c.add(
        "trivial p99",
        median_by(phases, lambda p: p["threads"], lambda p: p.get("baseline", {}).get("latency", {}).get("p99_us", 0) / 1e3 or None),
        axis=1,
        dashed=True,
    )
    return c.svg()


def users_chart(rows, scale_rows=()):
    def phase(r):
        return r["phases"][0] if r.get("phases") else None

    c = Chart("Cost of a request against registered users (1 client thread, median of runs)", "registered users",
              ylog=True)
    c.ylabels = {0: "microseconds (log scale)", 1: ""}
    old = " (registration by requests)" if scale_rows else ""
    for kind, label in [("send_online", "SEND to online user p50"), ("connected_users", "CONNECTEDUSERS p50")]:
        c.add(label + old,
              median_by(rows, lambda r: r["config"]["users"], lambda r, k=kind: phase(r)[k]["latency"]["p50_us"]))
    if rows:
        c.add(
            "server CPU per request" + old,
            median_by(rows, lambda r: r["config"]["users"], lambda r: phase(r).get("server_cpu_us_per_req")),
            dashed=True,
        )
    # `bench scale` (populated data directories, the server restarted on each size), beside the older curve.
    sizes = [s for r in scale_rows for s in r.get("sizes", [])]
    for key, label in [("send", "SEND p50"), ("connect", "CONNECT p50"), ("connected_users", "CONNECTEDUSERS p50")]:
        points = median_by(sizes, lambda s: s["users"], lambda s, k=key: s[k]["p50_us"])
        if points:
            c.add(label + " (bench scale)", points, dashed=True)
    return c.svg()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    results, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for name, rows, draw in [
        ("perf-threads.svg", load(os.path.join(results, "threads.jsonl")), threads_chart),
        ("perf-users.svg", load(os.path.join(results, "users.jsonl")), users_chart),
    ]:
        scale_rows = load(os.path.join(results, "scale.jsonl"))
        if draw is users_chart and scale_rows:
            svg = users_chart(rows, scale_rows)
        else:
            svg = draw(rows) if rows else None
        if svg is None:
            print(f"plot: no data for {name}")
            continue
        with open(os.path.join(out, name), "w") as f:
            f.write(svg)
        print(f"plot: wrote {os.path.join(out, name)}")


if __name__ == "__main__":
    main()
