//! What the partition's spool did that the observer must hear of (items
//! spilled, spool operations that failed), noted under the partition lock
//! and emitted after it is released (`books.rs` notes them).
//!
//! The notes sit behind their own small lock, shared with the `Partition`
//! (`shared.rs`) that emits them, and a flag that the emitting side reads
//! first: a partition with nothing noted costs every emit one relaxed load.

use crate::observer::SpillReason;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::Mutex;

/// Notes kept at most; past it, further ones are only counted (the spool
/// error counter still sees every failure), so a partition whose observer
/// never drains cannot grow without bound.
const MAX_NOTES: usize = 64;

/// One event for the observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// Items went to the spool (consecutive ones of one reason are merged).
    Spill {
        items: usize,
        bytes: u64,
        reason: SpillReason,
    },
    /// A spool operation failed.
    SpoolError {
        operation: &'static str,
        error: String,
    },
}

/// The notes of one partition, waiting to be emitted.
pub(crate) struct Notes {
    pending: AtomicBool,
    list: Mutex<Vec<Note>>,
}

impl Notes {
    pub(crate) fn new() -> Self {
        Self {
            pending: AtomicBool::new(false),
            list: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn push(&self, note: Note) {
        let mut list = self.list.lock();
        let full = list.len() >= MAX_NOTES;
        match (list.last_mut(), &note) {
            (
                Some(Note::Spill {
                    items,
                    bytes,
                    reason,
                }),
                Note::Spill {
                    items: more,
                    bytes: more_bytes,
                    reason: r,
                },
            ) if reason == r => {
                *items += more;
                *bytes += more_bytes;
            }
            _ if full => {}
            _ => list.push(note),
        }
        self.pending.store(true, Ordering::Release);
    }

    /// Whether anything may be noted: the cheap check before [`take`](Self::take).
    #[inline]
    pub(crate) fn pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Takes what was noted; cheap when nothing was.
    pub(crate) fn take(&self) -> Vec<Note> {
        if !self.pending() {
            return Vec::new();
        }
        let mut list = self.list.lock();
        self.pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut *list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_of_one_reason_merge_and_the_list_is_bounded() {
        let notes = Notes::new();
        assert!(notes.take().is_empty());
        let spill = |items, reason| Note::Spill {
            items,
            bytes: 10 * items as u64,
            reason,
        };
        notes.push(spill(1, SpillReason::Overflow));
        notes.push(spill(2, SpillReason::Overflow));
        notes.push(spill(3, SpillReason::Close));
        assert_eq!(
            notes.take(),
            vec![
                spill(3, SpillReason::Overflow),
                spill(3, SpillReason::Close)
            ]
        );
        assert!(notes.take().is_empty(), "taken once");
        for _ in 0..MAX_NOTES + 10 {
            notes.push(Note::SpoolError {
                operation: "sync",
                error: "EIO".into(),
            });
        }
        assert_eq!(notes.take().len(), MAX_NOTES);
    }
}
