//! Whose connections the listener reads: the server's address, or any.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Whose connections the listener reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushSource {
    /// Only connections from this address (the server's, normally).
    Only(IpAddr),
    /// Any address: for a server behind NAT or with several addresses, whose pushes come from an address the
    /// client does not know.
    Any,
}

impl PushSource {
    /// Whether a connection from `peer` may deliver a push. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn admits(&self, peer: IpAddr) -> bool {
        match self {
            PushSource::Any => true,
            PushSource::Only(ip) => canonical(*ip) == canonical(peer),
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A `--accept-pushes-from` value that is neither an IP address nor `any` (the value as given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPushSource(pub String);

impl fmt::Display for BadPushSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is neither an IP address nor `any`", self.0)
    }
}

impl std::error::Error for BadPushSource {}

impl FromStr for PushSource {
    type Err = BadPushSource;

    /// `any`, or an IPv4 or IPv6 address.
    fn from_str(s: &str) -> Result<PushSource, BadPushSource> {
        if s.eq_ignore_ascii_case("any") {
            return Ok(PushSource::Any);
        }
        s.parse().map(PushSource::Only).map_err(|_| BadPushSource(s.to_owned()))
    }
}

impl fmt::Display for PushSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushSource::Only(ip) => write!(f, "{ip}"),
            PushSource::Any => f.write_str("any"),
        }
    }
}
