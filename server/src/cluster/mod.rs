//! `--cluster redis://HOST:PORT`: several server nodes that act as one, their state in Redis.
//!
//! [`RedisStore`] implements the store interface ([`crate::store::Backend`]) the handler and the deliverer talk
//! to, so a node behaves exactly like the in-memory server; nodes keep nothing of their own (docs/scale-out.md).
//! Any node answers any request, and pushes go straight to the listener, so the node that accepts a SEND for a
//! user connected through another node pushes it at once.
//!
//! # Key layout
//!
//! Every key of one user carries the hash tag `{alias}`, so they live in one Redis Cluster slot and each
//! per-user step is one Lua script ([`scripts`]), atomic there. (In the tag, `%`, `{` and `}` of the alias are
//! percent-encoded, so that the tag is always the whole alias.)
//!
//! | key | type | holds |
//! |---|---|---|
//! | `msg:{alias}:u` | hash | `name`, `date`, `last` (last id), `reg` (registration number), `head` (number of the queue's head entry), `tok` (token counter); while connected `ip`, `port`, `epoch`, `since` (Redis time, ms, of the CONNECT) and `ready` (of its reply) |
//! | `msg:{alias}:q` | list | the queue: `M<sender>\0<id>\0<text>` or `A<id>` |
//! | `msg:{alias}:c` | string, expiring | the delivery claim: its fencing token, for [`ClusterConfig::claim_ttl`] unless renewed |
//! | `msg:{alias}:p` | list | acknowledgements this user's deliveries owe to senders, `<sender>\0<id>`, until passed on |
//! | `msg:reg` | counter | registration numbers |
//! | `msg:online` | sorted set | connected users, scored by registration number (CONNECTEDUSERS order) |
//! | `msg:sweep` | string, expiring | the lock of one round of the [`Sweeper`] |
//!
//! # Steps that span two slots
//!
//! **SEND** touches the sender (its id counter) and the recipient (its queue): two scripts. The sender's comes
//! first and consumes the id; the recipient's then queues the message under it, and only after both does the
//! reply go out. A node that dies between the two has consumed an id that no message carries: the id is
//! skipped, never reused (the counter only moves forward), and nothing was acknowledged, because the reply
//! follows the queueing. A node that dies after queueing but before replying leaves a message that is delivered
//! although its sender saw no reply, as with the journal (docs/operations.md). The other order would be unsafe:
//! a message queued before its id is consumed could share its id with the sender's next SEND. A read of the
//! recipient (registered? queue full?) before both keeps ordinary refusals from consuming an id; a recipient
//! unregistered between that read and the queueing is the one race that skips an id without a crash.
//!
//! **An acknowledgement** is owed by the recipient's slot and queued in the sender's. The script that pops a
//! delivered message records the acknowledgement it owes in the recipient's `p` list, in the same step; the
//! deliverer then queues it for the sender and removes it from `p`, all while it still holds the recipient's
//! claim. A node that dies in between leaves it in `p`, and the recipient's next successful push passes it on:
//! an acknowledgement is never lost (it can be queued twice if the node dies between those last two steps).
//!
//! **Presence** is in the user's hash (atomic with everything else about the user); `msg:online` is only the
//! order for CONNECTEDUSERS. It is updated after the user's step, and CONNECTEDUSERS checks each member against
//! its hash, so an entry left behind by a dead node is never listed.
//!
//! # One delivery per user
//!
//! The claim is a key with an expiry holding a fencing token. Every step of a delivery checks the token and
//! renews the expiry in the same script, so a deliverer whose claim lapsed (its node stalled or died) can
//! change nothing: a dead node's claim lapses after [`ClusterConfig::claim_ttl`], and the next SEND to or
//! CONNECT of that user starts a new delivery, or else the [`Sweeper`] within half a claim lifetime (5 s at
//! most). The head is
//! popped only after the listener's orderly close (docs/protocol.md, "Delivered means read").

mod backend;
mod conn;
mod cross;
mod scripts;
mod sweeper;
mod ticket;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use conn::{MAX_IDLE_CONNECTIONS, REDIS_CONNECT_TIMEOUT, REDIS_IO_TIMEOUT};
pub use cross::MAX_ACKS_PER_STEP;
pub use scripts::ACTIVATION_FALLBACK_MS;
pub use sweeper::{Sweeper, MAX_SWEEP, MAX_SWEEP_PERIOD};
pub use ticket::RedisTicket;

/// How long a delivery claim lives without being renewed. Longer than one push can take (connect, write and
/// close confirmation, 3 s each, docs/protocol.md "Limits and timeouts"), so a live deliverer never loses it.
pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(30);

/// `--cluster` and its options.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT` of the Redis server, or seeds of a Redis Cluster.
    pub urls: Vec<String>,
    /// Refuse to start when Redis could lose acknowledged writes on a crash (`--require-durable`).
    pub require_durable: bool,
    /// Lifetime of a delivery claim that is not renewed (`--claim-ttl-ms`).
    pub claim_ttl: Duration,
}

impl ClusterConfig {
    /// One Redis server, default options.
    pub fn new(url: impl Into<String>) -> ClusterConfig {
        ClusterConfig { urls: vec![url.into()], require_durable: false, claim_ttl: DEFAULT_CLAIM_TTL }
    }
}

