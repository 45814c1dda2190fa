//! A real disk failure under the real server binary (docs/operations.md, "When the disk fails"): the C library's
//! `write`, `fsync` and `fdatasync` on the data directory fail while a trigger file exists (an LD_PRELOAD shim,
//! tests/faultfs/faultfs.c, built here with the system's C compiler). The server keeps answering, refuses what
//! it cannot make durable, recovers by itself once the disk works, and after a `kill -9` nothing acknowledged is
//! lost and nothing delivered comes back.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::{request, Listener, ServerProcess};

/// Builds the shim into `dir`; a missing C compiler fails the test with a clear message.
fn build_shim(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faultfs/faultfs.c");
    let out = dir.join("faultfs.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&out)
        .arg(&source)
        .arg("-ldl")
        .status()
        .expect("this test needs a C compiler (`cc`) to build its LD_PRELOAD shim");
    assert!(status.success(), "building {} failed", source.display());
    out
}

fn send(addr: std::net::SocketAddr, from: &str, to: &str, text: &str) -> Vec<u8> {
    request(addr, &["SEND", from, to, text])
}

#[test]
fn a_failing_disk_refuses_changes_recovers_by_itself_and_a_kill_9_loses_and_repeats_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir(&data).unwrap();
    let data = data.canonicalize().unwrap();
    let shim = build_shim(tmp.path());
    let trigger = tmp.path().join("disk-is-failing");
    let data_arg = data.to_str().unwrap();
    let mut server = ServerProcess::start_with_env(
        &["--data-dir", data_arg],
        &[
            ("LD_PRELOAD", shim.to_str().unwrap()),
            ("FAULTFS_DIR", data_arg),
            ("FAULTFS_TRIGGER", trigger.to_str().unwrap()),
            // Under AddressSanitizer (CI's sanitizer run) the shim is loaded before the sanitizer's runtime.
            ("ASAN_OPTIONS", "verify_asan_link_order=0"),
        ],
    );
    let a = server.addr;
    let (la, lb) = (Listener::bind(), Listener::bind());
    assert_eq!(request(a, &["REGISTER", "Alice", "alice", "01/01/2000"]), [0]);
    assert_eq!(request(a, &["REGISTER", "Bob", "bob", "01/01/2000"]), [0]);
    assert_eq!(request(a, &["CONNECT", "alice", &la.port_field()]), [0]);
    assert_eq!(send(a, "alice", "bob", "m1"), b"\x001\x00", "m1 accepted and durable");

    fs::write(&trigger, b"").unwrap(); // the disk fails from now on
    assert_eq!(send(a, "alice", "bob", "m2"), [2], "m2 cannot be made durable: refused");
    assert_eq!(request(a, &["CONNECT", "bob", &lb.port_field()]), [0], "reads and connections still work");
    assert_eq!(lb.next(), b"SEND_MESSAGE\0alice\x001\0m1\0", "m1 is pushed although its delivery cannot be recorded");
    assert_eq!(la.next(), b"SEND_MESS_ACK\x001\0");
    assert_eq!(send(a, "alice", "bob", "m2 again"), [2], "refused while the journal is not rewritten");

    fs::remove_file(&trigger).unwrap(); // the disk works again
    server.wait_for("journal: rewritten from memory after a failure");
    assert_eq!(send(a, "alice", "bob", "m3"), b"\x002\x00", "accepted again; m2 never took an id");
    assert_eq!(lb.next(), b"SEND_MESSAGE\0alice\x002\0m3\0");
    assert_eq!(la.next(), b"SEND_MESS_ACK\x002\0");

    server.kill_9();
    let server = ServerProcess::start(&["--data-dir", data_arg]);
    let a = server.addr;
    let lb2 = Listener::bind();
    assert_eq!(request(a, &["CONNECT", "bob", &lb2.port_field()]), [0]);
    assert_eq!(request(a, &["CONNECT", "alice", &la.port_field()]), [0]);
    assert_eq!(send(a, "alice", "bob", "m4"), b"\x003\x00", "alice's ids keep increasing");
    assert_eq!(lb2.next(), b"SEND_MESSAGE\0alice\x003\0m4\0", "m4 is the first push: m1 and m3 do not come back");
}
