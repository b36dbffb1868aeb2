//! The operations of a partition's books that serve its observers and
//! waiters: the marks `sync_flush` and close wait on, the spool's notes for
//! the observer, and whether the sink is failing. (Apart from `mod.rs` so
//! that `mark.rs` and `notes.rs` stay leaves that import nothing back.)

use crate::observer::SpillReason;
use crate::spool::SpoolError;
use crate::sync::rc::Arc;

use super::mark::{Mark, Outcome};
use super::notes::{Note, Notes};
use super::PartState;

impl<T> PartState<T> {
    /// The notes this partition fills, for the side that emits them.
    pub(crate) fn notes(&self) -> Arc<Notes> {
        Arc::clone(&self.notes)
    }

    /// `items` items of `bytes` encoded bytes went to the spool.
    pub(super) fn note_spill(&mut self, items: usize, bytes: u64, reason: SpillReason) {
        if items > 0 {
            self.notes.push(Note::Spill {
                items,
                bytes,
                reason,
            });
        }
    }

    /// A spool operation failed: counted in `spool_errors` and noted. A full
    /// spool is not a failure but its bound: what it means for the items is
    /// reported by the fallback (waiting, or a drop).
    pub(super) fn note_spool_error(&mut self, operation: &'static str, error: &SpoolError) {
        if matches!(error, SpoolError::Full(_)) {
            return;
        }
        self.counts.spool_errors += 1;
        self.notes.push(Note::SpoolError {
            operation,
            error: error.to_string(),
        });
    }

    /// Whether the sink's last attempt on this partition failed (a batch is
    /// being retried, or was spilled): what makes a full partition spill
    /// under `overflow: spill` rather than wait.
    pub(crate) fn sink_failing(&self) -> bool {
        self.sink_failing
    }
}

impl<T> PartState<T> {
    /// Counts `n` items from `first_seq` on as resolved, for every mark.
    pub(super) fn resolve(&mut self, first_seq: u64, n: u64, outcome: Outcome) {
        self.marks.resolve(first_seq, n, outcome);
    }

    /// Leaves a mark for everything buffered now (call after draining the
    /// rings and sealing the open chunk). Returns its id.
    pub(crate) fn add_mark(&mut self) -> u64 {
        let remaining = self.unresolved();
        self.marks.add(self.pending.next_seq(), remaining)
    }

    /// The mark `id` if it is resolved (removing it), or `None`.
    pub(crate) fn take_mark_if_done(&mut self, id: u64) -> Option<Mark> {
        self.marks.take_if_done(id)
    }

    /// Removes the mark `id` whatever its state (a waiter gave up).
    pub(crate) fn remove_mark(&mut self, id: u64) -> Option<Mark> {
        self.marks.remove(id)
    }
}
