//! The WSDL 1.1 description served at `GET /?wsdl` (docs/protocol.md, "SOAP shape").
//!
//! zeep builds its whole client from this document, so its shape is the interface: one schema element pair per
//! operation (`<op>` with its parameter, `<op>Response` with `<op>Result`, both `xs:string`, `minOccurs="0"`,
//! `nillable="true"`), messages named after the elements, a portType and a binding named `Application`,
//! document/literal with `soapAction` equal to the operation name, and one port whose address is the base URL the
//! client can reach.

use std::fmt::Write as _;

use quick_xml::escape::escape;

use crate::soap::{OPERATIONS, SOAP_ENV, TNS};

/// Name of the `wsdl:service` element (the protocol lets it be any name).
pub const SERVICE_NAME: &str = "NormalizationService";

/// The WSDL with `location` as the port's `soap:address`.
///
/// `location` may come from the peer's `Host` header, so it is escaped for an attribute value; the rest of the
/// document is fixed text.
pub fn wsdl(location: &str) -> String {
    let mut types = String::new();
    let mut messages = String::new();
    let mut port_ops = String::new();
    let mut binding_ops = String::new();
    for op in &OPERATIONS {
        let (name, param, response, result) = (op.name, op.param, op.response, op.result);
        // `write!` into a String cannot fail.
        let _ = write!(
            types,
            r#"
      <xs:complexType name="{name}">
        <xs:sequence>
          <xs:element name="{param}" type="xs:string" minOccurs="0" nillable="true"/>
        </xs:sequence>
      </xs:complexType>
      <xs:complexType name="{response}">
        <xs:sequence>
          <xs:element name="{result}" type="xs:string" minOccurs="0" nillable="true"/>
        </xs:sequence>
      </xs:complexType>
      <xs:element name="{name}" type="tns:{name}"/>
      <xs:element name="{response}" type="tns:{response}"/>"#
        );
        let _ = write!(
            messages,
            r#"
  <wsdl:message name="{name}">
    <wsdl:part name="{name}" element="tns:{name}"/>
  </wsdl:message>
  <wsdl:message name="{response}">
    <wsdl:part name="{response}" element="tns:{response}"/>
  </wsdl:message>"#
        );
        let _ = write!(
            port_ops,
            r#"
    <wsdl:operation name="{name}" parameterOrder="{name}">
      <wsdl:input name="{name}" message="tns:{name}"/>
      <wsdl:output name="{response}" message="tns:{response}"/>
    </wsdl:operation>"#
        );
        let _ = write!(
            binding_ops,
            r#"
    <wsdl:operation name="{name}">
      <soap:operation soapAction="{name}" style="document"/>
      <wsdl:input name="{name}">
        <soap:body use="literal"/>
      </wsdl:input>
      <wsdl:output name="{response}">
        <soap:body use="literal"/>
      </wsdl:output>
    </wsdl:operation>"#
        );
    }
    let location = escape(location);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:soapenv="{SOAP_ENV}"
    xmlns:tns="{TNS}"
    targetNamespace="{TNS}"
    name="Application">
  <wsdl:types>
    <xs:schema targetNamespace="{TNS}" elementFormDefault="qualified">{types}
    </xs:schema>
  </wsdl:types>{messages}
  <wsdl:portType name="Application">{port_ops}
  </wsdl:portType>
  <wsdl:binding name="Application" type="tns:Application">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>{binding_ops}
  </wsdl:binding>
  <wsdl:service name="{SERVICE_NAME}">
    <wsdl:port name="Application" binding="tns:Application">
      <soap:address location="{location}"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::events::Event;
    use quick_xml::name::{Namespace, ResolveResult};
    use quick_xml::NsReader;

    /// An element as (namespace, local name, attributes).
    type Element = (String, String, Vec<(String, String)>);

    /// Every element of the WSDL, read back with a real XML parser.
    fn elements(xml: &str) -> Vec<Element> {
        let mut reader = NsReader::from_str(xml);
        reader.config_mut().enable_all_checks(true);
        let mut out = Vec::new();
        loop {
            let (ns, event) = match reader.read_resolved_event() {
                Ok(pair) => pair,
                Err(e) => panic!("WSDL not well-formed: {e}"),
            };
            let ns = match ns {
                ResolveResult::Bound(Namespace(ns)) => ns.to_owned(),
                _ => String::new(),
            };
            match event {
                Event::Start(e) | Event::Empty(e) => {
                    let attrs = e
                        .attributes()
                        .map(|a| match a {
                            Ok(a) => (
                                a.key.as_ref().to_owned(),
                                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                    .map(|v| v.into_owned())
                                    .unwrap_or_default(),
                            ),
                            Err(e) => panic!("bad attribute: {e}"),
                        })
                        .collect();
                    out.push((ns, e.local_name().into_inner().to_owned(), attrs));
                }
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
        attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_operation_has_its_elements_messages_and_binding() {
        let doc = wsdl("http://localhost:8000/");
        let els = elements(&doc);
        let wsdl_ns = "http://schemas.xmlsoap.org/wsdl/";
        let xs_ns = "http://www.w3.org/2001/XMLSchema";
        let soap_ns = "http://schemas.xmlsoap.org/wsdl/soap/";
        for op in &OPERATIONS {
            for el in [op.name, op.response] {
                assert!(
                    els.iter().any(|(ns, l, a)| ns == xs_ns && l == "element" && attr(a, "name") == Some(el)),
                    "{el}"
                );
                assert!(
                    els.iter().any(|(ns, l, a)| ns == wsdl_ns && l == "message" && attr(a, "name") == Some(el)),
                    "{el}"
                );
            }
            for leaf in [op.param, op.result] {
                assert!(els.iter().any(|(_, l, a)| l == "element"
                    && attr(a, "name") == Some(leaf)
                    && attr(a, "minOccurs") == Some("0")
                    && attr(a, "nillable") == Some("true")
                    && attr(a, "type") == Some("xs:string")));
            }
            assert!(els.iter().any(|(ns, l, a)| ns == soap_ns
                && l == "operation"
                && attr(a, "soapAction") == Some(op.name)
                && attr(a, "style") == Some("document")));
        }
        for kind in ["portType", "binding"] {
            assert!(els.iter().any(|(ns, l, a)| ns == wsdl_ns && l == kind && attr(a, "name") == Some("Application")));
        }
        assert!(els.iter().any(|(_, l, a)| l == "schema"
            && attr(a, "elementFormDefault") == Some("qualified")
            && attr(a, "targetNamespace") == Some(TNS)));
        assert!(els.iter().any(|(ns, l, a)| ns == soap_ns
            && l == "binding"
            && attr(a, "transport") == Some("http://schemas.xmlsoap.org/soap/http")));
        assert!(els.iter().any(|(ns, l, a)| ns == soap_ns
            && l == "address"
            && attr(a, "location") == Some("http://localhost:8000/")));
    }

    #[test]
    fn location_is_escaped() {
        let doc = wsdl("http://x/?a=1&b=\"2\"<>");
        let els = elements(&doc);
        assert!(els.iter().any(|(_, l, a)| l == "address" && attr(a, "location") == Some("http://x/?a=1&b=\"2\"<>")));
    }
}
