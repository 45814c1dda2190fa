//! The client side of the normalization web service (docs/protocol.md, "Normalization web service"): one SOAP 1.1
//! `convert_text` call.
//!
//! The request is the envelope zeep would send for the service's WSDL, so any service that works with the
//! original clients works here too.
//!
//! - here: [`normalize_remote`], the HTTP exchange and its [`WsError`]s;
//! - `envelope`: the request envelope and the reading of the answer.

mod envelope;

use std::io;
use std::time::Duration;

use envelope::{read_answer, request_envelope, Answer};

/// Largest answer read. The answer to a text is never longer than the envelope around that text, and a message
/// is at most 255 bytes (docs/protocol.md, "Limits and timeouts"), so this only stops a misbehaving service from making the client buffer without
/// bound.
pub const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// Why [`normalize_remote`] gave no normalized text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// The URL is not a plain `http://` URL (this client speaks no TLS; the service is local).
    #[error("invalid service URL: {0}")]
    InvalidUrl(String),
    /// Nothing could be connected to at the URL: connection refused, host name unknown, network unreachable.
    /// The only error after which the service can be said to be absent rather than failing.
    #[error("service unreachable: {0}")]
    Unreachable(String),
    /// No complete answer within the timeout (connecting included).
    #[error("service did not answer in time")]
    Timeout,
    /// The connection broke, or the service spoke broken HTTP.
    #[error("connection to the service failed: {0}")]
    Transport(String),
    /// An HTTP status other than 200 that carries no SOAP fault.
    #[error("service answered HTTP {0}")]
    Http(u16),
    /// The service answered with a SOAP fault.
    #[error("service fault {code}: {message}")]
    Fault {
        /// The `faultcode` as sent, e.g. `soap:Client`.
        code: String,
        /// The `faultstring`.
        message: String,
    },
    /// A 200 answer that is not the expected `convert_textResponse` envelope.
    #[error("unexpected answer from the service: {0}")]
    BadResponse(String),
    /// The text holds a character that XML 1.0 cannot carry (such as U+0001), so no SOAP service can be asked.
    #[error("the text contains U+{:04X}, which XML cannot carry", u32::from(*.0))]
    Unencodable(char),
}

/// Asks the service at `url` to normalize `text` with `convert_text`, waiting at most `timeout` in all.
///
/// U+001C..=U+001F are sent as spaces: they are whitespace under the rule, so the answer is the same, but XML 1.0
/// cannot carry them. An empty result element (and a nil or absent one) is the empty string.
pub fn normalize_remote(url: &str, text: &str, timeout: Duration) -> Result<String, WsError> {
    check_url(url)?;
    let body = request_envelope(text)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        // A fault comes with status 500 and must be read, not turned into a bare error.
        .http_status_as_error(false)
        // A SOAP endpoint that redirects is misconfigured; following it would repeat the POST elsewhere.
        .max_redirects(0)
        .build()
        .into();
    let mut response = agent
        .post(url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"convert_text\"")
        .send(&body[..])
        .map_err(from_ureq)?;
    let status = response.status().as_u16();
    let answer = response.body_mut().with_config().limit(MAX_RESPONSE_BYTES).read_to_string().map_err(|e| match e {
        ureq::Error::BodyExceedsLimit(_) => WsError::BadResponse(format!("answer over {MAX_RESPONSE_BYTES} bytes")),
        ureq::Error::Io(ref io) if io.kind() == io::ErrorKind::InvalidData => {
            WsError::BadResponse("answer is not UTF-8".into())
        }
        other => from_ureq(other),
    })?;
    match (status, read_answer(&answer)) {
        (200, Ok(Answer::Result(text))) => Ok(text),
        (_, Ok(Answer::Fault { code, message })) => Err(WsError::Fault { code, message }),
        (200, Err(why)) => Err(WsError::BadResponse(why)),
        (status, _) => Err(WsError::Http(status)),
    }
}

