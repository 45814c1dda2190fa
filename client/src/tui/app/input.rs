//! Keys and the mouse: editing, contact switching, scrolling.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::{layout, App, Quit};

/// Lines scrolled by one turn of the mouse wheel.
const WHEEL_LINES: usize = 3;

impl App {
    pub(super) fn on_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Char('c' | 'd') if ctrl => self.request_quit(Quit::User),
            _ if self.quit.is_some() => {}
            KeyCode::Char('w') if ctrl => self.editor.delete_word(),
            KeyCode::Char('u') if ctrl => self.editor.delete_to_start(),
            KeyCode::Char('a') if ctrl => self.editor.home(),
            KeyCode::Char('e') if ctrl => self.editor.end(),
            KeyCode::Char('n') if ctrl => self.cycle_contact(1),
            KeyCode::Char('p') if ctrl => self.cycle_contact(-1),
            KeyCode::Char(_) if ctrl || alt => {}
            KeyCode::Char(c) => self.editor.insert(c),
            KeyCode::Backspace => self.editor.backspace(),
            KeyCode::Delete => self.editor.delete(),
            KeyCode::Left => self.editor.left(),
            KeyCode::Right => self.editor.right(),
            KeyCode::Home => self.editor.home(),
            KeyCode::End => self.editor.end(),
            KeyCode::Up if ctrl || alt => self.cycle_contact(-1),
            KeyCode::Down if ctrl || alt => self.cycle_contact(1),
            KeyCode::Up => self.editor.up(),
            KeyCode::Down => self.editor.down(),
            KeyCode::Tab => self.cycle_contact(1),
            KeyCode::BackTab => self.cycle_contact(-1),
            KeyCode::PageUp => self.scroll_by(self.page() as isize),
            KeyCode::PageDown => self.scroll_by(-(self.page() as isize)),
            KeyCode::Esc => {
                self.show_help = false;
                self.notice = None;
            }
            KeyCode::Enter => {
                let line = self.editor.submit();
                self.on_line(&line);
            }
            _ => {}
        }
    }

    pub(super) fn on_mouse(&mut self, mouse: MouseEvent) {
        if self.quit.is_some() {
            return;
        }
        let areas = layout::areas(self.screen());
        let at = Position::new(mouse.column, mouse.row);
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                let list = layout::inner(areas.contacts);
                if list.contains(at) {
                    let contacts = self.contacts();
                    let offset = layout::contacts_offset(self.open_index(&contacts), usize::from(list.height));
                    let row = usize::from(at.y - list.y) + offset;
                    if let Some(c) = contacts.get(row) {
                        let alias = c.alias.clone();
                        self.open_conversation(alias);
                    }
                }
            }
            MouseEventKind::ScrollUp if areas.conversation.contains(at) => self.scroll_by(WHEEL_LINES as isize),
            MouseEventKind::ScrollDown if areas.conversation.contains(at) => self.scroll_by(-(WHEEL_LINES as isize)),
            _ => {}
        }
    }

    fn screen(&self) -> Rect {
        Rect::new(0, 0, self.size.0, self.size.1)
    }

    /// Rows of text in the conversation pane.
    fn page(&self) -> usize {
        usize::from(layout::inner(layout::areas(self.screen()).conversation).height).max(1)
    }

    fn scroll_by(&mut self, lines: isize) {
        self.scroll = self.scroll.saturating_add_signed(lines);
        self.clamp_scroll();
    }

    /// Keeps the scroll within the open conversation (at most its first line at the top of the pane).
    pub(super) fn clamp_scroll(&mut self) {
        let pane = layout::inner(layout::areas(self.screen()).conversation);
        let total = match self.open.as_ref().and_then(|o| self.conversations.get(o)) {
            Some(c) => layout::conversation_lines(&c.messages, usize::from(pane.width), self.theme).len(),
            None => 0,
        };
        self.scroll = self.scroll.min(total.saturating_sub(usize::from(pane.height)));
    }
}
