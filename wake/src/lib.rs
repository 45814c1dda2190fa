//! Stopping a thread blocked in `accept()`.
//!
//! std offers no way to interrupt a blocking `accept()`. The server's accept loop, the web service's workers and
//! the client's push listener all stop the same way: set their own stop flag, then open one connection to the
//! listening socket, which returns from `accept()`; the woken thread sees the flag and leaves without serving
//! that connection. This crate is the one place that knows how to reach a listener (a wildcard bind is reached
//! through loopback) and how long to try.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long the waking connection may take. On loopback it is immediate; a listener that does not take it
/// within this time is gone or saturated, and the caller's own bounded wait takes over.
pub const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// The address to connect to in order to reach a listener bound to `local`: `local` itself, or loopback of the
/// same family when `local` is a wildcard address (which cannot be connected to).
pub fn reachable(local: SocketAddr) -> SocketAddr {
    let mut addr = local;
    if local.ip().is_unspecified() {
        addr.set_ip(match local {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// Wakes one thread blocked in `accept()` on the listener bound to `local`: connects and closes at once.
///
/// Set the stop flag first, so the woken thread knows why it woke. An error means no connection was made
/// (the listener is already closed, or did not answer within [`WAKE_TIMEOUT`]).
pub fn unblock_accept(local: SocketAddr) -> io::Result<()> {
    TcpStream::connect_timeout(&reachable(local), WAKE_TIMEOUT).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn a_wildcard_bind_is_reached_through_loopback_of_its_family() {
        let v4: SocketAddr = "0.0.0.0:7".parse().unwrap();
        let v6: SocketAddr = "[::]:7".parse().unwrap();
        let one: SocketAddr = "127.0.0.2:7".parse().unwrap();
        assert_eq!(reachable(v4), "127.0.0.1:7".parse().unwrap());
        assert_eq!(reachable(v6), "[::1]:7".parse().unwrap());
        assert_eq!(reachable(one), one);
    }

    #[test]
    fn a_blocked_accept_returns_and_sees_the_flag() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let waiter = thread::spawn(move || {
            let accepted = listener.accept().is_ok();
            (accepted, flag.load(Ordering::SeqCst))
        });
        stop.store(true, Ordering::SeqCst);
        unblock_accept(local).unwrap();
        assert_eq!(waiter.join().unwrap(), (true, true));
    }

    #[test]
    fn a_closed_listener_is_an_error_not_a_hang() {
        let local = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert!(unblock_accept(local).is_err());
    }
}
