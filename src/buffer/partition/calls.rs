//! The sink calls a partition has running, and the books of those given up
//! at `flush_timeout`. By default an abandoned call keeps its batch (the
//! sink still borrows the items) until it returns; then, whatever it
//! returned, the batch goes again under the usual policy, ahead of anything
//! newer. With `retry_abandoned_batches` the call lends its items to the
//! books too (`lent.rs`): at abandonment a copy goes on at once, and the
//! original is discarded when the call returns.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::engine::WorkerId;
use crate::sink::FlushReason;
use crate::sync::thread::{current, ThreadId};

use super::lent::{Ended, Lent};
use super::mark::Outcome;
use super::pending::Batch;
use super::PartState;

/// What the watchdog needs of a call past its deadline, and tells the
/// observer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Overdue {
    pub(crate) id: u64,
    pub(crate) worker: Option<WorkerId>,
    pub(crate) started: Instant,
    pub(crate) reason: FlushReason,
    pub(crate) attempt: u32,
    pub(crate) items: usize,
}

/// One sink call in progress.
pub(crate) struct Call<T> {
    /// Unique within the partition; the watchdog's timer generation.
    pub(crate) id: u64,
    /// The flusher thread it runs on (`None` on a manual engine).
    pub(crate) worker: Option<WorkerId>,
    /// The thread it runs on, whatever the engine: a `sync_flush` or
    /// `close` from inside the sink is refused, not left to wait on itself.
    pub(crate) thread: ThreadId,
    /// Given up at `flush_timeout`: the partition has moved on.
    pub(crate) abandoned: bool,
    /// Past `flush_timeout` but kept (the engine's bound of abandoned
    /// threads was reached), and reported as such once.
    pub(crate) kept: bool,
    pub(crate) started: Instant,
    /// When `flush_timeout` runs out for it.
    pub(crate) deadline: Instant,
    pub(crate) reason: FlushReason,
    pub(crate) attempt: u32,
    pub(crate) items: usize,
    /// With `retry_abandoned_batches`: the items it reads, until the
    /// watchdog copies them.
    lent: Option<Lent<T>>,
    /// A copy of its batch went on at abandonment.
    copied: bool,
}

impl<T> PartState<T> {
    /// Records a sink call about to start for `batch`, due by `deadline`,
    /// with the items it lends the books (`lent`, whose shell is `batch`
    /// without its items). Returns its id.
    pub(crate) fn begin_call(
        &mut self,
        worker: Option<WorkerId>,
        batch: &Batch<T>,
        deadline: Instant,
        lent: Option<Lent<T>>,
    ) -> u64 {
        self.next_call += 1;
        let id = self.next_call;
        self.calls.push(Call {
            id,
            worker,
            thread: current().id(),
            abandoned: false,
            kept: false,
            started: Instant::now(),
            deadline,
            reason: batch.reason,
            attempt: batch.attempt,
            items: lent.as_ref().map_or(batch.len(), |l| l.items.items().len()),
            lent,
            copied: false,
        });
        id
    }

    /// Call `id` returned: how its batch is settled. The books' share of
    /// its items is released here, so the flusher gets them back whole.
    pub(crate) fn end_call(&mut self, id: u64) -> Ended {
        match self.calls.iter().position(|c| c.id == id) {
            Some(i) => match self.calls.swap_remove(i) {
                c if c.copied => Ended::Copied,
                c if c.abandoned => Ended::Late,
                _ => Ended::Settle,
            },
            None => Ended::Settle,
        }
    }

    /// A call past its deadline at `now`, still running, neither abandoned
    /// nor already kept past the bound.
    pub(crate) fn overdue_call(&self, now: Instant) -> Option<Overdue> {
        self.calls
            .iter()
            .find(|c| !c.abandoned && !c.kept && c.deadline <= now)
            .map(|c| Overdue {
                id: c.id,
                worker: c.worker,
                started: c.started,
                reason: c.reason,
                attempt: c.attempt,
                items: c.items,
            })
    }

