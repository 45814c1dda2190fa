//! The ttweet board (`--ttweet-port`), spoken to as the original ttweet client speaks: a post is `u\n<message>`
//! ended by closing the sending side, a read is `d\n` answered with the last message up to the server's close.
//! And the session log file (`--log-file`), which repeats the console.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use server::{Config, Server};
use testkit::{connect_from, read_to_close, request, ServerProcess};
use ttweet::{EMPTY_BOARD, MAX_CHARS};

use testkit::start_board as start;

/// Posts as the original client does (its `close()` right after `sendall` is, on the wire, the same end of stream
/// as this half-close), then waits for the board's close, which comes once the post is stored. Returns what the
/// board sent back: nothing.
fn post(board: SocketAddr, message: &[u8]) -> Vec<u8> {
    let mut stream = connect_from(None, board);
    let mut bytes = b"u\n".to_vec();
    bytes.extend_from_slice(message);
    stream.write_all(&bytes).expect("post written");
    stream.shutdown(Shutdown::Write).expect("end of the post");
    read_to_close(&mut stream)
}

/// Reads as the original client does: `d\n`, no half-close, then everything up to the board's close.
fn read(board: SocketAddr) -> String {
    let mut stream = connect_from(None, board);
    stream.write_all(b"d\n").expect("read request written");
    String::from_utf8(read_to_close(&mut stream)).expect("the board answers UTF-8")
}

#[test]
fn post_and_read_the_last_message() {
    let (_srv, board) = start(Config::default());
    assert_eq!(read(board), EMPTY_BOARD);
    assert_eq!(post(board, b"hello board"), b"", "a post is not answered");
    assert_eq!(read(board), "hello board");
    assert_eq!(read(board), "hello board", "reading does not consume");
    post(board, "second, ça va ? ✓".as_bytes());
    assert_eq!(read(board), "second, ça va ? ✓");
    // An empty post resets the board.
    post(board, b"");
    assert_eq!(read(board), EMPTY_BOARD);
}

#[test]
fn the_limit_is_150_characters_not_bytes() {
    let (_srv, board) = start(Config::default());
    let widest = "✓".repeat(MAX_CHARS); // 450 bytes
    post(board, widest.as_bytes());
    assert_eq!(read(board), widest);
    // One more character is refused and not stored, whatever its size.
    post(board, format!("{widest}x").as_bytes());
    assert_eq!(read(board), widest);
    post(board, "a".repeat(MAX_CHARS + 1).as_bytes());
    assert_eq!(read(board), widest);
    // A post far over the limit is cut off, not buffered, and refused: the board may close before the client has
    // written it all, so writing may fail.
    let mut stream = connect_from(None, board);
    let _ = stream.write_all(b"u\n").and_then(|()| stream.write_all(&vec![b'z'; 1 << 20]));
    drop(stream);
    assert_eq!(read(board), widest);
    let exact = "b".repeat(MAX_CHARS);
    post(board, exact.as_bytes());
    assert_eq!(read(board), exact);
}

#[test]
fn a_message_is_everything_after_the_request_line() {
    let (_srv, board) = start(Config::default());
    post(board, b"two\nlines");
    assert_eq!(read(board), "two\nlines");
    post(board, b"d\n");
    assert_eq!(read(board), "d\n");
}

#[test]
fn bad_requests_change_nothing() {
    let (_srv, board) = start(Config::default());
    post(board, b"kept");
    let bad: [&[u8]; 5] = [b"x\nhello", b"upload\nhello", b"U\nhello", b"\xff\xfe\n", b"u\ninvalid \xff utf-8"];
    for bytes in bad {
        let mut stream = connect_from(None, board);
        stream.write_all(bytes).expect("written");
        stream.shutdown(Shutdown::Write).expect("half-close");
        assert_eq!(read_to_close(&mut stream), b"", "{bytes:?}: closed without an answer");
    }
    // A connection that sends nothing, and one that ends inside the request line.
    drop(connect_from(None, board));
    let mut stream = connect_from(None, board);
    stream.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(read_to_close(&mut stream), b"");
    assert_eq!(read(board), "kept");
}

