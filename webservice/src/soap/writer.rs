//! Writing the service's answers: the response envelope of an operation and the fault envelope.

use std::borrow::Cow;
use std::io;

use ::soap::{is_xml_char, write_envelope, TNS};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use super::{Fault, Operation};

/// The answer envelope to `operation`: `<op>Response` holding `<op>Result`, empty when `result` is empty
/// (docs/protocol.md, "Normalization web service").
pub fn response_envelope(operation: &Operation, result: &str) -> Vec<u8> {
    document(|w| {
        write_envelope(w, "soap", &[("xmlns:tns", TNS)], |w| {
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
            w.write_event(Event::End(BytesEnd::new(response.as_str())))
        })
    })
}

/// The fault envelope for `fault`; `faultcode` and `faultstring` are unqualified, as SOAP 1.1 (4.4) says.
pub fn fault_envelope(fault: &Fault) -> Vec<u8> {
    document(|w| {
        write_envelope(w, "soap", &[], |w| {
            w.write_event(Event::Start(BytesStart::new("soap:Fault")))?;
            w.write_event(Event::Start(BytesStart::new("faultcode")))?;
            w.write_event(Event::Text(BytesText::new(fault.code.qname())))?;
            w.write_event(Event::End(BytesEnd::new("faultcode")))?;
            w.write_event(Event::Start(BytesStart::new("faultstring")))?;
            w.write_event(Event::Text(BytesText::new(&xml_safe(&fault.message))))?;
            w.write_event(Event::End(BytesEnd::new("faultstring")))?;
            w.write_event(Event::End(BytesEnd::new("soap:Fault")))
        })
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
    use super::super::OPERATIONS;
    use super::*;
    use quick_xml::NsReader;

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
