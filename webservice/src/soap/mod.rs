//! SOAP 1.1 document/literal (wrapped) envelopes of the service: reading a request, writing an answer or a fault.
//!
//! The reader is strict about what makes a SOAP 1.1 envelope (well-formed XML, one `Envelope` in the SOAP 1.1
//! namespace, an optional `Header`, one `Body` holding exactly one operation element) because PROTOCOL.md 7.3 asks
//! for a `Client` fault on anything else, and lenient only where a lenient reading cannot change the answer (the
//! parameter element may be unqualified, comments are ignored). Dispatch is by the operation element's qualified
//! name, never by `SOAPAction`, as 7.3 requires.

use std::borrow::Cow;
use std::fmt;
use std::io;

use protocol::normalize::normalize;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::{Namespace, NamespaceResolver, ResolveResult};
use quick_xml::{NsReader, Writer, XmlVersion};

/// Target namespace of the WSDL and of every request and response element (PROTOCOL.md 7.3).
pub const TNS: &str = "http://tests.python-zeep.org/";
/// Namespace of the SOAP 1.1 envelope.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Namespace of `xsi:nil`.
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// Namespace of the SOAP 1.2 envelope, recognised only to answer it with `VersionMismatch`.
const SOAP12_ENV: &str = "http://www.w3.org/2003/05/soap-envelope";
/// The SOAP 1.1 actor meaning "whoever receives this message next", i.e. this service.
const ACTOR_NEXT: &str = "http://schemas.xmlsoap.org/soap/actor/next";

/// One operation of the WSDL: the canonical one and the compatibility aliases of Appendix A.7.
#[derive(Debug, PartialEq, Eq)]
pub struct Operation {
    /// Name of the operation, of its request element and of its `soapAction`.
    pub name: &'static str,
    /// Local name of the single string parameter inside the request element.
    pub param: &'static str,
    /// Local name of the response element (`<op>Response`).
    pub response: &'static str,
    /// Local name of the result element inside the response element (`<op>Result`).
    pub result: &'static str,
    /// The answer to a nil or absent parameter, when it is not the normalization of the empty string.
    nil_answer: Option<&'static str>,
}

/// Every operation the service exposes, in WSDL order.
///
/// All apply the rule of 7.2 (A.7: `remove` too, although sunniAngela's original only collapsed runs of two or
/// more; 7.3 asks for "the same rule" for every alias). The one difference is `eliminar_espacios` with a nil or
/// absent `texto`: molinalg's original answered the sentence "Texto no proporcionado." (A.7), and a client written
/// against it may show or test for that sentence, so it is kept; every other operation treats a nil or absent
/// parameter as the empty string, as 7.3 says for `convert_text`. An *empty* `texto` element is the empty string
/// (XML Schema: only `xsi:nil` makes an element nil), so it normalizes to the empty string like everywhere else.
pub static OPERATIONS: [Operation; 4] = [
    Operation {
        name: "convert_text",
        param: "text",
        response: "convert_textResponse",
        result: "convert_textResult",
        nil_answer: None,
    },
    Operation {
        name: "eliminar_espacios",
        param: "texto",
        response: "eliminar_espaciosResponse",
        result: "eliminar_espaciosResult",
        nil_answer: Some("Texto no proporcionado."),
    },
    Operation {
        name: "modify_text",
        param: "mensaje",
        response: "modify_textResponse",
        result: "modify_textResult",
        nil_answer: None,
    },
    Operation { name: "remove", param: "string", response: "removeResponse", result: "removeResult", nil_answer: None },
];

impl Operation {
    /// The operation whose request element has this local name (in [`TNS`]).
    pub fn find(name: &str) -> Option<&'static Operation> {
        OPERATIONS.iter().find(|op| op.name == name)
    }

    /// The answer to `input`, where `None` stands for a nil or absent parameter.
    pub fn answer(&self, input: Option<&str>) -> String {
        match (input, self.nil_answer) {
            (Some(text), _) => normalize(text),
            (None, Some(answer)) => answer.to_owned(),
            (None, None) => String::new(),
        }
    }
}

