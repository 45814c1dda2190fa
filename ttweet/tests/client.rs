//! The `ttweet` binary against the board of a real server (`server --ttweet-port`) on 127.0.0.1.

use std::net::SocketAddr;
use std::process::{Command, Output};

use server::{Config, ServerHandle};

fn board() -> (ServerHandle, SocketAddr) {
    testkit::start_board(Config::default())
}

/// Runs `ttweet` to completion (it never reads stdin; every network step is bounded by its own timeouts).
fn ttweet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ttweet")).args(args).output().expect("run ttweet")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Posts and checks the original client's output.
fn post(addr: SocketAddr, message: &str) {
    let port = addr.port().to_string();
    let out = ttweet(&["-u", "127.0.0.1", &port, message]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Transmission Successfull...\n");
}

/// Reads and returns the message shown.
fn read(addr: SocketAddr) -> String {
    let port = addr.port().to_string();
    let out = ttweet(&["-d", "127.0.0.1", &port]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let shown = text.strip_prefix("Received Message: ").unwrap_or_else(|| panic!("{text:?}"));
    shown.strip_suffix("\nTransmission Successfull...\n").unwrap_or_else(|| panic!("{text:?}")).to_owned()
}

#[test]
fn post_then_read() {
    let (_srv, addr) = board();
    assert_eq!(read(addr), "Empty Message");
    post(addr, "hello board");
    // A post is only reported once the board has closed the connection, i.e. stored it: no race here.
    assert_eq!(read(addr), "hello board");
    let widest = "✓".repeat(150);
    post(addr, &widest);
    assert_eq!(read(addr), widest);
    post(addr, "-starts with a dash");
    assert_eq!(read(addr), "-starts with a dash");
    post(addr, "");
    assert_eq!(read(addr), "Empty Message");
}

#[test]
fn a_message_over_150_characters_is_refused_before_anything_is_sent() {
    let (_srv, addr) = board();
    post(addr, "kept");
    let port = addr.port().to_string();
    let out = ttweet(&["-u", "127.0.0.1", &port, &"x".repeat(151)]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("message too long: 151 characters, at most 150"), "{}", stderr(&out));
    assert_eq!(read(addr), "kept");
}

#[test]
fn bad_addresses_and_ports_are_clear_errors() {
    for port in ["0", "65536", "http", "-5"] {
        let out = ttweet(&["-d", "127.0.0.1", port]);
        assert_eq!(out.status.code(), Some(2), "{port}");
        assert!(stderr(&out).contains("server port invalid"), "{port}: {}", stderr(&out));
    }
    let out = ttweet(&["-d", "no such host", "13000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("server address invalid: \"no such host\""), "{}", stderr(&out));

    // A port nobody listens on: take a free one and close it again.
    let free = testkit::dead_port();
    let out = ttweet(&["-d", "127.0.0.1", &free.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot connect to the ttweet board at 127.0.0.1:"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");

    // Usage errors: no mode, both modes, a post without a message.
    for args in [&["127.0.0.1", "1"][..], &["-u", "-d", "127.0.0.1", "1", "m"], &["-u", "127.0.0.1", "1"]] {
        assert_eq!(ttweet(args).status.code(), Some(2), "{args:?}");
    }
}
