//! `bench populate`: writes a data directory the server can start from (`--data-dir`), without a running
//! server, through the server crate's own journal code: users `user0` … `user{N-1}`, and M queued messages,
//! each from user k to user (k+1) mod N. Million-user tests then take seconds to set up instead of minutes of
//! REGISTER and SEND requests.
//!
//! The users are generated lazily, one at a time, so a million of them never sit in memory together here.
//! Sender k sends ⌈M/N⌉ or ⌊M/N⌋ messages (the first M mod N senders one more), with ids 1, 2, … as the
//! server would have assigned them (docs/protocol.md 6), and its id counter (`last_id`)
//! says how many it sent.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use server::store::{Entry, UserState};

use crate::cli::Output;
use crate::output::Json;
use crate::BenchError;

/// Alias prefix of populated users: `user0`, `user1`, ….
pub const ALIAS_PREFIX: &str = "user";
/// Birth date of every populated user.
const BIRTH_DATE: &str = "01/01/2000";
/// Default size of a populated message text, in bytes.
pub const DEFAULT_TEXT_SIZE: usize = 64;

#[derive(Debug, Args)]
pub struct PopulateArgs {
    #[command(flatten)]
    pub output: Output,
    /// The data directory to create (it must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Registered users: user0 … user{N-1}.
    #[arg(short = 'u', long, env = "MSG_BENCH_USERS")]
    pub users: u64,
    /// Queued messages, each from user k to user (k+1) mod N, spread evenly over the senders.
    #[arg(long, env = "MSG_BENCH_QUEUED", default_value_t = 0)]
    pub queued: u64,
    /// Message text size in bytes.
    #[arg(long, env = "MSG_BENCH_SIZE", default_value_t = DEFAULT_TEXT_SIZE)]
    pub size: usize,
}

/// Why a [`Shape`] cannot be generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// Messages to queue, but no user to queue them for.
    #[error("--queued needs at least one user")]
    QueuedWithoutUsers,
    /// The text size is 0 or above the protocol's field limit.
    #[error("--size must be between 1 and {}", protocol::MAX_FIELD_LEN)]
    Size,
    /// A sender would send more messages than its 32-bit id counter can number.
    #[error("more queued messages per sender than a 32-bit id counter holds")]
    IdCounter,
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    pub users: u64,
    pub queued: u64,
    pub size: usize,
}

impl Shape {
    /// Checks the shape; a failure is a usage error.
    pub fn check(&self) -> Result<(), ShapeError> {
        if self.users == 0 && self.queued > 0 {
            return Err(ShapeError::QueuedWithoutUsers);
        }
        if self.size == 0 || self.size > protocol::MAX_FIELD_LEN {
            return Err(ShapeError::Size);
        }
        if self.users > 0 && self.sent_by(0) > u64::from(u32::MAX) {
            return Err(ShapeError::IdCounter);
        }
        Ok(())
    }

    /// How many messages user `k` sent (all of them still queued for user k+1).
    fn sent_by(&self, k: u64) -> u64 {
        self.queued / self.users + u64::from(k < self.queued % self.users)
    }

    /// The users, one at a time.
    pub fn users(self) -> impl Iterator<Item = UserState> {
        (0..self.users).map(move |k| {
            let sender = (k + self.users - 1) % self.users;
            let sender_alias: Arc<str> = alias(sender).into();
            let queue = (1..=self.sent_by(sender))
                .map(|id| {
                    let id = id as u32; // within u32: checked by `check`
                    let text = text(&sender_alias, k, id, self.size).into_boxed_str();
                    Entry::Message { sender: sender_alias.clone(), id, text }
                })
                .collect();
            user_state(alias(k), self.sent_by(k) as u32, queue)
        })
    }
}

/// The alias of populated user `k`.
pub fn alias(k: u64) -> String {
    format!("{ALIAS_PREFIX}{k}")
}

/// A text of exactly `size` bytes naming its sender, recipient and id, e.g. `populated user4 > user5 #3 ....`.
/// It does not start with `m<hex> `, so the bench's listeners tell it apart from the messages of a run.
fn text(sender: &str, recipient: u64, id: u32, size: usize) -> String {
    let mut t = format!("populated {sender} > {ALIAS_PREFIX}{recipient} #{id} ");
    t.truncate(size);
    while t.len() < size {
        t.push('.');
    }
    t
}

/// The one place a populated `UserState` is built (its fields may grow).
fn user_state(alias: String, last_id: u32, queue: Vec<Entry>) -> UserState {
    UserState {
        full_name: format!("Populated {alias}"),
        alias,
        birth_date: BIRTH_DATE.to_owned(),
        last_id,
        connected: false,
        queue,
    }
}

