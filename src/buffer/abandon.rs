//! `flush_timeout` enforced: each sink call arms a watchdog on the engine's
//! timer; at its deadline a call still running is abandoned. The attempt
//! counts as failed, the engine replaces the flusher thread stuck in it, and
//! the partition flushes on.
//!
//! By default the call keeps its batch (the sink still borrows the items):
//! when it returns, whatever it returned, the batch goes again under the
//! usual policy, so a late `Ok` means it arrives twice (at least once). With
//! `retry_abandoned_batches` the call's items are lent to the books as well,
//! so at abandonment a copy is retried, spilled or dropped at once, and the
//! batch the call returns with is discarded (a late `Ok` still means twice).

use std::time::{Duration, Instant};

use crate::engine::{TimerKind, WorkerId};
use crate::observer::{AbandonedReturnEvent, DropReason, FlushTimeoutEvent};
use crate::ring::fence_lock::FenceGuard;
use crate::sink::SinkError;
use crate::sync::rc::Arc;
use crate::weigh::Weigh;

use super::partition::{Batch, Ended, Lent, LentItems, PartState};
use super::shared::{Events, Shared};

impl<T: Weigh + Send + 'static> Shared<T> {
    /// Records the sink call about to start for `batch` on `worker`, and
    /// makes sure the partition's watchdog will look at it (a manual engine
    /// has none: its calls run on the caller's thread, which nothing could
    /// replace). One timer entry per partition at most, re-armed when it
    /// fires, so a busy partition does not fill the timer heap. Returns the
    /// call's id and its deadline, as the sink is told it.
    ///
    /// With `retry_abandoned_batches`, on a watched call, the batch's items
    /// move into a shared allocation lent to the books (the third value:
    /// what the sink reads); the flusher takes them back with
    /// [`LentItems::into_items`] after the call. Without it, or on a manual
    /// engine, nothing is shared and nothing allocated.
    #[allow(clippy::type_complexity)]
    pub(super) fn begin_call(
        &self,
        st: &mut PartState<T>,
        p: u32,
        worker: Option<WorkerId>,
        batch: &mut Batch<T>,
    ) -> (u64, Instant, Option<Arc<dyn LentItems<T>>>) {
        let deadline = Instant::now() + self.config.flush_timeout;
        let watched = worker.is_some() && !self.engine.is_manual();
        let lent = match self.lend {
            Some(lend) if watched => Some(lend(std::mem::take(&mut batch.chunk.items))),
            _ => None,
        };
        let books = lent.as_ref().map(|items| Lent {
            items: Arc::clone(items),
            shell: batch.shell(),
        });
        let id = st.begin_call(worker, batch, deadline, books);
        if watched && st.flow().watchdog.is_none() {
            st.flow_mut().watchdog = Some(deadline);
            self.arm(deadline, p, TimerKind::Watchdog, 0);
        }
        (id, deadline, lent)
    }

    /// The partition's watchdog fired (on the timer thread). A call past
    /// its deadline is abandoned if the engine can replace its thread; past
    /// the engine's bound it keeps its thread and the partition waits for it
    /// (counted timed out when it returns).
    pub(super) fn on_watchdog(&self, p: u32) {
        let part = &self.parts[p as usize];
        let mut st = part.state.lock();
        st.flow_mut().watchdog = None;
        let now = Instant::now();
        let overdue = st.overdue_call(now);
        // Under the partition lock, so the call cannot settle meanwhile: the
        // worker is still inside it when the engine marks it detached.
        let abandoned =
            overdue.filter(|call| call.worker.is_some_and(|worker| self.engine.detach(worker)));
        // Past the engine's bound: the call keeps its thread. Reported once,
        // so a user sees why the partition stopped flushing.
        let kept = match (overdue, abandoned) {
            (Some(call), None) if st.keep_call(call.id) => Some(call),
            _ => None,
        };
        let mut events = Events::new();
        let mut failed_items = None;
        if let Some(call) = &abandoned {
            // With `retry_abandoned_batches`: the copy is the failed
            // attempt's batch, settled as a late return's would be, and
            // queued before the flush passes on below, so it goes ahead of
            // anything newer. Copied under the lock for that order; the
            // cost is paid once per abandoned call, never per batch.
            if let Some(copy) = st.abandon_call(call.id) {
                let again = self.after_failure(&mut st, copy, &mut events, &mut failed_items);
                if let Some(batch) = again {
                    st.requeue_late(batch);
                }
            }
            // The abandoned flush owned `running`; it passes to the queue,
            // or ends.
            let room = self.room(&st);
            self.drain(&mut st, room);
            if st.has_ready() {
                self.schedule(&st, p);
            } else {
                st.flow_mut().running = false;
            }
            part.notify(&st);
        }
        if let Some(next) = st.next_watchdog(now) {
            st.flow_mut().watchdog = Some(next);
            self.arm(next, p, TimerKind::Watchdog, 0);
        }
        drop(st);
        let (call, was_abandoned) = match (abandoned, kept) {
            (Some(call), _) => (call, true),
            (None, Some(call)) => (call, false),
            (None, None) => return,
        };
        self.observe(|obs| {
            obs.on_flush_timeout(&FlushTimeoutEvent {
                buffer: &self.name,
                partition: p,
                reason: call.reason,
                attempt: call.attempt,
                items: call.items,
                duration: call.started.elapsed(),
                abandoned: was_abandoned,
            })
        });
        // What became of a copy: spilled, or dropped.
        self.emit(p, events);
        drop(failed_items);
    }

    /// An abandoned call returned (on its detached thread, which then
    /// leaves the pool). Its result is only counted. The batch, already
    /// counted as a failed attempt, is queued again, spilled or dropped as
    /// the policy says (`Ended::Late`); or, when a copy of it went on at
    /// abandonment (`Ended::Copied`), it is discarded: the books hold the
    /// copy, so nothing is counted twice. The partition's `running` flag is
    /// not this thread's.
    pub(super) fn settle_late(
        &self,
        mut st: FenceGuard<'_, PartState<T>>,
        p: u32,
        (batch, ended): (Batch<T>, Ended),
        result: Result<(), SinkError>,
        elapsed: Duration,
    ) {
        st.count_late_return(elapsed);
        let (attempt, items) = (batch.attempt, batch.len());
        let mut events = Events::new();
        let mut failed_items = None;
        let mut discarded = None;
        if ended == Ended::Copied {
            discarded = Some(batch); // its items' `Drop` runs without the lock
        } else if let Some(batch) =
            self.after_failure(&mut st, batch, &mut events, &mut failed_items)
        {
            st.requeue_late(batch);
        }
        self.kick(&mut st, p);
        let part = &self.parts[p as usize];
        part.notify(&st);
        drop(st);
        let error = result.err().map(|e| e.to_string());
        self.observe(|obs| {
            obs.on_abandoned_return(&AbandonedReturnEvent {
                buffer: &self.name,
                partition: p,
                attempt,
                items,
                duration: elapsed,
                error: error.as_deref(),
            })
        });
        self.emit(p, events);
        drop(failed_items);
        drop(discarded);
    }

    /// Sink calls running now, abandoned ones included.
    pub(super) fn running_calls(&self) -> u64 {
        self.parts
            .iter()
            .map(|part| part.state.lock().running_calls() as u64)
            .sum()
    }

    /// Whether the calling thread is inside one of this buffer's sink calls
    /// (where `sync_flush` and `close` would wait on themselves).
    pub(super) fn in_own_sink(&self) -> bool {
        self.parts
            .iter()
            .any(|part| part.state.lock().in_call_here())
    }

    /// Drops, counted, everything in memory that no sink call holds, once
    /// the sink will never be called again (`spw_buffer_free`).
    pub(crate) fn drop_undelivered(&self) {
        for (i, part) in self.parts.iter().enumerate() {
            let mut st = part.state.lock();
            let items = st.drop_undelivered();
            part.notify(&st);
            drop(st);
            self.emit(i as u32, Events::dropped(items.len(), DropReason::Closed));
            drop(items);
        }
    }
}
