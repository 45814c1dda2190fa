//! Reading a request envelope into a [`Call`].
//!
//! quick-xml's pull parser hands out one event at a time; an `EnvelopeReader` takes them one method per kind of
//! event (`start`, `end`, `text`, `declaration`) and keeps where it is in the envelope as a `Stage`, so each
//! rule of the envelope's shape is one match arm in one small method.

use std::borrow::Cow;
use std::fmt;

use ::soap::{character_data, is_xml_char, is_xml_space, namespace, SOAP_ENV, TNS, XSI};
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesStart, Event};
use quick_xml::name::{NamespaceResolver, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

use super::{Call, Fault, FaultCode, Operation};

/// Namespace of the SOAP 1.2 envelope, recognised only to answer it with `VersionMismatch`.
const SOAP12_ENV: &str = "http://www.w3.org/2003/05/soap-envelope";
/// The SOAP 1.1 actor meaning "whoever receives this message next", i.e. this service.
const ACTOR_NEXT: &str = "http://schemas.xmlsoap.org/soap/actor/next";

/// Reads a request envelope. The body must be UTF-8 (with or without a byte-order mark), the encoding zeep and
/// every client of this protocol send.
pub fn parse_request(body: &[u8]) -> Result<Call, Fault> {
    let text = std::str::from_utf8(body)
        .map_err(|e| Fault::client(format!("the request is not UTF-8 (invalid byte at offset {})", e.valid_up_to())))?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    if text.trim_matches(is_xml_space).is_empty() {
        return Err(Fault::client("the request body is empty; expected a SOAP 1.1 envelope"));
    }

    let mut xml = NsReader::from_str(text);
    xml.config_mut().enable_all_checks(true);
    let mut envelope = EnvelopeReader::default();
    loop {
        let (resolved, event) =
            xml.read_resolved_event().map_err(|e| Fault::client(format!("not well-formed XML: {e}")))?;
        let ns = Ns::of(resolved)?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let attrs = Attrs::of(start, xml.resolver())?;
                let empty = matches!(event, Event::Empty(_));
                envelope.start(ns, start.local_name().into_inner(), &attrs, empty)?;
            }
            Event::End(_) => envelope.end()?,
            Event::Decl(ref decl) => envelope.declaration(decl)?,
            Event::Comment(_) => {}
            // SOAP 1.1, section 3: a SOAP message must not contain a DTD nor processing instructions.
            Event::DocType(_) => {
                return Err(Fault::client("a SOAP message must not contain a document type declaration"))
            }
            Event::PI(_) => return Err(Fault::client("a SOAP message must not contain processing instructions")),
            Event::Eof => return envelope.finish(),
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                if let Some(text) = character_data(&event) {
                    envelope.text(&text?)?;
                }
            }
        }
    }
}

