//! Latency samples, their summary, and the two output forms of a report (a table and one JSON line).
//!
//! Samples are kept whole (one `u32` of nanoseconds each) rather than in a histogram: a 60-second run at 20k
//! requests per second is 1.2 M samples, under 5 MB, and exact percentiles need no bucketing argument. Each
//! worker keeps its own vectors, so recording costs no lock; they are merged once at the end.

use std::fmt::Write as _;
use std::time::Duration;

/// At most this many samples are kept per series and thread; beyond it the series keeps counting but stops
/// storing (a bound on memory for very long runs; percentiles then describe the first samples).
pub const MAX_SAMPLES_PER_SERIES: usize = 4_000_000;

/// Latencies of one kind of operation, in nanoseconds (saturating at about 4.3 s, beyond any timeout we use).
#[derive(Debug, Default, Clone)]
pub struct Samples {
    ns: Vec<u32>,
    count: u64,
    max_ns: u64,
}

impl Samples {
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.record_ns(ns);
    }

    pub fn record_ns(&mut self, ns: u64) {
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
        if self.ns.len() < MAX_SAMPLES_PER_SERIES {
            self.ns.push(u32::try_from(ns).unwrap_or(u32::MAX));
        }
    }

    pub fn merge(&mut self, other: Samples) {
        self.count += other.count;
        self.max_ns = self.max_ns.max(other.max_ns);
        self.ns.extend(other.ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sorts the samples and computes the usual percentiles.
    pub fn summary(mut self) -> Summary {
        self.ns.sort_unstable();
        let pick = |q: f64| -> f64 {
            if self.ns.is_empty() {
                return 0.0;
            }
            // Nearest-rank percentile: the smallest sample with at least q of the samples at or below it.
            let rank = ((q * self.ns.len() as f64).ceil() as usize).clamp(1, self.ns.len());
            f64::from(self.ns[rank - 1]) / 1e3
        };
        let mean = if self.ns.is_empty() {
            0.0
        } else {
            self.ns.iter().map(|&n| f64::from(n)).sum::<f64>() / self.ns.len() as f64 / 1e3
        };
        Summary {
            count: self.count,
            mean_us: mean,
            p50_us: pick(0.50),
            p90_us: pick(0.90),
            p99_us: pick(0.99),
            p999_us: pick(0.999),
            max_us: self.max_ns as f64 / 1e3,
        }
    }
}

/// Percentiles of one series, in microseconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Summary {
    pub fn json(&self, out: &mut Json) {
        out.open();
        out.num("count", self.count as f64);
        out.num("mean_us", self.mean_us);
        out.num("p50_us", self.p50_us);
        out.num("p90_us", self.p90_us);
        out.num("p99_us", self.p99_us);
        out.num("p999_us", self.p999_us);
        out.num("max_us", self.max_us);
        out.close();
    }
}

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

    /// Opens an object as a value (top level, after [`Json::field`], or as an array element).
    pub fn open(&mut self) {
        self.separate();
        self.buf.push('{');
        self.has_member.push(false);
    }

    pub fn close(&mut self) {
        self.buf.push('}');
        self.has_member.pop();
    }

    /// Opens an array as the value of `key`.
    pub fn array(&mut self, key: &str) {
        self.key(key);
        self.separate();
        self.buf.push('[');
        self.has_member.push(false);
    }

    pub fn close_array(&mut self) {
        self.buf.push(']');
        self.has_member.pop();
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
    fn percentiles_are_nearest_rank() {
        let mut s = Samples::default();
        for i in 1..=100u64 {
            s.record_ns(i * 1000);
        }
        let m = s.summary();
        assert_eq!(m.count, 100);
        assert_eq!(m.p50_us, 50.0);
        assert_eq!(m.p99_us, 99.0);
        assert_eq!(m.max_us, 100.0);
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
}
