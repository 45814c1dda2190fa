//! The operations the service exposes, each one name of the rule of docs/protocol.md, "Normalization web
//! service": the canonical `convert_text` and the aliases the original clients call.

use protocol::normalize::normalize;

/// One operation of the WSDL: the canonical one and the compatibility aliases of the original clients.
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
/// All apply the one rule (`remove` too, although sunniAngela's original only collapsed runs of two or more; the
/// protocol asks for the same rule for every alias). The one difference is `eliminar_espacios` with a nil or
/// absent `texto`: molinalg's original answered the sentence "Texto no proporcionado.", and a client written
/// against it may show or test for that sentence, so it is kept; every other operation treats a nil or absent
/// parameter as the empty string, as the protocol says for `convert_text`. An *empty* `texto` element is the empty
/// string (XML Schema: only `xsi:nil` makes an element nil), so it normalizes to the empty string like everywhere
/// else.
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
    /// The operation whose request element has this local name (in [`TNS`](::soap::TNS)).
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
