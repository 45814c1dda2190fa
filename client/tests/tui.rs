//! Two real `client --tui` processes in tmux against a real server on 127.0.0.1:0, driven with `send-keys` and
//! read with `capture-pane`, as a person at two terminals would.
//!
//! Needs `tmux` on the PATH (the test fails, loudly, without it) and a UTF-8 locale name for tmux (`C.UTF-8`,
//! set here). Each run uses a private tmux server (`-L <unique name>`), killed by a `Drop` guard even when the
//! test fails. Every wait is a bounded poll of the screen.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use server::ServerHandle;

/// Bound on waiting for something to appear on a screen (generous: CI machines are slow).
const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Pause between two captures while polling.
const POLL: Duration = Duration::from_millis(50);

/// Size of each tmux window at start.
const COLUMNS: &str = "100";
const ROWS: &str = "30";

/// A private tmux server, killed on drop.
struct Tmux {
    socket: String,
    /// Where each client's exit status is written (tmux 3.3 does not always report it for a dead pane).
    statuses: TempDir,
}

impl Tmux {
    fn new() -> Tmux {
        match Command::new("tmux").arg("-V").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!("`tmux -V` failed ({}): this test needs a working tmux", out.status),
            Err(e) => panic!("this test needs tmux on the PATH (e.g. `apt-get install tmux`): {e}"),
        }
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        Tmux { socket: format!("client-tui-test-{}-{nanos}", std::process::id()), statuses: TempDir::new("status") }
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .args(["-u", "-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .env("TERM", "xterm-256color")
            .env("RUST_LOG", "warn")
            .env_remove("NO_COLOR")
            .env_remove("MSG_WS_URL")
            .env_remove("MSG_SERVER_HOST")
            .env_remove("MSG_SERVER_PORT")
            .env_remove("MSG_HISTORY_DIR")
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Starts `client --tui` in a new session `name`; the pane stays after the client exits.
    fn start(&self, name: &str, server: &ServerHandle, history: &Path) {
        let mut args = vec!["new-session", "-d", "-s", name, "-x", COLUMNS, "-y", ROWS];
        let client = self.client_command(name, server, history);
        args.extend(client.iter().map(String::as_str));
        args.extend([";", "set-option", "-g", "remain-on-exit", "on"]);
        self.run(&args);
    }

    /// Starts the client again in the (dead) pane of session `name`.
    fn restart(&self, name: &str, server: &ServerHandle, history: &Path) {
        let mut args = vec!["respawn-pane", "-k", "-t", name];
        let client = self.client_command(name, server, history);
        args.extend(client.iter().map(String::as_str));
        self.run(&args);
    }

    fn status_file(&self, name: &str) -> PathBuf {
        self.statuses.0.join(format!("{name}.status"))
    }

    /// `client --tui` against `server`, under a shell that writes its exit status to [`Tmux::status_file`].
    fn client_command(&self, name: &str, server: &ServerHandle, history: &Path) -> Vec<String> {
        let status = self.status_file(name);
        let _ = std::fs::remove_file(&status);
        let addr = server.addr();
        let script = format!("\"$0\" \"$@\"; echo $? > '{}'", status.display());
        [
            "sh",
            "-c",
            &script,
            env!("CARGO_BIN_EXE_client"),
            "-s",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "--local-normalize",
            "--tui",
            "--history-dir",
            &history.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Types `text` (literally) and Enter.
    fn type_line(&self, name: &str, text: &str) {
        self.run(&["send-keys", "-t", name, "-l", text]);
        self.run(&["send-keys", "-t", name, "Enter"]);
    }

    fn key(&self, name: &str, key: &str) {
        self.run(&["send-keys", "-t", name, key]);
    }

    fn screen(&self, name: &str) -> String {
        self.capture(name, false)
    }

    /// The screen of `name`, with the lines scrolled off above it when `scrollback`.
    fn capture(&self, name: &str, scrollback: bool) -> String {
        let from: &[&str] = if scrollback { &["-S", "-"] } else { &[] };
        let args = [&["capture-pane", "-p", "-t", name][..], from].concat();
        String::from_utf8_lossy(&self.run(&args).stdout).into_owned()
    }

    /// Polls the screen of `name` until `ok` holds, for at most [`SCREEN_TIMEOUT`]; returns that screen.
    fn wait(&self, name: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        self.poll(name, what, false, ok)
    }

    /// Like [`Tmux::wait`], on the screen and its scrollback.
    fn wait_with_scrollback(&self, name: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        self.poll(name, what, true, ok)
    }

    fn poll(&self, name: &str, what: &str, scrollback: bool, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.capture(name, scrollback);
            if ok(&screen) {
                return screen;
            }
            if Instant::now() >= deadline {
                panic!("{name}: waited {SCREEN_TIMEOUT:?} for {what}; the screen is:\n{screen}");
            }
            thread::sleep(POLL);
        }
    }

    /// Waits for a screen with a line containing `text`.
    fn wait_text(&self, name: &str, text: &str) -> String {
        self.wait(name, &format!("{text:?}"), |s| s.contains(text))
    }

    /// Waits until the client in `name` has exited; its exit status.
    fn wait_exit(&self, name: &str) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            if let Ok(status) = std::fs::read_to_string(self.status_file(name)) {
                if status.ends_with('\n') {
                    return status.trim().to_owned();
                }
            }
            if Instant::now() >= deadline {
                panic!("{name}: the client did not exit; the screen is:\n{}", self.screen(name));
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let tmux = |args: &[&str]| Command::new("tmux").args(["-L", &self.socket]).args(args).output();
        let socket = tmux(&["display-message", "-p", "#{socket_path}"]).ok();
        // Ends both clients too (their panes get SIGHUP); tmux leaves its socket file behind.
        let _ = tmux(&["kill-server"]);
        if let Some(path) = socket.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()) {
            if !path.is_empty() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("client-tui-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The screen line that contains `text`.
fn line_of<'a>(screen: &'a str, text: &str) -> &'a str {
    screen.lines().find(|l| l.contains(text)).unwrap_or_else(|| panic!("no line with {text:?} in:\n{screen}"))
}

/// The status line (the last line of the screen).
fn status(screen: &str) -> &str {
    screen.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("")
}

fn online(tmux: &Tmux, name: &str) {
    tmux.wait(name, "the status line", |s| status(s).contains("not connected"));
    tmux.type_line(name, &format!("/register {name}"));
    tmux.wait(name, "REGISTER OK", |s| status(s).contains("REGISTER OK"));
    tmux.type_line(name, &format!("/connect {name}"));
    tmux.wait(name, "connected", |s| status(s).contains(&format!("{name} │ connected")));
}

#[test]
fn two_tuis_talk_see_delivery_marks_get_offline_messages_and_keep_history() {
    let tmux = Tmux::new();
    let srv = testkit::start();
    let (alice_dir, bob_dir) = (TempDir::new("alice"), TempDir::new("bob"));
    tmux.start("alice", &srv, &alice_dir.0);
    tmux.start("bob", &srv, &bob_dir.0);
    online(&tmux, "alice");
    online(&tmux, "bob");

    // A message arrives, normalized, and the sender's line turns ✓✓ once it is delivered.
    tmux.type_line("alice", "/open bob");
    tmux.type_line("alice", "hello    bob");
    // The online mark comes with a CONNECTEDUSERS reply, maybe in a later frame than the message: wait for both.
    tmux.wait("bob", "alice's message and her online mark", |s| {
        s.contains("alice: hello bob") && (s.contains("alice ● online") || s.contains("● alice"))
    });
    tmux.wait("alice", "hello bob ✓✓", |s| s.contains("hello bob ✓✓"));

    // Bob goes offline: alice's next message stays ✓ ...
    tmux.type_line("bob", "/disconnect");
    tmux.wait("bob", "not connected", |s| status(s).contains("bob │ not connected"));
    assert_eq!(srv.store().is_connected("bob"), Some(false));
    tmux.type_line("alice", "are you there");
    let alice = tmux.wait("alice", "are you there ✓", |s| s.contains("are you there ✓"));
    assert!(!line_of(&alice, "are you there").contains("✓✓"), "not delivered yet:\n{alice}");

    // ... until bob connects again: the message arrives and alice's line turns ✓✓.
    tmux.type_line("bob", "/connect bob");
    tmux.wait_text("bob", "alice: are you there");
    tmux.wait("alice", "are you there ✓✓", |s| s.contains("are you there ✓✓"));

    // A refused message says why.
    tmux.type_line("alice", "/open nobody");
    tmux.type_line("alice", "hi?");
    tmux.wait_text("alice", "hi? ✗ user does not exist");

    // 80×24: every pane still there.
    tmux.run(&["resize-window", "-t", "alice", "-x", "80", "-y", "24"]);
    tmux.key("alice", "Tab");
    let small = tmux.wait("alice", "the 80×24 layout", |s| {
        s.lines().count() <= 24 && s.contains("hello bob ✓✓") && status(s).starts_with("127.0.0.1:")
    });
    assert!(small.lines().all(|l| l.chars().count() <= 80), "{small}");
    assert!(small.contains("┌ Contacts") && small.contains("┌ Message to bob"), "{small}");

    // /quit disconnects, leaves the alternate screen and exits 0.
    tmux.type_line("alice", "/quit");
    assert_eq!(tmux.wait_exit("alice"), "0");
    // tmux may apply the bytes that leave the alternate screen a moment after the process ended.
    tmux.wait("alice", "the terminal restored", |s| !s.contains("┌ Contacts"));
    assert_eq!(srv.store().is_connected("alice"), Some(false));

    // A restart with the same history directory shows the conversation as it was.
    tmux.restart("alice", &srv, &alice_dir.0);
    // The newest conversation is open at once; the others are a key away.
    tmux.wait("alice", "the last conversation", |s| s.contains("hi? ✗ user does not exist"));
    tmux.type_line("alice", "/open bob");
    // Both lines, which a terminal may show one frame apart.
    tmux.wait("alice", "the old conversation", |s| s.contains("hello bob ✓✓") && s.contains("are you there ✓✓"));

    // Ctrl-C quits too.
    tmux.key("bob", "C-c");
    assert_eq!(tmux.wait_exit("bob"), "0");
    assert_eq!(srv.store().is_connected("bob"), Some(false));

    // A lost server ends the session with a clear message on a restored terminal (the periodic CONNECTEDUSERS
    // notices it).
    tmux.type_line("alice", "/connect alice");
    tmux.wait("alice", "connected", |s| status(s).contains("alice │ connected"));
    srv.shutdown();
    assert_eq!(tmux.wait_exit("alice"), "1");
    // With the scrollback: tmux's "Pane is dead" line may have pushed the first line of the message up; and tmux
    // may show the last bytes a moment after the process ended.
    tmux.wait_with_scrollback("alice", "the lost server's message on a restored terminal", |s| {
        s.contains("error: lost the server") && !s.contains("┌ Contacts")
    });
}

#[test]
fn without_a_terminal_the_tui_refuses_to_start_and_says_why() {
    let srv = testkit::start();
    let addr = srv.addr();
    let out = Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["-s", &addr.ip().to_string(), "-p", &addr.port().to_string(), "--tui"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the client");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tui needs a terminal"), "{err}");
    assert!(out.stdout.is_empty(), "nothing drawn: {:?}", String::from_utf8_lossy(&out.stdout));
}
