//! SOAP 1.1 document/literal (wrapped) envelopes of the service: reading a request, writing an answer or a fault.
//!
//! The reader is strict about what makes a SOAP 1.1 envelope (well-formed XML, one `Envelope` in the SOAP 1.1
//! namespace, an optional `Header`, one `Body` holding exactly one operation element) because docs/protocol.md
//! ("Normalization web service") asks for a `Client` fault on anything else, and lenient only where a lenient
//! reading cannot change the answer (the parameter element may be unqualified, comments are ignored). Dispatch is
//! by the operation element's qualified name, never by `SOAPAction`, as the protocol requires.
//!
//! - [`operation`]: the operation table and an understood [`Call`].
//! - [`reader`]: [`parse_request`], envelope bytes to a [`Call`] or a [`Fault`].
//! - [`fault`]: the [`Fault`] and its codes.
//! - [`writer`]: [`response_envelope`] and [`fault_envelope`].
//!
//! The namespaces and the XML 1.0 character rules, which the client needs too, come from the `soap` crate and
//! are re-exported here.

pub mod fault;
pub mod operation;
pub mod reader;
pub mod writer;

pub use ::soap::{is_xml_char, SOAP_ENV, TNS, XSI};
pub use fault::{Fault, FaultCode};
pub use operation::{Call, Operation, OPERATIONS};
pub use reader::parse_request;
pub use writer::{fault_envelope, response_envelope};
