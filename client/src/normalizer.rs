//! Step 1 of SEND (docs/protocol.md, "Normalization web service", "The client's call"): the message is normalized
//! before it is sent, by the web service or, when asked, in-process with the same rule.
//!
//! A service named explicitly (`--ws-url` or `MSG_WS_URL`) must answer: unreachable or faulting, the SEND fails.
//! The default service is a convenience: when nothing listens there, the client warns once and applies the rule
//! itself, so a first run without the service still works.

use std::time::Duration;

use client::ws::{self, WsError};
use log::warn;

use crate::cli::DEFAULT_WS_URL;

/// Bound on one call to the normalization service (connect, send, answer).
pub const WS_TIMEOUT: Duration = Duration::from_secs(5);

/// How messages are normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// In-process (`--local-normalize`).
    Local,
    /// By the service at `url`; `explicit` when the user named it.
    Remote { url: String, explicit: bool },
}

impl Mode {
    /// The mode chosen by the flags. An empty URL (`MSG_WS_URL=`) counts as none.
    pub fn from_flags(local: bool, ws_url: Option<String>) -> Mode {
        match (local, ws_url.filter(|u| !u.trim().is_empty())) {
            (true, _) => Mode::Local,
            (false, Some(url)) => Mode::Remote { url, explicit: true },
            (false, None) => Mode::Remote { url: DEFAULT_WS_URL.to_owned(), explicit: false },
        }
    }
}

/// Why a message could not be normalized: the service at `url` failed with `kind`, which is also the error's
/// `source()`, so a caller can tell a timeout from a fault or an absent service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("normalization service {url}: {kind}")]
pub struct NormalizeError {
    /// The service that was asked.
    pub url: String,
    /// What went wrong with it.
    #[source]
    pub kind: WsError,
}

/// Normalizes messages according to a [`Mode`].
#[derive(Debug)]
pub struct Normalizer {
    mode: Mode,
    /// The fallback warning was printed (it is printed once per run).
    warned: bool,
}

impl Normalizer {
    pub fn new(mode: Mode) -> Normalizer {
        Normalizer { mode, warned: false }
    }

    /// Whether the default service was found unreachable and the local rule is used instead.
    pub fn fell_back(&self) -> bool {
        self.warned
    }

    /// The normalized text, or why SEND must fail.
    pub fn normalize(&mut self, text: &str) -> Result<String, NormalizeError> {
        let (url, explicit) = match &self.mode {
            Mode::Local => return Ok(protocol::normalize::normalize(text)),
            Mode::Remote { url, explicit } => (url.as_str(), *explicit),
        };
        match ws::normalize_remote(url, text, WS_TIMEOUT) {
            Ok(normalized) => Ok(normalized),
            // Only "nothing there" allows the fallback: a service that is present but faults or is too slow
            // must not be silently replaced, whoever configured it.
            Err(WsError::Unreachable(_)) if !explicit => {
                if !self.warned {
                    self.warned = true;
                    warn!("normalization service {url} unreachable; normalizing locally");
                }
                Ok(protocol::normalize::normalize(text))
            }
            Err(kind) => Err(NormalizeError { url: url.to_owned(), kind }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn closed_url() -> String {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("http://127.0.0.1:{port}/")
    }

    #[test]
    fn flags_choose_the_mode() {
        assert_eq!(Mode::from_flags(true, Some("http://x/".into())), Mode::Local);
        assert_eq!(
            Mode::from_flags(false, Some("http://x/".into())),
            Mode::Remote { url: "http://x/".into(), explicit: true }
        );
        assert_eq!(Mode::from_flags(false, None), Mode::Remote { url: DEFAULT_WS_URL.into(), explicit: false });
        assert_eq!(
            Mode::from_flags(false, Some(" ".into())),
            Mode::Remote { url: DEFAULT_WS_URL.into(), explicit: false }
        );
    }

    #[test]
    fn local_applies_the_rule() {
        assert_eq!(Normalizer::new(Mode::Local).normalize("  hello \t world ").unwrap(), "hello world");
    }

    #[test]
    fn an_unreachable_explicit_service_fails_and_says_which_and_why() {
        let url = closed_url();
        let mut n = Normalizer::new(Mode::Remote { url: url.clone(), explicit: true });
        let e = n.normalize("a  b").expect_err("nothing listens there");
        assert_eq!(e.url, url);
        assert!(matches!(e.kind, WsError::Unreachable(_)), "{e:?}");
        assert!(e.to_string().starts_with(&format!("normalization service {url}: service unreachable")), "{e}");
        let source = std::error::Error::source(&e).map(|s| s.to_string());
        assert_eq!(source, Some(e.kind.to_string()));
    }

    #[test]
    fn an_unreachable_default_service_falls_back_to_the_rule() {
        let mut n = Normalizer::new(Mode::Remote { url: closed_url(), explicit: false });
        assert_eq!(n.normalize(" a  b ").unwrap(), "a b");
        assert!(n.warned);
    }
}
