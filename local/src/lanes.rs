//! How `baton-local` works through the embedded store's change feed: one lane per conversation
//! (or per handoff, for the HubSpot stage), each lane's changes in order, the lanes side by side.
//! A media copy that stalls or a reply Meta keeps throttling holds up its own lane only, as the
//! Lambda's event source mappings hold up only their own partition key. A change that fails in a
//! way a retry could fix is tried again after a jittered backoff, a bounded number of times; then
//! it is parked (the HubSpot stage's trail keeps it for `hubspot-replay`) and the lane goes on.
//!
//! The stage's cursor is the low-water mark: the change before the oldest one not yet finished,
//! so a restart hands over again (idempotently) what was in flight and never skips it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use baton_shared::domain::Change;
use baton_shared::retry::Backoff;

use crate::Stage;
use crate::redb_store::RedbStore;

/// What a lane hands each change to: a stage, or a test's stand-in.
pub trait ChangeHandler: Clone + Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Handles one change: `Err` when a retry could fix it.
    fn on_change(&self, change: &Change) -> impl Future<Output = Result<(), String>> + Send;
}

impl ChangeHandler for Stage {
    fn name(&self) -> &'static str {
        Stage::name(self)
    }

    fn on_change(&self, change: &Change) -> impl Future<Output = Result<(), String>> + Send {
        Stage::on_change(self, change)
    }
}

/// Tries of one change before it is parked: about two minutes of waiting in all.
pub const LANE_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(250), Duration::from_secs(30), 10);

/// Changes read from the feed at a time.
const READ_BATCH: usize = 100;

/// The lane a change belongs to: its conversation, or its handoff (whose ticket events follow it).
pub fn lane_of(change: &Change) -> String {
    match change {
        Change::Message(m) => m.conversation.partition(),
        Change::AgentEvent(e) => e.conversation.partition(),
        Change::Handoff(h) => h.id.clone(),
        Change::TicketEvent(e) => e.handoff_id.clone(),
    }
}

#[derive(Default)]
struct Work {
    /// Each busy lane's changes, the one being handled first.
    queues: HashMap<String, VecDeque<(u64, Change)>>,
    /// Positions handed over and not yet finished.
    unfinished: BTreeSet<u64>,
    /// Positions given up on after their retries: the cursor stays before them, so the next
    /// start hands them over again.
    parked: BTreeSet<u64>,
}

/// A stage's lanes over the embedded feed.
pub struct Lanes<H: ChangeHandler = Stage> {
    stage: H,
    backoff: Backoff,
    work: Arc<Mutex<Work>>,
    finished: Arc<Notify>,
    /// The cursor last saved.
    saved: Mutex<Option<u64>>,
}

impl<H: ChangeHandler> Lanes<H> {
    pub fn new(stage: H) -> Self {
        Self::with_backoff(stage, LANE_BACKOFF)
    }

    pub fn with_backoff(stage: H, backoff: Backoff) -> Self {
        Self {
            stage,
            backoff,
            work: Arc::default(),
            finished: Arc::new(Notify::new()),
            saved: Mutex::new(None),
        }
    }

    /// Hands `change` (at feed position `seq`) to its lane, starting the lane if it was idle.
    pub fn dispatch(&self, seq: u64, change: Change) {
        let lane = lane_of(&change);
        let mut work = self.work.lock().expect("lanes lock");
        work.unfinished.insert(seq);
        if let Some(queue) = work.queues.get_mut(&lane) {
            queue.push_back((seq, change));
            return;
        }
        work.queues
            .insert(lane.clone(), VecDeque::from([(seq, change)]));
        drop(work);
        let worker = Worker {
            stage: self.stage.clone(),
            backoff: self.backoff,
            work: self.work.clone(),
            finished: self.finished.clone(),
            lane,
        };
        tokio::spawn(worker.run());
    }

    /// The position every change up to which is finished, given the feed was read up to `read`.
    pub fn low_water(&self, read: u64) -> u64 {
        let work = self.work.lock().expect("lanes lock");
        let oldest = work
            .unfinished
            .first()
            .into_iter()
            .chain(work.parked.first())
            .min();
        oldest.map_or(read, |oldest| oldest.saturating_sub(1))
    }

    /// How many changes are handed over and not finished.
    pub fn in_flight(&self) -> usize {
        self.work.lock().expect("lanes lock").unfinished.len()
    }

    /// Waits until a change finishes (or `at_most` passes).
    pub async fn wait(&self, at_most: Duration) {
        let finished = self.finished.notified();
        if self.in_flight() == 0 {
            return;
        }
        let _ = tokio::time::timeout(at_most, finished).await;
    }

    /// Reads what the feed holds after `read` (up to a batch), hands it over, and saves the
    /// stage's cursor at the low-water mark; returns how many changes were read.
    pub async fn pump(&self, store: &RedbStore, read: &mut u64) -> Result<usize, String> {
        let consumer = self.stage.name();
        let changes = store
            .changes_after(*read, READ_BATCH)
            .await
            .map_err(|e| e.to_string())?;
        let n = changes.len();
        for (seq, change) in changes {
            self.dispatch(seq, change);
            *read = seq;
        }
        let cursor = self.low_water(*read);
        if *self.saved.lock().expect("lanes lock") != Some(cursor) {
            store
                .save_cursor(consumer, cursor)
                .await
                .map_err(|e| e.to_string())?;
            *self.saved.lock().expect("lanes lock") = Some(cursor);
        }
        Ok(n)
    }

