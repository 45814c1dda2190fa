//! The sweeper: restarts deliveries whose claim lapsed with nobody left to deliver.
//!
//! A delivery starts at a SEND to a connected user or at its CONNECT. When the node holding a user's claim dies,
//! the claim lapses after [`super::ClusterConfig::claim_ttl`], but nothing would start the user's delivery again
//! until the next SEND to it. So every half claim lifetime (at most [`MAX_SWEEP_PERIOD`]) one node (whichever
//! takes the `msg:sweep` lock for that round) walks the connected users (`msg:online`, at most [`MAX_SWEEP`] per
//! round) and claims each one that is ready, idle and has something queued, then delivers it on this thread, as
//! a request thread would. The same covers a delivery abandoned on a Redis error. An
//! idle user that still owes acknowledgements (its node died between a push and passing its acknowledgement on)
//! is claimed too, and they are passed on.

use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use protocol::dialect::PushForm;

use super::{keys, RedisStore, ONLINE_KEY};
use crate::delivery;

/// Connected users one sweep looks at, at most.
pub const MAX_SWEEP: usize = 10_000;
/// The lock that lets one node sweep per round.
const SWEEP_KEY: &str = "msg:sweep";
/// Shortest pause between two rounds, whatever the claim lifetime.
const MIN_SWEEP_PERIOD: Duration = Duration::from_millis(100);
/// Longest pause between two rounds: a delivery abandoned on a Redis error (its claim released, nobody to
/// deliver) waits at most this long, whatever the claim lifetime.
pub const MAX_SWEEP_PERIOD: Duration = Duration::from_secs(5);

/// The sweeper's thread; dropping it stops the thread and waits for it (a delivery under way finishes first).
pub struct Sweeper {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweeper").finish_non_exhaustive()
    }
}

impl Sweeper {
    pub fn start(store: RedisStore, form: PushForm) -> std::io::Result<Sweeper> {
        let period = Duration::from_millis(store.inner.claim_ttl_ms / 2).clamp(MIN_SWEEP_PERIOD, MAX_SWEEP_PERIOD);
        let (stop, stopped) = channel::<()>();
        let thread = thread::Builder::new().name("cluster-sweeper".into()).spawn(move || {
            // A message or a closed channel, not a timeout, is the order to stop.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                sweep(&store, form, period);
            }
        })?;
        Ok(Sweeper { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One round, if this node holds the round's lock.
fn sweep(store: &RedisStore, form: PushForm, period: Duration) {
    let s = &store.inner;
    let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
    let listed = s.pool.run(|con| {
        let locked: Option<String> =
            redis::cmd("SET").arg(SWEEP_KEY).arg("1").arg("NX").arg("PX").arg(period_ms).query(con)?;
        if locked.is_none() {
            return Ok(Vec::new());
        }
        redis::cmd("ZRANGE").arg(ONLINE_KEY).arg(0).arg(MAX_SWEEP - 1).query::<Vec<String>>(con)
    });
    let listed = match listed {
        Ok(listed) => listed,
        Err(e) => {
            log::warn!("cluster: sweep skipped: {e}");
            return;
        }
    };
    for alias in listed {
        let kicked = s
            .pool
            .run(|con| s.scripts.kick.key(&keys(&alias)[..]).arg(s.claim_ttl_ms).invoke::<Option<Vec<String>>>(con));
        match kicked {
            Ok(Some(fields)) if fields.first().is_some_and(|f| f == "owed") => {
                let [_, token, reg, owed] = &fields[..] else { continue };
                let ticket = store.bare_ticket(&alias, token, reg);
                log::info!("s> cluster: passing on the acknowledgements {alias} owed when a node died");
                let senders = store.pass_owed(&ticket, owed.clone());
                drop(ticket); // releases the claim
                              // This thread delivers what it resumes, and what those pushes make deliverable, to the end.
                let waiting = delivery::Waiting::default();
                for sender in senders {
                    delivery::run(store, form, Some(sender), &waiting);
                }
            }
            Ok(Some(fields)) => {
                if let Some(ticket) = store.parse_claim(&alias, &fields) {
                    log::info!("s> cluster: resuming the delivery of {alias}, whose claim had lapsed");
                    delivery::run(store, form, Some(ticket), &delivery::Waiting::default());
                }
            }
            Ok(None) => {}
            Err(e) => {
                log::warn!("cluster: sweep stopped: {e}");
                return;
            }
        }
    }
}
