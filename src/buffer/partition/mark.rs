//! What a `sync_flush` or `close` waits for in one partition: a mark that
//! counts down the items buffered at its call as they are resolved.

/// What became of resolved items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    Dropped,
    Dumped,
    /// Left in the spool for the next run (the sink failed while closing).
    Spooled,
}

/// What a `sync_flush` or `close` waits for in one partition.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    id: u64,
    /// Items with a sequence number below this were buffered at the call.
    target: u64,
    /// How many of them are not resolved yet.
    pub(crate) remaining: u64,
    pub(crate) delivered: u64,
    pub(crate) dropped: u64,
    pub(crate) dumped: u64,
    pub(crate) spooled: u64,
}

/// The marks of one partition.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    marks: Vec<Mark>,
    next: u64,
}

impl Marks {
    /// Counts `n` items from `first_seq` on as resolved, for every mark.
    pub(crate) fn resolve(&mut self, first_seq: u64, n: u64, outcome: Outcome) {
        for m in self.marks.iter_mut() {
            let overlap = m.target.min(first_seq + n).saturating_sub(first_seq);
            if overlap == 0 {
                continue;
            }
            m.remaining = m.remaining.saturating_sub(overlap);
            match outcome {
                Outcome::Delivered => m.delivered += overlap,
                Outcome::Dropped => m.dropped += overlap,
                Outcome::Dumped => m.dumped += overlap,
                Outcome::Spooled => m.spooled += overlap,
            }
        }
    }
}

impl Marks {
    /// Leaves a mark for the items with a sequence number below `target`, of
    /// which `remaining` are unresolved. Returns its id.
    pub(crate) fn add(&mut self, target: u64, remaining: u64) -> u64 {
        let id = self.next;
        self.next += 1;
        self.marks.push(Mark {
            id,
            target,
            remaining,
            delivered: 0,
            dropped: 0,
            dumped: 0,
            spooled: 0,
        });
        id
    }

    /// The mark `id` if it is resolved (removing it), or `None`.
    pub(crate) fn take_if_done(&mut self, id: u64) -> Option<Mark> {
        let i = self.marks.iter().position(|m| m.id == id)?;
        if self.marks[i].remaining == 0 {
            Some(self.marks.swap_remove(i))
        } else {
            None
        }
    }

    /// Removes the mark `id` whatever its state (a waiter gave up).
    pub(crate) fn remove(&mut self, id: u64) -> Option<Mark> {
        let i = self.marks.iter().position(|m| m.id == id)?;
        Some(self.marks.swap_remove(i))
    }
}
