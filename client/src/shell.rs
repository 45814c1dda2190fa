//! The command language (docs/protocol.md, "Client: commands"): one typed line becomes a [`Command`] or a local error line.
//!
//! The first word names the command, in any case. Words are separated by spaces; the last argument of SEND
//! and SENDATTACH (the message) and of REGISTER (the full name) is the rest of the line, verbatim. Leading and
//! trailing blanks of the line are ignored, and so are extra spaces between words: a stray space should not turn
//! `CONNECT alice` into a syntax error, and the message is normalized before it is sent anyway.

/// Birth date sent by `REGISTER <userName>` when none is given.
pub const DEFAULT_BIRTH_DATE: &str = "01/01/1970";

/// A command the user asked for, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Register { alias: String, birth_date: String, full_name: String },
    Unregister { alias: String },
    Connect { alias: String },
    Disconnect { alias: String },
    ConnectedUsers,
    Send { recipient: String, message: String },
    SendAttach { recipient: String, file: String, message: String },
    Quit,
}

/// The result of reading one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A blank line: nothing to do, nothing to print.
    Empty,
    /// A command to run.
    Command(Command),
    /// A line to print instead of running anything (a syntax error); the server is not contacted.
    Error(String),
    /// An unknown command: its spec line (`Error: command <word> not valid.`), to be followed by the command list.
    Unknown(String),
    /// `HELP` or `?`: print [`help_lines`].
    Help,
}

/// The command names and their arguments as shown in usage messages (docs/protocol.md, "Client: commands").
const USAGES: [(&str, &str); 8] = [
    ("REGISTER", "<userName> [<DD/MM/YYYY> [<full name…>]]"),
    ("UNREGISTER", "<userName>"),
    ("CONNECT", "<userName>"),
    ("DISCONNECT", "<userName>"),
    ("CONNECTEDUSERS", ""),
    ("SEND", "<userName> <message…>"),
    ("SENDATTACH", "<userName> <file> <message…>"),
    ("QUIT", ""),
];

/// What each advertised command does, for HELP, in the order of [`USAGES`]. SENDATTACH is left out: it exists
/// only to answer `SENDATTACH FAIL / NOT SUPPORTED`.
const PURPOSES: [(&str, &str); 8] = [
    ("REGISTER", "register a user; you then act as that user"),
    ("UNREGISTER", "remove a user and the messages waiting for it"),
    ("CONNECT", "go online as a user: receive its messages and act as it"),
    ("DISCONNECT", "go offline"),
    ("CONNECTEDUSERS", "list the users online (the current user must be connected)"),
    ("SEND", "send a message as the current user"),
    ("QUIT", "disconnect and exit (also end of input, Ctrl-D, Ctrl-C)"),
    ("HELP", "show this list (also ?)"),
];

/// The command list shown by HELP: one line per command, its usage and what it does.
pub fn help_lines() -> Vec<String> {
    let usage = |name: &str| {
        let args = USAGES.iter().find(|(n, _)| *n == name).map_or("", |(_, a)| *a);
        if args.is_empty() {
            name.to_owned()
        } else {
            format!("{name} {args}")
        }
    };
    let width = PURPOSES.iter().map(|(n, _)| usage(n).chars().count()).max().unwrap_or(0);
    PURPOSES
        .iter()
        .map(|(name, what)| {
            let u = usage(name);
            let pad = width - u.chars().count();
            format!("  {u}{}  {what}", " ".repeat(pad))
        })
        .collect()
}

/// The syntax-error line for `name` (one of [`USAGES`]).
fn syntax_error(name: &str) -> Parsed {
    let args = USAGES.iter().find(|(n, _)| *n == name).map_or("", |(_, a)| *a);
    let sep = if args.is_empty() { "" } else { " " };
    Parsed::Error(format!("Syntax error. Usage: {name}{sep}{args}"))
}

