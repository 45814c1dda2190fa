//! What both ends of the normalization call must agree on about SOAP 1.1 envelopes and XML 1.0, written once.
//!
//! The web service (`webservice`, which reads requests and writes answers) and the client (`client::ws`, which
//! writes requests and reads answers) both speak the document/literal SOAP 1.1 of docs/protocol.md, section
//! "Normalization web service". Before this crate each hand-wrote the namespaces, the XML 1.0 character rule,
//! the predefined entities and the envelope around a body; a fix in one copy did not reach the other.
//!
//! - [`TNS`], [`SOAP_ENV`], [`XSI`]: the namespaces.
//! - [`is_xml_char`], [`is_xml_space`]: the character classes of XML 1.0 that quick-xml does not check.
//! - [`namespace`], [`character_data`]: reading, on top of quick-xml's [`NsReader`](quick_xml::NsReader).
//! - [`write_envelope`]: writing `Envelope/Body` around a body.
//!
//! What each end does with an envelope (which operations exist, what a fault is, how strict the reading is)
//! stays with that end: this crate holds only facts of the formats, not policy.

use std::borrow::Cow;
use std::io;

use quick_xml::events::{BytesEnd, BytesRef, BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::Writer;

/// Target namespace of the WSDL and of every request and response element (docs/protocol.md, "SOAP shape").
pub const TNS: &str = "http://tests.python-zeep.org/";
/// Namespace of the SOAP 1.1 envelope.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Namespace of `xsi:nil`.
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Whether `c` may appear in an XML 1.0 document (production `Char`).
///
/// quick-xml does not check this, and a character outside it would make a document unreadable to the peer's XML
/// parser, so readers refuse such characters and writers never emit them.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Whitespace in the sense of XML (production `S`), the only character data allowed between SOAP structure
/// elements. Not the whitespace of the normalization rule, which is `protocol::normalize::is_whitespace`.
pub fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Why a piece of a well-formed-looking document cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// An element or attribute name uses a prefix no `xmlns:` declaration binds.
    #[error("undeclared namespace prefix `{0}`")]
    UndeclaredPrefix(String),
    /// A reference to an entity other than the five predefined ones (SOAP forbids the DTD that could declare it).
    #[error("undeclared entity &{0};")]
    UndeclaredEntity(String),
    /// A character reference that names no character (`&#xZZ;`, `&#1114112;`); the parser's reason.
    #[error("bad character reference: {0}")]
    BadCharRef(String),
}

/// The namespace a name resolved to: `""` when unqualified.
pub fn namespace<'a>(resolved: ResolveResult<'a>) -> Result<&'a str, XmlError> {
    match resolved {
        ResolveResult::Bound(Namespace(ns)) => Ok(ns),
        ResolveResult::Unbound => Ok(""),
        ResolveResult::Unknown(prefix) => Err(XmlError::UndeclaredPrefix(prefix)),
    }
}

/// The character data an event carries, unescaped and end-of-line normalized; `None` for events that carry none
/// (tags, comments, declarations).
///
/// quick-xml reports text, CDATA sections and references as separate events; a reader appends them in order.
pub fn character_data<'i>(event: &Event<'i>) -> Option<Result<Cow<'i, str>, XmlError>> {
    match event {
        Event::Text(text) => Some(Ok(text.xml10_content())),
        Event::CData(cdata) => Some(Ok(cdata.xml10_content())),
        Event::GeneralRef(reference) => Some(resolve_reference(reference)),
        _ => None,
    }
}

/// The text of a character reference or of one of the five predefined entities.
fn resolve_reference<'i>(reference: &BytesRef<'i>) -> Result<Cow<'i, str>, XmlError> {
    match reference.resolve_char_ref() {
        Ok(Some(c)) => Ok(Cow::Owned(c.to_string())),
        Ok(None) => match reference.xml10_content().as_ref() {
            "lt" => Ok(Cow::Borrowed("<")),
            "gt" => Ok(Cow::Borrowed(">")),
            "amp" => Ok(Cow::Borrowed("&")),
            "apos" => Ok(Cow::Borrowed("'")),
            "quot" => Ok(Cow::Borrowed("\"")),
            other => Err(XmlError::UndeclaredEntity(other.to_owned())),
        },
        Err(e) => Err(XmlError::BadCharRef(e.to_string())),
    }
}

