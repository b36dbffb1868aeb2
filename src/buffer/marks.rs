//! `sync_flush` and `close`: leave a mark in every partition for what it
//! holds at the call, kick the flushes, and wait until the marks are
//! resolved or the deadline passes.

use std::time::{Duration, Instant};

use crate::engine::Closable;
use crate::observer::DropReason;
use crate::sink::FlushReason;
use crate::stats::CloseReport;
use crate::sync::atomic::Ordering;
use crate::sync::heavy_fence;
use crate::weigh::Weigh;

use super::error::SyncFlushError;
use super::partition::Mark;
use super::report::{FlushReport, PartitionFlush};
use super::shared::{Events, Shared};

/// How often a closing buffer retries a failed removal of delivered spool
/// records while its close waits for the records behind them.
const CLOSE_REMOVAL_RETRY: Duration = Duration::from_millis(10);

impl<T: Weigh + Send + 'static> Shared<T> {
    /// Leaves a mark in every partition for what it holds now (rings
    /// drained, open chunk sealed with `reason`) and kicks the flushes.
    fn mark_all(&self, reason: FlushReason, closing: bool) -> Vec<(u32, u64)> {
        let mut marks = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            let p = i as u32;
            let mut st = part.state.lock();
            if closing {
                st.flow_mut().closing = true;
            }
            self.drain(&mut st, usize::MAX);
            if closing {
                st.flow_mut().final_drained = true;
            }
            st.seal_open(reason);
            if st.unresolved() > 0 {
                marks.push((p, st.add_mark()));
            }
            self.kick(&mut st, p);
            if closing {
                part.notify(&st);
            }
        }
        marks
    }

    /// Waits until mark `id` of partition `p` is resolved or `deadline`
    /// passes; returns it and whether it timed out.
    fn wait_mark(&self, p: u32, id: u64, deadline: Instant) -> (Option<Mark>, bool) {
        let part = &self.parts[p as usize];
        let mut next_removal = Instant::now();
        loop {
            self.engine.assist();
            self.emit_notes(p); // a failed removal retried below
            let mut st = part.state.lock();
            if let Some(m) = st.take_mark_if_done(id) {
                return (Some(m), false);
            }
            let now = Instant::now();
            if now >= deadline {
                return (st.remove_mark(id), true);
            }
            // A manual engine progresses only on this thread: look again soon.
            let mut until = if self.engine.is_manual() {
                deadline.min(now + Duration::from_millis(1))
            } else {
                deadline
            };
            // The interval timer retries a failed removal of delivered spool
            // records, but does nothing once the buffer is closing, and the
            // records behind them hold this mark: close retries it itself.
            if st.flow().closing && st.spool_remove_pending() {
                if now >= next_removal {
                    next_removal = now + CLOSE_REMOVAL_RETRY;
                    if st.retry_remove() {
                        self.kick(&mut st, p);
                    }
                    continue;
                }
                until = until.min(next_removal);
            }
            st.flow_mut().waiters += 1;
            st.wait(&part.changed, Some(until));
            st.flow_mut().waiters -= 1;
        }
    }

    fn collect(&self, marks: Vec<(u32, u64)>, deadline: Instant) -> (FlushReport, bool) {
        let mut report = FlushReport {
            partitions: Vec::new(),
        };
        let mut timed_out = false;
        for (p, id) in marks {
            let (mark, to) = self.wait_mark(p, id, deadline);
            timed_out |= to;
            if let Some(m) = mark {
                report.partitions.push(PartitionFlush {
                    partition: p,
                    delivered: m.delivered,
                    dropped: m.dropped,
                    dumped: m.dumped,
                    spooled: m.spooled,
                    undelivered: m.remaining,
                });
            }
        }
        (report, timed_out)
    }

    pub(crate) fn sync_flush(&self, timeout: Duration) -> Result<FlushReport, SyncFlushError> {
        if self.is_closed() {
            return Err(SyncFlushError::Closed);
        }
        if self.in_own_sink() {
            return Err(SyncFlushError::InsideSink);
        }
        let deadline = Instant::now() + timeout;
        let marks = self.mark_all(FlushReason::Manual, false);
        let (report, timed_out) = self.collect(marks, deadline);
        if timed_out {
            Err(SyncFlushError::Timeout(report))
        } else {
            Ok(report)
        }
    }

    /// At the end of close, with `overflow: spill`: whatever is still in
    /// memory and not with the sink goes to the spool, which is then synced
    /// and closed, so the next buffer on the same `spool_dir` delivers it. A
    /// batch still with a sink that never returned stays with it; if that
    /// sink returns later, its records are delivered again by the next run
    /// (at least once). Returns how many spooled records are not known to
    /// be durable (a spool's final flush failed).
    fn settle_spools(&self) -> u64 {
        let Some(codec) = &self.codec else { return 0 };
        let mut not_durable = 0;
        for (i, part) in self.parts.iter().enumerate() {
            let settled = part.state.lock().settle_spool(codec);
            not_durable += settled.not_durable;
            let lost = usize::try_from(settled.lost).unwrap_or(usize::MAX);
            self.emit(i as u32, Events::dropped(lost, DropReason::Closed));
        }
        not_durable
    }

    pub(crate) fn close(&self, timeout: Duration) -> CloseReport {
        let deadline = Instant::now() + timeout;
        self.begin_close();
        if self.in_own_sink() {
            // Waiting here would wait for this very call: the close goes on
            // (inserts stop, everything is flushed), but this returns at once
            // and keeps no report, so a later close from outside still waits.
            let counts = self.stats().counts;
            return CloseReport {
                undelivered: counts.buffered + counts.in_flight,
                spooled: counts.spooled,
                timed_out: true,
                running_calls: self.running_calls(),
                counts,
                ..CloseReport::default()
            };
        }
        self.finish_close(deadline)
    }
}

impl<T: Weigh + Send + 'static> Closable for Shared<T> {
    fn begin_close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // The heavy half of the pair whose light half the producer handle's
        // push runs (the ring's publication fence): a push this drain does
        // not see is one whose producer will see `closed` and take its item
        // back. Close is rare, so it pays the process-wide barrier.
        heavy_fence();
        let marks = self.mark_all(FlushReason::Close, true);
        *self.close_marks.lock() = marks;
    }

    fn finish_close(&self, deadline: Instant) -> CloseReport {
        let mut done = self.close_report.lock();
        if let Some(r) = done.as_ref() {
            return r.clone();
        }
        let marks = std::mem::take(&mut *self.close_marks.lock());
        let (flushed, timed_out) = self.collect(marks, deadline);
        let unsynced = self.settle_spools();
        let counts = self.stats().counts;
        let report = CloseReport {
            running_calls: self.running_calls(),
            delivered: flushed.delivered(),
            dropped: flushed.dropped(),
            undelivered: flushed.undelivered(),
            spooled: counts.spooled.saturating_sub(unsynced),
            not_durable: counts.buffered + counts.in_flight + unsynced,
            timed_out,
            counts,
        };
        self.engine.unregister(&self.name, self.me.as_ptr().cast());
        if self.private_engine {
            self.engine.shutdown(deadline);
        }
        *done = Some(report.clone());
        report
    }
}