/// A request that was understood: which operation, and its parameter (`None` when nil or absent).
#[derive(Debug, PartialEq, Eq)]
pub struct Call {
    pub operation: &'static Operation,
    pub input: Option<String>,
}

impl Call {
    /// The operation's answer to this call.
    pub fn answer(&self) -> String {
        self.operation.answer(self.input.as_deref())
    }
}

/// The fault codes of SOAP 1.1 (section 4.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The root element is a SOAP 1.2 `Envelope`.
    VersionMismatch,
    /// A header entry addressed to this service has `mustUnderstand="1"`; the service understands no header.
    MustUnderstand,
    /// The request is at fault: not well-formed, not a SOAP envelope, or an unknown operation (7.3).
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

/// Whether `c` may appear in an XML 1.0 document (production `Char`).
///
/// quick-xml does not check this, and a character outside it in our output would make the answer unreadable to
/// the client's XML parser, so the reader refuses such characters and the writer never emits them.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Whitespace in the sense of XML (production `S`), the only character data allowed between SOAP structure
/// elements.
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Where the reader is in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before the root element.
    Prolog,
    /// Inside `Envelope`, between its children.
    Envelope,
    /// Inside `Header`; `depth` counts the open elements below it (0: between header entries).
    Header { depth: usize },
    /// Inside `Body`, before the operation element.
    Body,
    /// Inside the operation element, between its children.
    Operation,
    /// Inside the parameter element.
    Param,
    /// Inside `Body`, after the operation element.
    AfterOperation,
    /// After the root element.
    Epilog,
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
        match resolved {
            ResolveResult::Bound(Namespace(SOAP_ENV)) => Ok(Ns::Envelope),
            ResolveResult::Bound(Namespace(TNS)) => Ok(Ns::Tns),
            ResolveResult::Bound(Namespace(other)) => Ok(Ns::Other(other.to_owned())),
            ResolveResult::Unbound => Ok(Ns::Unqualified),
            ResolveResult::Unknown(prefix) => Err(Fault::client(format!("undeclared namespace prefix `{prefix}`"))),
        }
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
            let ns = match ns {
                ResolveResult::Bound(Namespace(ns)) => ns,
                ResolveResult::Unbound => "",
                ResolveResult::Unknown(prefix) => {
                    return Err(Fault::client(format!("undeclared namespace prefix `{prefix}` on an attribute")))
                }
            };
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

/// Character data found by the reader, already unescaped.
fn check_chars(text: &str) -> Result<(), Fault> {
    match text.chars().find(|&c| !is_xml_char(c)) {
        None => Ok(()),
        Some(c) => Err(Fault::client(format!("character U+{:04X} is not allowed in XML 1.0", c as u32))),
    }
}

