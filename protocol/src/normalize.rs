//! The whitespace rule of docs/protocol.md ("Normalization web service", "The rule"), applied to every message before it is sent.
//!
//! It lives here, in the pure protocol crate, because three parties must agree on it byte for byte: the SOAP
//! service (which serves it), the client's `--local-normalize` fallback (which applies it without the service),
//! and the tests that compare the two. The rule is the one of Python's `' '.join(s.split())`, which every original
//! service used, so that a message normalized by an original service and by ours is the same message.

/// Whether `c` separates words under the rule.
///
/// `char::is_whitespace` is exactly the Unicode `White_Space` property; Python's `str.split()` additionally splits
/// at the four information separators U+001C..=U+001F, and the originals used Python, so they are added here.
/// U+200B ZERO WIDTH SPACE is not `White_Space` (it is a format character) and is therefore kept.
pub fn is_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The examples of the rule as docs/protocol.md gives them, input then output: the one copy every test of the
/// rule (here, in the web service, through SOAP) checks against.
pub const EXAMPLES: [(&str, &str); 8] = [
    ("  hello    world  ", "hello world"),
    ("a\tb\nc", "a b c"),
    ("a\u{A0}\u{A0}b", "a b"),
    ("\u{3000}a\u{2003}\u{2003}b", "a b"),
    ("single", "single"),
    ("   ", ""),
    ("", ""),
    ("<&>", "<&>"),
];

/// Splits `text` at every maximal run of whitespace, drops the empty pieces and joins the rest with one U+0020.
///
/// Equivalently: trims both ends and replaces every interior run by a single space. Nothing else changes (case,
/// punctuation and every non-whitespace character are kept), so the function is idempotent, and its result has
/// the same pieces as its input.
pub fn normalize(text: &str) -> String {
    // The result is never longer than the input: every run of whitespace (at least one byte) becomes at most one
    // byte, so one allocation of the input's size is enough.
    let mut out = String::with_capacity(text.len());
    for piece in text.split(is_whitespace).filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every whitespace character of the rule, written out from the Unicode `White_Space` list (PropList.txt) plus
    /// U+001C..=U+001F, so that a change in either definition shows up as a failing test rather than silently.
    const EXPECTED_WHITESPACE: &[char] = &[
        '\u{09}', '\u{0A}', '\u{0B}', '\u{0C}', '\u{0D}', '\u{1C}', '\u{1D}', '\u{1E}', '\u{1F}', '\u{20}', '\u{85}',
        '\u{A0}', '\u{1680}', '\u{2000}', '\u{2001}', '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}',
        '\u{2007}', '\u{2008}', '\u{2009}', '\u{200A}', '\u{2028}', '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}',
    ];

    #[test]
    fn the_documented_examples() {
        for (input, output) in EXAMPLES {
            assert_eq!(normalize(input), output, "{input:?}");
        }
    }

    #[test]
    fn whitespace_is_exactly_white_space_plus_information_separators() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(is_whitespace(c), EXPECTED_WHITESPACE.contains(&c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn zero_width_and_other_lookalikes_are_kept() {
        // U+200B ZERO WIDTH SPACE, U+180E MONGOLIAN VOWEL SEPARATOR (whitespace before Unicode 6.3),
        // U+FEFF ZERO WIDTH NO-BREAK SPACE, U+2060 WORD JOINER: none is White_Space.
        for c in ['\u{200B}', '\u{180E}', '\u{FEFF}', '\u{2060}'] {
            let text = format!("a{c}b");
            assert_eq!(normalize(&text), text);
        }
        assert_eq!(normalize("a \u{200B} b"), "a \u{200B} b");
    }

    #[test]
    fn edge_cases() {
        for (text, normalized) in [
            ("\r\n", ""),
            ("a\r\nb", "a b"),
            ("\u{1C}a\u{1D}\u{1E}b\u{1F}", "a b"),
            ("\u{85}a\u{2028}b\u{2029}", "a b"),
            (" a", "a"),
            ("a ", "a"),
            ("a b", "a b"),
            ("Hola,   MUNDO!\t¿qué\u{0B}tal?", "Hola, MUNDO! ¿qué tal?"),
            // Non-whitespace control characters are content, not separators.
            ("a\u{0}b\u{1}c", "a\u{0}b\u{1}c"),
            // Multi-byte pieces are kept whole.
            ("  日本語\u{3000}テキスト  😀 ", "日本語 テキスト 😀"),
        ] {
            assert_eq!(normalize(text), normalized, "{text:?}");
        }
    }

    /// Text with many whitespace characters of every kind, so that runs, ends and mixtures are all common.
    fn text() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            3 => proptest::sample::select(EXPECTED_WHITESPACE),
            1 => Just('\u{200B}'),
            4 => any::<char>(),
        ];
        proptest::collection::vec(c, 0..64).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn result_is_the_pieces_joined_by_single_spaces(s in text()) {
            let out = normalize(&s);
            let pieces: Vec<&str> = s.split(is_whitespace).filter(|p| !p.is_empty()).collect();
            if pieces.is_empty() {
                prop_assert_eq!(out.as_str(), "");
            } else {
                prop_assert_eq!(out.split(' ').collect::<Vec<_>>(), pieces);
            }
            prop_assert!(!out.starts_with(is_whitespace) && !out.ends_with(is_whitespace));
            prop_assert!(!out.contains("  "));
            prop_assert!(out.chars().all(|c| c == ' ' || !is_whitespace(c)));
            prop_assert!(out.len() <= s.len());
        }

        #[test]
        fn is_idempotent(s in text()) {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once);
        }
    }
}