/// Whether `c` separates words.
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits off the first word: returns it and the rest with its leading blanks removed.
fn next_word(s: &str) -> (&str, &str) {
    match s.find(is_blank) {
        Some(i) => (&s[..i], s[i..].trim_start_matches(is_blank)),
        None => (s, ""),
    }
}

/// Splits `rest` into at most `n` words, the last one being the verbatim remainder.
fn words(rest: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::with_capacity(n);
    let mut rest = rest;
    while !rest.is_empty() {
        if out.len() + 1 == n {
            out.push(rest);
            break;
        }
        let (w, r) = next_word(rest);
        out.push(w);
        rest = r;
    }
    out
}

/// Parses one input line (without its line terminator).
pub fn parse(line: &str) -> Parsed {
    let line = line.trim_matches(|c: char| is_blank(c) || c == '\r' || c == '\n');
    if line.is_empty() {
        return Parsed::Empty;
    }
    let (word, rest) = next_word(line);
    let name = word.to_ascii_uppercase();
    let cmd = match name.as_str() {
        "REGISTER" => match words(rest, 3)[..] {
            [alias] => Command::Register {
                alias: alias.into(),
                birth_date: DEFAULT_BIRTH_DATE.into(),
                full_name: alias.into(),
            },
            [alias, date] => {
                Command::Register { alias: alias.into(), birth_date: date.into(), full_name: alias.into() }
            }
            [alias, date, full] => {
                Command::Register { alias: alias.into(), birth_date: date.into(), full_name: full.into() }
            }
            _ => return syntax_error("REGISTER"),
        },
        "UNREGISTER" | "CONNECT" | "DISCONNECT" => match words(rest, 2)[..] {
            [alias] => match name.as_str() {
                "UNREGISTER" => Command::Unregister { alias: alias.into() },
                "CONNECT" => Command::Connect { alias: alias.into() },
                _ => Command::Disconnect { alias: alias.into() },
            },
            _ => return syntax_error(&name),
        },
        "CONNECTEDUSERS" | "QUIT" => match rest {
            "" if name == "QUIT" => Command::Quit,
            "" => Command::ConnectedUsers,
            _ => return syntax_error(&name),
        },
        "SEND" => match words(rest, 2)[..] {
            [recipient, message] => Command::Send { recipient: recipient.into(), message: message.into() },
            _ => return syntax_error("SEND"),
        },
        "SENDATTACH" => match words(rest, 3)[..] {
            [recipient, file, message] => {
                Command::SendAttach { recipient: recipient.into(), file: file.into(), message: message.into() }
            }
            _ => return syntax_error("SENDATTACH"),
        },
        "HELP" | "?" => return Parsed::Help,
        _ => return Parsed::Unknown(format!("Error: command {word} not valid.")),
    };
    Parsed::Command(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Command {
        match parse(line) {
            Parsed::Command(c) => c,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn err(line: &str) -> String {
        match parse(line) {
            Parsed::Error(e) | Parsed::Unknown(e) => e,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn register_defaults_and_full_name_rest_of_line() {
        assert_eq!(
            cmd("REGISTER alice"),
            Command::Register { alias: "alice".into(), birth_date: "01/01/1970".into(), full_name: "alice".into() }
        );
        assert_eq!(
            cmd("register alice 02/03/2001"),
            Command::Register { alias: "alice".into(), birth_date: "02/03/2001".into(), full_name: "alice".into() }
        );
        assert_eq!(
            cmd("Register alice 02/03/2001 Alice  B. Smith"),
            Command::Register {
                alias: "alice".into(),
                birth_date: "02/03/2001".into(),
                full_name: "Alice  B. Smith".into()
            }
        );
    }

    #[test]
    fn one_alias_commands() {
        assert_eq!(cmd("UNREGISTER a"), Command::Unregister { alias: "a".into() });
        assert_eq!(cmd("connect a"), Command::Connect { alias: "a".into() });
        assert_eq!(cmd("  DisConnect   a  "), Command::Disconnect { alias: "a".into() });
        assert_eq!(cmd("CONNECT Ünïcødé"), Command::Connect { alias: "Ünïcødé".into() });
    }

    #[test]
    fn message_is_the_verbatim_rest_of_the_line() {
        assert_eq!(
            cmd("SEND bob hi  there\t!"),
            Command::Send { recipient: "bob".into(), message: "hi  there\t!".into() }
        );
        assert_eq!(cmd("send bob x"), Command::Send { recipient: "bob".into(), message: "x".into() });
        assert_eq!(cmd("SEND bob hi\r"), Command::Send { recipient: "bob".into(), message: "hi".into() });
        assert_eq!(
            cmd("SENDATTACH bob f.txt look at this"),
            Command::SendAttach { recipient: "bob".into(), file: "f.txt".into(), message: "look at this".into() }
        );
    }

    #[test]
    fn no_argument_commands() {
        assert_eq!(cmd("CONNECTEDUSERS"), Command::ConnectedUsers);
        assert_eq!(cmd("quit"), Command::Quit);
        assert_eq!(cmd("QUIT "), Command::Quit);
    }

    #[test]
    fn wrong_argument_counts_are_syntax_errors() {
        for (line, want) in [
            ("REGISTER", "Syntax error. Usage: REGISTER <userName> [<DD/MM/YYYY> [<full name…>]]"),
            ("UNREGISTER", "Syntax error. Usage: UNREGISTER <userName>"),
            ("unregister a b", "Syntax error. Usage: UNREGISTER <userName>"),
            ("CONNECT", "Syntax error. Usage: CONNECT <userName>"),
            ("DISCONNECT a b", "Syntax error. Usage: DISCONNECT <userName>"),
            ("CONNECTEDUSERS x", "Syntax error. Usage: CONNECTEDUSERS"),
            ("SEND bob", "Syntax error. Usage: SEND <userName> <message…>"),
            ("SEND", "Syntax error. Usage: SEND <userName> <message…>"),
            ("SENDATTACH bob file", "Syntax error. Usage: SENDATTACH <userName> <file> <message…>"),
            ("QUIT now", "Syntax error. Usage: QUIT"),
        ] {
            assert_eq!(err(line), want, "{line:?}");
        }
    }

    #[test]
    fn unknown_commands_keep_the_word_as_typed() {
        for (line, want) in [
            ("HELLO there", "Error: command HELLO not valid."),
            ("lol", "Error: command lol not valid."),
            ("SEND_MESSAGE a b", "Error: command SEND_MESSAGE not valid."),
        ] {
            assert_eq!(err(line), want, "{line:?}");
        }
    }

    #[test]
    fn help_lists_every_command_but_sendattach_one_line_each() {
        assert_eq!(parse("HELP"), Parsed::Help);
        assert_eq!(parse(" help "), Parsed::Help);
        assert_eq!(parse("?"), Parsed::Help);
        assert!(matches!(parse("HELLO"), Parsed::Unknown(_)));
        let lines = help_lines();
        assert_eq!(lines.len(), 8);
        for name in ["REGISTER", "UNREGISTER", "CONNECT", "DISCONNECT", "CONNECTEDUSERS", "SEND", "QUIT", "HELP"] {
            assert_eq!(lines.iter().filter(|l| l.trim_start().starts_with(&format!("{name} "))).count(), 1, "{name}");
        }
        assert!(lines.iter().all(|l| !l.contains("SENDATTACH") && !l.contains('\n')), "{lines:#?}");
        assert!(lines[0].starts_with("  REGISTER <userName> [<DD/MM/YYYY> [<full name…>]]  register"), "{}", lines[0]);
    }

    #[test]
    fn blank_lines_are_ignored() {
        assert_eq!(parse(""), Parsed::Empty);
        assert_eq!(parse("   \t "), Parsed::Empty);
        assert_eq!(parse("\r\n"), Parsed::Empty);
    }
}