/// Reads a request envelope. The body must be UTF-8 (with or without a byte-order mark), the encoding zeep and
/// every client of this protocol send.
pub fn parse_request(body: &[u8]) -> Result<Call, Fault> {
    let text = std::str::from_utf8(body)
        .map_err(|e| Fault::client(format!("the request is not UTF-8 (invalid byte at offset {})", e.valid_up_to())))?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    if text.trim_matches(is_xml_space).is_empty() {
        return Err(Fault::client("the request body is empty; expected a SOAP 1.1 envelope"));
    }

    let mut reader = NsReader::from_str(text);
    reader.config_mut().enable_all_checks(true);

    let mut stage = Stage::Prolog;
    let mut seen_header = false;
    let mut seen_body = false;
    let mut operation: Option<&'static Operation> = None;
    // The parameter: `None` while absent, `Some(None)` when nil, `Some(Some(text))` otherwise.
    let mut param: Option<Option<String>> = None;

    loop {
        let (resolved, event) =
            reader.read_resolved_event().map_err(|e| Fault::client(format!("not well-formed XML: {e}")))?;
        let ns = Ns::of(resolved)?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                let attrs = Attrs::of(start, reader.resolver())?;
                let local = start.local_name().into_inner();
                stage = match stage {
                    Stage::Prolog if ns == Ns::Envelope && local == "Envelope" => {
                        if empty {
                            return Err(Fault::client("the Envelope has no Body"));
                        }
                        Stage::Envelope
                    }
                    // SOAP 1.1 (4.4.1) answers an Envelope in another namespace with VersionMismatch, but 7.3
                    // wants a Client fault for whatever is not a SOAP envelope: only an Envelope of the other SOAP
                    // version is treated as a version mismatch, anything else (unqualified, unknown) is Client.
                    Stage::Prolog if local == "Envelope" && ns == Ns::Other(SOAP12_ENV.to_owned()) => {
                        return Err(Fault {
                            code: FaultCode::VersionMismatch,
                            message: format!("the Envelope must be in the SOAP 1.1 namespace {SOAP_ENV}, not `{ns}`"),
                        })
                    }
                    Stage::Prolog => {
                        return Err(Fault::client(format!("the root element is {{{ns}}}{local}, not a SOAP Envelope")))
                    }
                    Stage::Envelope if ns == Ns::Envelope && local == "Header" && !seen_header && !seen_body => {
                        seen_header = true;
                        if empty {
                            Stage::Envelope
                        } else {
                            Stage::Header { depth: 0 }
                        }
                    }
                    Stage::Envelope if ns == Ns::Envelope && local == "Body" && !seen_body => {
                        seen_body = true;
                        if empty {
                            return Err(Fault::client("the Body is empty; expected one operation element"));
                        }
                        Stage::Body
                    }
                    Stage::Envelope => {
                        return Err(Fault::client(format!("unexpected element {{{ns}}}{local} in the Envelope")))
                    }
                    Stage::Header { depth } => {
                        let for_us = !matches!(attrs.actor.as_deref(), Some(actor) if actor != ACTOR_NEXT);
                        if depth == 0 && attrs.must_understand && for_us {
                            return Err(Fault {
                                code: FaultCode::MustUnderstand,
                                message: format!("header {{{ns}}}{local} must be understood, and no header is"),
                            });
                        }
                        if empty {
                            Stage::Header { depth }
                        } else {
                            Stage::Header { depth: depth + 1 }
                        }
                    }
                    Stage::Body => {
                        let op = match (&ns, Operation::find(local)) {
                            (Ns::Tns, Some(op)) => op,
                            _ => return Err(Fault::client(format!("unknown operation {{{ns}}}{local}"))),
                        };
                        operation = Some(op);
                        if empty {
                            Stage::AfterOperation
                        } else {
                            Stage::Operation
                        }
                    }
                    Stage::Operation => {
                        // Only reachable with an operation set; the parameter may be qualified (as the WSDL says)
                        // or unqualified (as some hand-written clients send), nothing else.
                        let op = operation.ok_or_else(|| Fault::client("parameter outside an operation"))?;
                        if local != op.param || !(ns == Ns::Tns || ns == Ns::Unqualified) {
                            return Err(Fault::client(format!(
                                "unexpected element {{{ns}}}{local} in {}; its only parameter is {{{TNS}}}{}",
                                op.name, op.param
                            )));
                        }
                        if param.is_some() {
                            return Err(Fault::client(format!("parameter {} given twice", op.param)));
                        }
                        param = Some(if attrs.nil { None } else { Some(String::new()) });
                        if empty {
                            Stage::Operation
                        } else {
                            Stage::Param
                        }
                    }
                    Stage::Param => {
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
            }
            Event::End(_) => {
                stage = match stage {
                    Stage::Header { depth: 0 } => Stage::Envelope,
                    Stage::Header { depth } => Stage::Header { depth: depth - 1 },
                    Stage::Param => Stage::Operation,
                    Stage::Operation => Stage::AfterOperation,
                    Stage::AfterOperation => Stage::Envelope,
                    Stage::Body => return Err(Fault::client("the Body is empty; expected one operation element")),
                    Stage::Envelope if !seen_body => return Err(Fault::client("the Envelope has no Body")),
                    Stage::Envelope => Stage::Epilog,
                    // An end tag is only reported when it matches an open element (the reader checks end names).
                    Stage::Prolog | Stage::Epilog => return Err(Fault::client("unbalanced end tag")),
                };
            }
            Event::Text(ref text) => character_data(stage, &mut param, &text.xml10_content())?,
            Event::CData(ref cdata) => character_data(stage, &mut param, &cdata.xml10_content())?,
            Event::GeneralRef(ref reference) => {
                let resolved: Cow<'_, str> = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Cow::Owned(c.to_string()),
                    Ok(None) => match reference.xml10_content().as_ref() {
                        "lt" => Cow::Borrowed("<"),
                        "gt" => Cow::Borrowed(">"),
                        "amp" => Cow::Borrowed("&"),
                        "apos" => Cow::Borrowed("'"),
                        "quot" => Cow::Borrowed("\""),
                        other => return Err(Fault::client(format!("undeclared entity &{other};"))),
                    },
                    Err(e) => return Err(Fault::client(format!("bad character reference: {e}"))),
                };
                character_data(stage, &mut param, &resolved)?;
            }
            Event::Comment(_) => {}
            Event::Decl(ref decl) => {
                if stage != Stage::Prolog {
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
            }
            // SOAP 1.1, section 3: a SOAP message must not contain a DTD nor processing instructions.
            Event::DocType(_) => {
                return Err(Fault::client("a SOAP message must not contain a document type declaration"))
            }
            Event::PI(_) => return Err(Fault::client("a SOAP message must not contain processing instructions")),
            Event::Eof => break,
        }
    }

    match (stage, operation) {
        (Stage::Epilog, Some(operation)) => Ok(Call { operation, input: param.flatten() }),
        (Stage::Epilog, None) => Err(Fault::client("the Body is empty; expected one operation element")),
        _ => Err(Fault::client("the document ends before the Envelope is closed")),
    }
}