    /// Call `id` is past its deadline, but the engine may not abandon more
    /// threads: it keeps its thread (the partition waits for it). Returns
    /// whether this is news, so it is reported once.
    pub(crate) fn keep_call(&mut self, id: u64) -> bool {
        match self.calls.iter_mut().find(|c| c.id == id && !c.kept) {
            Some(c) => {
                c.kept = true;
                true
            }
            None => false,
        }
    }

    /// When the partition's watchdog should look next: the earliest future
    /// deadline of a call not abandoned. A call already overdue and kept
    /// (past the engine's bound) is not looked at again: the partition
    /// waits for it, as the contract says.
    pub(crate) fn next_watchdog(&self, now: Instant) -> Option<Instant> {
        self.calls
            .iter()
            .filter(|c| !c.abandoned && c.deadline > now)
            .map(|c| c.deadline)
            .min()
    }

    /// Gives up call `id` at its time limit: a failed attempt (so the sink
    /// counts as failing, and `overflow: spill` spills rather than waits),
    /// timed out, and one more abandoned call running. A call that lent its
    /// items returns a copy of its batch, which takes over the batch's place
    /// in the books (in flight, its sequence numbers): the caller settles it
    /// as a failed attempt. Should `T::clone` panic, there is no copy and
    /// the batch stays with the call, as without the option.
    pub(crate) fn abandon_call(&mut self, id: u64) -> Option<Batch<T>> {
        let c = self.calls.iter_mut().find(|c| c.id == id)?;
        c.abandoned = true;
        let copy = c.lent.take().and_then(|Lent { items, mut shell }| {
            let copy = catch_unwind(AssertUnwindSafe(|| items.copy())).ok()?;
            shell.chunk.items = copy;
            Some(shell)
        });
        c.copied = copy.is_some();
        self.count_failure();
        self.counts.flush_timeouts += 1;
        self.counts.abandoned += 1;
        copy
    }

    /// Whether the calling thread is inside one of this partition's sink
    /// calls.
    pub(crate) fn in_call_here(&self) -> bool {
        let me = current().id();
        self.calls.iter().any(|c| c.thread == me)
    }

    /// Sink calls running now, abandoned ones included.
    pub(crate) fn running_calls(&self) -> usize {
        self.calls.len()
    }

    /// An abandoned call returned after `elapsed`: one fewer running.
    pub(crate) fn count_late_return(&mut self, elapsed: Duration) {
        self.counts.abandoned = self.counts.abandoned.saturating_sub(1);
        self.latency.record(elapsed);
    }

    /// Queues the batch of an abandoned call that returned for its next
    /// attempt, which goes before anything newer (no backoff: it has waited
    /// `flush_timeout` already).
    pub(crate) fn requeue_late(&mut self, mut batch: Batch<T>) {
        self.counts.retries += 1;
        batch.attempt += 1;
        let at = self
            .late
            .iter()
            .position(|b| b.chunk.first_seq > batch.chunk.first_seq)
            .unwrap_or(self.late.len());
        self.late.insert(at, batch);
        self.check();
    }

    /// The oldest requeued batch of an abandoned call.
    pub(super) fn take_late(&mut self) -> Option<Batch<T>> {
        if self.late.is_empty() {
            None
        } else {
            Some(self.late.remove(0))
        }
    }

    /// Gives up what memory holds that no sink call has (pending items, a
    /// batch waiting for its retry, requeued batches), counted dropped: for
    /// a buffer whose sink will never be called again. Batches read from the
    /// spool stay: their records are still on disk for the next run.
    /// Returns the items, to be dropped after the lock is released.
    pub(crate) fn drop_undelivered(&mut self) -> Vec<T> {
        let mut out = Vec::new();
        for mut c in self.pending.take_all() {
            let n = c.items.len() as u64;
            self.resolve(c.first_seq, n, Outcome::Dropped);
            self.counts.dropped += n;
            out.append(&mut c.items);
        }
        let mut waiting: Vec<Batch<T>> = std::mem::take(&mut self.late);
        if self.retry.as_ref().is_some_and(|b| !b.from_spool) {
            waiting.extend(self.retry.take());
            self.retry_due = false;
        }
        for b in waiting {
            if b.from_spool {
                self.late.push(b);
            } else {
                out.extend(self.drop_batch(b));
            }
        }
        self.check();
        out
    }
}
