//! Drawing: [`render`] turns an [`App`] into one frame. It reads the state and changes nothing, so a test draws
//! into ratatui's `TestBackend` and compares characters.

use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::app::App;
use super::command::COMMANDS;
use super::layout::{self, Areas};

/// Marks in the contacts pane.
pub const ONLINE: &str = "●";
pub const OFFLINE: &str = "○";

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) {
    let areas = layout::areas(frame.area());
    contacts(app, frame, areas);
    conversation(app, frame, areas);
    input(app, frame, areas);
    status(app, frame, areas);
}

fn contacts(app: &App, frame: &mut Frame, areas: Areas) {
    let block = Block::default().borders(Borders::ALL).title(" Contacts ");
    let list = layout::inner(areas.contacts);
    frame.render_widget(block, areas.contacts);
    let contacts = app.contacts();
    let selected = app.open_index(&contacts);
    let offset = layout::contacts_offset(selected, usize::from(list.height));
    let width = usize::from(list.width);
    let lines: Vec<Line> = contacts
        .iter()
        .enumerate()
        .skip(offset)
        .take(usize::from(list.height))
        .map(|(i, c)| {
            let mark = if c.online { Span::styled(ONLINE, app.theme.ok()) } else { Span::raw(OFFLINE) };
            let unread = if c.unread > 0 { format!(" ({})", c.unread) } else { String::new() };
            // The alias gives way to the unread count when the pane is narrow.
            let room = width.saturating_sub(2 + unread.width());
            let alias = truncate(&c.alias, room);
            let pad = " ".repeat(room.saturating_sub(alias.width()));
            let mut style = Style::default();
            if Some(i) == selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Line::from(vec![
                mark,
                Span::raw(" "),
                Span::styled(format!("{alias}{pad}"), style),
                Span::styled(unread, Style::default().add_modifier(Modifier::BOLD)),
            ])
        })
        .collect();
    if lines.is_empty() {
        let hint = Paragraph::new("nobody yet").style(app.theme.dim());
        frame.render_widget(hint, list);
    } else {
        frame.render_widget(Paragraph::new(lines), list);
    }
}

fn conversation(app: &App, frame: &mut Frame, areas: Areas) {
    let pane = layout::inner(areas.conversation);
    let title = match &app.open {
        _ if app.show_help => " Help (Esc closes) ".to_owned(),
        Some(peer) if app.online.contains(peer) => format!(" {} {ONLINE} online ", layout::printable(peer)),
        Some(peer) => format!(" {} ", layout::printable(peer)),
        None => " No conversation ".to_owned(),
    };
    frame.render_widget(Block::default().borders(Borders::ALL).title(title), areas.conversation);
    if app.show_help {
        let lines: Vec<Line> = help_lines().into_iter().map(Line::from).collect();
        frame.render_widget(Paragraph::new(lines), pane);
        return;
    }
    let Some(conv) = app.open.as_ref().and_then(|o| app.conversations.get(o)) else {
        let hint = "/register ALIAS or /connect ALIAS, then /open ALIAS and type. /help lists the keys.";
        let lines = layout::wrap(&[(hint.to_owned(), app.theme.dim())], usize::from(pane.width), 0);
        frame.render_widget(Paragraph::new(lines), pane);
        return;
    };
    let lines = layout::conversation_lines(&conv.messages, usize::from(pane.width), app.theme);
    let height = usize::from(pane.height);
    let scroll = app.scroll.min(lines.len().saturating_sub(height));
    let end = lines.len() - scroll;
    let start = end.saturating_sub(height);
    let shown: Vec<Line> = lines[start..end].to_vec();
    frame.render_widget(Paragraph::new(shown), pane);
    if scroll > 0 {
        let more = format!(" ↓ {scroll} more ");
        let at = Rect {
            x: areas.conversation.right().saturating_sub(more.width() as u16 + 1),
            y: areas.conversation.bottom().saturating_sub(1),
            width: (more.width() as u16).min(areas.conversation.width),
            height: 1,
        };
        frame.render_widget(Paragraph::new(more).style(app.theme.dim()), at);
    }
}

/// The text of `/help`.
pub fn help_lines() -> Vec<String> {
    let mut lines = vec!["Commands:".to_owned()];
    lines.extend(COMMANDS.iter().map(|(name, args)| format!("  {name} {args}")));
    lines.extend(
        [
            "Anything else is a message to the open contact (// for a leading /).",
            "Keys: Tab/Shift-Tab or Ctrl-Up/Down next/previous contact,",
            "  PgUp/PgDn scroll, Up/Down input history, Left/Right/Home/End,",
            "  Ctrl-W delete word, Ctrl-U delete to start, Esc close,",
            "  Ctrl-C or Ctrl-D quit.",
            "Marks: ✓ accepted by the server, ✓✓ delivered, ✗ refused.",
        ]
        .map(str::to_owned),
    );
    lines
}

