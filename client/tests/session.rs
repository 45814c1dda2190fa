//! The real `client` binary, scripted through stdin, against a real server on 127.0.0.1:0.

mod support;

use std::net::TcpListener;

use server::ServerHandle;
use support::{fake_web_service, run_to_exit, soap_fault, soap_result, Client};
use testkit::start as server;

fn connected(srv: &ServerHandle, alias: &str) -> Option<bool> {
    srv.store().is_connected(alias)
}

#[test]
fn two_users_talk_both_ways_and_quit() {
    let srv = server();
    let mut alice = Client::online("alice", srv.addr());
    let mut bob = Client::online("bob", srv.addr());
    assert_eq!(srv.store().connected_users(), ["alice", "bob"]);

    alice.run("CONNECTEDUSERS", "CONNECTED USERS (2 users connected) OK - alice, bob");
    bob.run("connectedusers", "CONNECTED USERS (2 users connected) OK - alice, bob");

    // The text goes through normalization: runs of blanks collapse, the ends are trimmed.
    alice.sends_to(&mut bob, "SEND bob   hello    bob  ", 1, "hello bob");

    bob.sends_to(&mut alice, "send alice hi alice, ça va ? ✓", 1, "hi alice, ça va ? ✓");

    alice.sends_to(&mut bob, "SEND bob second", 2, "second");

    // QUIT disconnects first.
    alice.type_line("QUIT");
    assert!(alice.expect_exit(&["DISCONNECT OK"]).success());
    assert_eq!(connected(&srv, "alice"), Some(false));

    // End of input does the same.
    bob.run("CONNECTEDUSERS", "CONNECTED USERS (1 users connected) OK - bob");
    bob.end_input();
    assert!(bob.expect_exit(&["DISCONNECT OK"]).success());
    assert_eq!(connected(&srv, "bob"), Some(false));
    assert!(srv.store().connected_users().is_empty());
}

#[test]
fn a_message_to_an_offline_user_is_printed_when_that_user_connects() {
    let srv = server();
    let mut alice = Client::online("alice", srv.addr());
    let mut bob = Client::start("bob", srv.addr(), &[]);
    bob.run("REGISTER bob 02/03/2001 Bob the Builder", "REGISTER OK");

    alice.run("SEND bob are you there?", "SEND OK - MESSAGE 1");
    alice.run("SEND bob still there?", "SEND OK - MESSAGE 2");
    alice.expect_quiet(); // not delivered yet, so no acknowledgement

    // The server pushes right after the CONNECT reply: the listener must already be accepting.
    bob.run("CONNECT bob", "CONNECT OK");
    bob.expect_message(1, "alice", "are you there?");
    bob.expect_message(2, "alice", "still there?");
    alice.expect("SEND MESSAGE 1 OK");
    alice.expect("SEND MESSAGE 2 OK");

    // An acknowledgement owed to a sender who went offline arrives at its next CONNECT.
    alice.run("DISCONNECT alice", "DISCONNECT OK");
    bob.run("SEND alice later", "SEND OK - MESSAGE 1");
    bob.expect_quiet();
    alice.run("CONNECT alice", "CONNECT OK");
    alice.expect_message(1, "bob", "later");
    bob.expect("SEND MESSAGE 1 OK");

    alice.end_input();
    bob.end_input();
    assert!(alice.expect_exit(&["DISCONNECT OK"]).success());
    assert!(bob.expect_exit(&["DISCONNECT OK"]).success());
}

#[test]
fn a_script_that_sends_then_ends_at_once_still_sees_its_acknowledgements() {
    let srv = server();
    let mut bob = Client::online("bob", srv.addr());
    let mut alice = Client::start("alice", srv.addr(), &[]);
    for line in ["REGISTER alice", "CONNECT alice", "SEND bob one", "SEND bob two"] {
        alice.type_line(line);
    }
    alice.end_input();
    let lines = alice.exit_lines();
    // An acknowledgement may come before or after the next command's line, never before its own SEND's line,
    // and always before the DISCONNECT that ends the session.
    let at = |l: &str| lines.iter().position(|x| x == l).unwrap_or_else(|| panic!("{l:?} missing from {lines:#?}"));
    assert_eq!(lines.len(), 7, "{lines:#?}");
    assert!(at("REGISTER OK") < at("CONNECT OK") && at("CONNECT OK") < at("SEND OK - MESSAGE 1"));
    assert!(at("SEND OK - MESSAGE 1") < at("SEND OK - MESSAGE 2"));
    assert!(at("SEND OK - MESSAGE 1") < at("SEND MESSAGE 1 OK"));
    assert!(at("SEND OK - MESSAGE 2") < at("SEND MESSAGE 2 OK"));
    assert_eq!(lines.last().map(String::as_str), Some("DISCONNECT OK"));
    bob.expect_message(1, "alice", "one");
    bob.expect_message(2, "alice", "two");
}

