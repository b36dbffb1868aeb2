//! Admission: an item enters a partition, or the overflow policy decides
//! what happens when the partition holds `capacity` items or
//! `capacity_bytes` bytes.
//!
//! `overflow: spill` spills only while the sink is failing (its last attempt
//! on the partition failed); a healthy sink that is merely slower than the
//! input is backpressure, and the insert waits as under `block`, so a slow
//! output does not fill the disk.

use std::time::Instant;

use crate::config::Overflow;
use crate::observer::DropReason;
use crate::ring::fence_lock::FenceGuard;
use crate::sink::FlushReason;
use crate::weigh::Weigh;

use super::error::InsertError;
use super::partition::{weigh, PartState};
use super::shared::{Events, Partition, Shared};

impl<T: Weigh + Send + 'static> Shared<T> {
    /// The common case of [`admit`](Self::admit), small enough to inline
    /// into every insert: an open partition with room, and no spool holding
    /// its newest items. Gives the item back when any of that is not so.
    #[inline]
    fn admit_fast(
        &self,
        st: &mut FenceGuard<'_, PartState<T>>,
        p: u32,
        item: T,
        weight: u64,
    ) -> Result<(), T> {
        if st.flow().closing
            || (self.codec.is_some() && st.spool_tail())
            || self.is_full(st, weight)
        {
            return Err(item);
        }
        if st.admit(item, weight, self.limits) {
            self.kick(st, p);
        }
        Ok(())
    }

    /// Admits one item into partition `p` under its lock, applying the
    /// overflow policy when the partition is full.
    #[inline(never)]
    fn admit(
        &self,
        part: &Partition<T>,
        st: &mut FenceGuard<'_, PartState<T>>,
        p: u32,
        item: T,
        weight: u64,
        events: &mut Events<T>,
    ) -> Result<(), InsertError<T>> {
        let cfg = &self.config;
        let mut deadline = None;
        let mut item = item;
        let mut spill_failed = false;
        loop {
            if st.flow().closing {
                return Err(InsertError::Closed(item));
            }
            // Only while the spool holds the partition's newest items.
            if let (Some(codec), true) = (&self.codec, st.spool_tail()) {
                match st.admit_to_spool(item, codec) {
                    Ok(()) => return Ok(()),
                    Err(back) => {
                        item = back;
                        // The spool refused it: do not try to spill again in
                        // this call, or a failing spool would make us spin.
                        spill_failed = true;
                    }
                }
            }
            if !self.is_full(st, weight) {
                break;
            }
            events.overflow = true;
            let policy = match cfg.overflow {
                Overflow::Spill if !spill_failed && st.sink_failing() => {
                    let spilled = self.codec.as_ref().is_some_and(|c| st.spill_pending(c));
                    if spilled {
                        part.notify(st);
                    } else {
                        spill_failed = true;
                    }
                    continue; // the item follows its elders to the spool
                }
                // A healthy sink is backpressure, and a full or failing
                // spool leaves nowhere else to go: wait for room as `block`
                // does (a sink failing meanwhile wakes us to spill).
                Overflow::Spill => Overflow::Block,
                other => other,
            };
            match policy {
                Overflow::Block => {
                    let dl = *deadline.get_or_insert_with(|| Instant::now() + cfg.block_timeout);
                    if !st.has_ready() {
                        // Full by bytes with the open chunk short of
                        // `max_size`: flush it rather than wait for the
                        // interval.
                        st.seal_open(FlushReason::Size);
                    }
                    self.kick(st, p);
                    st.flow_mut().waiters += 1;
                    let timed_out = st.wait(&part.changed, Some(dl));
                    st.flow_mut().waiters -= 1;
                    if timed_out && self.is_full(st, weight) && !st.flow().closing {
                        return Err(InsertError::Timeout(item));
                    }
                }
                Overflow::DropOldest => match st.evict_oldest() {
                    // One eviction frees a slot; `capacity_bytes` may take
                    // more, so look again.
                    Some(old) => {
                        events.garbage.push(old);
                        match events.dropped.last_mut() {
                            Some((n, DropReason::DropOldest)) => *n += 1,
                            _ => events.dropped.push((1, DropReason::DropOldest)),
                        }
                    }
                    // Everything held is in flight: nothing old to evict, so
                    // the new item is the one given up.
                    None => {
                        return Err(Self::refuse_newest(
                            st,
                            item,
                            events,
                            DropReason::NothingToEvict,
                        ))
                    }
                },
                Overflow::DropNewest => {
                    return Err(Self::refuse_newest(
                        st,
                        item,
                        events,
                        DropReason::DropNewest,
                    ))
                }
                Overflow::Reject | Overflow::Spill => return Err(InsertError::Full(item)),
            }
        }
        if st.admit(item, weight, self.limits) {
            self.kick(st, p);
        }
        Ok(())
    }

    /// Whether partition `st` has no room for an item of `weight` bytes:
    /// `capacity` items, or `capacity_bytes` (an empty partition takes any
    /// one item, or one heavier than the bound would wait forever).
    fn is_full(&self, st: &PartState<T>, weight: u64) -> bool {
        let cfg = &self.config;
        st.held() >= cfg.capacity
            || (cfg.capacity_bytes > 0
                && st.held() > 0
                && st.held_bytes().saturating_add(weight) > cfg.capacity_bytes)
    }

    fn refuse_newest(
        st: &mut PartState<T>,
        item: T,
        events: &mut Events<T>,
        reason: DropReason,
    ) -> InsertError<T> {
        st.refuse_newest();
        events.dropped.push((1, reason));
        InsertError::Full(item)
    }

    pub(crate) fn insert_to(&self, p: u32, item: T) -> Result<(), InsertError<T>> {
        if self.is_closed() {
            return Err(InsertError::Closed(item));
        }
        let w = weigh(&item);
        let part = &self.parts[p as usize];
        let mut st = part.state.lock();
        let result = match self.admit_fast(&mut st, p, item, w) {
            Ok(()) => {
                drop(st);
                self.emit_notes(p);
                Ok(())
            }
            Err(item) => {
                let mut events = Events::new();
                let result = self.admit(part, &mut st, p, item, w, &mut events);
                drop(st);
                self.emit(p, events);
                result
            }
        };
        if self.wants_inserts && result.is_ok() {
            self.emit_insert(p, w);
        }
        result
    }

    pub(crate) fn insert_batch_to<I: Iterator<Item = T>>(
        &self,
        p: u32,
        items: &mut I,
    ) -> Result<usize, (usize, InsertError<T>)> {
        let part = &self.parts[p as usize];
        let mut inserted = 0;
        let mut events = Events::new();
        let mut st = part.state.lock();
        for item in items.by_ref() {
            if self.is_closed() && !st.flow().closing {
                // Close has begun but not reached this partition yet.
                drop(st);
                self.emit(p, events);
                return Err((inserted, InsertError::Closed(item)));
            }
            let w = weigh(&item);
            match self.admit(part, &mut st, p, item, w, &mut events) {
                Ok(()) if self.wants_inserts => {
                    inserted += 1;
                    drop(st);
                    self.emit(p, std::mem::replace(&mut events, Events::new()));
                    self.emit_insert(p, w);
                    st = part.state.lock();
                    continue;
                }
                Ok(()) => inserted += 1,
                Err(e) => {
                    drop(st);
                    self.emit(p, events);
                    return Err((inserted, e));
                }
            }
            // Emit as we go, so an observer sees each drop of a long batch.
            if events.any() {
                let ev = std::mem::replace(&mut events, Events::new());
                drop(st);
                self.emit(p, ev);
                st = part.state.lock();
            }
        }
        drop(st);
        self.emit(p, events);
        Ok(inserted)
    }

    /// Asks partition `p` to check for work: drains its rings and, for
    /// anything but a size hint, seals the open chunk so it flushes now.
    pub(crate) fn request(&self, p: u32, reason: FlushReason) {
        let part = &self.parts[p as usize];
        let mut st = part.state.lock();
        let room = self.room(&st);
        self.drain(&mut st, room);
        if reason != FlushReason::Size {
            st.seal_open(reason);
        }
        self.kick(&mut st, p);
    }

    /// A producer handle's size hint for partition `p`: hands the draining
    /// of its rings to a flusher rather than doing it on the producer's
    /// thread, so a handle's insert stays a ring push. Schedules the
    /// partition unless a flush owns it already; that flush drains the
    /// rings again when its sink call returns.
    ///
    /// A manual engine runs queued work only when its owner says so, so
    /// there the hint drains on the producer's thread, as `request` does.
    pub(crate) fn nudge(&self, p: u32) {
        if self.engine.is_manual() {
            return self.request(p, FlushReason::Size);
        }
        let mut st = self.parts[p as usize].state.lock();
        if !st.flow().running && st.has_rings() {
            st.flow_mut().running = true;
            self.schedule(&st, p);
        }
    }

    /// Asks every partition to flush what it holds; returns at once.
    pub(crate) fn flush(&self) {
        for p in 0..self.partitions() {
            self.request(p, FlushReason::Manual);
        }
    }

    /// Takes every buffered item out without flushing it (`dump`).
    pub(crate) fn dump(&self) -> Vec<T> {
        let mut out = Vec::new();
        for part in &self.parts {
            let mut st = part.state.lock();
            self.drain(&mut st, usize::MAX);
            st.take_pending(&mut out);
            part.notify(&st);
        }
        out
    }
}
