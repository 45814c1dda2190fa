//! Geometry shared by drawing and by the state: where each pane is, and how a conversation wraps into lines.
//!
//! Both [`render`](super::render) and [`App`](super::app::App) need it — the first to draw, the second to map a
//! mouse click to a contact and to bound scrolling — so it lives apart from both, as pure functions.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar;

use super::conversation::{Message, Status};

/// Width of the contacts pane, borders included, on a terminal at least [`WIDE`] columns wide.
pub const CONTACTS_WIDTH: u16 = 24;

/// Width of the contacts pane on a narrower terminal.
pub const CONTACTS_WIDTH_NARROW: u16 = 16;

/// From this many columns on, the contacts pane gets [`CONTACTS_WIDTH`].
pub const WIDE: u16 = 70;

/// Rows of the input box (one line of text between two borders).
pub const INPUT_HEIGHT: u16 = 3;

/// Columns taken by `HH:MM ` at the start of a message; wrapped lines are indented by as much.
pub const TIME_WIDTH: usize = 6;

/// The four panes of the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub contacts: Rect,
    pub conversation: Rect,
    pub input: Rect,
    pub status: Rect,
}

/// Splits the screen: contacts on the left, the conversation on the right, the input box under both and the
/// status line at the bottom.
pub fn areas(screen: Rect) -> Areas {
    let [main, input, status] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(INPUT_HEIGHT), Constraint::Length(1)]).areas(screen);
    let left = if screen.width >= WIDE { CONTACTS_WIDTH } else { CONTACTS_WIDTH_NARROW };
    let [contacts, conversation] = Layout::horizontal([Constraint::Length(left), Constraint::Min(10)]).areas(main);
    Areas { contacts, conversation, input, status }
}

/// The inside of a bordered pane.
pub fn inner(area: Rect) -> Rect {
    Rect {
        x: area.x.saturating_add(1),
        y: area.y.saturating_add(1),
        width: area.width.saturating_sub(2),
        height: area.height.saturating_sub(2),
    }
}

/// Wraps styled text into lines of at most `width` columns, breaking after a space where possible and inside a
/// word only when it does not fit on a line of its own. Lines after the first are indented by `indent` columns
/// (when that leaves room for text).
pub fn wrap(segments: &[(String, Style)], width: usize, indent: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let indent = if indent * 2 < width { indent } else { 0 };
    let mut lines: Vec<Vec<(char, Style)>> = Vec::new();
    let mut line: Vec<(char, Style)> = Vec::new();
    let mut used = 0usize;
    for (text, style) in segments {
        for c in text.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width && !line.is_empty() && c == ' ' {
                // The line ends exactly at a word's end: break here and drop the space.
                lines.push(std::mem::take(&mut line));
                line = vec![(' ', Style::default()); indent];
                used = indent;
                continue;
            }
            if used + w > width && !line.is_empty() {
                let first = lines.is_empty();
                let start = if first { 0 } else { indent };
                // Break after the last space of this line, if there is one beyond the indent.
                let rest = match line.iter().rposition(|(ch, _)| *ch == ' ') {
                    Some(i) if i > start => {
                        let rest = line.split_off(i + 1);
                        line.pop();
                        rest
                    }
                    _ => Vec::new(),
                };
                lines.push(std::mem::take(&mut line));
                line = vec![(' ', Style::default()); indent];
                line.extend(rest);
                used = line.iter().map(|(ch, _)| ch.width().unwrap_or(0)).sum();
                if c == ' ' && used == indent {
                    continue;
                }
            }
            line.push((c, *style));
            used += w;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines.into_iter().map(to_line).collect()
}

/// Groups runs of one style into spans.
fn to_line(chars: Vec<(char, Style)>) -> Line<'static> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut run = String::new();
    let mut style = None;
    for (c, s) in chars {
        if style.is_some_and(|cur| cur != s) {
            spans.push(Span::styled(std::mem::take(&mut run), style.unwrap_or_default()));
        }
        style = Some(s);
        run.push(c);
    }
    if !run.is_empty() {
        spans.push(Span::styled(run, style.unwrap_or_default()));
    }
    Line::from(spans)
}

