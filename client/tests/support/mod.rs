//! Drives the real `client` binary through its stdin and stdout, as a script would.
//!
//! Every wait is bounded: lines are read by a thread and received with a timeout, the exit is awaited through
//! the end of stdout. A client still running when its test fails is killed by [`Client`]'s `Drop`.

#![allow(dead_code)] // Each test file uses a different part of the kit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use testkit::lines_of;

/// Bound on waiting for one expected line (generous: CI machines are slow, a failing test is not).
pub const LINE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a test listens to make sure nothing more is printed.
pub const QUIET_PERIOD: Duration = Duration::from_millis(300);

/// A running client process.
pub struct Client {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// Every stdout line seen so far, for failure messages.
    seen: Vec<String>,
}

impl Client {
    /// Starts `client -s 127.0.0.1 -p <port> --local-normalize <extra...>`.
    pub fn start(name: &str, server: SocketAddr, extra: &[&str]) -> Client {
        let mut args = vec!["-s".to_string(), server.ip().to_string(), "-p".to_string(), server.port().to_string()];
        args.push("--local-normalize".into());
        args.extend(extra.iter().map(|s| s.to_string()));
        Client::start_raw(name, &args)
    }

    /// A user registered and connected by a fresh client of the server at `server`.
    pub fn online(name: &str, server: SocketAddr) -> Client {
        Client::start(name, server, &[]).register_and_connect(name)
    }

    /// [`Client::online`] with a client that normalizes through the web service at `url` (named explicitly, so
    /// without `--local-normalize`).
    pub fn online_with_service(name: &str, server: SocketAddr, url: &str) -> Client {
        let args: Vec<String> = ["-s", &server.ip().to_string(), "-p", &server.port().to_string(), "--ws-url", url]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Client::start_raw(name, &args).register_and_connect(name)
    }

    fn register_and_connect(mut self, name: &str) -> Client {
        self.run(&format!("REGISTER {name}"), "REGISTER OK");
        self.run(&format!("CONNECT {name}"), "CONNECT OK");
        self
    }

    /// Starts the client with exactly `args`.
    pub fn start_raw(name: &str, args: &[String]) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_client"))
            .args(args)
            .env_remove("MSG_WS_URL")
            .env_remove("MSG_SERVER_HOST")
            .env_remove("MSG_SERVER_PORT")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the client binary");
        let stdin = child.stdin.take();
        let stdout = lines_of(child.stdout.take().expect("piped stdout"));
        let stderr = lines_of(child.stderr.take().expect("piped stderr"));
        Client { name: name.into(), child, stdin, stdout, stderr, seen: Vec::new() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types one line.
    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap_or_else(|| panic!("{}: stdin already closed", self.name));
        writeln!(stdin, "{line}").and_then(|_| stdin.flush()).unwrap_or_else(|e| panic!("{}: write: {e}", self.name));
    }

