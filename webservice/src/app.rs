//! What the service answers to one HTTP request, as a pure function of the request, so that every route can be
//! tested without a socket. The HTTP framing (limits, timeouts, writing) lives in `server.rs`.

use std::net::SocketAddr;

use crate::soap::{self, Fault};
use crate::wsdl;

/// Content type of every SOAP and WSDL answer (SOAP 1.1 over HTTP is `text/xml`; docs/protocol.md, "SOAP shape", names
/// the charset).
pub const XML: &str = "text/xml; charset=utf-8";
/// Content type of the plain-text error pages.
pub const TEXT: &str = "text/plain; charset=utf-8";
/// Longest `Host` header value accepted: a DNS name (255) plus `:` and a port (6).
pub const MAX_HOST_LEN: usize = 261;

/// One request, already framed and size-checked by the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as sent (origin-form `/?wsdl`, or absolute-form `http://host/?wsdl`).
    pub target: &'a str,
    /// The `Host` header, already checked by [`is_valid_host`].
    pub host: Option<&'a str>,
    pub body: &'a [u8],
}

/// What to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Value of an `Allow` header (405 answers only).
    pub allow: Option<&'static str>,
    /// The SOAP operation that was called, for the request log.
    pub operation: Option<&'static str>,
}

impl Response {
    /// A plain-text answer, for the HTTP-level errors where there is no SOAP envelope to answer with.
    pub fn text(status: u16, message: impl Into<String>) -> Response {
        let mut body = message.into().into_bytes();
        body.push(b'\n');
        Response { status, content_type: TEXT, body, allow: None, operation: None }
    }

    fn fault(fault: &Fault, operation: Option<&'static str>) -> Response {
        // SOAP 1.1 over HTTP (6.2): a fault is sent with status 500.
        Response { status: 500, content_type: XML, body: soap::fault_envelope(fault), allow: None, operation }
    }
}

/// Routes one request. `public_url` overrides the WSDL address; otherwise it is derived from `Host`, or from the
/// address the connection arrived on (`local`) when an HTTP/1.0 client sent no `Host`.
pub fn handle(request: &Request<'_>, public_url: Option<&str>, local: SocketAddr) -> Response {
    let (path, query) = split_target(request.target);
    if path != "/" {
        return Response::text(404, format!("no such resource {path:?}: the WSDL is at /?wsdl, SOAP requests go to /"));
    }
    match request.method {
        "GET" | "HEAD" if query.is_some_and(wants_wsdl) => {
            let location = match (public_url, request.host) {
                (Some(url), _) => url.to_owned(),
                (None, Some(host)) => format!("http://{host}/"),
                (None, None) => format!("http://{local}/"),
            };
            Response {
                status: 200,
                content_type: XML,
                body: wsdl::wsdl(&location).into_bytes(),
                allow: None,
                operation: None,
            }
        }
        "GET" | "HEAD" => {
            Response::text(404, "this is a SOAP 1.1 service: the WSDL is at /?wsdl, requests are POSTed to /")
        }
        "POST" => match soap::parse_request(request.body) {
            Ok(call) => Response {
                status: 200,
                content_type: XML,
                body: soap::response_envelope(call.operation, &call.answer()),
                allow: None,
                operation: Some(call.operation.name),
            },
            Err(fault) => Response::fault(&fault, None),
        },
        _ => {
            Response { allow: Some("GET, HEAD, POST"), ..Response::text(405, "only GET /?wsdl and POST / are served") }
        }
    }
}

/// Splits a request target into path and query, accepting the absolute form that RFC 9112 (3.2.2) requires
/// servers to accept.
fn split_target(target: &str) -> (&str, Option<&str>) {
    let origin = match target.strip_prefix("http://").or_else(|| target.strip_prefix("https://")) {
        Some(rest) => rest.find(['/', '?']).map_or("/", |i| &rest[i..]),
        None => target,
    };
    let (path, query) = match origin.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (origin, None),
    };
    (if path.is_empty() { "/" } else { path }, query)
}

/// Whether the query names the key `wsdl` in any case (`?wsdl`, `?WSDL`, `?wsdl=` ...), as docs/protocol.md
/// ("SOAP shape") asks.
fn wants_wsdl(query: &str) -> bool {
    query.split('&').any(|pair| pair.split('=').next().is_some_and(|key| key.eq_ignore_ascii_case("wsdl")))
}

