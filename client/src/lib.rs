//! Client-side building blocks of the message delivery service, used by the interactive `client` program.
//!
//! - [`conn`]: one request on one connection, every step bounded by a timeout; never an empty or partial one.
//! - [`listener`]: the socket the server pushes to — bind before CONNECT, read pushes, stop without losing any.
//! - [`ws`]: the SOAP call to the normalization web service.
//!
//! The interactive program itself (command language, threads, terminal) lives in `main.rs` and its modules.
//!
//! Where a change goes. A new command: protocol (`request.rs`, `reply.rs`) for its bytes, [`conn`] only if it
//! needs another way to talk to the server, then in the program `shell.rs` (syntax and usage line), `sender.rs`
//! (the request and its result line, `format.rs`) and the TUI (`tui/command.rs`, `tui/event.rs`, `tui/worker.rs`);
//! its tests in `client/tests/`. Something a push carries: [`listener`] and `receiver.rs`. Anything about
//! normalizing text: [`ws`] and `normalizer.rs`.

pub mod conn;
pub mod listener;
pub mod ws;
