//! `flush_timeout` enforced: each sink call arms a watchdog on the engine's
//! timer; at its deadline a call still running is abandoned. The attempt
//! counts as failed, the engine replaces the flusher thread stuck in it, and
//! the partition flushes on. The call's batch stays with it (the sink still
//! borrows the items): when it returns, whatever it returned, the batch goes
//! again under the usual policy, so a late `Ok` means it arrives twice (at
//! least once).

use std::time::{Duration, Instant};

use crate::engine::{TimerKind, WorkerId};
use crate::observer::{AbandonedReturnEvent, DropReason, FlushTimeoutEvent};
use crate::sink::SinkError;
use crate::sync::MutexGuard;
use crate::weigh::Weigh;

use super::partition::{Batch, PartState};
use super::shared::{Events, Shared};

impl<T: Weigh + Send + 'static> Shared<T> {
    /// Records the sink call about to start for `batch` on `worker`, and
    /// makes sure the partition's watchdog will look at it (a manual engine
    /// has none: its calls run on the caller's thread, which nothing could
    /// replace). One timer entry per partition at most, re-armed when it
    /// fires, so a busy partition does not fill the timer heap. Returns the
    /// call's id and its deadline, as the sink is told it.
    pub(super) fn begin_call(
        &self,
        st: &mut PartState<T>,
        p: u32,
        worker: Option<WorkerId>,
        batch: &Batch<T>,
    ) -> (u64, Instant) {
        let deadline = Instant::now() + self.config.flush_timeout;
        let id = st.begin_call(worker, batch, deadline);
        if worker.is_some() && !self.engine.is_manual() && st.flow().watchdog.is_none() {
            st.flow_mut().watchdog = Some(deadline);
            self.arm(deadline, p, TimerKind::Watchdog, 0);
        }
        (id, deadline)
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
        let overdue = st.overdue_call(now).cloned();
        // Under the partition lock, so the call cannot settle meanwhile: the
        // worker is still inside it when the engine marks it detached.
        let abandoned = overdue
            .clone()
            .filter(|call| call.worker.is_some_and(|worker| self.engine.detach(worker)));
        // Past the engine's bound: the call keeps its thread. Reported once,
        // so a user sees why the partition stopped flushing.
        let kept = match (&overdue, &abandoned) {
            (Some(call), None) if st.keep_call(call.id) => Some(call.clone()),
            _ => None,
        };
        if let Some(call) = &abandoned {
            st.abandon_call(call.id);
            // The abandoned flush owned `running`; it passes to the queue,
            // or ends.
            let room = self.room(&st);
            self.drain(&mut st, room);
            if st.has_ready() {
                self.schedule(p);
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
    }

    /// An abandoned call returned (on its detached thread, which then
    /// leaves the pool). Its result is only counted; the batch, already
    /// counted as a failed attempt, is queued again, spilled or dropped as
    /// the policy says. The partition's `running` flag is not this thread's.
    pub(super) fn settle_late(
        &self,
        mut st: MutexGuard<'_, PartState<T>>,
        p: u32,
        batch: Batch<T>,
        result: Result<(), SinkError>,
        elapsed: Duration,
    ) {
        st.count_late_return(elapsed);
        let (attempt, items) = (batch.attempt, batch.len());
        let mut events = Events::new();
        let mut failed_items = None;
        let again = self.after_failure(&mut st, batch, &mut events, &mut failed_items);
        if let Some(batch) = again {
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