/// Whether `host` is a syntactically valid `Host` header value (RFC 9110 7.2: `uri-host [ ":" port ]`).
///
/// The value ends up in the WSDL's address, which a client will connect to, so only the plain forms are accepted:
/// a DNS name or IPv4 address, or an IPv6 literal in brackets, with an optional decimal port. Anything else makes
/// the HTTP layer answer 400, as RFC 9112 (3.2) requires for an invalid `Host`.
pub fn is_valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return false;
    }
    let (name_ok, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip6, after)) => (
                !ip6.is_empty() && ip6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.'),
                match after {
                    "" => None,
                    _ => match after.strip_prefix(':') {
                        Some(port) => Some(port),
                        None => return false,
                    },
                },
            ),
            None => return false,
        },
        None => {
            let (name, port) = match host.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            };
            (
                !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')),
                port,
            )
        }
    };
    let port_ok = match port {
        None => true,
        Some(p) => {
            !p.is_empty()
                && p.len() <= 5
                && p.chars().all(|c| c.is_ascii_digit())
                && p.parse::<u32>().is_ok_and(|n| n <= 65535)
        }
    };
    name_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8000))
    }

    fn get(target: &str, host: Option<&str>) -> Response {
        handle(&Request { method: "GET", target, host, body: b"" }, None, local())
    }

    fn body(r: &Response) -> String {
        String::from_utf8_lossy(&r.body).into_owned()
    }

    #[test]
    fn wsdl_query_key_is_case_insensitive() {
        for target in ["/?wsdl", "/?WSDL", "/?Wsdl", "/?wsdl=", "/?x=1&wsdl", "http://h:1/?wsdl", "http://h:1?wsdl"] {
            let r = get(target, Some("h:1"));
            assert_eq!((r.status, r.content_type), (200, XML), "{target}");
        }
        for target in ["/", "/?", "/?wsdlx", "/?x=wsdl", "/other?wsdl"] {
            assert_eq!(get(target, Some("h")).status, 404, "{target}");
        }
    }

    #[test]
    fn wsdl_address_comes_from_public_url_then_host_then_local_address() {
        assert!(body(&get("/?wsdl", Some("example.org:8123"))).contains(r#"location="http://example.org:8123/""#));
        assert!(body(&get("/?wsdl", None)).contains(r#"location="http://127.0.0.1:8000/""#));
        let r = handle(
            &Request { method: "GET", target: "/?wsdl", host: Some("ignored"), body: b"" },
            Some("https://proxy.example/ws/"),
            local(),
        );
        assert!(body(&r).contains(r#"location="https://proxy.example/ws/""#));
    }

    #[test]
    fn post_answers_or_faults() {
        let envelope = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><t:remove xmlns:t="http://tests.python-zeep.org/"><t:string> a  b </t:string></t:remove></s:Body></s:Envelope>"#;
        let r = handle(&Request { method: "POST", target: "/", host: None, body: envelope.as_bytes() }, None, local());
        assert_eq!((r.status, r.operation), (200, Some("remove")));
        assert!(body(&r).contains("<tns:removeResult>a b</tns:removeResult>"));
        let r = handle(&Request { method: "POST", target: "/", host: None, body: b"<oops" }, None, local());
        assert_eq!(r.status, 500);
        assert!(body(&r).contains("<faultcode>soap:Client</faultcode>"));
    }

    #[test]
    fn other_methods_are_not_allowed() {
        let r = handle(&Request { method: "PUT", target: "/", host: None, body: b"" }, None, local());
        assert_eq!((r.status, r.allow), (405, Some("GET, HEAD, POST")));
    }

    #[test]
    fn host_syntax() {
        for ok in ["localhost", "localhost:8000", "127.0.0.1:1", "[::1]", "[::1]:8000", "a-b.c_d~e", "h:65535"] {
            assert!(is_valid_host(ok), "{ok}");
        }
        for bad in [
            "", ":80", "h:", "h:65536", "h:123456", "h:8a", "a b", "a\"b", "a<b", "[::1", "[]", "[::1]x", "a/b", "a@b",
            "h:1:2",
        ] {
            assert!(!is_valid_host(bad), "{bad}");
        }
        assert!(!is_valid_host(&"a".repeat(MAX_HOST_LEN + 1)));
    }
}