/// Character data (already unescaped and end-of-line normalized) found at `stage`.
fn character_data(stage: Stage, param: &mut Option<Option<String>>, text: &str) -> Result<(), Fault> {
    check_chars(text)?;
    match (stage, param) {
        (Stage::Param, Some(Some(value))) => {
            value.push_str(text);
            Ok(())
        }
        (Stage::Param, _) if text.is_empty() => Ok(()),
        (Stage::Param, _) => Err(Fault::client("a nil parameter (xsi:nil=\"true\") must be empty")),
        // Header entries are skipped whole, their text included.
        (Stage::Header { depth }, _) if depth > 0 => Ok(()),
        (_, _) if text.chars().all(is_xml_space) => Ok(()),
        (Stage::Prolog | Stage::Epilog, _) => Err(Fault::client("character data outside the root element: not XML")),
        (_, _) => Err(Fault::client("unexpected character data outside the parameter")),
    }
}

/// The answer envelope to `operation`: `<op>Response` holding `<op>Result`, empty when `result` is empty (7.3).
pub fn response_envelope(operation: &Operation, result: &str) -> Vec<u8> {
    document(|w| {
        w.write_event(Event::Start(
            BytesStart::new("soap:Envelope").with_attributes([("xmlns:soap", SOAP_ENV), ("xmlns:tns", TNS)]),
        ))?;
        w.write_event(Event::Start(BytesStart::new("soap:Body")))?;
        let response = format!("tns:{}", operation.response);
        let result_name = format!("tns:{}", operation.result);
        w.write_event(Event::Start(BytesStart::new(response.as_str())))?;
        if result.is_empty() {
            w.write_event(Event::Empty(BytesStart::new(result_name.as_str())))?;
        } else {
            w.write_event(Event::Start(BytesStart::new(result_name.as_str())))?;
            w.write_event(Event::Text(BytesText::new(&xml_safe(result))))?;
            w.write_event(Event::End(BytesEnd::new(result_name.as_str())))?;
        }
        w.write_event(Event::End(BytesEnd::new(response.as_str())))?;
        w.write_event(Event::End(BytesEnd::new("soap:Body")))?;
        w.write_event(Event::End(BytesEnd::new("soap:Envelope")))
    })
}