#[test]
fn a_post_whose_end_never_comes_is_not_stored_and_does_not_block_others() {
    let (_srv, board) = start(Config { request_timeout: Duration::from_secs(1), ..Config::default() });
    post(board, b"before");
    // The original ends a post by closing; this one never does.
    let mut stalled = connect_from(None, board);
    stalled.write_all(b"u\nnever ends").expect("written");
    // Meanwhile the board serves everyone else.
    assert_eq!(read(board), "before");
    // At the idle timeout the stalled post is dropped, unstored.
    assert_eq!(read_to_close(&mut stalled), b"");
    assert_eq!(read(board), "before");
}

#[test]
fn concurrent_posts_and_reads_see_only_whole_messages() {
    const WRITERS: usize = 4;
    const POSTS: usize = 10;
    let (_srv, board) = start(Config::default());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            thread::spawn(move || {
                for p in 0..POSTS {
                    post(board, format!("writer {w} post {p} {}", "=".repeat(100)).as_bytes());
                }
            })
        })
        .collect();
    let reader = thread::spawn(move || {
        for _ in 0..WRITERS * POSTS {
            let text = read(board);
            assert!(text == EMPTY_BOARD || (text.starts_with("writer ") && text.ends_with(&"=".repeat(100))), "{text}");
        }
    });
    for w in writers {
        w.join().expect("writer");
    }
    reader.join().expect("reader");
    assert!(read(board).ends_with(&"=".repeat(100)));
}

#[test]
fn the_board_stops_with_the_server() {
    let (srv, board) = start(Config::default());
    post(board, b"bye");
    srv.shutdown();
    assert!(TcpStream::connect_timeout(&board, Duration::from_secs(1)).is_err(), "still listening after the stop");
}

#[test]
fn no_board_unless_asked() {
    let srv = Server::bind(Config::default()).and_then(Server::spawn).expect("server starts");
    assert_eq!(srv.ttweet_addr(), None);
}

/// The binary: `--ttweet-port` serves the board, and `--log-file` appends every console line to a file.
#[test]
fn the_binary_serves_the_board_and_keeps_the_session_log() {
    let dir = std::env::temp_dir().join(format!("ttweet-log-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let log = dir.join("session.log");
    std::fs::write(&log, "an earlier session\n").expect("seed the log file");
    let log_arg = log.to_str().expect("a UTF-8 temporary path");

    let mut srv = ServerProcess::start(&["--ttweet-port", "0", "--log-file", log_arg]);
    let board = srv.ttweet.expect("the board's start-up line");
    post(board, b"from the binary");
    srv.expect_prefix("s> TTWEET UPLOAD OK: from the binary");
    assert_eq!(read(board), "from the binary");
    srv.expect_prefix("s> TTWEET DOWNLOAD OK");
    post(board, "x".repeat(MAX_CHARS + 1).as_bytes());
    srv.expect_prefix("s> TTWEET UPLOAD FAIL (message of 151 characters, at most 150)");
    assert_eq!(request(srv.addr, &["REGISTER", "Alice A", "alice", "01/02/2000"]), b"\x00");
    srv.expect_prefix("s> REGISTER alice OK");
    let (status, console) = srv.stop();
    assert!(status.success(), "{status}");

    // The file holds what was there, then exactly the console of this session.
    let written = std::fs::read_to_string(&log).expect("read the log file");
    let mut expected = String::from("an earlier session\n");
    for line in &console {
        expected.push_str(line);
        expected.push('\n');
    }
    assert_eq!(written, expected);
    assert!(written.contains("s> init ttweet 127.0.0.1:"));
    assert!(written.ends_with("s> server stopped\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