/// How things look: styles, with or without colour (`NO_COLOR`, https://no-color.org: no colour, but bold and
/// reverse stay), and the time zone of message times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
    /// Seconds to add to UTC for local time (taken once at start).
    pub utc_offset: i64,
}

impl Theme {
    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    pub fn time(self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub fn me(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn peer(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn dim(self) -> Style {
        self.fg(Color::DarkGray)
    }
}

/// One message as styled text, before wrapping: `HH:MM sender: text` and, for ours, its delivery mark.
pub fn message_segments(m: &Message, theme: Theme) -> Vec<(String, Style)> {
    let who = if m.is_ours() { theme.me() } else { theme.peer() };
    let mut out = vec![
        (format!("{} ", clock(m.at.saturating_add(theme.utc_offset))), theme.time()),
        (printable(&m.from), who),
        (": ".to_owned(), Style::default()),
        (printable(&m.text), Style::default()),
    ];
    match &m.status {
        Status::Received(_) => {}
        Status::Sending => out.push((" …".to_owned(), theme.dim())),
        Status::Sent(_) => out.push((" ✓".to_owned(), theme.ok())),
        Status::Delivered(_) => out.push((" ✓✓".to_owned(), theme.ok())),
        Status::Failed(why) => out.push((format!(" ✗ {why}"), theme.error())),
    }
    out
}

/// Text from the network made safe to draw: control characters (escape sequences, line breaks) become U+FFFD,
/// as the shell does (docs/protocol.md, section 9, item 10).
pub fn printable(text: &str) -> String {
    crate::format::printable(text)
}

/// The lines of a whole conversation at `width` columns.
pub fn conversation_lines<'a>(
    messages: impl IntoIterator<Item = &'a Message>,
    width: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    messages.into_iter().flat_map(|m| wrap(&message_segments(m, theme), width, TIME_WIDTH)).collect()
}

/// The first contact row shown when the contact at `selected` must be visible in `height` rows.
pub fn contacts_offset(selected: Option<usize>, height: usize) -> usize {
    match selected {
        Some(i) if height > 0 && i >= height => i + 1 - height,
        _ => 0,
    }
}

/// `HH:MM` of a Unix time (add the local offset first for local time).
pub fn clock(unix_secs: i64) -> String {
    let day = unix_secs.rem_euclid(86_400);
    format!("{:02}:{:02}", day / 3600, (day / 60) % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str, width: usize, indent: usize) -> Vec<String> {
        wrap(&[(text.to_owned(), Style::default())], width, indent).iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn wraps_at_spaces_and_indents_continuations() {
        assert_eq!(plain("12:00 bob: hello there world", 16, 6), ["12:00 bob: hello", "      there", "      world"]);
        assert_eq!(plain("short", 16, 6), ["short"]);
        assert_eq!(plain("", 16, 6), [""]);
    }

    #[test]
    fn long_words_are_cut_and_wide_characters_count_double() {
        assert_eq!(plain("abcdefghij", 4, 0), ["abcd", "efgh", "ij"]);
        assert_eq!(plain("日本語日本語", 4, 0), ["日本", "語日", "本語"]);
    }

    #[test]
    fn the_80_by_24_layout() {
        let a = areas(Rect::new(0, 0, 80, 24));
        assert_eq!(a.contacts, Rect::new(0, 0, CONTACTS_WIDTH, 20));
        assert_eq!(a.conversation, Rect::new(CONTACTS_WIDTH, 0, 80 - CONTACTS_WIDTH, 20));
        assert_eq!(a.input, Rect::new(0, 20, 80, 3));
        assert_eq!(a.status, Rect::new(0, 23, 80, 1));
    }

    #[test]
    fn message_times_are_shifted_to_local_time() {
        let m = Message { at: 0, from: "bob".into(), text: "hi".into(), status: Status::Received(1), local: 0 };
        let line = |utc_offset| wrap(&message_segments(&m, Theme { color: false, utc_offset }), 80, 6)[0].to_string();
        assert_eq!(line(0), "00:00 bob: hi");
        assert_eq!(line(-90 * 60), "22:30 bob: hi");
    }

    #[test]
    fn clock_is_utc_hours_and_minutes() {
        assert_eq!(clock(0), "00:00");
        assert_eq!(clock(86_400 + 13 * 3600 + 5 * 60 + 59), "13:05");
    }
}
