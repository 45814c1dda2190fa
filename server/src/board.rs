//! The accept loop of the ttweet board served beside the message server (`--ttweet-port`): the board and its
//! protocol live in the `ttweet` crate; the sockets, threads, connection cap and orderly stop are the server's
//! ([`crate::listener::serve`]).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use ttweet::{Board, Timeouts};

use crate::listener::{self, Shared};
use crate::net::{drain, DRAIN_TIMEOUT, REPLY_WRITE_TIMEOUT};

/// A bound, not yet running board server.
#[derive(Debug)]
pub struct Service {
    listener: TcpListener,
    shared: Arc<Shared>,
    board: Arc<Board>,
    request_timeout: Duration,
}

impl Service {
    /// Binds the board's listening socket.
    pub fn bind(addr: SocketAddr, max_connections: usize, request_timeout: Duration) -> io::Result<Service> {
        let listener = TcpListener::bind(addr)?;
        let shared = Shared::new(listener.local_addr()?, max_connections);
        Ok(Service { listener, shared: Arc::new(shared), board: Arc::new(Board::new()), request_timeout })
    }

    /// Where the board listens (on loopback when bound to a wildcard address).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.wake_addr
    }

    /// The accept loop's shared state, to stop it.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The board itself.
    pub fn board(&self) -> Arc<Board> {
        self.board.clone()
    }

    /// Serves until stopped, then waits for every connection thread.
    pub fn run(self) {
        let Service { listener, shared, board, request_timeout } = self;
        let timeouts = Timeouts { request: request_timeout, reply: REPLY_WRITE_TIMEOUT };
        // A board connection keeps its slot to the end and counts as incomplete all along: its request has no
        // terminator to mark its end, and it is short-lived.
        listener::serve(listener, shared, move |stream, _permit| {
            if let Some(rest) = ttweet::serve(&stream, &board, timeouts) {
                let _ = stream.set_read_timeout(Some(DRAIN_TIMEOUT));
                drain(rest);
            }
        });
    }
}