/// Why a node cannot start on its Redis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// `--cluster` was given no URL.
    #[error("--cluster needs a redis://HOST:PORT URL")]
    NoUrl,
    /// The URL is not one the Redis client understands.
    #[error("{} is not a Redis URL: {source}", shown(.url))]
    BadUrl { url: String, source: redis::RedisError },
    /// Nothing answered at the URL, or it did not answer as Redis.
    #[error("cannot reach Redis at {}: {source}", shown(.url))]
    Unreachable { url: String, source: redis::RedisError },
    /// With `--require-durable`: Redis may lose acknowledged writes on a crash.
    #[error("Redis at {} is not durable ({why}) and --require-durable was given", shown(.url))]
    NotDurable {
        url: String,
        #[source]
        why: NotDurable,
    },
}

/// Why a Redis may lose what it acknowledged (the reason of [`ClusterError::NotDurable`], or a warning).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotDurable {
    /// Its persistence settings are not `appendonly yes` with `appendfsync always`.
    #[error(
        "appendonly {appendonly}, appendfsync {appendfsync}: a Redis crash can lose acknowledged messages; durable \
         is appendonly yes + appendfsync always"
    )]
    Settings { appendonly: String, appendfsync: String },
    /// `CONFIG GET` failed (a managed Redis may forbid it).
    #[error("its persistence settings cannot be read (CONFIG GET: {0})")]
    Unreadable(#[source] redis::RedisError),
}

/// The store interface on Redis. Cloning is cheap; every clone shares the connections.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: conn::Pool,
    scripts: scripts::Scripts,
    max_queue: usize,
    /// [`ClusterConfig::claim_ttl`] in milliseconds, as the scripts take it.
    claim_ttl_ms: u64,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("cluster", &self.inner.pool.is_cluster())
            .field("max_queue", &self.inner.max_queue)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects (an unreachable Redis is an error now) and checks that Redis keeps what it acknowledged: a
    /// warning, or with `require_durable` an error, when `appendonly` is not `yes` with `appendfsync always`.
    pub fn open(config: &ClusterConfig, max_queue: usize) -> Result<RedisStore, ClusterError> {
        let pool = conn::Pool::open(&config.urls)?;
        for url in &config.urls {
            let why = match conn::persistence(url) {
                Ok((aof, fsync)) if aof == "yes" && fsync == "always" => continue,
                Ok((appendonly, appendfsync)) => NotDurable::Settings { appendonly, appendfsync },
                Err(e) => NotDurable::Unreadable(e),
            };
            if config.require_durable {
                return Err(ClusterError::NotDurable { url: url.clone(), why });
            }
            log::warn!("cluster: Redis at {}: {why}", shown(url));
        }
        let claim_ttl_ms = u64::try_from(config.claim_ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let inner = Inner { pool, scripts: scripts::Scripts::new(), max_queue, claim_ttl_ms };
        Ok(RedisStore { inner: Arc::new(inner) })
    }

    /// Whether this node talks to a Redis Cluster (rather than one Redis server).
    pub fn is_cluster(&self) -> bool {
        self.inner.pool.is_cluster()
    }
}

/// A URL as it may be shown: a password in it (`redis://user:secret@host`) is replaced by `***`.
fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The keys of one user: hash, queue, claim, pending acknowledgements (see the key layout above).
fn keys(alias: &str) -> [String; 4] {
    let tag = tag(alias);
    ["u", "q", "c", "p"].map(|k| format!("msg:{{{tag}}}:{k}"))
}

/// The alias as its keys' hash tag: `%`, `{` and `}` percent-encoded, so the tag is the whole alias (an alias
/// starting with `}` would otherwise make an empty tag, which Redis ignores) and two aliases never share keys.
fn tag(alias: &str) -> std::borrow::Cow<'_, str> {
    if !alias.contains(['%', '{', '}']) {
        return alias.into();
    }
    alias.replace('%', "%25").replace('{', "%7B").replace('}', "%7D").into()
}

/// The registration-number counter.
const REG_KEY: &str = "msg:reg";
/// Connected users by registration number.
const ONLINE_KEY: &str = "msg:online";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_carry_no_password() {
        for (url, seen) in [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://:s3cret@10.0.0.5:6379/0", "redis://***@10.0.0.5:6379/0"),
            ("redis://user:p@ss@host:1", "redis://***@host:1"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(shown(url), seen, "{url}");
        }
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = ClusterError::Unreachable { url: "redis://u:pw@h:1".into(), source: refused.into() };
        assert_eq!(e.to_string(), "cannot reach Redis at redis://***@h:1: refused");
    }

    #[test]
    fn every_key_of_a_user_shares_its_hash_tag() {
        let mut seen = std::collections::HashSet::new();
        for alias in ["alice", "a}b", "{x", "}", "{}", "%7D", "%"] {
            let tags: Vec<String> = keys(alias).iter().map(|k| hash_tag(k).to_string()).collect();
            assert!(tags.iter().all(|t| *t == tags[0] && t == &tag(alias)), "{alias}: {tags:?}");
            assert!(seen.insert(tags[0].clone()), "{alias}: a tag shared with another alias");
        }
        assert_eq!(keys("alice")[0], "msg:{alice}:u");
    }

    /// The part of a key Redis Cluster hashes: between the first `{` and the first `}` after it, if not empty.
    fn hash_tag(key: &str) -> &str {
        if let Some(open) = key.find('{') {
            if let Some(len) = key[open + 1..].find('}') {
                if len > 0 {
                    return &key[open + 1..open + 1 + len];
                }
            }
        }
        key
    }
}
