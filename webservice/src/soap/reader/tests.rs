//! The reader against zeep's requests, every documented answer, and every way an envelope can be wrong.

use super::*;
use crate::soap::OPERATIONS;
use protocol::normalize::EXAMPLES;
use quick_xml::escape::escape;

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
fn documented_examples_through_every_operation() {
    for op in &OPERATIONS {
        for (input, output) in EXAMPLES {
            assert_eq!(answer(&zeep_request(op.name, op.param, &escape(input))), output, "{} {input:?}", op.name);
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
