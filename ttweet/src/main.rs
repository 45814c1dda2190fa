//! `ttweet`: post to, or read, the ttweet board served beside the message server (`server --ttweet-port`).
//!
//! ```text
//! ttweet -u HOST PORT "message"     post a message of at most 150 characters (an empty one clears the board)
//! ttweet -d HOST PORT               print the last message posted
//! ```
//!
//! Wire protocol of the original ttweet programs: one request per connection; a post is `u\n` followed by the
//! message as UTF-8, ended by closing the sending side, and is not answered; a read is `d\n`, answered with the
//! last message as UTF-8 text (or `Empty Message`), ended by the server's close. The printed lines are the
//! original client's: `Received Message: <text>` for a read, then `Transmission Successfull...`.
//!
//! Exit status: 0 on success, 1 when the board cannot be reached or does not answer, 2 for bad arguments (a bad
//! address or port, a message over 150 characters), in which case nothing is sent.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser};

/// Longest message the board accepts, in characters (the server's `ttweet::MAX_CHARS`).
const MAX_CHARS: usize = 150;
/// Bound on connecting to one address of the board.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on each read and write once connected.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes read from the board: a conforming answer is at most 150 characters of 4 bytes.
const MAX_ANSWER_BYTES: u64 = 4096;
/// Printed once the request has been carried out, as the original client does.
const SUCCESS_LINE: &str = "Transmission Successfull...";

/// ttweet: post to, or read, the ttweet board served beside the message server (`server --ttweet-port`).
#[derive(Debug, Parser)]
#[command(name = "ttweet", version)]
#[command(group(ArgGroup::new("mode").required(true).args(["upload", "download"])))]
struct Args {
    /// Post MESSAGE to the board (at most 150 characters; an empty message clears the board).
    #[arg(short = 'u', requires = "message")]
    upload: bool,
    /// Print the last message posted on the board.
    #[arg(short = 'd', conflicts_with = "message")]
    download: bool,
    /// Host name or IPv4 address of the board's server.
    host: String,
    /// TCP port of the board (the server's --ttweet-port).
    #[arg(allow_hyphen_values = true)]
    port: String,
    /// The message to post.
    #[arg(allow_hyphen_values = true)]
    message: Option<String>,
}

/// Why a request could not be carried out.
#[derive(Debug)]
enum Error {
    /// The port argument is not a number in 1–65535.
    BadPort(String),
    /// The host cannot be resolved to an address.
    BadAddress(String, io::Error),
    /// The message is longer than [`MAX_CHARS`] characters.
    TooLong(usize),
    /// No address of the board accepted the connection.
    Unreachable(String, io::Error),
    /// The connection failed during the exchange.
    Exchange(&'static str, io::Error),
}

impl Error {
    fn exit_code(&self) -> ExitCode {
        match self {
            Error::BadPort(_) | Error::BadAddress(..) | Error::TooLong(_) => ExitCode::from(2),
            Error::Unreachable(..) | Error::Exchange(..) => ExitCode::FAILURE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadPort(port) => write!(f, "server port invalid: {port:?} is not a port number in 1-65535"),
            Error::BadAddress(host, e) => write!(f, "server address invalid: {host:?} cannot be resolved ({e})"),
            Error::TooLong(n) => write!(f, "message too long: {n} characters, at most {MAX_CHARS}; nothing was sent"),
            Error::Unreachable(target, e) => write!(f, "cannot connect to the ttweet board at {target}: {e}"),
            Error::Exchange(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(lines) => {
            // A closed stdout is the reader's choice, not a failure of the transmission.
            let mut out = io::stdout().lock();
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Carries out the request; returns the lines to print.
fn run(args: &Args) -> Result<Vec<String>, Error> {
    let port = parse_port(&args.port)?;
    // Checked before anything is resolved or sent: a refused message must not reach the board.
    let message = args.message.as_deref().unwrap_or_default();
    let chars = message.chars().count();
    if args.upload && chars > MAX_CHARS {
        return Err(Error::TooLong(chars));
    }
    let addrs = resolve(&args.host, port)?;
    let mut stream = connect(&addrs, &format!("{}:{port}", args.host))?;
    if args.upload {
        post(&mut stream, message)?;
        Ok(vec![SUCCESS_LINE.to_owned()])
    } else {
        let text = read(&mut stream)?;
        Ok(vec![format!("Received Message: {text}"), SUCCESS_LINE.to_owned()])
    }
}

fn parse_port(raw: &str) -> Result<u16, Error> {
    match raw.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(Error::BadPort(raw.to_owned())),
    }
}

/// The board's addresses, IPv4 first (the original servers listen on IPv4 only).
fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    let mut addrs: Vec<SocketAddr> =
        (host, port).to_socket_addrs().map_err(|e| Error::BadAddress(host.to_owned(), e))?.collect();
    if addrs.is_empty() {
        let e = io::Error::new(io::ErrorKind::NotFound, "no address");
        return Err(Error::BadAddress(host.to_owned(), e));
    }
    addrs.sort_by_key(|a| !a.is_ipv4());
    Ok(addrs)
}

fn connect(addrs: &[SocketAddr], target: &str) -> Result<TcpStream, Error> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                let ready =
                    stream.set_read_timeout(Some(IO_TIMEOUT)).and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)));
                return ready.map(|()| stream).map_err(|e| Error::Unreachable(target.to_owned(), e));
            }
            Err(e) => last = e,
        }
    }
    Err(Error::Unreachable(target.to_owned(), last))
}