/// The fault envelope for `fault`; `faultcode` and `faultstring` are unqualified, as SOAP 1.1 (4.4) says.
pub fn fault_envelope(fault: &Fault) -> Vec<u8> {
    document(|w| {
        w.write_event(Event::Start(BytesStart::new("soap:Envelope").with_attributes([("xmlns:soap", SOAP_ENV)])))?;
        w.write_event(Event::Start(BytesStart::new("soap:Body")))?;
        w.write_event(Event::Start(BytesStart::new("soap:Fault")))?;
        w.write_event(Event::Start(BytesStart::new("faultcode")))?;
        w.write_event(Event::Text(BytesText::new(fault.code.qname())))?;
        w.write_event(Event::End(BytesEnd::new("faultcode")))?;
        w.write_event(Event::Start(BytesStart::new("faultstring")))?;
        w.write_event(Event::Text(BytesText::new(&xml_safe(&fault.message))))?;
        w.write_event(Event::End(BytesEnd::new("faultstring")))?;
        w.write_event(Event::End(BytesEnd::new("soap:Fault")))?;
        w.write_event(Event::End(BytesEnd::new("soap:Body")))?;
        w.write_event(Event::End(BytesEnd::new("soap:Envelope")))
    })
}

/// A fault document for the impossible case of the writer failing, written by hand once so that it never fails.
const FALLBACK_FAULT: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>"#,
    r#"<faultcode>soap:Server</faultcode><faultstring>could not write the answer</faultstring>"#,
    r#"</soap:Fault></soap:Body></soap:Envelope>"#
);

/// Writes an XML document (declaration first) into memory.
///
/// Writing into a `Vec` cannot fail short of running out of memory, which aborts anyway; the fallback only exists
/// so that no code path panics.
fn document(body: impl FnOnce(&mut Writer<Vec<u8>>) -> io::Result<()>) -> Vec<u8> {
    let mut writer = Writer::new(Vec::with_capacity(512));
    let written =
        writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None))).and_then(|()| body(&mut writer));
    match written {
        Ok(()) => writer.into_inner(),
        Err(_) => FALLBACK_FAULT.as_bytes().to_vec(),
    }
}

