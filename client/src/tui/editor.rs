//! The input line: a single line of text with a cursor, the usual editing keys and a history of what was
//! entered (in memory, for Up/Down).

use std::collections::VecDeque;

use unicode_width::UnicodeWidthChar;

/// Longest input line, in characters; typing beyond it is ignored. A message is at most 255 bytes once
/// normalized (docs/protocol.md, section 2.3), so nothing useful is longer.
pub const MAX_INPUT_CHARS: usize = 1024;

/// Lines remembered for Up/Down.
pub const INPUT_HISTORY: usize = 100;

/// An editable line. The cursor is a byte offset into the text, always on a character boundary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LineEditor {
    text: String,
    cursor: usize,
    history: VecDeque<String>,
    /// Which history entry Up/Down is showing (0 = the newest), with the line being typed before browsing.
    browsing: Option<(usize, String)>,
}

impl LineEditor {
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor's column from the start of the text.
    pub fn cursor_column(&self) -> usize {
        self.text[..self.cursor].chars().map(|c| c.width().unwrap_or(0)).sum()
    }

    pub fn insert(&mut self, c: char) {
        if c.is_control() || self.text.chars().count() >= MAX_INPUT_CHARS {
            return;
        }
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    pub fn left(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
        }
    }

    pub fn right(&mut self) {
        if let Some(c) = self.text[self.cursor..].chars().next() {
            self.cursor += c.len_utf8();
        }
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.text.len();
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
            self.text.remove(self.cursor);
        }
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    /// Ctrl-W: deletes the word before the cursor and the blanks after it.
    pub fn delete_word(&mut self) {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end_matches(' ');
        let start = trimmed.rfind(' ').map_or(0, |i| i + 1);
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Ctrl-U: deletes everything before the cursor.
    pub fn delete_to_start(&mut self) {
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }

    /// Up: the previous entered line (the line being typed is kept for Down).
    pub fn up(&mut self) {
        let next = match &self.browsing {
            None => 0,
            Some((i, _)) => i + 1,
        };
        if next >= self.history.len() {
            return;
        }
        if self.browsing.is_none() {
            self.browsing = Some((0, std::mem::take(&mut self.text)));
        }
        if let Some((i, _)) = &mut self.browsing {
            *i = next;
        }
        self.show(self.history[self.history.len() - 1 - next].clone());
    }

    /// Down: the next entered line, and after the newest the line that was being typed.
    pub fn down(&mut self) {
        match self.browsing.take() {
            None => {}
            Some((0, draft)) => self.show(draft),
            Some((i, draft)) => {
                self.browsing = Some((i - 1, draft));
                self.show(self.history[self.history.len() - i].clone());
            }
        }
    }

    fn show(&mut self, text: String) {
        self.text = text;
        self.cursor = self.text.len();
    }

    /// Enter: returns the line, clears the editor and remembers the line (blank lines and repeats are not
    /// remembered).
    pub fn submit(&mut self) -> String {
        self.browsing = None;
        self.cursor = 0;
        let line = std::mem::take(&mut self.text);
        if !line.trim().is_empty() && self.history.back() != Some(&line) {
            if self.history.len() == INPUT_HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(line.clone());
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> LineEditor {
        let mut e = LineEditor::default();
        s.chars().for_each(|c| e.insert(c));
        e
    }

    /// One editing operation, as a key would do it.
    type Op = fn(&mut LineEditor);

    /// Applies each step in turn; after each, the text must be the step's.
    fn steps(e: &mut LineEditor, steps: &[(Op, &str)]) {
        for (i, (step, want)) in steps.iter().enumerate() {
            step(e);
            assert_eq!(e.text(), *want, "after step {i}");
        }
    }

    #[test]
    fn cursor_moves_and_edits_in_the_middle() {
        let mut e = typed("héllo");
        e.home();
        e.right();
        e.right();
        e.insert('X');
        assert_eq!(e.text(), "héXllo");
        assert_eq!(e.cursor_column(), 3);
        e.backspace();
        e.delete();
        assert_eq!(e.text(), "hélo");
        e.end();
        e.left();
        e.delete();
        assert_eq!(e.text(), "hél");
        e.end();
        e.right();
        assert_eq!(e.cursor_column(), 3);
    }

    #[test]
    fn ctrl_w_deletes_the_previous_word_and_ctrl_u_the_start() {
        let mut e = typed("hello big  world  ");
        let ctrl_w = LineEditor::delete_word;
        steps(&mut e, &[(ctrl_w, "hello big  "), (ctrl_w, "hello "), (ctrl_w, "")]);
        let mut e = typed("abc def");
        e.left();
        e.left();
        e.delete_to_start();
        assert_eq!((e.text(), e.cursor_column()), ("ef", 0));
    }

    #[test]
    fn up_and_down_walk_the_history_and_keep_the_draft() {
        let mut e = typed("one");
        e.submit();
        "two".chars().for_each(|c| e.insert(c));
        e.submit();
        "dra".chars().for_each(|c| e.insert(c));
        let (up, down) = (LineEditor::up, LineEditor::down);
        steps(&mut e, &[(up, "two"), (up, "one"), (up, "one"), (down, "two"), (down, "dra"), (down, "dra")]);
    }

    #[test]
    fn length_and_history_are_bounded() {
        let mut e = LineEditor::default();
        (0..MAX_INPUT_CHARS + 10).for_each(|_| e.insert('x'));
        assert_eq!(e.text().len(), MAX_INPUT_CHARS);
        for i in 0..INPUT_HISTORY + 5 {
            e.submit();
            e.insert(char::from(b'a' + (i % 26) as u8));
        }
        assert_eq!(e.history.len(), INPUT_HISTORY);
        e.insert('\u{1b}');
        assert!(!e.text().contains('\u{1b}'));
    }
}