/// Refuses what this client cannot call, with a clearer message than the transport would give.
fn check_url(url: &str) -> Result<(), WsError> {
    if url.starts_with("https://") {
        return Err(WsError::InvalidUrl(format!("{url}: https is not supported, the service speaks plain http")));
    }
    if !url.starts_with("http://") {
        return Err(WsError::InvalidUrl(format!("{url}: expected http://host:port/")));
    }
    Ok(())
}

fn from_ureq(e: ureq::Error) -> WsError {
    match e {
        ureq::Error::Timeout(_) => WsError::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => WsError::Unreachable(e.to_string()),
        ureq::Error::Io(ref io) => match io.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => WsError::Timeout,
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable => WsError::Unreachable(e.to_string()),
            _ => WsError::Transport(e.to_string()),
        },
        ureq::Error::BadUri(why) => WsError::InvalidUrl(why),
        ureq::Error::Http(ref http) => WsError::InvalidUrl(http.to_string()),
        other => WsError::Transport(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::thread;
    use std::time::Instant;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn envelope(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:tns="http://tests.python-zeep.org/"><soap:Body>{body}</soap:Body></soap:Envelope>"#
        )
    }

    fn ok_answer(result: &str) -> String {
        envelope(&format!("<tns:convert_textResponse>{result}</tns:convert_textResponse>"))
    }

    /// Reads one HTTP request (head and `Content-Length` body) from the stream; enough HTTP for a fake server.
    fn read_request(stream: &mut TcpStream) -> String {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => buf.push(byte[0]),
                _ => return String::from_utf8_lossy(&buf).into_owned(),
            }
        }
        let head = String::from_utf8_lossy(&buf).into_owned();
        let length = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        let _ = stream.read_exact(&mut body);
        head + &String::from_utf8_lossy(&body)
    }

    /// A one-shot server on 127.0.0.1:0 answering `response` (raw bytes) to the first request; returns the URL
    /// and a channel that yields the request it received.
    fn fake(response: String) -> (String, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                stream.set_read_timeout(Some(TIMEOUT)).unwrap();
                let request = read_request(&mut stream);
                let _ = stream.write_all(response.as_bytes());
                let _ = tx.send(request);
            }
        });
        (url, rx)
    }

    fn http(status: &str, content_type: &str, body: &str) -> String {
        format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
    }

    #[test]
    fn success_sends_the_zeep_envelope_and_reads_the_result() {
        let (url, request) = fake(http(
            "200 OK",
            "text/xml; charset=utf-8",
            &ok_answer("<tns:convert_textResult>a &lt;&amp;&gt; b</tns:convert_textResult>"),
        ));
        assert_eq!(normalize_remote(&url, "  a\r <&>  b ", TIMEOUT), Ok("a <&> b".to_owned()));
        let request = request.recv_timeout(TIMEOUT).unwrap();
        assert!(request.starts_with("POST / HTTP/1.1\r\n"), "{request}");
        let lower = request.to_ascii_lowercase();
        assert!(lower.contains("soapaction: \"convert_text\"\r\n"), "{request}");
        assert!(lower.contains("content-type: text/xml; charset=utf-8\r\n"), "{request}");
        assert!(
            request.contains(r#"<ns0:convert_text xmlns:ns0="http://tests.python-zeep.org/"><ns0:text>  a&#13; &lt;&amp;&gt;  b </ns0:text></ns0:convert_text>"#),
            "{request}"
        );
    }

    #[test]
    fn empty_nil_and_absent_results_are_the_empty_string() {
        for result in [
            "<tns:convert_textResult/>",
            "<tns:convert_textResult></tns:convert_textResult>",
            r#"<tns:convert_textResult xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/>"#,
            "",
        ] {
            let (url, _request) = fake(http("200 OK", "text/xml", &ok_answer(result)));
            assert_eq!(normalize_remote(&url, "   ", TIMEOUT), Ok(String::new()), "{result}");
        }
    }

    #[test]
    fn other_prefixes_and_unqualified_result_are_read() {
        let answer = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header/><e:Body><r:convert_textResponse xmlns:r="http://tests.python-zeep.org/"><!-- c --><convert_textResult>x <![CDATA[<y>]]></convert_textResult></r:convert_textResponse></e:Body></e:Envelope>"#;
        let (url, _request) = fake(http("200 OK", "text/xml", answer));
        assert_eq!(normalize_remote(&url, "x <y>", TIMEOUT), Ok("x <y>".to_owned()));
    }

    #[test]
    fn fault_500_is_a_fault() {
        let fault = envelope(
            "<soap:Fault><faultcode>soap:Client</faultcode><faultstring>unknown operation</faultstring></soap:Fault>",
        );
        let (url, _request) = fake(http("500 Internal Server Error", "text/xml; charset=utf-8", &fault));
        assert_eq!(
            normalize_remote(&url, "x", TIMEOUT),
            Err(WsError::Fault { code: "soap:Client".into(), message: "unknown operation".into() })
        );
    }

    #[test]
    fn garbage_and_http_errors() {
        let (url, _r) = fake(http("500 Internal Server Error", "text/plain", "boom"));
        assert_eq!(normalize_remote(&url, "x", TIMEOUT), Err(WsError::Http(500)));
        let (url, _r) = fake(http("404 Not Found", "text/plain", "nothing here"));
        assert_eq!(normalize_remote(&url, "x", TIMEOUT), Err(WsError::Http(404)));
        for body in ["", "not xml", "<a/>", &envelope("<tns:other/>"), &envelope(""), "<soap:Envelope"] {
            let (url, _r) = fake(http("200 OK", "text/xml", body));
            assert!(matches!(normalize_remote(&url, "x", TIMEOUT), Err(WsError::BadResponse(_))), "{body:?}");
        }
        let (url, _r) = fake("this is not HTTP\r\n\r\n".into());
        assert!(matches!(normalize_remote(&url, "x", TIMEOUT), Err(WsError::Transport(_))));
    }

    #[test]
    fn connection_refused_is_unreachable() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let result = normalize_remote(&format!("http://127.0.0.1:{port}/"), "x", TIMEOUT);
        assert!(matches!(result, Err(WsError::Unreachable(_))), "{result:?}");
    }

    #[test]
    fn a_silent_service_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let started = Instant::now();
        assert_eq!(normalize_remote(&url, "x", Duration::from_millis(300)), Err(WsError::Timeout));
        assert!(started.elapsed() < TIMEOUT);
        drop(listener);
    }

    #[test]
    fn text_xml_cannot_carry_is_refused_before_any_call() {
        assert_eq!(normalize_remote("http://127.0.0.1:9/", "a\u{1}b", TIMEOUT), Err(WsError::Unencodable('\u{1}')));
        assert_eq!(normalize_remote("http://127.0.0.1:9/", "\u{FFFE}", TIMEOUT), Err(WsError::Unencodable('\u{FFFE}')));
    }

    #[test]
    fn information_separators_are_sent_as_spaces() {
        let (url, request) =
            fake(http("200 OK", "text/xml", &ok_answer("<tns:convert_textResult>a b</tns:convert_textResult>")));
        assert_eq!(normalize_remote(&url, "a\u{1c}\u{1f}b", TIMEOUT), Ok("a b".to_owned()));
        assert!(request.recv_timeout(TIMEOUT).unwrap().contains("<ns0:text>a  b</ns0:text>"));
    }

    #[test]
    fn only_plain_http_urls() {
        for url in ["https://localhost:8000/", "ftp://x/", "localhost:8000", ""] {
            assert!(matches!(normalize_remote(url, "x", TIMEOUT), Err(WsError::InvalidUrl(_))), "{url}");
        }
    }

    #[test]
    fn errors_display_one_line() {
        let errors = [
            WsError::InvalidUrl("u".into()),
            WsError::Unreachable("r".into()),
            WsError::Timeout,
            WsError::Transport("t".into()),
            WsError::Http(503),
            WsError::Fault { code: "soap:Client".into(), message: "m".into() },
            WsError::BadResponse("b".into()),
            WsError::Unencodable('\u{1}'),
        ];
        for e in errors {
            let shown = e.to_string();
            assert!(!shown.is_empty() && !shown.contains('\n'), "{shown}");
        }
    }
}
