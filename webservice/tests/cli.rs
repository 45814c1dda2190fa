//! The `webservice` program as an operator runs it: what it calls itself, its exit statuses, and how it stops.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Longest wait for the program to start or to stop; far above what either takes.
const WAIT: Duration = Duration::from_secs(30);

fn webservice() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_webservice"));
    // The environment of the test run must not change the flags or hide the log lines asserted on.
    for var in ["MSG_WEBSERVICE_PORT", "MSG_WEBSERVICE_BIND", "MSG_WEBSERVICE_PUBLIC_URL", "MSG_WEBSERVICE_WORKERS"] {
        command.env_remove(var);
    }
    command.env("RUST_LOG", "info");
    command
}

fn run(args: &[&str]) -> Output {
    webservice().args(args).stdin(Stdio::null()).output().expect("run webservice")
}

/// Waits for `child` to exit, killing it (and failing) after [`WAIT`].
fn wait(child: &mut Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            return status;
        }
        if started.elapsed() > WAIT {
            let _ = child.kill();
            panic!("webservice did not stop within {WAIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `command` (which runs the service on port 0), waits for its startup line, sends `signal` with
/// `kill`, and asserts that the service stops with status 0 and logs which signal stopped it.
fn assert_stops_cleanly_on(mut command: Command, signal: &str) {
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the startup line");
    assert!(line.starts_with("webservice listening on http://127.0.0.1:"), "startup line: {line:?}");
    let pid = child.id().to_string();
    let sent = Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("run kill");
    assert!(sent.success(), "kill -{signal} {pid}");
    let status = wait(&mut child);
    let mut stderr = String::new();
    child.stderr.take().expect("piped stderr").read_to_string(&mut stderr).expect("read stderr");
    assert!(status.success(), "SIG{signal}: {status:?}\n{stderr}");
    assert!(stderr.contains(&format!("SIG{signal}: stopping")), "{stderr}");
    assert!(stderr.contains("webservice stopped"), "{stderr}");
}

/// The service on a free port, as a plain command.
fn on_port_0() -> Command {
    let mut command = webservice();
    command.args(["--port", "0"]);
    command
}

#[test]
fn version_and_help_name_the_web_service() {
    let version = run(&["--version"]);
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("webservice "), "{version:?}");
    let help = run(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for expected in ["webservice: the SOAP 1.1", "-p, --port", "MSG_WEBSERVICE_PORT", "docs/protocol.md"] {
        assert!(help.contains(expected), "{expected:?} missing from --help:\n{help}");
    }
    assert!(!help.contains("PROTOCOL.md"), "{help}");
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for args in [&["--port", "eighty"][..], &["--workers", "0"], &["--public-url", "ftp://x/"], &["--bogus"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    let out = run(&["--public-url", "ftp://x/"]);
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1, "{out:?}");
}

#[test]
fn a_port_in_use_is_a_runtime_error_exit_1_with_one_line() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("its address").port().to_string();
    let out = run(&["-p", &port]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with(&format!("error: cannot listen on 127.0.0.1:{port}: ")), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn sigterm_stops_it_cleanly_with_a_log_line() {
    assert_stops_cleanly_on(on_port_0(), "TERM");
}

#[test]
fn sigint_stops_it_cleanly_with_a_log_line() {
    assert_stops_cleanly_on(on_port_0(), "INT");
}

#[test]
fn sigint_stops_it_also_when_started_in_the_background() {
    // A shell starts a background job with SIGINT ignored, and an ignored signal stays ignored across exec:
    // `trap '' INT` reproduces that without job control.
    let mut command = Command::new("sh");
    command.args(["-c", "trap '' INT; exec \"$0\" --port 0", env!("CARGO_BIN_EXE_webservice")]);
    command.env("RUST_LOG", "info").env_remove("MSG_WEBSERVICE_BIND");
    assert_stops_cleanly_on(command, "INT");
}
