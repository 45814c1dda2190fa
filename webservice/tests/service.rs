//! The service over real HTTP on 127.0.0.1:0: WSDL, every operation, faults, limits and slow peers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use protocol::normalize::{normalize, EXAMPLES};
use quick_xml::escape::partial_escape;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;
use webservice::soap::{OPERATIONS, TNS};
use webservice::{Config, RunningService, Service, MAX_BODY_BYTES};

/// Longest any single test call may take; far above what a loopback call needs.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

fn start(config: Config) -> RunningService {
    Service::bind("127.0.0.1:0", config).and_then(Service::spawn).expect("the service starts on 127.0.0.1:0")
}

/// One service shared by the tests that do not need their own configuration.
fn shared() -> &'static str {
    // Kept in a static rather than forgotten, so that it stays reachable (and LeakSanitizer sees no leak) while it
    // serves until the test process exits.
    static SERVICE: OnceLock<(RunningService, String)> = OnceLock::new();
    &SERVICE
        .get_or_init(|| {
            let running = start(Config::default());
            let url = running.url();
            (running, url)
        })
        .1
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(CALL_TIMEOUT)).build().into()
}

/// A response as (status, content type, body).
fn get(url: &str) -> (u16, String, String) {
    let mut response = agent().get(url).call().expect("GET completes");
    finish(&mut response)
}

fn post(url: &str, body: &str) -> (u16, String, String) {
    let mut response = agent()
        .post(url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"convert_text\"")
        .send(body)
        .expect("POST completes");
    finish(&mut response)
}

fn finish(response: &mut ureq::http::Response<ureq::Body>) -> (u16, String, String) {
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = response.body_mut().read_to_string().expect("body is UTF-8");
    (status, content_type, body)
}