/// Writes `population` into `dir` with the server's journal code.
pub fn write(dir: &Path, population: Shape) -> Result<(), BenchError> {
    population.check().map_err(|e| BenchError::Usage(e.to_string()))?;
    server::journal::populate(dir, population.users())
        .map_err(|e| BenchError::Runtime(format!("cannot populate {}: {e}", dir.display())))
}

pub fn run(args: &PopulateArgs) -> Result<bool, BenchError> {
    let population = Shape { users: args.users, queued: args.queued, size: args.size };
    let started = Instant::now();
    write(&args.data_dir, population)?;
    let secs = started.elapsed().as_secs_f64();
    if args.output.json {
        let mut j = Json::new();
        j.open();
        j.str("tool", "bench");
        j.str("mode", "populate");
        j.str("data_dir", &args.data_dir.display().to_string());
        j.num("users", args.users as f64);
        j.num("queued", args.queued as f64);
        j.num("size", args.size as f64);
        j.num("seconds", secs);
        j.close();
        println!("{}", j.into_string());
    } else {
        println!(
            "wrote {} users and {} queued messages of {} bytes to {} in {secs:.2} s",
            args.users,
            args.queued,
            args.size,
            args.data_dir.display()
        );
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_of(u: &UserState) -> Vec<(String, u32)> {
        u.queue
            .iter()
            .map(|e| match e {
                Entry::Message { sender, id, text } => {
                    assert_eq!(text.len(), DEFAULT_TEXT_SIZE);
                    (sender.to_string(), *id)
                }
                Entry::Ack { id } => panic!("unexpected acknowledgement {id}"),
            })
            .collect()
    }

    #[test]
    fn messages_go_from_each_user_to_the_next_with_ids_per_sender() {
        let users: Vec<UserState> = Shape { users: 3, queued: 7, size: 64 }.users().collect();
        let aliases: Vec<&str> = users.iter().map(|u| u.alias.as_str()).collect();
        assert_eq!(aliases, ["user0", "user1", "user2"]);
        // 7 messages over 3 senders: user0 sends 3, user1 and user2 send 2 each.
        assert_eq!(users.iter().map(|u| u.last_id).collect::<Vec<_>>(), [3, 2, 2]);
        assert_eq!(queue_of(&users[1]), [("user0".into(), 1), ("user0".into(), 2), ("user0".into(), 3)]);
        assert_eq!(queue_of(&users[0]), [("user2".into(), 1), ("user2".into(), 2)]);
        assert!(users.iter().all(|u| !u.connected));
    }

    #[test]
    fn a_lone_user_queues_to_itself_and_no_messages_means_empty_queues() {
        let lone: Vec<UserState> = Shape { users: 1, queued: 2, size: 64 }.users().collect();
        assert_eq!(queue_of(&lone[0]), [("user0".into(), 1), ("user0".into(), 2)]);
        let quiet: Vec<UserState> = Shape { users: 4, queued: 0, size: 64 }.users().collect();
        assert!(quiet.iter().all(|u| u.queue.is_empty() && u.last_id == 0));
    }

    #[test]
    fn texts_have_the_exact_size_and_bad_shapes_are_refused() {
        assert_eq!(text("user1", 2, 3, 20).len(), 20);
        assert_eq!(text("user1", 2, 3, 200).len(), 200);
        assert!(!text("user1", 2, 3, 64).starts_with('m'));
        assert!(Shape { users: 0, queued: 1, size: 64 }.check().is_err());
        assert!(Shape { users: 1, queued: 0, size: 0 }.check().is_err());
        assert!(Shape { users: 1, queued: 5, size: 64 }.check().is_ok());
    }

    #[test]
    fn shape_errors_keep_their_wording() {
        let refused = |shape: Shape| shape.check().map_err(|e| e.to_string());
        assert_eq!(refused(Shape { users: 0, queued: 1, size: 64 }), Err("--queued needs at least one user".into()));
        let size = format!("--size must be between 1 and {}", protocol::MAX_FIELD_LEN);
        assert_eq!(refused(Shape { users: 1, queued: 0, size: 0 }), Err(size));
        let too_many = Shape { users: 1, queued: u64::from(u32::MAX) + 1, size: 64 };
        assert_eq!(refused(too_many), Err("more queued messages per sender than a 32-bit id counter holds".into()));
    }

    #[test]
    fn a_million_users_are_generated_lazily() {
        let mut users = Shape { users: 1_000_000, queued: 1_000_000, size: 64 }.users();
        let last = users.nth(999_999).expect("the millionth user");
        assert_eq!(last.alias, "user999999");
        assert_eq!(queue_of(&last), [("user999998".into(), 1)]);
    }
}
