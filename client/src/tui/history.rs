//! The conversations of each own alias, kept on disk between runs.
//!
//! One file per alias, `<dir>/<alias>.history`, plus `<dir>/last-user` naming the alias of the last session, so a
//! restart shows that user's conversations at once. Every save writes a temporary file, flushes it to disk and
//! renames it over the old one: a crash at any moment leaves either the old file or the new one, never half of
//! one. The file is bounded ([`MAX_HISTORY_BYTES`]): the oldest messages are left out first.
//!
//! The format is text, one message per line, tab-separated, with `\\`, tab, line feed and carriage return
//! escaped: `peer, direction (in/out), unix time, state, id, reason, sender, text`, after a version line.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::conversation::{Conversation, Message, Status};

/// Upper bound on one history file; the oldest messages are dropped to stay under it.
pub const MAX_HISTORY_BYTES: usize = 1024 * 1024;

/// First line of a history file.
const HEADER: &str = "client-history 1";

/// The file naming the alias of the last session.
const LAST_USER: &str = "last-user";

/// The default history directory: the platform's per-user data directory (`~/.local/share/msgclient` on
/// Linux), or `None` when the platform has no home directory.
pub fn default_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "msgclient").map(|d| d.data_dir().to_path_buf())
}

/// The history store under one directory.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

impl History {
    pub fn new(dir: PathBuf) -> History {
        History { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `alias`. Aliases are arbitrary text: every byte outside `[A-Za-z0-9_-]` is written `%XX`, so
    /// the name is always one plain file inside the directory.
    pub fn file(&self, alias: &str) -> PathBuf {
        let mut name = String::new();
        for b in alias.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                name.push(char::from(b));
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
        self.dir.join(format!("{name}.history"))
    }

    /// The alias of the last session, if one was recorded.
    pub fn last_user(&self) -> Option<String> {
        let text = fs::read_to_string(self.dir.join(LAST_USER)).ok()?;
        let alias = text.trim_end_matches('\n');
        (!alias.is_empty()).then(|| alias.to_owned())
    }

    pub fn set_last_user(&self, alias: &str) -> io::Result<()> {
        write_atomically(&self.dir, &self.dir.join(LAST_USER), format!("{alias}\n").as_bytes())
    }

    /// The conversations of `alias`; an absent file is an empty history. Lines that cannot be read are skipped
    /// (and counted in the second value), so one damaged line does not cost the rest.
    pub fn load(&self, alias: &str) -> io::Result<(BTreeMap<String, Conversation>, usize)> {
        let path = self.file(alias);
        // Our files never exceed the bound; a much larger one is not ours, and is not read into memory.
        if fs::metadata(&path).is_ok_and(|m| m.len() > 4 * MAX_HISTORY_BYTES as u64) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "far larger than a history file can be"));
        }
        let text = match fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((BTreeMap::new(), 0)),
            Err(e) => return Err(e),
        };
        let mut conversations: BTreeMap<String, Conversation> = BTreeMap::new();
        let mut bad = 0;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not a history file of this version"));
        }
        for line in lines {
            match parse_line(line) {
                Some((peer, message)) => conversations.entry(peer).or_default().push(message),
                None => bad += 1,
            }
        }
        Ok((conversations, bad))
    }

    /// Replaces the history of `alias` with `conversations` (see the module comment).
    pub fn save(&self, alias: &str, conversations: &BTreeMap<String, Conversation>) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        write_atomically(&self.dir, &self.file(alias), &serialize(conversations, MAX_HISTORY_BYTES))
    }
}

