//! The partition's deadlines on the engine's timer: the flush interval (one
//! armed entry per partition, re-armed lazily) and a failed batch's retry
//! backoff; and the buffer as the engine's [`Task`].

use crate::engine::{Task, TimerKind, WorkerId};
use crate::sink::FlushReason;
use crate::weigh::Weigh;

use super::partition::PartState;
use super::shared::Shared;

impl<T: Weigh + Send + 'static> Shared<T> {
    /// Starts the flush interval afresh (with new jitter), arming the
    /// partition's one timer entry if it has none.
    pub(super) fn restart_interval(&self, st: &mut PartState<T>, p: u32) {
        let jitter = st.jitter(self.config.flush_jitter);
        let at = self.engine.now() + self.config.flush_interval + jitter;
        let flow = st.flow_mut();
        flow.next_deadline = at;
        if flow.armed.is_none() && !flow.closing {
            flow.armed = Some(at);
            self.arm(at, p, TimerKind::Interval, 0);
        }
    }

    fn on_interval(&self, p: u32) {
        self.interval(p);
        // The interval syncs the spool: its failure reaches the observer.
        self.emit_notes(p);
    }

    fn interval(&self, p: u32) {
        let mut st = self.parts[p as usize].state.lock();
        st.flow_mut().armed = None;
        if st.flow().closing {
            return;
        }
        if st.sync_spool_if_due() {
            self.kick(&mut st, p); // its spool can be read again
        }
        let now = self.engine.now();
        let next = st.flow().next_deadline;
        if now < next {
            // A flush restarted the interval since this entry was armed.
            st.flow_mut().armed = Some(next);
            self.arm(next, p, TimerKind::Interval, 0);
            return;
        }
        let room = self.room(&st);
        self.drain(&mut st, room);
        st.seal_open(FlushReason::Time);
        self.kick(&mut st, p);
        self.restart_interval(&mut st, p);
    }

    fn on_retry(&self, p: u32, gen: u64) {
        let mut st = self.parts[p as usize].state.lock();
        if st.retry_due(gen) {
            // `running` is still set by the failed flush: we own the partition.
            self.schedule(&st, p);
        }
    }
}

impl<T: Weigh + Send + 'static> Task for Shared<T> {
    fn run(&self, partition: u32, worker: Option<WorkerId>) {
        self.flush_one(partition, worker);
    }

    fn fire(&self, partition: u32, kind: TimerKind, gen: u64) {
        match kind {
            TimerKind::Interval => self.on_interval(partition),
            TimerKind::Retry => self.on_retry(partition, gen),
            TimerKind::Watchdog => self.on_watchdog(partition),
        }
    }
}