/// Where the reader is in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Stage {
    /// Before the root element.
    #[default]
    Prolog,
    /// Inside `Envelope`, between its children.
    Envelope,
    /// Inside `Header`; `depth` counts the open elements below it (0: between header entries).
    Header { depth: usize },
    /// Inside `Body`, before the operation element.
    Body,
    /// Inside the operation element, between its children.
    Operation(&'static Operation),
    /// Inside the parameter element.
    Param(&'static Operation),
    /// Inside `Body`, after the operation element.
    AfterOperation,
    /// After the root element.
    Epilog,
}

/// The state of one envelope being read: the stage, and what was found so far.
#[derive(Debug, Default)]
struct EnvelopeReader {
    stage: Stage,
    seen_header: bool,
    seen_body: bool,
    operation: Option<&'static Operation>,
    /// The parameter: `None` while absent, `Some(None)` when nil, `Some(Some(text))` otherwise.
    param: Option<Option<String>>,
}

impl EnvelopeReader {
    /// A start tag (`empty` for `<x/>`, which is followed by no end event).
    fn start(&mut self, ns: Ns, local: &str, attrs: &Attrs, empty: bool) -> Result<(), Fault> {
        self.stage = match self.stage {
            Stage::Prolog => root(&ns, local, empty)?,
            Stage::Envelope => self.envelope_child(&ns, local, empty)?,
            Stage::Header { depth } => header_element(depth, &ns, local, attrs, empty)?,
            Stage::Body => self.operation_element(&ns, local, empty)?,
            Stage::Operation(op) => self.parameter(op, &ns, local, attrs, empty)?,
            Stage::Param(_) => {
                return Err(Fault::client(format!(
                    "element {{{ns}}}{local} inside a string parameter; xs:string has no child elements"
                )))
            }
            Stage::AfterOperation => {
                return Err(Fault::client(format!(
                    "unexpected element {{{ns}}}{local}: the Body holds exactly one operation element"
                )))
            }
            Stage::Epilog => return Err(Fault::client("content after the Envelope")),
        };
        Ok(())
    }

    /// A child of `Envelope`: at most one `Header`, then one `Body`.
    fn envelope_child(&mut self, ns: &Ns, local: &str, empty: bool) -> Result<Stage, Fault> {
        if *ns == Ns::Envelope && local == "Header" && !self.seen_header && !self.seen_body {
            self.seen_header = true;
            return Ok(if empty { Stage::Envelope } else { Stage::Header { depth: 0 } });
        }
        if *ns == Ns::Envelope && local == "Body" && !self.seen_body {
            self.seen_body = true;
            if empty {
                return Err(Fault::client("the Body is empty; expected one operation element"));
            }
            return Ok(Stage::Body);
        }
        Err(Fault::client(format!("unexpected element {{{ns}}}{local} in the Envelope")))
    }

    /// The child of `Body`: an operation of the service, dispatched by its qualified name.
    fn operation_element(&mut self, ns: &Ns, local: &str, empty: bool) -> Result<Stage, Fault> {
        let op = match (ns, Operation::find(local)) {
            (Ns::Tns, Some(op)) => op,
            _ => return Err(Fault::client(format!("unknown operation {{{ns}}}{local}"))),
        };
        self.operation = Some(op);
        Ok(if empty { Stage::AfterOperation } else { Stage::Operation(op) })
    }

    /// A child of the operation element: its one parameter, qualified (as the WSDL says) or unqualified (as some
    /// hand-written clients send), nothing else.
    fn parameter(
        &mut self,
        op: &'static Operation,
        ns: &Ns,
        local: &str,
        attrs: &Attrs,
        empty: bool,
    ) -> Result<Stage, Fault> {
        if local != op.param || !(*ns == Ns::Tns || *ns == Ns::Unqualified) {
            return Err(Fault::client(format!(
                "unexpected element {{{ns}}}{local} in {}; its only parameter is {{{TNS}}}{}",
                op.name, op.param
            )));
        }
        if self.param.is_some() {
            return Err(Fault::client(format!("parameter {} given twice", op.param)));
        }
        self.param = Some(if attrs.nil { None } else { Some(String::new()) });
        Ok(if empty { Stage::Operation(op) } else { Stage::Param(op) })
    }

    /// An end tag; the parser has already checked that it closes the innermost open element.
    fn end(&mut self) -> Result<(), Fault> {
        self.stage = match self.stage {
            Stage::Header { depth: 0 } => Stage::Envelope,
            Stage::Header { depth } => Stage::Header { depth: depth - 1 },
            Stage::Param(op) => Stage::Operation(op),
            Stage::Operation(_) => Stage::AfterOperation,
            Stage::AfterOperation => Stage::Envelope,
            Stage::Body => return Err(Fault::client("the Body is empty; expected one operation element")),
            Stage::Envelope if !self.seen_body => return Err(Fault::client("the Envelope has no Body")),
            Stage::Envelope => Stage::Epilog,
            Stage::Prolog | Stage::Epilog => return Err(Fault::client("unbalanced end tag")),
        };
        Ok(())
    }

    /// Character data, already unescaped and end-of-line normalized.
    fn text(&mut self, text: &str) -> Result<(), Fault> {
        if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
            return Err(Fault::client(format!("character U+{:04X} is not allowed in XML 1.0", c as u32)));
        }
        match (self.stage, &mut self.param) {
            (Stage::Param(_), Some(Some(value))) => {
                value.push_str(text);
                Ok(())
            }
            (Stage::Param(_), _) if text.is_empty() => Ok(()),
            (Stage::Param(_), _) => Err(Fault::client("a nil parameter (xsi:nil=\"true\") must be empty")),
            // Header entries are skipped whole, their text included.
            (Stage::Header { depth }, _) if depth > 0 => Ok(()),
            (_, _) if text.chars().all(is_xml_space) => Ok(()),
            (Stage::Prolog | Stage::Epilog, _) => {
                Err(Fault::client("character data outside the root element: not XML"))
            }
            (_, _) => Err(Fault::client("unexpected character data outside the parameter")),
        }
    }

    /// The XML declaration: only at the start, only XML 1.0, only UTF-8 (or its subset US-ASCII).
    fn declaration(&self, decl: &BytesDecl<'_>) -> Result<(), Fault> {
        if self.stage != Stage::Prolog {
            return Err(Fault::client("an XML declaration may only start the document"));
        }
        let version = decl.version().map_err(|e| Fault::client(format!("bad XML declaration: {e}")))?;
        if version != "1.0" {
            return Err(Fault::client(format!("XML version {version} is not supported; send XML 1.0")));
        }
        if let Some(encoding) = decl.encoding() {
            let encoding = encoding.map_err(|e| Fault::client(format!("bad XML declaration: {e}")))?;
            if !(encoding.eq_ignore_ascii_case("utf-8") || encoding.eq_ignore_ascii_case("us-ascii")) {
                return Err(Fault::client(format!("encoding {encoding} is not supported; send UTF-8")));
            }
        }
        Ok(())
    }

    /// The end of the document: the call, if the envelope was complete.
    fn finish(self) -> Result<Call, Fault> {
        match (self.stage, self.operation) {
            (Stage::Epilog, Some(operation)) => Ok(Call { operation, input: self.param.flatten() }),
            (Stage::Epilog, None) => Err(Fault::client("the Body is empty; expected one operation element")),
            _ => Err(Fault::client("the document ends before the Envelope is closed")),
        }
    }
}