/// `text` with every character that XML 1.0 cannot carry replaced by U+FFFD.
///
/// A result never needs it (the reader refuses such characters), but a fault message may quote the request.
/// Escaping of `<`, `&`, `>`, quotes and CR (as `&#13;`, so that it survives end-of-line normalization) is done by
/// quick-xml's `escape` when the text event is written.
fn xml_safe(text: &str) -> Cow<'_, str> {
    if text.chars().all(is_xml_char) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>"#
        )
    }

    /// The request zeep sends for `client.service.<op>(<text>)`.
    fn zeep_request(op: &str, param: &str, escaped_text: &str) -> String {
        envelope(&format!(
            r#"<ns0:{op} xmlns:ns0="http://tests.python-zeep.org/"><ns0:{param}>{escaped_text}</ns0:{param}></ns0:{op}>"#
        ))
    }

    fn parse(xml: &str) -> Result<Call, Fault> {
        parse_request(xml.as_bytes())
    }

    fn answer(xml: &str) -> String {
        match parse(xml) {
            Ok(call) => call.answer(),
            Err(fault) => panic!("unexpected fault {fault} for {xml}"),
        }
    }

    fn client_fault(xml: &str) -> String {
        match parse(xml) {
            Ok(call) => panic!("expected a Client fault, got {call:?} for {xml}"),
            Err(fault) => {
                assert_eq!(fault.code, FaultCode::Client, "{fault}");
                fault.message
            }
        }
    }

    #[test]
    fn table_of_7_2_through_every_operation() {
        let table = [
            ("  hello    world  ", "hello world"),
            ("a\tb\nc", "a b c"),
            ("a\u{A0}\u{A0}b", "a b"),
            ("\u{3000}a\u{2003}\u{2003}b", "a b"),
            ("single", "single"),
            ("   ", ""),
            ("", ""),
            ("&lt;&amp;&gt;", "<&>"),
        ];
        for op in &OPERATIONS {
            for (input, output) in table {
                assert_eq!(answer(&zeep_request(op.name, op.param, input)), output, "{} {input:?}", op.name);
            }
        }
    }

    #[test]
    fn character_references_and_cdata_are_content() {
        assert_eq!(answer(&zeep_request("convert_text", "text", "a&#13;&#10;b&#x9;c")), "a b c");
        assert_eq!(answer(&zeep_request("convert_text", "text", "<![CDATA[ <x>  & ]]>")), "<x> &");
        assert_eq!(answer(&zeep_request("convert_text", "text", "&quot;&apos;")), "\"'");
        // U+200B survives, and a raw CR LF is one line end, i.e. one whitespace run anyway.
        assert_eq!(answer(&zeep_request("convert_text", "text", "a\u{200B}\r\n b")), "a\u{200B} b");
    }

    #[test]
    fn absent_nil_and_empty_parameters() {
        let absent = |op: &str| envelope(&format!(r#"<tns:{op} xmlns:tns="http://tests.python-zeep.org/"/>"#));
        let nil = |op: &str, param: &str| {
            envelope(&format!(
                r#"<tns:{op} xmlns:tns="http://tests.python-zeep.org/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><tns:{param} xsi:nil="true"/></tns:{op}>"#
            ))
        };
        let empty = |op: &str, param: &str| {
            envelope(&format!(r#"<tns:{op} xmlns:tns="http://tests.python-zeep.org/"><tns:{param}/></tns:{op}>"#))
        };
        for op in &OPERATIONS {
            let expected = if op.name == "eliminar_espacios" { "Texto no proporcionado." } else { "" };
            assert_eq!(answer(&absent(op.name)), expected, "{} absent", op.name);
            assert_eq!(answer(&nil(op.name, op.param)), expected, "{} nil", op.name);
            assert_eq!(answer(&empty(op.name, op.param)), "", "{} empty", op.name);
        }
    }

    #[test]
    fn unqualified_parameter_and_header_without_must_understand_are_accepted() {
        let xml =
            envelope(r#"<t:convert_text xmlns:t="http://tests.python-zeep.org/"><text> x  y </text></t:convert_text>"#);
        assert_eq!(answer(&xml), "x y");
        let with_header = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header><h:x xmlns:h="urn:h">1<h:y/></h:x></e:Header><e:Body><convert_text xmlns="http://tests.python-zeep.org/"><text>a  b</text></convert_text></e:Body></e:Envelope>"#;
        assert_eq!(answer(with_header), "a b");
    }

    #[test]
    fn must_understand_header_for_us_is_refused() {
        let xml = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header><h:x xmlns:h="urn:h" e:mustUnderstand="1"/></e:Header><e:Body><convert_text xmlns="http://tests.python-zeep.org/"/></e:Body></e:Envelope>"#;
        assert_eq!(parse(xml).map_err(|f| f.code), Err(FaultCode::MustUnderstand));
        let other_actor = xml.replace(r#"e:mustUnderstand="1""#, r#"e:mustUnderstand="1" e:actor="urn:someone-else""#);
        assert_eq!(parse(&other_actor).map(|c| c.answer()), Ok(String::new()));
    }

    #[test]
    fn malformed_envelopes_are_client_faults() {
        let cases = [
            "",
            "   ",
            "not xml at all",
            "<",
            "<a>",
            "<a/>",
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">",
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"/>",
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"></soap:Envelope>",
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body/></soap:Envelope>",
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body></soap:Body></soap:Envelope>",
            "<x:Envelope><x:Body/></x:Envelope>",
            "<Envelope><Body/></Envelope>",
            "<e:Envelope xmlns:e=\"urn:not-soap\"><e:Body/></e:Envelope>",
            &zeep_request("convert_text", "text", "a</ns0:text>"),
            &zeep_request("convert_text", "text", "a & b"),
            &zeep_request("convert_text", "text", "&nbsp;"),
            &zeep_request("convert_text", "text", "&#0;"),
            &zeep_request("convert_text", "text", "&#1;"),
            &zeep_request("convert_text", "text", "\u{1}"),
            &zeep_request("convert_text", "text", "&#xFFFE;"),
            &zeep_request("convert_text", "text", "<b>bold</b>"),
            &zeep_request("convert_text", "other", "x"),
            &(zeep_request("convert_text", "text", "x") + "<extra/>"),
            &envelope("<ns0:convert_text xmlns:ns0=\"http://tests.python-zeep.org/\"/><ns0:convert_text xmlns:ns0=\"http://tests.python-zeep.org/\"/>"),
            &envelope("text directly in the Body"),
            &envelope("<ns0:convert_text xmlns:ns0=\"http://tests.python-zeep.org/\"><ns0:text>a</ns0:text><ns0:text>b</ns0:text></ns0:convert_text>"),
            &envelope("<ns0:convert_text xmlns:ns0=\"http://tests.python-zeep.org/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><ns0:text xsi:nil=\"true\">x</ns0:text></ns0:convert_text>"),
            &envelope("<ns0:convert_text xmlns:ns0=\"http://tests.python-zeep.org/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><ns0:text xsi:nil=\"maybe\"/></ns0:convert_text>"),
            &envelope("<ns0:convert_text xmlns:ns0=\"http://tests.python-zeep.org/\" a=\"1\" a=\"2\"/>"),
            "<!DOCTYPE x [<!ENTITY e \"boom\">]><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body/></soap:Envelope>",
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"/>",
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><?pi x?><soap:Body/></soap:Envelope>",
        ];
        for xml in cases {
            let message = client_fault(xml);
            assert!(!message.is_empty());
        }
        assert_eq!(parse_request(b"\xff\xfe<").map_err(|f| f.code), Err(FaultCode::Client));
    }

    #[test]
    fn unknown_operations_are_client_faults() {
        for body in [
            r#"<ns0:shout xmlns:ns0="http://tests.python-zeep.org/"><ns0:text>x</ns0:text></ns0:shout>"#,
            r#"<convert_text><text>x</text></convert_text>"#,
            r#"<ns0:convert_text xmlns:ns0="urn:elsewhere"><ns0:text>x</ns0:text></ns0:convert_text>"#,
            r#"<ns0:convert_textResponse xmlns:ns0="http://tests.python-zeep.org/"/>"#,
        ] {
            assert!(client_fault(&envelope(body)).contains("unknown operation"), "{body}");
        }
    }

    #[test]
    fn soap_1_2_envelope_is_a_version_mismatch() {
        let xml = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>"#;
        assert_eq!(parse(xml).map_err(|f| f.code), Err(FaultCode::VersionMismatch));
    }

    #[test]
    fn byte_order_mark_is_accepted() {
        let xml = format!("\u{FEFF}{}", zeep_request("modify_text", "mensaje", " hola   mundo "));
        assert_eq!(answer(&xml), "hola mundo");
    }

    #[test]
    fn response_is_readable_back_and_escapes_transport_only() {
        let op = &OPERATIONS[0];
        let xml = String::from_utf8(response_envelope(op, "<&> \"'\r")).unwrap_or_default();
        assert!(
            xml.contains("<tns:convert_textResult>&lt;&amp;&gt; &quot;&apos;&#13;</tns:convert_textResult>"),
            "{xml}"
        );
        let empty = String::from_utf8(response_envelope(op, "")).unwrap_or_default();
        assert!(
            empty.contains("<tns:convert_textResponse><tns:convert_textResult/></tns:convert_textResponse>"),
            "{empty}"
        );
    }

    #[test]
    fn fault_is_well_formed_even_with_hostile_message() {
        let fault = Fault::client("bad <thing> & \u{1} \u{FFFF}");
        let xml = String::from_utf8(fault_envelope(&fault)).unwrap_or_default();
        assert!(xml.contains("<faultcode>soap:Client</faultcode>"), "{xml}");
        assert!(xml.contains("<faultstring>bad &lt;thing&gt; &amp; \u{FFFD} \u{FFFD}</faultstring>"), "{xml}");
        let mut reader = NsReader::from_str(&xml);
        loop {
            match reader.read_event() {
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("fault not well-formed: {e}"),
            }
        }
    }
}
