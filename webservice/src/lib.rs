//! The normalization web service of docs/protocol.md, "Normalization web service": a SOAP 1.1 service whose
//! operations collapse whitespace with [`protocol::normalize::normalize`], described by a WSDL that zeep-based
//! clients load. The namespaces and XML rules it shares with the client's call come from the `soap` crate.
//!
//! - [`soap`]: reading request envelopes, writing answers and faults, the operation table.
//! - [`wsdl`]: the WSDL document.
//! - [`app`]: the routes, as a pure function from a request to a response.
//! - [`Service`]: the HTTP/1.1 server around them, usable in-process (tests bind `127.0.0.1:0`).
//!
//! # Why not tiny_http
//!
//! The HTTP side is a small server over [`httparse`] instead of tiny_http 0.12 (the current release), because
//! tiny_http cannot keep a peer from stalling or killing the process:
//! - when a request whose body was not read is dropped, tiny_http drains the body into a buffer allocated at the
//!   *declared* `Content-Length` in one go; a single request with `Content-Length: 100000000000` therefore aborts
//!   the process with "memory allocation failed", even after the handler answered 413 (reproduced; upstream
//!   issue tiny-http#252 and pull request tiny-http#290, neither released);
//! - it reads the request head on a thread per connection with no timeout, no thread limit and no limit on the
//!   length of a header line, and offers no hook to set socket timeouts on the connections it accepts.
//!
//! Here every read has a deadline, the head and the body have size limits checked before anything is allocated,
//! and a fixed number of worker threads serves connections (see [`server`] for the limits).

pub mod app;
pub mod server;
pub mod soap;
pub mod wsdl;

pub use server::{Config, ConfigError, RunningService, Service, DEFAULT_WORKERS, MAX_BODY_BYTES, MAX_WORKERS};
