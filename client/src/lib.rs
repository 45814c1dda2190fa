//! Client-side building blocks of the message delivery service, shared by the interactive `client` program and
//! the `bench` tool.
//!
//! - [`conn`]: one request on one connection, every step bounded by a timeout; never an empty or partial one.
//! - [`listener`]: the socket the server pushes to — bind before CONNECT, read pushes, stop without losing any.
//! - [`ws`]: the SOAP call to the normalization web service.
//!
//! The interactive program itself (command language, threads, terminal) lives in `main.rs` and its modules.

pub mod conn;
pub mod listener;
pub mod ws;