/// Sends `u\n<message>`, closes the sending side (the end of the message), and waits for the board to close:
/// it does so once the post is stored, so success here means the message is on the board.
fn post(stream: &mut TcpStream, message: &str) -> Result<(), Error> {
    let mut request = Vec::with_capacity(2 + message.len());
    request.extend_from_slice(b"u\n");
    request.extend_from_slice(message.as_bytes());
    stream.write_all(&request).map_err(|e| Error::Exchange("the post could not be sent", e))?;
    stream.shutdown(Shutdown::Write).map_err(|e| Error::Exchange("the post could not be ended", e))?;
    // Nothing is expected back; whatever arrives is read (bounded) and ignored until the close.
    let mut ignored = Vec::new();
    stream
        .take(MAX_ANSWER_BYTES)
        .read_to_end(&mut ignored)
        .map_err(|e| Error::Exchange("the board did not confirm the post", e))?;
    Ok(())
}

/// Sends `d\n` and returns the board's answer, read up to the board's close.
fn read(stream: &mut TcpStream) -> Result<String, Error> {
    stream.write_all(b"d\n").map_err(|e| Error::Exchange("the request could not be sent", e))?;
    // The request is complete; a board that reads to the end of it sees that end at once.
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER_BYTES)
        .read_to_end(&mut answer)
        .map_err(|e| Error::Exchange("no answer from the board", e))?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn command_lines() {
        let a = Args::try_parse_from(["ttweet", "-u", "h", "1", "hello world"]).unwrap();
        assert!(a.upload && !a.download);
        assert_eq!(a.message.as_deref(), Some("hello world"));
        let a = Args::try_parse_from(["ttweet", "-d", "h", "1"]).unwrap();
        assert!(a.download && a.message.is_none());
        let a = Args::try_parse_from(["ttweet", "-u", "h", "1", "-dash first"]).unwrap();
        assert_eq!(a.message.as_deref(), Some("-dash first"));
        for bad in [
            &["ttweet", "h", "1"][..],
            &["ttweet", "-u", "h", "1"],
            &["ttweet", "-d", "h", "1", "extra"],
            &["ttweet", "-u", "-d", "h", "1", "m"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("13000").unwrap(), 13000);
        for bad in ["0", "65536", "-1", "x", ""] {
            assert!(matches!(parse_port(bad), Err(Error::BadPort(_))), "{bad}");
        }
    }
}
