//! What a line typed in the input box means: a `/command`, or a message for the open conversation.
//!
//! The slash commands map onto the operations of the shell (docs/protocol.md, sections 4 and 8), with
//! the TUI's own argument order for REGISTER: the full name is several words and the date, optional, comes last.

use crate::shell::DEFAULT_BIRTH_DATE;

/// A typed line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// Nothing but blanks.
    Empty,
    /// A message for the open contact (a leading `//` stands for a literal `/`).
    Message(String),
    Register {
        alias: String,
        full_name: String,
        birth_date: String,
    },
    Connect {
        alias: String,
    },
    /// Disconnect the connected alias (or the one given).
    Disconnect {
        alias: Option<String>,
    },
    Unregister {
        alias: String,
    },
    Open {
        alias: String,
    },
    Users,
    Help,
    Quit,
    /// A command with wrong arguments, or unknown: the text to show.
    Error(String),
}

/// The commands and their arguments, for `/help` and usage errors.
pub const COMMANDS: [(&str, &str); 8] = [
    ("/register", "ALIAS [FULL NAME] [DD/MM/YYYY]"),
    ("/connect", "ALIAS"),
    ("/disconnect", ""),
    ("/unregister", "ALIAS"),
    ("/open", "ALIAS"),
    ("/users", ""),
    ("/help", ""),
    ("/quit", ""),
];

fn usage(name: &str) -> Typed {
    let args = COMMANDS.iter().find(|(n, _)| *n == name).map_or("", |(_, a)| *a);
    Typed::Error(format!("usage: {name} {args}").trim_end().to_owned())
}

/// Whether `word` looks like a birth date (`DD/MM/YYYY`, or any digits and slashes or dashes).
fn is_date(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_digit()) && word.chars().all(|c| c.is_ascii_digit() || c == '/' || c == '-')
}

/// Parses one line of the input box.
pub fn parse(line: &str) -> Typed {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Typed::Empty;
    }
    if let Some(rest) = trimmed.strip_prefix("//") {
        return Typed::Message(format!("/{rest}"));
    }
    let Some(command) = trimmed.strip_prefix('/') else {
        return Typed::Message(line.to_owned());
    };
    let mut words = command.split_whitespace();
    let name = format!("/{}", words.next().unwrap_or("").to_lowercase());
    let args: Vec<&str> = words.collect();
    match (name.as_str(), args.as_slice()) {
        ("/register", [alias, rest @ ..]) => {
            let (date, name_words) = match rest.split_last() {
                Some((last, before)) if is_date(last) => (last.to_string(), before),
                _ => (DEFAULT_BIRTH_DATE.to_owned(), rest),
            };
            let full_name = if name_words.is_empty() { alias.to_string() } else { name_words.join(" ") };
            Typed::Register { alias: alias.to_string(), full_name, birth_date: date }
        }
        ("/connect", [alias]) => Typed::Connect { alias: alias.to_string() },
        ("/disconnect", []) => Typed::Disconnect { alias: None },
        ("/disconnect", [alias]) => Typed::Disconnect { alias: Some(alias.to_string()) },
        ("/unregister", [alias]) => Typed::Unregister { alias: alias.to_string() },
        ("/open", [alias]) => Typed::Open { alias: alias.to_string() },
        ("/users", []) => Typed::Users,
        ("/help", _) => Typed::Help,
        ("/quit", []) => Typed::Quit,
        (known, _) if COMMANDS.iter().any(|(n, _)| *n == known) => usage(known),
        _ => Typed::Error(format!("unknown command {name}: /help lists them")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_takes_a_full_name_and_an_optional_date_last() {
        assert_eq!(
            parse("/register alice"),
            Typed::Register { alias: "alice".into(), full_name: "alice".into(), birth_date: "01/01/1970".into() }
        );
        assert_eq!(
            parse("/REGISTER alice Alice B. Smith 02/03/2001"),
            Typed::Register {
                alias: "alice".into(),
                full_name: "Alice B. Smith".into(),
                birth_date: "02/03/2001".into()
            }
        );
        assert_eq!(
            parse("/register bob 02/03/2001"),
            Typed::Register { alias: "bob".into(), full_name: "bob".into(), birth_date: "02/03/2001".into() }
        );
        assert_eq!(parse("/register"), Typed::Error("usage: /register ALIAS [FULL NAME] [DD/MM/YYYY]".into()));
    }

    #[test]
    fn the_other_commands() {
        assert_eq!(parse(" /connect alice "), Typed::Connect { alias: "alice".into() });
        assert_eq!(parse("/disconnect"), Typed::Disconnect { alias: None });
        assert_eq!(parse("/unregister a"), Typed::Unregister { alias: "a".into() });
        assert_eq!(parse("/open bob"), Typed::Open { alias: "bob".into() });
        assert_eq!(parse("/users"), Typed::Users);
        assert_eq!(parse("/help me"), Typed::Help);
        assert_eq!(parse("/Quit"), Typed::Quit);
        assert_eq!(parse("/connect"), Typed::Error("usage: /connect ALIAS".into()));
        assert_eq!(parse("/quit now"), Typed::Error("usage: /quit".into()));
        assert_eq!(parse("/frobnicate"), Typed::Error("unknown command /frobnicate: /help lists them".into()));
    }

    #[test]
    fn messages_are_kept_verbatim_and_double_slash_escapes() {
        assert_eq!(parse("  hello   bob "), Typed::Message("  hello   bob ".into()));
        assert_eq!(parse("//shrug"), Typed::Message("/shrug".into()));
        assert_eq!(parse("   "), Typed::Empty);
    }
}
