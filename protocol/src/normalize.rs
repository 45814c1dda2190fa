//! The whitespace rule of PROTOCOL.md 7.2 (the web-service engineer owns this file and replaces this body).

/// Whitespace per 7.2: Unicode White_Space plus U+001C..=U+001F.
pub fn is_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Trims both ends and collapses every interior run of whitespace into one space.
pub fn normalize(text: &str) -> String {
    text.split(is_whitespace).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ")
}