/// Writes `<{prefix}:Envelope xmlns:{prefix}="SOAP_ENV" {namespaces}><{prefix}:Body>`, then `body`, then the
/// closing tags. The XML declaration, if any, is the caller's.
pub fn write_envelope<W: io::Write>(
    w: &mut Writer<W>,
    prefix: &str,
    namespaces: &[(&str, &str)],
    body: impl FnOnce(&mut Writer<W>) -> io::Result<()>,
) -> io::Result<()> {
    let envelope = format!("{prefix}:Envelope");
    let body_name = format!("{prefix}:Body");
    let soap_ns = format!("xmlns:{prefix}");
    let start = BytesStart::new(envelope.as_str())
        .with_attributes(std::iter::once((soap_ns.as_str(), SOAP_ENV)).chain(namespaces.iter().copied()));
    w.write_event(Event::Start(start))?;
    w.write_event(Event::Start(BytesStart::new(body_name.as_str())))?;
    body(w)?;
    w.write_event(Event::End(BytesEnd::new(body_name.as_str())))?;
    w.write_event(Event::End(BytesEnd::new(envelope.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::events::BytesText;
    use quick_xml::NsReader;

    /// Every character datum of `xml`, concatenated, or the first error.
    fn text_of(xml: &str) -> Result<String, XmlError> {
        let mut reader = NsReader::from_str(xml);
        let mut out = String::new();
        loop {
            match reader.read_event() {
                Ok(Event::Eof) => return Ok(out),
                Ok(event) => {
                    if let Some(text) = character_data(&event) {
                        out.push_str(&text?);
                    }
                }
                Err(e) => panic!("{xml}: {e}"),
            }
        }
    }

    #[test]
    fn xml_chars_are_production_char() {
        for c in ['\t', '\n', '\r', ' ', '\u{D7FF}', '\u{E000}', '\u{FFFD}', '\u{10000}', '\u{10FFFF}'] {
            assert!(is_xml_char(c), "U+{:04X}", c as u32);
        }
        for c in ['\0', '\u{1}', '\u{8}', '\u{B}', '\u{C}', '\u{1C}', '\u{1F}', '\u{FFFE}', '\u{FFFF}'] {
            assert!(!is_xml_char(c), "U+{:04X}", c as u32);
        }
        assert!(['\u{A0}', '\u{85}', '\u{3000}'].iter().all(|&c| is_xml_char(c) && !is_xml_space(c)));
    }

    #[test]
    fn references_text_and_cdata_are_content() {
        assert_eq!(
            text_of("<a>x&lt;&gt;&amp;&apos;&quot;&#13;&#x41;<![CDATA[<&>]]>\r\ny</a>"),
            Ok("x<>&'\"\rA<&>\ny".into())
        );
        assert_eq!(text_of("<a>&nbsp;</a>"), Err(XmlError::UndeclaredEntity("nbsp".into())));
        assert!(matches!(text_of("<a>&#xZZ;</a>"), Err(XmlError::BadCharRef(_))));
    }

    #[test]
    fn namespaces_resolve_or_name_the_prefix() {
        let mut reader = NsReader::from_str(r#"<s:a xmlns:s="urn:s"><b/><u:c/></s:a>"#);
        let mut seen = Vec::new();
        while let Ok((resolved, event)) = reader.read_resolved_event() {
            match event {
                Event::Eof => break,
                Event::Start(_) | Event::Empty(_) => seen.push(namespace(resolved).map(str::to_owned)),
                _ => {}
            }
        }
        assert_eq!(seen, [Ok("urn:s".to_owned()), Ok(String::new()), Err(XmlError::UndeclaredPrefix("u".into()))]);
    }

    #[test]
    fn envelope_wraps_the_body() {
        let mut w = Writer::new(Vec::new());
        let written = write_envelope(&mut w, "e", &[("xmlns:t", TNS)], |w| {
            w.write_event(Event::Text(BytesText::new("<x>"))).map(drop)
        });
        assert!(written.is_ok());
        assert_eq!(
            String::from_utf8(w.into_inner()).unwrap_or_default(),
            format!(r#"<e:Envelope xmlns:e="{SOAP_ENV}" xmlns:t="{TNS}"><e:Body>&lt;x&gt;</e:Body></e:Envelope>"#)
        );
        for e in [XmlError::UndeclaredPrefix("p".into()), XmlError::UndeclaredEntity("e".into())] {
            assert!(!e.to_string().contains('\n'));
        }
    }
}