    /// Hands over everything pending and waits for every lane to finish; returns how many
    /// changes were handed over.
    pub async fn drain(&self, store: &RedbStore) -> Result<usize, String> {
        let mut read = store
            .cursor(self.stage.name())
            .await
            .map_err(|e| e.to_string())?;
        let mut done = 0;
        loop {
            let n = self.pump(store, &mut read).await?;
            done += n;
            if n == 0 && self.in_flight() == 0 {
                return Ok(done);
            }
            if n == 0 {
                self.wait(Duration::from_millis(250)).await;
            }
        }
    }
}

/// One lane's worker: handles the lane's changes in order until its queue is empty.
struct Worker<H> {
    stage: H,
    backoff: Backoff,
    work: Arc<Mutex<Work>>,
    finished: Arc<Notify>,
    lane: String,
}

impl<H: ChangeHandler> Worker<H> {
    async fn run(self) {
        loop {
            let next = {
                let mut work = self.work.lock().expect("lanes lock");
                match work.queues.get(&self.lane).and_then(|q| q.front()) {
                    Some((seq, change)) => Some((*seq, change.clone())),
                    None => {
                        work.queues.remove(&self.lane);
                        None
                    }
                }
            };
            let Some((seq, change)) = next else {
                return;
            };
            let handled = self.handle(&change).await;
            let mut work = self.work.lock().expect("lanes lock");
            if let Some(queue) = work.queues.get_mut(&self.lane) {
                queue.pop_front();
            }
            work.unfinished.remove(&seq);
            if !handled {
                work.parked.insert(seq);
            }
            drop(work);
            self.finished.notify_waiters();
        }
    }

    /// Handles one change, retrying what a retry could fix, until the tries run out; false when
    /// it was parked.
    async fn handle(&self, change: &Change) -> bool {
        let mut attempt = 0;
        loop {
            let Err(reason) = self.stage.on_change(change).await else {
                return true;
            };
            if attempt + 1 >= self.backoff.attempts {
                tracing::error!(stage = self.stage.name(), tries = attempt + 1, error = %reason,
                    "change parked after its retries; the next start hands it over again (a HubSpot trail also keeps it for hubspot-replay)");
                return false;
            }
            tracing::warn!(stage = self.stage.name(), try_number = attempt + 1, error = %reason, "change failed; its lane tries again after a pause");
            tokio::time::sleep(self.backoff.delay(attempt)).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use baton_shared::domain::{ConversationKey, Owner, TicketEvent, TicketEventKind};

    use super::*;

    /// Handoff `ho_slow`'s first change waits for `ho_quick`'s; `ho_flaky`'s fails `flaky` times
    /// before it goes through, and `ho_stuck`'s always fails.
    #[derive(Clone, Default)]
    struct Script {
        quick_done: Arc<Notify>,
        seen: Arc<Mutex<Vec<String>>>,
        flaky: Arc<AtomicU32>,
    }

    impl ChangeHandler for Script {
        fn name(&self) -> &'static str {
            "script"
        }

        async fn on_change(&self, change: &Change) -> Result<(), String> {
            let Change::TicketEvent(e) = change else {
                unreachable!()
            };
            match e.handoff_id.as_str() {
                "ho_slow" if e.id == "1" => {
                    tokio::time::timeout(Duration::from_secs(5), self.quick_done.notified())
                        .await
                        .map_err(|_| "ho_quick never ran".to_owned())?;
                }
                "ho_quick" => self.quick_done.notify_one(),
                "ho_flaky" if self.flaky.fetch_sub(1, Ordering::SeqCst) > 0 => {
                    return Err("throttled".into());
                }
                "ho_stuck" => return Err("refused for now".into()),
                _ => {}
            }
            self.seen
                .lock()
                .unwrap()
                .push(format!("{}/{}", e.handoff_id, e.id));
            Ok(())
        }
    }

    fn event(handoff: &str, id: &str) -> Change {
        Change::TicketEvent(Box::new(TicketEvent {
            handoff_id: handoff.into(),
            id: id.into(),
            conversation: ConversationKey::new("1", "2"),
            received_at_ms: 0,
            kind: TicketEventKind::Ownership {
                owner: Owner::Human,
            },
        }))
    }

    async fn until_idle<H: ChangeHandler>(lanes: &Lanes<H>) {
        for _ in 0..200 {
            if lanes.in_flight() == 0 {
                return;
            }
            lanes.wait(Duration::from_millis(50)).await;
        }
        panic!("the lanes never finished");
    }

    #[tokio::test]
    async fn a_waiting_lane_holds_up_only_itself_and_retries_end_parked_behind_the_cursor() {
        let script = Script::default();
        script.flaky.store(2, Ordering::SeqCst);
        let quick = Duration::from_millis(5);
        let lanes = Lanes::with_backoff(script.clone(), Backoff::new(quick, quick, 4));
        lanes.dispatch(1, event("ho_slow", "1"));
        lanes.dispatch(2, event("ho_stuck", "1"));
        lanes.dispatch(3, event("ho_slow", "2"));
        lanes.dispatch(4, event("ho_flaky", "1"));
        lanes.dispatch(5, event("ho_quick", "1"));
        until_idle(&lanes).await;
        let seen = script.seen.lock().unwrap().clone();
        let at = |s: &str| {
            seen.iter()
                .position(|x| x == s)
                .unwrap_or_else(|| panic!("{s} missing: {seen:?}"))
        };
        assert!(at("ho_quick/1") < at("ho_slow/1"), "{seen:?}");
        assert!(
            at("ho_slow/1") < at("ho_slow/2"),
            "one lane keeps its order: {seen:?}"
        );
        assert!(
            seen.contains(&"ho_flaky/1".to_owned()),
            "retried until it went through"
        );
        assert!(!seen.iter().any(|s| s.starts_with("ho_stuck")));
        // The stuck change was parked after its 4 tries; the cursor stays before it.
        assert_eq!(lanes.low_water(5), 1);
    }
}