/// The envelope zeep sends for `client.service.<op>(text)`; `None` sends a nil parameter, as zeep does for None.
fn envelope(op: &str, param: &str, text: Option<&str>) -> String {
    let param = match text {
        Some(text) => format!("<ns0:{param}>{}</ns0:{param}>", partial_escape(text)),
        None => format!(r#"<ns0:{param} xsi:nil="true"/>"#),
    };
    format!(
        r#"<?xml version='1.0' encoding='utf-8'?>
<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body><ns0:{op} xmlns:ns0="http://tests.python-zeep.org/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{param}</ns0:{op}></soap-env:Body></soap-env:Envelope>"#
    )
}

/// Every element of a document with its namespace and its text content (the whole document must be well-formed).
fn elements(xml: &str) -> Vec<(String, String, String)> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().enable_all_checks(true);
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap_or_else(|e| panic!("not well-formed ({e}): {xml}"));
        let ns = match ns {
            ResolveResult::Bound(Namespace(ns)) => ns.to_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(e) => {
                open.push(out.len());
                out.push((ns, e.local_name().into_inner().to_owned(), String::new()));
            }
            Event::Empty(e) => out.push((ns, e.local_name().into_inner().to_owned(), String::new())),
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                if let Some(&i) = open.last() {
                    out[i].2.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().expect("valid reference") {
                    Some(c) => c.to_string(),
                    None => match r.xml10_content().as_ref() {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "apos" => "'".into(),
                        "quot" => "\"".into(),
                        other => panic!("unknown entity {other}"),
                    },
                };
                if let Some(&i) = open.last() {
                    out[i].2.push_str(&c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

/// Calls `op` and returns the text of its result element, checking the response's shape on the way.
fn call(url: &str, op: &str, text: Option<&str>) -> String {
    let operation = OPERATIONS.iter().find(|o| o.name == op).expect("known operation");
    let (status, content_type, body) = post(url, &envelope(op, operation.param, text));
    assert_eq!((status, content_type.as_str()), (200, "text/xml; charset=utf-8"), "{body}");
    let els = elements(&body);
    let position = |local: &str| els.iter().position(|(ns, l, _)| ns == TNS && l == local);
    let response = position(operation.response).unwrap_or_else(|| panic!("no {} in {body}", operation.response));
    let result = position(operation.result).unwrap_or_else(|| panic!("no {} in {body}", operation.result));
    assert!(result > response, "{body}");
    if els[result].2.is_empty() {
        assert!(
            body.contains(&format!("<tns:{}/>", operation.result)),
            "empty result must be an empty element: {body}"
        );
    }
    els[result].2.clone()
}

fn fault(status: u16, body: &str) -> (String, String) {
    assert_eq!(status, 500, "{body}");
    let els = elements(body);
    let text = |name: &str| els.iter().find(|(_, l, _)| l == name).map(|e| e.2.clone()).unwrap_or_default();
    assert!(els.iter().any(|(ns, l, _)| ns == "http://schemas.xmlsoap.org/soap/envelope/" && l == "Fault"), "{body}");
    (text("faultcode"), text("faultstring"))
}

/// Sends raw bytes on one connection and returns everything the service answers.
fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(CALL_TIMEOUT)).expect("timeout");
    stream.write_all(request).expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").trim_end_matches('/').parse().expect("socket address")
}

#[test]
fn wsdl_is_served_with_every_operation_and_the_host_address() {
    let base = shared();
    for query in ["?wsdl", "?WSDL", "?Wsdl"] {
        let (status, content_type, body) = get(&format!("{base}{query}"));
        assert_eq!((status, content_type.as_str()), (200, "text/xml; charset=utf-8"));
        let els = elements(&body);
        for op in &OPERATIONS {
            for name in [op.name, op.response] {
                assert!(
                    els.iter().any(|(ns, l, _)| ns == "http://schemas.xmlsoap.org/wsdl/" && l == "operation")
                        && body.contains(&format!(r#"<xs:element name="{name}" type="tns:{name}"/>"#)),
                    "{name}"
                );
            }
            assert!(body.contains(&format!(r#"soapAction="{}""#, op.name)));
        }
        assert!(body.contains(&format!(r#"<soap:address location="{base}"/>"#)), "{body}");
    }
}

#[test]
fn wsdl_address_follows_the_host_header() {
    let answer = raw(addr_of(shared()), b"GET /?wsdl HTTP/1.1\r\nHost: example.org:8123\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains(r#"<soap:address location="http://example.org:8123/"/>"#), "{answer}");
    let bad = raw(addr_of(shared()), b"GET /?wsdl HTTP/1.1\r\nHost: evil\"/><x\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
}

#[test]
fn wsdl_address_follows_public_url() {
    let public = "https://normalizer.example/soap/";
    let running = start(Config { public_url: Some(public.into()), ..Config::default() });
    let (status, _, body) = get(&format!("{}?wsdl", running.url()));
    assert_eq!(status, 200);
    assert!(body.contains(&format!(r#"<soap:address location="{public}"/>"#)), "{body}");
}

#[test]
fn every_operation_applies_the_table_of_7_2() {
    for op in &OPERATIONS {
        for (input, output) in EXAMPLES {
            assert_eq!(call(shared(), op.name, Some(input)), output, "{} {input:?}", op.name);
        }
    }
}

#[test]
fn absent_and_nil_text() {
    let base = shared();
    for op in &OPERATIONS {
        let expected = if op.name == "eliminar_espacios" { "Texto no proporcionado." } else { "" };
        assert_eq!(call(base, op.name, None), expected, "{} nil", op.name);
        let absent = format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><t:{} xmlns:t="{TNS}"/></s:Body></s:Envelope>"#,
            op.name
        );
        let (status, _, body) = post(base, &absent);
        assert_eq!(status, 200, "{body}");
        let result = elements(&body).into_iter().find(|(_, l, _)| l == op.result).map(|e| e.2);
        assert_eq!(result.as_deref(), Some(expected), "{} absent", op.name);
    }
}

#[test]
fn carriage_returns_and_references_survive_transport() {
    // A CR written as &#13; is content (a raw one would be turned into LF by the parser); either way it is
    // whitespace, and the answer is the rule's.
    let (status, _, body) = post(
        shared(),
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><t:convert_text xmlns:t="http://tests.python-zeep.org/"><t:text>&#13;a&#13;&#13;b&#x3000;&lt;c&gt;</t:text></t:convert_text></s:Body></s:Envelope>"#,
    );
    assert_eq!(status, 200);
    assert!(body.contains("<tns:convert_textResult>a b &lt;c&gt;</tns:convert_textResult>"), "{body}");
}

#[test]
fn dispatch_is_by_body_element_not_soap_action() {
    // The SOAPAction header says convert_text; the body asks for remove.
    let (status, _, body) = post(shared(), &envelope("remove", "string", Some(" x  y ")));
    assert_eq!(status, 200);
    assert!(
        body.contains("<tns:removeResponse><tns:removeResult>x y</tns:removeResult></tns:removeResponse>"),
        "{body}"
    );
}

#[test]
fn malformed_envelope_is_a_client_fault() {
    for body in ["", "not xml", "<soap:Envelope", "<a><b></a></b>", "<Envelope><Body/></Envelope>"] {
        let (status, content_type, answer) = post(shared(), body);
        assert_eq!(content_type, "text/xml; charset=utf-8");
        let (code, message) = fault(status, &answer);
        assert_eq!(code, "soap:Client", "{body:?}: {answer}");
        assert!(!message.is_empty());
    }
}

#[test]
fn unknown_operation_is_a_client_fault() {
    let (status, _, answer) = post(shared(), &envelope("shout", "text", Some("hi")));
    let (code, message) = fault(status, &answer);
    assert_eq!(code, "soap:Client");
    assert!(message.contains("unknown operation"), "{message}");
}

#[test]
fn oversized_body_is_refused_with_413() {
    let (status, _, body) = post(shared(), &"x".repeat(MAX_BODY_BYTES + 1));
    assert_eq!(status, 413, "{body}");
    assert!(body.contains(&MAX_BODY_BYTES.to_string()), "{body}");
    // A body of exactly the limit is read (and is not SOAP).
    let (status, _, _) = post(shared(), &" ".repeat(MAX_BODY_BYTES));
    assert_eq!(status, 500);
}

#[test]
fn huge_declared_length_is_refused_without_reading_and_the_service_survives() {
    // tiny_http 0.12 aborts the whole process on exactly this request (see src/lib.rs).
    let addr = addr_of(shared());
    let answer = raw(addr, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000000000\r\n\r\nabc");
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    let answer = raw(addr, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert_eq!(call(shared(), "convert_text", Some(" still  here ")), "still here");
}

#[test]
fn expect_100_continue_is_honoured() {
    let addr = addr_of(shared());
    let body = envelope("convert_text", "text", Some(" a  b "));
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(CALL_TIMEOUT)).expect("timeout");
    let head = format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).expect("write head");
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).expect("100 Continue arrives");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(body.as_bytes()).expect("write body");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("<tns:convert_textResult>a b</tns:convert_textResult>"), "{answer}");
}

#[test]
fn http_errors() {
    let addr = addr_of(shared());
    let cases: [(&[u8], &str); 6] = [
        (b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "405"),
        (b"GET /elsewhere?wsdl HTTP/1.1\r\nHost: h\r\n\r\n", "404"),
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", "404"),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "411"),
        (b"GET / HTTP/1.1\r\n\r\n", "400"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "400"),
    ];
    for (request, status) in cases {
        let answer = raw(addr, request);
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{request:?}: {answer}");
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
    }
    let big_head = format!("GET /?wsdl HTTP/1.1\r\nHost: h\r\nX-Pad: {}\r\n\r\n", "p".repeat(20 * 1024));
    assert!(raw(addr, big_head.as_bytes()).starts_with("HTTP/1.1 431 "));
    let head = raw(addr, b"HEAD /?wsdl HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 ") && head.ends_with("\r\n\r\n"), "{head}");
}

#[test]
fn slow_peers_are_cut_at_the_deadline_and_do_not_block_others() {
    // One worker, short limits: a silent connection and a trickling one each hold the worker at most until their
    // limit, after which a real request is served.
    let running = start(Config {
        workers: 1,
        read_idle_timeout: Duration::from_millis(300),
        request_deadline: Duration::from_millis(600),
        ..Config::default()
    });
    let addr = running.local_addr();

    let started = Instant::now();
    let silent = TcpStream::connect(addr).expect("connect");
    assert_eq!(call(&running.url(), "convert_text", Some(" a ")), "a");
    assert!(started.elapsed() >= Duration::from_millis(250), "the silent peer held the only worker");
    drop(silent);

    // A peer sending one byte every 100 ms never trips the idle timeout, only the overall deadline.
    let mut trickle = TcpStream::connect(addr).expect("connect");
    trickle.set_read_timeout(Some(CALL_TIMEOUT)).expect("timeout");
    let started = Instant::now();
    let mut answer = Vec::new();
    for byte in b"POST / HTTP/1.1\r\nHost: h\r\n".iter().cycle().take(100) {
        if trickle.write_all(&[*byte]).is_err() {
            break;
        }
        // Pacing the peer, not synchronization: the assertion is on what the service answered.
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    let _ = trickle.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5), "cut at the deadline, not at the end of the trickle");
    assert_eq!(call(&running.url(), "convert_text", Some(" b ")), "b");
    running.shutdown();
}

#[test]
fn many_concurrent_clients_are_all_served() {
    let running = start(Config { workers: 4, ..Config::default() });
    let url = running.url();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                for j in 0..10 {
                    let text = format!("  client {i}\t call {j}  ");
                    assert_eq!(call(&url, "modify_text", Some(&text)), normalize(&text));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

#[test]
fn bind_failure_is_an_error() {
    let running = start(Config::default());
    let taken = running.local_addr();
    assert!(Service::bind(taken, Config::default()).is_err());
    assert!(Service::bind("127.0.0.1:0", Config { workers: 0, ..Config::default() }).is_err());
}

/// Characters that XML 1.0 can carry (what a SOAP client can send at all), with whitespace of every kind and
/// markup characters over-represented.
fn xml_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        3 => proptest::sample::select(vec![
            ' ', '\t', '\n', '\r', '\u{85}', '\u{A0}', '\u{1680}', '\u{2000}', '\u{2007}', '\u{200A}', '\u{2028}',
            '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}', '\u{200B}', '<', '>', '&', '"', '\'', ']',
        ]),
        4 => any::<char>().prop_filter("XML 1.0 character", |&c| webservice::soap::is_xml_char(c)),
    ];
    proptest::collection::vec(c, 0..80).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_service_answers_the_rule(text in xml_text(), op in 0..OPERATIONS.len()) {
        prop_assert_eq!(call(shared(), OPERATIONS[op].name, Some(&text)), normalize(&text));
    }
}
