//! Why a request is refused: the fault codes of SOAP 1.1 and the message sent back with them.

use std::fmt;

/// The fault codes of SOAP 1.1 (section 4.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The root element is a SOAP 1.2 `Envelope`.
    VersionMismatch,
    /// A header entry addressed to this service has `mustUnderstand="1"`; the service understands no header.
    MustUnderstand,
    /// The request is at fault: not well-formed, not a SOAP envelope, or an unknown operation (docs/protocol.md,
    /// "Normalization web service").
    Client,
    /// The service failed; the same request may succeed later.
    Server,
}

impl FaultCode {
    /// The `faultcode` value, a QName whose prefix is declared on the fault envelope.
    pub fn qname(self) -> &'static str {
        match self {
            FaultCode::VersionMismatch => "soap:VersionMismatch",
            FaultCode::MustUnderstand => "soap:MustUnderstand",
            FaultCode::Client => "soap:Client",
            FaultCode::Server => "soap:Server",
        }
    }
}

/// Why a request was refused, as sent back in a SOAP fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: FaultCode,
    pub message: String,
}

impl Fault {
    /// A fault of the `Client` class: the request, not the service, is wrong.
    pub fn client(message: impl Into<String>) -> Fault {
        Fault { code: FaultCode::Client, message: message.into() }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.qname(), self.message)
    }
}

impl std::error::Error for Fault {}

impl From<::soap::XmlError> for Fault {
    /// A document that cannot be read is the client's fault.
    fn from(e: ::soap::XmlError) -> Fault {
        Fault::client(e.to_string())
    }
}