/// Every row of the output table (docs/protocol.md, "Client: output lines"), each status produced for real by the server.
#[test]
fn table_8_4_every_row() {
    let srv = server();
    let long = "x".repeat(256); // over the field limit: the server's generic failure code
    let mut c = Client::start("carol", srv.addr(), &[]);

    // Without a current user, SEND and CONNECTEDUSERS fail locally.
    c.run_all(&[
        ("SEND bob hi", "SEND FAIL"),
        ("CONNECTEDUSERS", "CONNECTED USERS FAIL"),
        // REGISTER: 0, 1, 2.
        ("REGISTER carol", "REGISTER OK"),
        ("REGISTER carol", "USERNAME IN USE"),
        (&format!("REGISTER {long}"), "REGISTER FAIL"),
        // CONNECTEDUSERS 1: registered, not connected. SEND 2: the sender is not connected.
        ("CONNECTEDUSERS", "CONNECTED USERS FAIL / USER IS NOT CONNECTED"),
        ("SEND carol hi", "SEND FAIL"),
        // DISCONNECT 1, 2, 3 (3: an over-long alias is a field-level failure).
        ("DISCONNECT nobody", "DISCONNECT FAIL / USER DOES NOT EXIST"),
        ("DISCONNECT carol", "DISCONNECT FAIL / USER NOT CONNECTED"),
        (&format!("DISCONNECT {long}"), "DISCONNECT FAIL"),
        // CONNECT 1, 3, 0, 2.
        ("CONNECT nobody", "CONNECT FAIL, USER DOES NOT EXIST"),
        (&format!("CONNECT {long}"), "CONNECT FAIL"),
        ("CONNECT carol", "CONNECT OK"),
        ("CONNECT carol", "USER ALREADY CONNECTED"),
        ("CONNECT someone", "CONNECT FAIL"), // one listener per client: refused locally while connected
        // CONNECTEDUSERS 0; SEND 0 (to oneself), 1, and the local failures of 8.3.
        ("CONNECTEDUSERS", "CONNECTED USERS (1 users connected) OK - carol"),
        ("SEND carol note to self", "SEND OK - MESSAGE 1"),
    ]);
    c.expect("MESSAGE 1 FROM carol");
    c.expect("note to self");
    c.expect("END");
    c.expect("SEND MESSAGE 1 OK");
    c.run_all(&[
        ("SEND nobody hi", "SEND FAIL / USER DOES NOT EXIST"),
        ("SEND carol \u{a0}\u{3000}\u{a0}", "SEND FAIL"), // no-break and ideographic spaces: empty once normalized
        (&format!("SEND carol {}", "é".repeat(128)), "SEND FAIL"), // 256 bytes
        ("SENDATTACH carol file.txt look", "SENDATTACH FAIL / NOT SUPPORTED"),
        // UNREGISTER 1, 2, 0; CONNECTEDUSERS 2: the current user was removed by someone else.
        ("UNREGISTER nobody", "USER DOES NOT EXIST"),
        (&format!("UNREGISTER {long}"), "UNREGISTER FAIL"),
    ]);
    let mut dave = Client::start("dave", srv.addr(), &[]);
    dave.run("REGISTER dave", "REGISTER OK");
    c.run("CONNECTEDUSERS", "CONNECTED USERS (1 users connected) OK - carol");
    let mut other = Client::start("other", srv.addr(), &[]);
    other.run("UNREGISTER dave", "UNREGISTER OK");
    dave.run("CONNECTEDUSERS", "CONNECTED USERS FAIL");

    // Local answers: syntax errors and unknown commands.
    c.run_all(&[
        ("SEND carol", "Syntax error. Usage: SEND <userName> <message…>"),
        ("REGISTER", "Syntax error. Usage: REGISTER <userName> [<DD/MM/YYYY> [<full name…>]]"),
        ("CONNECT a b", "Syntax error. Usage: CONNECT <userName>"),
        ("whatever x", "Error: command whatever not valid."),
        ("REGISTER nul\0byte", "REGISTER FAIL"), // the protocol cannot carry a NUL: refused locally
        // UNREGISTER of the connected current user: removed on the server, and nothing left to disconnect at QUIT.
        ("UNREGISTER carol", "UNREGISTER OK"),
    ]);
    assert_eq!(connected(&srv, "carol"), None);
    c.run("SEND carol hi", "SEND FAIL");
    c.type_line("QUIT");
    assert!(c.expect_exit(&[]).success());
}

