//! How the client writes a log line: `warning: …`, at `warn` unless `RUST_LOG` says otherwise. The shell sends
//! the lines to stderr (main.rs), the TUI to its status line (tui/logging.rs).

use std::io::Write;

/// A logger with the client's filter and line format; the caller chooses the target and calls `init`.
pub fn builder() -> env_logger::Builder {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"));
    builder.format(|buf, record| {
        let level = match record.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        };
        writeln!(buf, "{level}: {}", record.args())
    });
    builder
}
