#!/usr/bin/env python3
"""Turn a terminal capture with colours (`tmux capture-pane -e -p`) into an SVG picture of the screen.

Usage: ansi2svg.py CAPTURE.txt OUT.svg [COLUMNS ROWS]

Only what tmux writes is understood: SGR sequences (bold, dim, reverse, the 16 colours, 256 colours and RGB);
anything else is dropped. Every character takes one cell, which holds for the box drawing and marks the TUI
uses. Standard library only.
"""

import html
import re
import sys

CELL_W, CELL_H, FONT = 8.4, 17, 14
PALETTE = [
    "#1e1e1e", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
    "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff",
]
DEFAULT_FG, DEFAULT_BG = "#d4d4d4", "#1e1e1e"
SGR = re.compile(r"\x1b\[([0-9;]*)m")
OTHER_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|[()][A-Za-z0-9])")


def color256(n):
    if n < 16:
        return PALETTE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    level = 8 + (n - 232) * 10
    return "#%02x%02x%02x" % (level, level, level)


# The 16-colour SGR codes: 30-37 / 40-47 normal and 90-97 / 100-107 bright foreground / background, to their
# (key, palette index); 39 and 49 reset the foreground / background (index None).
SGR_COLOURS = {
    first + i: (key, offset + i)
    for first, key, offset in ((30, "fg", 0), (40, "bg", 0), (90, "fg", 8), (100, "bg", 8))
    for i in range(8)
}
SGR_COLOURS.update({39: ("fg", None), 49: ("bg", None)})


def apply_sgr(style, params):
    codes = [int(p) if p else 0 for p in params.split(";")] if params else [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            style = {}
        elif c == 1:
            style["bold"] = True
        elif c == 2:
            style["dim"] = True
        elif c == 7:
            style["reverse"] = True
        elif c == 22:
            style.pop("bold", None)
            style.pop("dim", None)
        elif c == 27:
            style.pop("reverse", None)
        elif c in SGR_COLOURS:
            key, index = SGR_COLOURS[c]
            if index is None:
                style.pop(key, None)
            else:
                style[key] = PALETTE[index]
        elif c in (38, 48) and i + 1 < len(codes):
            key = "fg" if c == 38 else "bg"
            if codes[i + 1] == 5 and i + 2 < len(codes):
                style[key] = color256(codes[i + 2])
                i += 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                style[key] = "#%02x%02x%02x" % tuple(codes[i + 2:i + 5])
                i += 4
        i += 1
    return style


def parse(text, columns, rows):
    """Rows of (char, style) cells."""
    grid = []
    style = {}
    for line in text.split("\n")[:rows]:
        cells = []
        pos = 0
        while pos < len(line):
            m = SGR.match(line, pos)
            if m:
                style = apply_sgr(dict(style), m.group(1))
                pos = m.end()
                continue
            m = OTHER_ESCAPE.match(line, pos)
            if m:
                pos = m.end()
                continue
            if line[pos] >= " ":
                cells.append((line[pos], dict(style)))
            pos += 1
        cells = cells[:columns]
        cells += [(" ", {})] * (columns - len(cells))
        grid.append(cells)
    while len(grid) < rows:
        grid.append([(" ", {})] * columns)
    return grid


def colors(style):
    fg, bg = style.get("fg", DEFAULT_FG), style.get("bg")
    if style.get("reverse"):
        fg, bg = bg or DEFAULT_BG, fg
    return fg, bg


def svg(grid, columns, rows):
    width, height = columns * CELL_W, rows * CELL_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.1f} {height}">',
        f'<rect width="100%" height="100%" fill="{DEFAULT_BG}"/>',
        f'<g font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="{FONT}" '
        'xml:space="preserve">',
    ]
    for y, row in enumerate(grid):
        x = 0
        while x < columns:
            style = row[x][1]
            end = x
            while end < columns and row[end][1] == style:
                end += 1
            fg, bg = colors(style)
            if bg:
                out.append(f'<rect x="{x * CELL_W:.1f}" y="{y * CELL_H}" width="{(end - x) * CELL_W:.1f}" '
                           f'height="{CELL_H}" fill="{bg}"/>')
            text = "".join(c for c, _ in row[x:end])
            if text.strip():
                weight = ' font-weight="bold"' if style.get("bold") else ""
                opacity = ' opacity="0.6"' if style.get("dim") else ""
                out.append(f'<text x="{x * CELL_W:.1f}" y="{y * CELL_H + FONT - 1}" fill="{fg}"{weight}{opacity} '
                           f'textLength="{(end - x) * CELL_W:.1f}" lengthAdjust="spacingAndGlyphs">'
                           f'{html.escape(text)}</text>')
            x = end
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__)
    columns, rows = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) == 5 else (80, 24)
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        grid = parse(f.read(), columns, rows)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(svg(grid, columns, rows))


if __name__ == "__main__":
    main()