/// The file's bytes, the newest messages first in priority: whatever does not fit in `budget` is the oldest.
fn serialize(conversations: &BTreeMap<String, Conversation>, budget: usize) -> Vec<u8> {
    let mut lines: Vec<(i64, usize, String)> = Vec::new();
    let mut order = 0;
    for (peer, conversation) in conversations {
        for m in &conversation.messages {
            lines.push((m.at, order, format_line(peer, m)));
            order += 1;
        }
    }
    // Keep the newest that fit, then write them back in their original order.
    let mut by_age: Vec<usize> = (0..lines.len()).collect();
    by_age.sort_by_key(|&i| std::cmp::Reverse((lines[i].0, lines[i].1)));
    let mut size = HEADER.len() + 1;
    let mut keep = vec![false; lines.len()];
    for i in by_age {
        size += lines[i].2.len() + 1;
        if size > budget {
            break;
        }
        keep[i] = true;
    }
    let mut out = format!("{HEADER}\n").into_bytes();
    for (i, (_, _, line)) in lines.iter().enumerate() {
        if keep[i] {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

fn format_line(peer: &str, m: &Message) -> String {
    let (direction, state, id, reason) = match &m.status {
        Status::Received(id) => ("in", "r", id.to_string(), ""),
        // A message still on its way when the file is written: if we crash now, it was never confirmed.
        Status::Sending => ("out", "f", String::new(), "not confirmed before the client stopped"),
        Status::Sent(id) => ("out", "s", id.to_string(), ""),
        Status::Delivered(id) => ("out", "d", id.to_string(), ""),
        Status::Failed(why) => ("out", "f", String::new(), why.as_str()),
    };
    [peer, direction, &m.at.to_string(), state, &id, reason, &m.from, &m.text].map(escape).join("\t")
}

fn parse_line(line: &str) -> Option<(String, Message)> {
    let fields: Vec<String> = line.split('\t').map(unescape).collect();
    let [peer, direction, at, state, id, reason, from, text] = <[String; 8]>::try_from(fields).ok()?;
    let at: i64 = at.parse().ok()?;
    let id = || id.parse::<u32>().ok();
    let status = match (direction.as_str(), state.as_str()) {
        ("in", "r") => Status::Received(id()?),
        ("out", "s") => Status::Sent(id()?),
        ("out", "d") => Status::Delivered(id()?),
        ("out", "f") => Status::Failed(reason),
        _ => return None,
    };
    Some((peer, Message { at, from, text, status, local: 0 }))
}

fn escape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for c in field.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Writes `bytes` to `path` so that a crash leaves the old content or the new, never a mix: a temporary file in
/// the same directory, flushed to disk, renamed over `path`, then the directory flushed so the rename lasts.
pub fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Not every platform can open a directory to flush it; the rename itself is already atomic.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tui-history-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn msg(at: i64, from: &str, text: &str, status: Status) -> Message {
        Message { at, from: from.into(), text: text.into(), status, local: 0 }
    }

    #[test]
    fn saves_and_loads_every_state_and_awkward_text() {
        let dir = temp_dir("roundtrip");
        let h = History::new(dir.clone());
        let mut convs = BTreeMap::new();
        let mut c = Conversation::default();
        c.push(msg(1, "bob", "hi\tthere\\n\nline", Status::Received(7)));
        c.push(msg(2, "al/ice", "sent", Status::Sent(1)));
        c.push(msg(3, "al/ice", "done ✓", Status::Delivered(2)));
        c.push(msg(4, "al/ice", "no", Status::Failed("user does not exist".into())));
        convs.insert("bob".to_owned(), c);
        h.save("al/ice", &convs).unwrap();
        assert!(h.file("al/ice").ends_with("al%2Fice.history"));
        let (loaded, bad) = h.load("al/ice").unwrap();
        assert_eq!((loaded, bad), (convs, 0));
        assert_eq!(h.load("nobody").unwrap().0.len(), 0);
        h.set_last_user("al/ice").unwrap();
        assert_eq!(h.last_user().as_deref(), Some("al/ice"));
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).collect();
        assert_eq!(leftovers.len(), 2, "no temporary file left behind");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_message_in_flight_is_saved_as_not_confirmed() {
        let line = format_line("bob", &msg(5, "me", "x", Status::Sending));
        let (_, m) = parse_line(&line).unwrap();
        assert!(matches!(m.status, Status::Failed(_)));
    }

    #[test]
    fn the_file_is_bounded_and_keeps_the_newest() {
        let mut convs = BTreeMap::new();
        let mut c = Conversation::default();
        for i in 0..100 {
            c.push(msg(i, "bob", &format!("message number {i:03}"), Status::Received(i as u32)));
        }
        convs.insert("bob".to_owned(), c);
        let bytes = serialize(&convs, 500);
        assert!(bytes.len() <= 500);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("message number 099") && !text.contains("message number 000"));
        let last: Vec<&str> = text.lines().skip(1).collect();
        assert!(last.windows(2).all(|w| w[0] < w[1]), "kept in order");
    }

    #[test]
    fn damaged_lines_are_skipped() {
        let dir = temp_dir("damaged");
        let h = History::new(dir.clone());
        fs::create_dir_all(&dir).unwrap();
        let good = format_line("bob", &msg(1, "bob", "ok", Status::Received(1)));
        fs::write(h.file("a"), format!("{HEADER}\ngarbage\n{good}\nbob\tin\tx\tr\t1\t\tbob\tt\n")).unwrap();
        let (convs, bad) = h.load("a").unwrap();
        assert_eq!((convs["bob"].messages.len(), bad), (1, 2));
        fs::write(h.file("b"), "something else\n").unwrap();
        assert!(h.load("b").is_err());
        fs::write(h.file("c"), vec![b'x'; 4 * MAX_HISTORY_BYTES + 1]).unwrap();
        assert!(h.load("c").is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}