fn input(app: &App, frame: &mut Frame, areas: Areas) {
    let title = match &app.open {
        Some(peer) => format!(" Message to {} ", layout::printable(peer)),
        None => " Command (/help) ".to_owned(),
    };
    frame.render_widget(Block::default().borders(Borders::ALL).title(title), areas.input);
    let line = layout::inner(areas.input);
    let width = usize::from(line.width);
    if width == 0 || line.height == 0 {
        return;
    }
    // Scroll the line sideways so that the cursor stays visible.
    let text = app.editor.text();
    let cursor = app.editor.cursor_column();
    let skip = (cursor + 1).saturating_sub(width);
    let mut shown = String::new();
    let mut column = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if column >= skip && column + w - skip <= width {
            shown.push(c);
        }
        column += w;
    }
    frame.render_widget(Paragraph::new(shown), line);
    if app.quit.is_none() {
        frame.set_cursor_position(Position::new(line.x + (cursor - skip) as u16, line.y));
    }
}

fn status(app: &App, frame: &mut Frame, areas: Areas) {
    let sep = Span::styled(" │ ", app.theme.dim());
    let who = match &app.me {
        Some(me) => layout::printable(me),
        None => "no user".to_owned(),
    };
    let state = match (&app.quit, app.connected) {
        (Some(_), _) => Span::raw("quitting…"),
        (None, true) => Span::styled("connected", app.theme.ok()),
        (None, false) => Span::raw("not connected"),
    };
    let mut spans = vec![
        Span::raw(app.server.clone()),
        sep.clone(),
        Span::styled(who, Style::default().add_modifier(Modifier::BOLD)),
        sep.clone(),
        state,
        sep.clone(),
        Span::raw(format!("ws: {}", app.normalizer)),
    ];
    if let Some(n) = &app.notice {
        spans.push(sep);
        let style = if n.error { app.theme.error() } else { app.theme.ok() };
        spans.push(Span::styled(layout::printable(&n.text), style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), areas.status);
}

/// The longest prefix of `s` that fits in `width` columns.
fn truncate(s: &str, width: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in layout::printable(s).chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::Effect;
    use crate::tui::conversation::{Message, Status};
    use crate::tui::event::{Event, Net};
    use crate::tui::layout::Theme;
    use protocol::Op;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::time::Instant;

    fn draw(app: &App, w: u16, h: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|f| render(app, f)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..h)
            .map(|y| {
                let mut line = String::new();
                for x in 0..w {
                    line.push_str(buffer[(x, y)].symbol());
                }
                line
            })
            .collect()
    }

    fn alice(size: (u16, u16)) -> App {
        // 10:30 UTC on 1 January 1970.
        let mut a =
            App::new("127.0.0.1:8080".into(), Theme { color: false, utc_offset: 0 }, size, Instant::now(), 37_800);
        let done = |op, line: &str| Event::Net(Net::Done { op, alias: "alice".into(), ok: true, line: line.into() });
        a.update(done(Op::Register, "REGISTER OK"));
        a.update(done(Op::Connect, "CONNECT OK"));
        a.update(Event::Net(Net::Normalizer("local rule".into())));
        a.update(Event::Net(Net::Users(vec!["alice".into(), "bob".into()])));
        a.take_effects();
        a
    }

    fn send(a: &mut App, text: &str) {
        for c in text.chars() {
            a.update(Event::Key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(c))));
        }
        a.update(Event::Key(crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Enter)));
    }

    fn line_with<'a>(screen: &'a [String], text: &str) -> &'a str {
        screen
            .iter()
            .find(|l| l.contains(text))
            .unwrap_or_else(|| panic!("{text:?} not on screen:\n{}", screen.join("\n")))
    }

    #[test]
    fn own_messages_show_check_then_double_check() {
        let mut a = alice((80, 24));
        send(&mut a, "/open bob");
        send(&mut a, "hello bob");
        assert!(line_with(&draw(&a, 80, 24), "hello bob").contains("10:30 alice: hello bob …"));
        a.update(Event::Net(Net::Sent { local: 1, result: Ok((1, "hello bob".into())) }));
        let screen = draw(&a, 80, 24);
        assert!(line_with(&screen, "hello bob").contains("hello bob ✓ "), "{screen:#?}");
        a.update(Event::Net(Net::Ack { id: 1 }));
        assert!(line_with(&draw(&a, 80, 24), "hello bob").contains("hello bob ✓✓"));
        send(&mut a, "are you there");
        a.update(Event::Net(Net::Sent { local: 2, result: Err("user does not exist".into()) }));
        assert!(line_with(&draw(&a, 80, 24), "are you there").contains("are you there ✗ user does not exist"));
    }

    #[test]
    fn unread_counts_and_online_marks_in_the_contacts_pane() {
        let mut a = alice((80, 24));
        send(&mut a, "/open bob");
        for id in 1..=3 {
            let at = 37_800;
            a.update(Event::Net(Net::Message { from: "carol".into(), id, text: "psst".into(), at }));
        }
        let screen = draw(&a, 80, 24);
        assert!(screen[1].starts_with("│● bob"), "{screen:#?}");
        assert!(screen[2].starts_with("│○ carol            (3)│"), "{screen:#?}");
    }

    #[test]
    fn the_80_by_24_screen() {
        let mut a = alice((80, 24));
        send(&mut a, "/open bob");
        a.update(Event::Net(Net::Message { from: "bob".into(), id: 1, text: "hi alice".into(), at: 37_860 }));
        send(&mut a, "hi bob, this is a rather long message that has to wrap onto a second line of the pane");
        a.take_effects();
        let screen = draw(&a, 80, 24);
        let expected = [
            "┌ Contacts ────────────┐┌ bob ● online ────────────────────────────────────────┐",
            "│● bob                 ││10:31 bob: hi alice                                   │",
            "│                      ││10:30 alice: hi bob, this is a rather long message    │",
            "│                      ││      that has to wrap onto a second line of the pane │",
            "│                      ││      …                                               │",
        ];
        assert_eq!(&screen[..5], expected, "{screen:#?}");
        assert_eq!(screen[19], format!("└{}┘└{}┘", "─".repeat(22), "─".repeat(54)));
        assert!(screen[20].starts_with("┌ Message to bob ─"), "{screen:#?}");
        assert_eq!(screen[21], format!("│{}│", " ".repeat(78)));
        assert!(screen[23].starts_with("127.0.0.1:8080 │ alice │ connected │ ws: local rule"), "{}", screen[23]);
        // The same state fits a narrower and a shorter terminal without panicking.
        for (w, h) in [(40, 10), (20, 5), (1, 1), (0, 0)] {
            a.update(Event::Resize(w, h));
            draw(&a, w, h);
        }
    }

    #[test]
    fn help_and_notices() {
        let mut a = alice((80, 24));
        send(&mut a, "/help");
        let screen = draw(&a, 80, 24);
        assert!(line_with(&screen, "Help (Esc closes)").contains("Help"));
        line_with(&screen, "/register ALIAS [FULL NAME] [DD/MM/YYYY]");
        send(&mut a, "/nope");
        assert!(line_with(&draw(&a, 80, 24), "unknown command /nope").starts_with("127.0.0.1:8080"));
        assert!(a.take_effects().iter().all(|e| !matches!(e, Effect::LoadHistory(_))));
    }

    #[test]
    fn no_color_means_no_colour_but_marks_and_bold_stay() {
        use ratatui::style::Color;
        let colours = |color: bool| {
            let mut a = alice((80, 24));
            a.theme = Theme { color, utc_offset: 0 };
            send(&mut a, "/open bob");
            send(&mut a, "hi");
            a.update(Event::Net(Net::Sent { local: 1, result: Ok((1, "hi".into())) }));
            let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
            terminal.draw(|f| render(&a, f)).unwrap();
            let buffer = terminal.backend().buffer().clone();
            let cells: Vec<_> = buffer.content().to_vec();
            let coloured = cells.iter().filter(|c| c.fg != Color::Reset || c.bg != Color::Reset).count();
            let bold = cells.iter().filter(|c| c.modifier.contains(Modifier::BOLD)).count();
            let text: String = cells.iter().map(|c| c.symbol()).collect();
            (coloured, bold, text.contains("hi ✓"))
        };
        let (coloured, bold, mark) = colours(false);
        assert_eq!(coloured, 0);
        assert!(bold > 0 && mark);
        assert!(colours(true).0 > 0);
    }

    #[test]
    fn history_messages_show_their_state() {
        let mut a = alice((80, 24));
        send(&mut a, "/open bob");
        let c = a.conversations.entry("bob".into()).or_default();
        c.push(Message { at: 0, from: "alice".into(), text: "old".into(), status: Status::Delivered(4), local: 0 });
        assert!(line_with(&draw(&a, 80, 24), "old").contains("00:00 alice: old ✓✓"));
    }
}
