//! The two output forms of a report: a fixed-width table for people and one JSON line for scripts
//! (`scripts/perf_summary.py`, `scripts/plot.py`), plus the unit-aware formatting of a duration.

use std::fmt::Write as _;

/// A tiny JSON writer: objects, arrays, numbers, strings and booleans, with no dependency. Calls must nest
/// properly (the bench writes a fixed shape); a member is `key` followed by exactly one value.
#[derive(Debug, Default)]
pub struct Json {
    buf: String,
    /// Whether the innermost open container already has a member (so the next one needs a comma).
    has_member: Vec<bool>,
    /// A key has just been written: the next value is its value and needs no comma.
    after_key: bool,
}

impl Json {
    pub fn new() -> Json {
        Json::default()
    }

    /// Called before every key and every value: writes the separating comma where one is due.
    fn separate(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        if let Some(last) = self.has_member.last_mut() {
            if *last {
                self.buf.push(',');
            }
            *last = true;
        }
    }

    fn key(&mut self, key: &str) {
        self.separate();
        self.string_value(key);
        self.buf.push(':');
        self.after_key = true;
    }

    fn string_value(&mut self, s: &str) {
        self.buf.push('"');
        for c in s.chars() {
            match c {
                '"' => self.buf.push_str("\\\""),
                '\\' => self.buf.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.buf, "\\u{:04x}", c as u32);
                }
                c => self.buf.push(c),
            }
        }
        self.buf.push('"');
    }

    /// Opens a container (`{` or `[`) as a value: the next member is its first.
    fn open_with(&mut self, bracket: char) {
        self.separate();
        self.buf.push(bracket);
        self.has_member.push(false);
    }

    /// Closes the innermost container with `bracket` (`}` or `]`).
    fn close_with(&mut self, bracket: char) {
        self.buf.push(bracket);
        self.has_member.pop();
    }

    /// Opens an object as a value (top level, after [`Json::field`], or as an array element).
    pub fn open(&mut self) {
        self.open_with('{');
    }

    pub fn close(&mut self) {
        self.close_with('}');
    }

    /// Opens an array as the value of `key`.
    pub fn array(&mut self, key: &str) {
        self.key(key);
        self.open_with('[');
    }

    pub fn close_array(&mut self) {
        self.close_with(']');
    }

    /// Ends a report object: `server_exit` when the server was stopped with something to say, then `ok`, then
    /// the closing brace.
    pub fn close_report(&mut self, server_exit: Option<&str>, ok: bool) {
        if let Some(exit) = server_exit {
            self.str("server_exit", exit);
        }
        self.bool("ok", ok);
        self.close();
    }

    /// Starts a member whose value the caller writes next (an object).
    pub fn field(&mut self, key: &str) {
        self.key(key);
    }

    pub fn num(&mut self, key: &str, v: f64) {
        self.key(key);
        self.number(v);
    }

    /// A number as a value (an array element, or after [`Json::field`]).
    pub fn number(&mut self, v: f64) {
        self.separate();
        if !v.is_finite() {
            self.buf.push_str("null");
        } else if v.fract() == 0.0 && v.abs() < 1e15 {
            let _ = write!(self.buf, "{}", v as i64);
        } else {
            let _ = write!(self.buf, "{v:.3}");
        }
    }

    pub fn str(&mut self, key: &str, v: &str) {
        self.key(key);
        self.separate();
        self.string_value(v);
    }

    /// A string as a value (an array element).
    pub fn string(&mut self, v: &str) {
        self.separate();
        self.string_value(v);
    }

    pub fn bool(&mut self, key: &str, v: bool) {
        self.key(key);
        self.separate();
        self.buf.push_str(if v { "true" } else { "false" });
    }

    pub fn nums(&mut self, key: &str, values: &[f64]) {
        self.array(key);
        for &v in values {
            self.number(v);
        }
        self.close_array();
    }

    pub fn into_string(self) -> String {
        self.buf
    }
}

/// A fixed-width text table, printed with aligned columns.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { rows: vec![header.iter().map(|s| (*s).to_owned()).collect()] }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> =
            (0..cols).map(|c| self.rows.iter().filter_map(|r| r.get(c)).map(|s| s.len()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for (i, row) in self.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                // First column left-aligned (names), the rest right-aligned (numbers).
                if c == 0 {
                    let _ = write!(out, "{cell:<w$}", w = widths[c]);
                } else {
                    let _ = write!(out, "  {cell:>w$}", w = widths[c]);
                }
            }
            out.push('\n');
            if i == 0 {
                let total = widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
                out.push_str(&"-".repeat(total));
                out.push('\n');
            }
        }
        out
    }
}

/// Formats microseconds with their unit: "850 µs", "12.3 ms", "2.41 s".
pub fn us(v: f64) -> String {
    if v < 10_000.0 {
        format!("{v:.0} µs")
    } else if v < 1_000_000.0 {
        format!("{:.1} ms", v / 1e3)
    } else {
        format!("{:.2} s", v / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_names_left_and_numbers_right() {
        let mut t = Table::new(&["request", "count"]);
        t.row(vec!["send".into(), "7".into()]);
        t.row(vec!["connected_users".into(), "1234".into()]);
        assert_eq!(
            t.render(),
            "request          count\n----------------------\nsend                 7\nconnected_users   1234\n"
        );
    }

    #[test]
    fn durations_carry_their_unit() {
        assert_eq!(us(850.0), "850 µs");
        assert_eq!(us(12_345.0), "12.3 ms");
        assert_eq!(us(2_410_000.0), "2.41 s");
    }

    #[test]
    fn json_nests_and_escapes() {
        let mut j = Json::new();
        j.open();
        j.str("a", "x\"y");
        j.field("b");
        j.open();
        j.num("c", 1.5);
        j.close();
        j.nums("d", &[1.0, 2.0]);
        j.array("e");
        j.open();
        j.num("f", 1.0);
        j.close();
        j.open();
        j.close();
        j.close_array();
        j.close();
        assert_eq!(j.into_string(), r#"{"a":"x\"y","b":{"c":1.500},"d":[1,2],"e":[{"f":1},{}]}"#);
    }

    #[test]
    fn a_report_ends_with_the_server_exit_when_there_is_one_then_ok() {
        let report = |exit| {
            let mut j = Json::new();
            j.open();
            j.num("n", 1.0);
            j.close_report(exit, false);
            j.into_string()
        };
        assert_eq!(report(Some("exit status: 1")), r#"{"n":1,"server_exit":"exit status: 1","ok":false}"#);
        assert_eq!(report(None), r#"{"n":1,"ok":false}"#);
    }
}