#[test]
fn pipe_mode_prints_no_prompt_unless_asked() {
    let srv = server();
    let mut c = Client::start("p", srv.addr(), &["--prompt"]);
    c.type_line("REGISTER p");
    c.type_line("QUIT");
    // Input is not echoed, so each result continues the prompt's line, as with the original client.
    assert!(c.expect_exit(&["c> REGISTER OK", "c> "]).success());

    // At end of input, QUIT's lines start on a fresh line.
    let mut c = Client::start("q", srv.addr(), &["--prompt"]);
    c.type_line("REGISTER q");
    c.type_line("CONNECT q");
    c.end_input();
    assert!(c.expect_exit(&["c> REGISTER OK", "c> CONNECT OK", "c> ", "DISCONNECT OK"]).success());
}

#[test]
fn ctrl_c_disconnects_then_exits() {
    let srv = server();
    let mut c = Client::online("zed", srv.addr());
    assert_eq!(connected(&srv, "zed"), Some(true));
    let killed = std::process::Command::new("kill").args(["-INT", &c.pid().to_string()]).status().expect("run kill");
    assert!(killed.success());
    assert!(c.expect_exit(&["DISCONNECT OK"]).success());
    assert_eq!(connected(&srv, "zed"), Some(false));
}

#[test]
fn an_unreachable_server_is_reported_by_the_first_command() {
    // Bound then dropped: nothing listens there for the duration of the test.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let args: Vec<String> = ["-s", "127.0.0.1", "-p", &port.to_string(), "--local-normalize"].map(String::from).into();
    let mut c = Client::start_raw("unreachable", &args);
    c.run("REGISTER x", "REGISTER FAIL");
    c.end_input();
    assert!(c.expect_exit(&[]).success());
    let err = c.stderr_all();
    assert!(err.contains(&format!("cannot reach server 127.0.0.1:{port}: ")), "{err}");
    assert!(err.to_ascii_lowercase().contains("refused"), "{err}");
}

#[test]
fn wrong_arguments_are_a_usage_error() {
    for args in [&["-s", "127.0.0.1"][..], &["-s", "127.0.0.1", "-p", "0"], &["-p", "1", "-s", "h", "--bogus"]] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (status, err) = run_to_exit(&args);
        assert_eq!(status.code(), Some(2), "{args:?}");
        assert!(err.starts_with("error:"), "{err}");
    }
}

#[test]
fn the_web_service_answer_is_what_gets_sent() {
    let srv = server();
    let url = fake_web_service(200, soap_result("as the service &amp; only it says"));
    let mut c = Client::online_with_service("w", srv.addr(), &url);
    c.run("SEND w  whatever   was typed ", "SEND OK - MESSAGE 1");
    c.expect_message(1, "w", "as the service & only it says");
    c.expect("SEND MESSAGE 1 OK");
    c.end_input();
    assert!(c.expect_exit(&["DISCONNECT OK"]).success());
}

