//! One flush of a partition: take the front ready batch under the lock,
//! call the sink without it, then settle the result under it again:
//! delivered, retried after a backoff, spilled, or given up.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::engine::{TimerKind, WorkerId};
use crate::observer::{DropReason, FlushEnd, FlushStart, RetryEvent};
use crate::panic::panic_message;
use crate::ring::fence_lock::FenceGuard;
use crate::sink::{FlushContext, SinkError};
use crate::weigh::Weigh;

use super::partition::{Batch, Ended, PartState};
use super::shared::{Events, Shared};

impl<T: Weigh + Send + 'static> Shared<T> {
    /// What becomes of a batch whose attempt failed (an error, a panic, or a
    /// call abandoned at `flush_timeout` that has returned): it comes back
    /// for another attempt while retries are left; then it goes to the spool
    /// if there is one (a batch the spool refuses comes back too, so under
    /// spill nothing is dropped); else it is dropped, its items handed back
    /// in `dropped` (to be dropped without the lock) and the drop noted in
    /// `events`.
    pub(super) fn after_failure(
        &self,
        st: &mut PartState<T>,
        batch: Batch<T>,
        events: &mut Events<T>,
        dropped: &mut Option<Vec<T>>,
    ) -> Option<Batch<T>> {
        if batch.attempt < self.config.max_retries {
            Some(batch)
        } else if let (Some(codec), true) = (&self.codec, st.has_spool()) {
            st.spill_batch(batch, codec).err()
        } else {
            *events = Events::dropped(batch.held, DropReason::SinkFailed);
            *dropped = Some(st.drop_batch(batch));
            None
        }
    }

    /// One flush of partition `p`, on flusher thread `worker` (`None`: a
    /// thread assisting a manual engine).
    pub(super) fn flush_one(&self, p: u32, worker: Option<WorkerId>) {
        let part = &self.parts[p as usize];
        let mut st = part.state.lock();
        let room = self.room(&st);
        self.drain(&mut st, room);
        let Some(mut batch) = st.take_batch(self.config.max_size, self.codec.as_ref()) else {
            // Nothing ready; or a batch waits out its backoff, and then the
            // retry timer owns the partition (`running` stays set).
            if !st.has_retry() {
                st.flow_mut().running = false;
            }
            drop(st);
            self.emit_notes(p); // a failed spool read
            return;
        };
        let (call, deadline, lent) = self.begin_call(&mut st, p, worker, &mut batch);
        drop(st);

        let items = lent
            .as_deref()
            .map_or(&batch.chunk.items[..], |l| l.items());
        let (result, elapsed) = self.call_sink(p, &batch, items, deadline);

        let mut st = part.state.lock();
        let ended = st.end_call(call);
        if let Some(lent) = lent {
            // The books let go of their share in `end_call`: no copy here.
            batch.chunk.items = lent.into_items();
        }
        if ended != Ended::Settle {
            self.settle_late(st, p, (batch, ended), result, elapsed);
            return;
        }
        // Past flush_timeout but kept (no thread to replace it, or a manual
        // engine): counted timed out, settled as usual.
        let timed_out = elapsed > self.config.flush_timeout;
        let mut events = Events::new();
        let mut failed_items = None;
        st.record_call(elapsed, timed_out);
        match result {
            Ok(()) => {
                let corrupt = st.deliver(batch);
                events = Events::dropped(corrupt, DropReason::Corrupt);
            }
            Err(_) => {
                st.count_failure();
                // Under `overflow: spill`, an insert waiting on a full
                // partition now spills instead.
                part.notify(&st);
                let again = self.after_failure(&mut st, batch, &mut events, &mut failed_items);
                if let Some(batch) = again {
                    self.retry_later(st, p, batch);
                    return;
                }
            }
        }
        self.restart_interval(&mut st, p);
        let room = self.room(&st);
        self.drain(&mut st, room);
        if st.has_ready() {
            self.schedule(&st, p); // `running` stays set: the queue owns it
        } else {
            st.flow_mut().running = false;
        }
        part.notify(&st);
        drop(st);
        self.emit(p, events);
        drop(failed_items);
    }

    /// Calls the sink with `items`, those of `batch` (no lock held), between
    /// the observer's start and end events. A panicking sink is a failed
    /// call.
    fn call_sink(
        &self,
        p: u32,
        batch: &Batch<T>,
        items: &[T],
        deadline: Instant,
    ) -> (Result<(), SinkError>, Duration) {
        let cfg = &self.config;
        let n = items.len();
        self.observe(|obs| {
            obs.on_flush_start(&FlushStart {
                buffer: &self.name,
                partition: p,
                reason: batch.reason,
                attempt: batch.attempt,
                items: n,
            })
        });
        let started = Instant::now();
        let ctx = FlushContext {
            buffer: &self.name,
            partition: p,
            reason: batch.reason,
            attempt: batch.attempt,
            deadline,
            flush_meta: cfg.flush_meta.as_deref(),
            batch_bytes: batch.chunk.bytes,
        };
        let result = catch_unwind(AssertUnwindSafe(|| self.sink.flush(items, &ctx)))
            .unwrap_or_else(|payload| {
                Err(SinkError::msg(format!(
                    "sink panicked: {}",
                    panic_message(payload.as_ref())
                )))
            });
        let elapsed = started.elapsed();
        self.observe(|obs| {
            let msg = result.as_ref().err().map(ToString::to_string);
            obs.on_flush_end(&FlushEnd {
                buffer: &self.name,
                partition: p,
                reason: batch.reason,
                attempt: batch.attempt,
                items: n,
                duration: elapsed,
                error: msg.as_deref(),
                timed_out: elapsed > cfg.flush_timeout,
            })
        });
        (result, elapsed)
    }

    /// Keeps a failed batch for its next attempt after a backoff, arms the
    /// retry timer, and tells the observer after releasing the partition's
    /// lock, which it takes from the caller.
    fn retry_later(&self, mut st: FenceGuard<'_, PartState<T>>, p: u32, batch: Batch<T>) {
        let backoff = self.backoff(&mut st, batch.attempt);
        let attempt = batch.attempt + 1;
        let items = batch.len();
        let gen = st.retry_later(batch);
        let at = self.engine.now() + backoff;
        self.arm(at, p, TimerKind::Retry, gen);
        drop(st);
        self.observe(|obs| {
            obs.on_retry(&RetryEvent {
                buffer: &self.name,
                partition: p,
                attempt,
                backoff,
                items,
            })
        });
    }

    /// The wait before attempt `attempt + 1`: `retry_backoff` doubled per
    /// attempt, capped at `retry_backoff_max`, with "equal jitter".
    fn backoff(&self, st: &mut PartState<T>, attempt: u32) -> Duration {
        let c = &self.config;
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        let full = c
            .retry_backoff
            .saturating_mul(factor)
            .min(c.retry_backoff_max);
        // "Equal jitter": somewhere in [full/2, full], so retries of many
        // partitions do not hit a recovering sink at the same instant.
        let half = full / 2;
        half + st.jitter(full - half)
    }
}