    /// The next stdout line, or a panic naming what was expected.
    pub fn next_line(&mut self, expecting: &str) -> String {
        match self.stdout.recv_timeout(LINE_TIMEOUT) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(e) => panic!(
                "{}: no line ({e:?}) while expecting {expecting:?}; printed so far: {:#?}; stderr: {}",
                self.name,
                self.seen,
                self.stderr_text()
            ),
        }
    }

    /// The next stdout line must be `expected`.
    pub fn expect(&mut self, expected: &str) {
        let got = self.next_line(expected);
        assert_eq!(got, expected, "{}: printed so far: {:#?}; stderr: {}", self.name, self.seen, self.stderr_text());
    }

    /// Types `line` and expects `expected` as the next line.
    pub fn run(&mut self, line: &str, expected: &str) {
        self.type_line(line);
        self.expect(expected);
    }

    /// [`Client::run`] for each `(line, expected)` in turn.
    pub fn run_all(&mut self, script: &[(&str, &str)]) -> &mut Client {
        for (line, expected) in script {
            self.run(line, expected);
        }
        self
    }

    /// Ends the input and expects a successful exit with nothing more printed.
    pub fn end_quietly(&mut self) {
        self.end_input();
        assert!(self.expect_exit(&[]).success(), "{}: exit; stderr: {}", self.name, self.stderr_text());
    }

    /// Types `line` (a SEND to `to`), expects it accepted as message `id` and acknowledged, and `to` to print it,
    /// from this client's name (the alias of its user in the tests that call this), as `text`.
    pub fn sends_to(&mut self, to: &mut Client, line: &str, id: u32, text: &str) {
        self.run(line, &format!("SEND OK - MESSAGE {id}"));
        self.expect(&format!("SEND MESSAGE {id} OK"));
        to.expect_message(id, &self.name, text);
    }

    /// Expects the three lines of a delivered message.
    pub fn expect_message(&mut self, id: u32, from: &str, text: &str) {
        self.expect(&format!("MESSAGE {id} FROM {from}"));
        self.expect(text);
        self.expect("END");
    }

    /// Nothing is printed for [`QUIET_PERIOD`].
    pub fn expect_quiet(&mut self) {
        match self.stdout.recv_timeout(QUIET_PERIOD) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(line) => panic!("{}: unexpected line {line:?} after {:#?}", self.name, self.seen),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{}: exited unexpectedly; stderr: {}", self.name, self.stderr_text())
            }
        }
    }

    /// Closes stdin (end of input).
    pub fn end_input(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to exit; the remaining stdout lines must be exactly `rest`.
    pub fn expect_exit(&mut self, rest: &[&str]) -> ExitStatus {
        let tail = self.rest_of_stdout();
        assert_eq!(tail, rest, "{}: last lines; stderr: {}", self.name, self.stderr_text());
        // stdout is closed: the process has exited or is about to, so this wait is short.
        self.child.wait().expect("wait for the client")
    }

    /// Waits for the process to exit successfully and returns the stdout lines not read yet.
    pub fn exit_lines(&mut self) -> Vec<String> {
        let tail = self.rest_of_stdout();
        let status = self.child.wait().expect("wait for the client");
        assert!(status.success(), "{}: {status}; stderr: {}", self.name, self.stderr_text());
        tail
    }

    /// Every stdout line until the end of stdout (the process exits), within [`LINE_TIMEOUT`].
    fn rest_of_stdout(&mut self) -> Vec<String> {
        let deadline = Instant::now() + LINE_TIMEOUT;
        let mut tail = Vec::new();
        loop {
            match self.stdout.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => tail.push(line),
                Err(RecvTimeoutError::Disconnected) => return tail,
                Err(RecvTimeoutError::Timeout) => panic!("{}: did not exit; printed {tail:#?}", self.name),
            }
        }
    }

    /// Everything written on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// All of stderr once the process has exited.
    pub fn stderr_all(&self) -> String {
        let mut out = Vec::new();
        let deadline = Instant::now() + LINE_TIMEOUT;
        while let Ok(line) = self.stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            out.push(line);
        }
        out.join("\n")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the client to completion with `args` and no input; returns its status and stderr.
pub fn run_to_exit(args: &[String]) -> (ExitStatus, String) {
    let mut c = Client::start_raw("oneshot", args);
    c.end_input();
    let status = c.expect_exit(&[]);
    let err = c.stderr_all();
    (status, err)
}

/// A fake normalization web service on 127.0.0.1:0 that answers every call with `status` and `body` (after
/// reading the request head and body, bounded). Returns its URL.
pub fn fake_web_service(status: u16, body: String) -> String {
    use std::net::TcpListener;

    /// Connections served before the fake stops (a bound on its loop).
    const MAX_CALLS: usize = 16;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a fake web service");
    let url = format!("http://{}/", listener.local_addr().expect("fake web service address"));
    thread::spawn(move || {
        for stream in listener.incoming().take(MAX_CALLS) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
            let mut length = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line.trim_end() != "" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut request_body = vec![0; length.min(1 << 20)];
            let _ = reader.read_exact(&mut request_body);
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    url
}

/// A SOAP 1.1 envelope answering `convert_text` with `result`.
pub fn soap_result(result: &str) -> String {
    format!(
        "<?xml version='1.0' encoding='utf-8'?>\
         <soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap-env:Body>\
         <tns:convert_textResponse xmlns:tns=\"http://tests.python-zeep.org/\">\
         <tns:convert_textResult>{result}</tns:convert_textResult></tns:convert_textResponse>\
         </soap-env:Body></soap-env:Envelope>"
    )
}

/// A SOAP 1.1 fault envelope.
pub fn soap_fault() -> String {
    "<?xml version='1.0' encoding='utf-8'?>\
     <soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap-env:Body>\
     <soap-env:Fault><faultcode>soap-env:Server</faultcode><faultstring>broken</faultstring></soap-env:Fault>\
     </soap-env:Body></soap-env:Envelope>"
        .to_owned()
}
