//! The bench binary end to end, against a server running in this test process on 127.0.0.1:0: the standard
//! run checks every delivery, populate writes a directory the server recovers, and the command line follows
//! the workspace's conventions (exit 2 for usage, 1 for a runtime error with one clear line).

use std::process::{Command, Output};

use server::{Config, Server};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bench")).args(args).output().expect("the bench binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_standard_run_against_a_live_server_delivers_everything_exactly_once() {
    let server = testkit::start();
    let port = server.addr().port().to_string();
    let out = bench(
        &["-s", "127.0.0.1", "-p", &port, "-u", "6", "--connected", "4", "-c", "2", "-n", "60"]
            .into_iter()
            .chain(["--drain-timeout", "30", "--json", "-q"])
            .collect::<Vec<_>>(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "exit {:?}: {stdout} {}", out.status, text(&out.stderr));
    assert!(stdout.contains(r#""ok":true"#), "{stdout}");
    assert!(stdout.contains(r#""lost":0"#), "{stdout}");
    server.shutdown();
}

#[test]
fn a_refused_connection_is_named_and_exits_1() {
    let port = testkit::dead_port();
    let out = bench(&["-p", &port.to_string(), "-q"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn usage_errors_exit_2_and_version_names_the_bench() {
    assert_eq!(bench(&["--connected", "1"]).status.code(), Some(2));
    assert_eq!(bench(&["--no-such-option"]).status.code(), Some(2));
    assert_eq!(bench(&["-s", "192.0.2.1"]).status.code(), Some(2));
    let version = text(&bench(&["--version"]).stdout);
    assert!(version.starts_with("bench "), "{version}");
}

#[test]
fn a_populated_directory_is_recovered_by_the_server() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("a UTF-8 path");
    let out = bench(&["populate", "--data-dir", data_arg, "-u", "10", "--queued", "25"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = Config { data_dir: Some(data.clone()), ..Config::default() };
    let server = Server::bind(config).expect("the server recovers the populated directory");
    let users = server.store().snapshot();
    assert_eq!(users.len(), 10);
    assert_eq!(users.iter().map(|u| u.queue.len()).sum::<usize>(), 25);
    assert_eq!(users.iter().map(|u| u64::from(u.last_id)).sum::<u64>(), 25);
    drop(server);
    // A directory that already holds a journal is refused, and said so.
    let again = bench(&["populate", "--data-dir", data_arg, "-u", "1"]);
    assert_eq!(again.status.code(), Some(1));
}