#[test]
fn a_web_service_that_faults_or_is_down_fails_the_send() {
    let srv = server();
    let mut faulty = Client::online_with_service("f", srv.addr(), &fake_web_service(500, soap_fault()));
    faulty.run("SEND f hello", "SEND FAIL");
    faulty.end_input();
    assert!(faulty.expect_exit(&["DISCONNECT OK"]).success());
    assert!(faulty.stderr_all().contains("fault"));

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut down = Client::online_with_service("d", srv.addr(), &format!("http://127.0.0.1:{port}/"));
    down.run("SEND d hello", "SEND FAIL");
    down.end_input();
    assert!(down.expect_exit(&["DISCONNECT OK"]).success());
    assert!(down.stderr_all().contains("unreachable"));
}

#[test]
fn the_shell_explains_on_stderr_and_keeps_stdout_to_the_result_lines() {
    let srv = server();
    let mut bob = Client::online("bob", srv.addr());
    let mut c = Client::start("script", srv.addr(), &[]);
    // The whole script at once, as a pipe delivers it.
    for line in [
        "REGISTER alice",
        "CONNECT alice",
        "REGISTER carol",
        "SEND bob hello",
        "CONNECTEDUSERS",
        "CONNECT alice",
        "HELLO there",
        "SENDATTACH bob f.txt look",
        "UNREGISTER carol",
        "SEND bob hi",
    ] {
        c.type_line(line);
    }
    c.end_input();
    let stdout = c.exit_lines();
    assert_eq!(
        stdout,
        [
            "REGISTER OK",
            "CONNECT OK",
            "REGISTER OK",
            "SEND FAIL",
            "CONNECTED USERS FAIL / USER IS NOT CONNECTED",
            "USER ALREADY CONNECTED",
            "Error: command HELLO not valid.",
            "SENDATTACH FAIL / NOT SUPPORTED",
            "UNREGISTER OK",
            "SEND FAIL",
            "DISCONNECT OK",
        ]
    );
    let stderr = c.stderr_all();
    let lines: Vec<&str> = stderr.lines().collect();
    let expected_in_order = [
        "now acting as alice",
        "now acting as carol",
        "carol is not connected: CONNECT carol first (or bob's queue is full)",
        "carol is not connected: CONNECT carol first",
        "alice is already connected by this client",
        "Commands (HELP shows this list):",
        "attachments are not part of the protocol yet",
        "no current user now",
        "no current user: REGISTER or CONNECT first",
    ];
    let mut at = 0;
    for want in expected_in_order {
        match lines[at..].iter().position(|l| l.starts_with(want)) {
            Some(i) => at += i + 1,
            None => panic!("{want:?} not found in order in stderr:\n{stderr}"),
        }
    }
    assert!(!stderr.contains("SENDATTACH"), "SENDATTACH is not advertised:\n{stderr}");
    bob.expect_quiet();
}

#[test]
fn help_lists_the_commands_on_stdout() {
    let srv = server();
    let mut c = Client::start("help", srv.addr(), &[]);
    c.type_line("HELP");
    c.type_line("?");
    c.end_input();
    let lines = c.exit_lines();
    assert_eq!(lines.len(), 16, "{lines:#?}");
    assert_eq!(lines[..8], lines[8..]);
    assert!(lines[0].trim_start().starts_with("REGISTER <userName>"), "{lines:#?}");
    assert!(lines.iter().all(|l| !l.contains("SENDATTACH")), "{lines:#?}");
}

#[test]
fn a_server_name_that_does_not_resolve_is_one_line_and_status_1() {
    let (status, err) = run_to_exit(&["-s".into(), "".into(), "-p".into(), "8080".into()]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: cannot resolve server :8080: "), "{err}");
}

#[test]
fn version_and_help_name_the_client() {
    let run = |flag: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_client")).arg(flag).output().expect("run the client");
        assert!(out.status.success(), "{flag}: {}", out.status);
        String::from_utf8(out.stdout).expect("UTF-8 help")
    };
    assert_eq!(run("--version").trim_end(), format!("client {}", env!("CARGO_PKG_VERSION")));
    let help = run("--help");
    assert!(help.starts_with("The interactive client of the message delivery service."), "{help}");
    assert!(help.contains("Usage: client "), "{help}");
    assert!(help.contains("--accept-pushes-from") && help.contains("MSG_CLIENT_ACCEPT_PUSHES_FROM"), "{help}");
    assert!(!help.contains("SENDATTACH") && !help.contains("benchmark"), "{help}");
    assert!(!help.contains("PROTOCOL.md"), "{help}");
}
