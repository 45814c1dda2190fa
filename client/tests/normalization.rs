//! The whole chain as a user runs it: the real client binary calls the real normalization web service before
//! every SEND, and the recipient sees the normalized text (docs/protocol.md, "Client: normalizing messages").

mod support;

use support::Client;

#[test]
fn a_message_full_of_spaces_and_tabs_arrives_normalized_through_the_web_service() {
    let srv = testkit::start();
    let ws = webservice::Service::bind("127.0.0.1:0", webservice::Config::default())
        .and_then(webservice::Service::spawn)
        .expect("start the web service");
    let url = ws.url();
    let start = |name: &str| Client::online_with_service(name, srv.addr(), &url);
    let mut alice = start("alice");
    let mut bob = start("bob");
    alice.run("SEND bob   hello\t\tthere \t  bob\u{3000}\u{a0} ", "SEND OK - MESSAGE 1");
    bob.expect_message(1, "alice", "hello there bob");
    alice.expect("SEND MESSAGE 1 OK");

    // Text that normalizes to nothing is refused locally, and nothing reaches bob.
    alice.run("SEND bob \t \u{2003} ", "SEND FAIL");
    bob.expect_quiet();

    // With the service gone, an explicitly configured URL makes SEND fail instead of sending raw text.
    ws.shutdown();
    alice.run("SEND bob  raw   text ", "SEND FAIL");
    bob.expect_quiet();
    alice.end_input();
    assert!(alice.expect_exit(&["DISCONNECT OK"]).success());
    assert!(alice.stderr_all().contains("normaliz"), "a reason is given on stderr: {}", alice.stderr_all());
}
