//! The two envelopes of the call: the request zeep would send for `convert_text`, and the reading of the answer
//! (a result or a fault) with a namespace-aware parser rather than by searching text, so that prefixes, attribute
//! order, comments or a nil result cannot confuse it.

use std::borrow::Cow;
use std::io;

use protocol::normalize::is_whitespace;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, Writer};
use soap::{character_data, is_xml_char, namespace, write_envelope, SOAP_ENV, TNS, XSI};

use super::WsError;

/// The request zeep sends for `client.service.convert_text(text)`. quick-xml escapes `<`, `>`, `&`, quotes and
/// CR (as `&#13;`: a raw CR would reach the service as LF after XML end-of-line normalization).
///
/// Whitespace of the rule that XML 1.0 cannot carry (the information separators U+001C..=U+001F) is sent as
/// spaces: the rule treats every whitespace character alike, so the answer is the same.
pub(super) fn request_envelope(text: &str) -> Result<Vec<u8>, WsError> {
    let unsendable_space = |c: char| is_whitespace(c) && !is_xml_char(c);
    let text: Cow<'_, str> = if text.chars().any(unsendable_space) {
        Cow::Owned(text.chars().map(|c| if unsendable_space(c) { ' ' } else { c }).collect())
    } else {
        Cow::Borrowed(text)
    };
    if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
        return Err(WsError::Unencodable(c));
    }
    let mut w = Writer::new(Vec::with_capacity(320 + text.len()));
    let written = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None))).and_then(|()| {
        write_envelope(&mut w, "soap-env", &[], |w| {
            w.write_event(Event::Start(BytesStart::new("ns0:convert_text").with_attributes([("xmlns:ns0", TNS)])))?;
            w.write_event(Event::Start(BytesStart::new("ns0:text")))?;
            w.write_event(Event::Text(BytesText::new(&text)))?;
            w.write_event(Event::End(BytesEnd::new("ns0:text")))?;
            w.write_event(Event::End(BytesEnd::new("ns0:convert_text")))
        })
    });
    // Writing into a Vec cannot fail; mapped rather than unwrapped so that no path panics.
    written.map_err(|e: io::Error| WsError::Transport(format!("could not build the request: {e}")))?;
    Ok(w.into_inner())
}

/// What a well-formed answer envelope holds.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer {
    Result(String),
    Fault { code: String, message: String },
}

/// One element of the answer, with its direct character content.
#[derive(Debug)]
struct Element {
    /// Namespace; empty when unqualified.
    ns: String,
    local: String,
    parent: Option<usize>,
    nil: bool,
    text: String,
}

/// Reads an answer envelope: `Envelope/Body/convert_textResponse/convert_textResult`, or a `Fault`.
pub(super) fn read_answer(xml: &str) -> Result<Answer, String> {
    let els = elements(xml)?;
    let is = |i: usize, ns: &str, local: &str| els[i].ns == ns && els[i].local == local;
    let child = |parent: usize, pred: &dyn Fn(usize) -> bool| {
        (0..els.len()).find(|&i| els[i].parent == Some(parent) && pred(i))
    };
    if els.is_empty() || !is(0, SOAP_ENV, "Envelope") {
        return Err("not a SOAP 1.1 envelope".into());
    }
    let body = child(0, &|i| is(i, SOAP_ENV, "Body")).ok_or("the envelope has no Body")?;
    let first = child(body, &|_| true).ok_or("the Body is empty")?;
    if is(first, SOAP_ENV, "Fault") {
        let text =
            |name: &str| child(first, &|i| els[i].local == name).map(|i| els[i].text.clone()).unwrap_or_default();
        return Ok(Answer::Fault { code: text("faultcode"), message: text("faultstring") });
    }
    if !is(first, TNS, "convert_textResponse") {
        return Err(format!("unexpected element {{{}}}{} in the Body", els[first].ns, els[first].local));
    }
    // The result may be qualified (as the WSDL says) or not; minOccurs="0" and nillable="true" make an absent or
    // nil result the empty string, which is how zeep's None reaches its caller.
    match child(first, &|i| els[i].local == "convert_textResult" && (els[i].ns == TNS || els[i].ns.is_empty())) {
        None => Ok(Answer::Result(String::new())),
        Some(result) if els.iter().any(|e| e.parent == Some(result)) => Err("the result is not a string".into()),
        Some(result) if els[result].nil => Ok(Answer::Result(String::new())),
        Some(result) => Ok(Answer::Result(els[result].text.clone())),
    }
}

/// Every element of a well-formed document, in document order.
fn elements(xml: &str) -> Result<Vec<Element>, String> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().enable_all_checks(true);
    let mut els: Vec<Element> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| format!("not well-formed XML: {e}"))?;
        let ns = namespace(ns).map_err(|e| e.to_string())?.to_owned();
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let mut nil = false;
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| format!("malformed attribute: {e}"))?;
                    if let (ResolveResult::Bound(Namespace(XSI)), local) = reader.resolver().resolve_attribute(attr.key)
                    {
                        nil |= local.into_inner() == "nil" && attr.as_bool() == Some(true);
                    }
                }
                els.push(Element {
                    ns,
                    local: e.local_name().into_inner().to_owned(),
                    parent: open.last().copied(),
                    nil,
                    text: String::new(),
                });
                if matches!(event, Event::Start(_)) {
                    open.push(els.len() - 1);
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Eof => break,
            _ => {
                if let Some(text) = character_data(&event) {
                    let text = text.map_err(|e| e.to_string())?;
                    if let Some(&i) = open.last() {
                        els[i].text.push_str(&text);
                    }
                }
            }
        }
    }
    if !open.is_empty() {
        return Err("the document ends inside an element".into());
    }
    Ok(els)
}