/// The root element: a SOAP 1.1 `Envelope`.
fn root(ns: &Ns, local: &str, empty: bool) -> Result<Stage, Fault> {
    match ns {
        Ns::Envelope if local == "Envelope" => {
            if empty {
                return Err(Fault::client("the Envelope has no Body"));
            }
            Ok(Stage::Envelope)
        }
        // SOAP 1.1 (4.4.1) answers an Envelope in another namespace with VersionMismatch, but the protocol wants a
        // Client fault for whatever is not a SOAP envelope: only an Envelope of the other SOAP version is treated
        // as a version mismatch, anything else (unqualified, unknown) is Client.
        Ns::Other(other) if local == "Envelope" && other == SOAP12_ENV => Err(Fault {
            code: FaultCode::VersionMismatch,
            message: format!("the Envelope must be in the SOAP 1.1 namespace {SOAP_ENV}, not `{ns}`"),
        }),
        _ => Err(Fault::client(format!("the root element is {{{ns}}}{local}, not a SOAP Envelope"))),
    }
}

/// An element inside `Header`: skipped, unless it is an entry for this service that must be understood.
fn header_element(depth: usize, ns: &Ns, local: &str, attrs: &Attrs, empty: bool) -> Result<Stage, Fault> {
    let for_us = !matches!(attrs.actor.as_deref(), Some(actor) if actor != ACTOR_NEXT);
    if depth == 0 && attrs.must_understand && for_us {
        return Err(Fault {
            code: FaultCode::MustUnderstand,
            message: format!("header {{{ns}}}{local} must be understood, and no header is"),
        });
    }
    Ok(Stage::Header { depth: if empty { depth } else { depth + 1 } })
}

/// Namespace of an element, as far as the reader cares.
#[derive(Debug, PartialEq, Eq)]
enum Ns {
    Envelope,
    Tns,
    Unqualified,
    Other(String),
}

impl Ns {
    fn of(resolved: ResolveResult<'_>) -> Result<Ns, Fault> {
        Ok(match namespace(resolved)? {
            SOAP_ENV => Ns::Envelope,
            TNS => Ns::Tns,
            "" => Ns::Unqualified,
            other => Ns::Other(other.to_owned()),
        })
    }
}

impl fmt::Display for Ns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ns::Envelope => f.write_str(SOAP_ENV),
            Ns::Tns => f.write_str(TNS),
            Ns::Unqualified => Ok(()),
            Ns::Other(ns) => f.write_str(ns),
        }
    }
}

/// The attributes the reader acts on. Every attribute is still read, so that a malformed one is refused.
#[derive(Debug, Default)]
struct Attrs {
    nil: bool,
    must_understand: bool,
    actor: Option<String>,
}

impl Attrs {
    fn of(start: &BytesStart<'_>, resolver: &NamespaceResolver) -> Result<Attrs, Fault> {
        let mut attrs = Attrs::default();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| Fault::client(format!("malformed attribute: {e}")))?;
            let (ns, local) = resolver.resolve_attribute(attr.key);
            let ns = namespace(ns).map_err(|e| Fault::client(format!("{e} on an attribute")))?;
            match (ns, local.into_inner()) {
                (XSI, "nil") => attrs.nil = boolean(&attr, "xsi:nil")?,
                (SOAP_ENV, "mustUnderstand") => attrs.must_understand = boolean(&attr, "soap:mustUnderstand")?,
                (SOAP_ENV, "actor") => attrs.actor = Some(value(&attr)?.into_owned()),
                _ => value(&attr).map(drop)?,
            }
        }
        Ok(attrs)
    }
}

/// The value of an attribute with references resolved, refused when it uses an undeclared entity.
fn value<'a>(attr: &Attribute<'a>) -> Result<Cow<'a, str>, Fault> {
    attr.normalized_value(XmlVersion::Implicit1_0).map_err(|e| Fault::client(format!("malformed attribute value: {e}")))
}

/// An `xs:boolean` attribute (whitespace collapsed, as the schema type says).
fn boolean(attr: &Attribute<'_>, what: &str) -> Result<bool, Fault> {
    match value(attr)?.trim_matches(is_xml_space) {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(Fault::client(format!("{what}=\"{other}\" is not a boolean"))),
    }
}

#[cfg(test)]
mod tests;
