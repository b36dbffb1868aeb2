//! The pending queue: items in memory not yet handed to the sink, in chunks
//! that each become one batch.
//!
//! Every chunk but the last is sealed (full by `max_size`/`max_bytes`, or
//! sealed by a time, manual or close trigger); a flush takes the front sealed
//! chunk whole, so the hand-off to the flusher is O(1) under the lock and
//! batches never exceed `max_size` (+ jitter) items. Every item gets the next
//! sequence number when it enters.

use std::collections::VecDeque;

use crate::ring::spsc;
use crate::sink::FlushReason;

use super::super::jitter::Jitter;

/// The sizes that seal a chunk, from the buffer's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// `max_size`: items that seal a chunk.
    pub(crate) max_size: usize,
    /// `max_size_jitter`: up to this many more, drawn per chunk.
    pub(crate) jitter: usize,
    /// `max_bytes`: bytes that seal a chunk (0: no byte limit).
    pub(crate) max_bytes: u64,
}

impl Limits {
    /// Whether a chunk of `len` items and `bytes` bytes under `limit` is full.
    pub(crate) fn full(&self, len: usize, bytes: u64, limit: usize) -> bool {
        len >= limit || (self.max_bytes > 0 && bytes >= self.max_bytes)
    }
}

pub(crate) struct Chunk<T> {
    pub(crate) items: Vec<T>,
    pub(crate) bytes: u64,
    /// Sequence number of `items[0]`; the rest follow contiguously.
    pub(crate) first_seq: u64,
    pub(crate) sealed: Option<FlushReason>,
    /// Items that seal it (`max_size` plus this chunk's jitter).
    pub(crate) limit: usize,
}

impl<T> Chunk<T> {
    /// An open chunk starting at `first_seq`.
    pub(crate) fn open(items: Vec<T>, first_seq: u64, limit: usize) -> Self {
        Self {
            items,
            bytes: 0,
            first_seq,
            sealed: None,
            limit,
        }
    }

    /// A sealed chunk holding `items`, for batches read back from the spool.
    pub(crate) fn sealed(items: Vec<T>, first_seq: u64, bytes: u64) -> Self {
        let limit = items.len();
        Self {
            items,
            bytes,
            first_seq,
            sealed: Some(FlushReason::Replay),
            limit,
        }
    }

    /// Drops the first `n` items' place: they went elsewhere (the spool), so
    /// the chunk now starts `n` later and weighs what is left.
    pub(crate) fn skip(&mut self, n: usize, weigh: impl Fn(&T) -> u64) {
        self.items.drain(..n);
        self.first_seq += n as u64;
        self.bytes = self.items.iter().map(weigh).sum();
    }
}

/// A batch handed to the sink, or waiting for its retry.
pub(crate) struct Batch<T> {
    pub(crate) chunk: Chunk<T>,
    pub(crate) reason: FlushReason,
    pub(crate) attempt: u32,
    /// Read from the spool (its records are removed once delivered).
    pub(crate) from_spool: bool,
    /// Items this batch holds in flight: its items, or for a spooled batch
    /// every record read, decodable or not (they go together).
    pub(crate) held: usize,
}

impl<T> Batch<T> {
    /// Items handed to the sink.
    pub(crate) fn len(&self) -> usize {
        self.chunk.items.len()
    }

    /// This batch with no items (no allocation): what a copy of it is
    /// filled into.
    pub(crate) fn shell(&self) -> Batch<T> {
        let c = &self.chunk;
        Batch {
            chunk: Chunk {
                items: Vec::new(),
                bytes: c.bytes,
                first_seq: c.first_seq,
                sealed: c.sealed,
                limit: c.limit,
            },
            reason: self.reason,
            attempt: self.attempt,
            from_spool: self.from_spool,
            held: self.held,
        }
    }
}

/// How many emptied batch vectors a partition keeps for reuse.
const SPARE_VECS: usize = 4;

/// The queue of chunks, with its totals kept in step by every operation.
pub(crate) struct Pending<T> {
    chunks: VecDeque<Chunk<T>>,
    /// Items in `chunks`.
    len: usize,
    /// Bytes of the items in `chunks`.
    bytes: u64,
    /// The sequence number the next item gets (memory or spool).
    next_seq: u64,
    spare: Vec<Vec<T>>,
    jitter: Jitter,
}

impl<T> Pending<T> {
    /// An empty queue whose first item gets sequence number `next_seq`.
    pub(crate) fn new(next_seq: u64) -> Self {
        Self {
            chunks: VecDeque::new(),
            len: 0,
            bytes: 0,
            next_seq,
            spare: Vec::new(),
            jitter: Jitter::new(),
        }
    }

    /// Items queued.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes queued.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The sequence number the next item gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Gives the next sequence number to an item that goes elsewhere (the
    /// spool), so the order stays one across memory and disk.
    pub(crate) fn skip_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// The front chunk's first sequence number and whether it is sealed.
    pub(crate) fn front(&self) -> Option<(u64, bool)> {
        self.chunks
            .front()
            .map(|c| (c.first_seq, c.sealed.is_some()))
    }

    /// The chunks, oldest first (for tests).
    #[cfg(test)]
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &Chunk<T>> {
        self.chunks.iter()
    }

    /// Makes sure the back chunk is open, starting one if needed. On every
    /// item's path, hence inline, with the once-a-batch part out of line.
    #[inline]
    fn ensure_open(&mut self, limits: Limits) {
        if !matches!(self.chunks.back(), Some(c) if c.sealed.is_none()) {
            self.start_chunk(limits);
        }
    }

    /// Starts a chunk with a fresh size jitter.
    #[cold]
    fn start_chunk(&mut self, limits: Limits) {
        let extra = self.jitter.upto(limits.jitter as u64) as usize;
        let limit = limits.max_size.saturating_add(extra);
        let mut items = self.take_spare();
        items.reserve(limit.min(64 * 1024));
        self.chunks
            .push_back(Chunk::open(items, self.next_seq, limit));
    }

    /// Appends one item to the open chunk (starting one if needed). Returns
    /// true when this item sealed the chunk by size or bytes: the insert
    /// that reaches the threshold fires the flush.
    ///
    /// On every insert's path, under the partition lock: the common case
    /// (an open chunk at the back) looks the chunk up once and is inlined
    /// into the caller; starting a chunk, once a batch, is out of line.
    #[inline(always)]
    pub(crate) fn append(&mut self, item: T, weight: u64, limits: Limits) -> bool {
        let chunk = match self.chunks.back_mut() {
            Some(chunk) if chunk.sealed.is_none() => chunk,
            _ => return self.append_to_new_chunk(item, weight, limits),
        };
        chunk.items.push(item);
        chunk.bytes += weight;
        let sealed = limits.full(chunk.items.len(), chunk.bytes, chunk.limit);
        if sealed {
            chunk.sealed = Some(FlushReason::Size);
        }
        self.len += 1;
        self.bytes += weight;
        self.next_seq += 1;
        sealed
    }

    /// [`append`](Self::append) when the back chunk is sealed or missing:
    /// starts one, which `append` then finds open.
    #[cold]
    #[inline(never)]
    fn append_to_new_chunk(&mut self, item: T, weight: u64, limits: Limits) -> bool {
        self.start_chunk(limits);
        self.append(item, weight, limits)
    }

    /// Pops up to `room` items of `ring` straight into the open chunk, at
    /// most what it still takes by count, so items move once and the
    /// per-item work is only weighing them. Adds how many moved to
    /// `drained`, and returns it with whether a chunk was sealed.
    pub(crate) fn fill_from(
        &mut self,
        ring: &mut spsc::Consumer<T>,
        drained: &mut u64,
        room: usize,
        limits: Limits,
        weigh: &impl Fn(&T) -> u64,
    ) -> (usize, bool) {
        if ring.is_empty() {
            return (0, false); // start no chunk for nothing
        }
        self.ensure_open(limits);
        let Some(chunk) = self.chunks.back_mut() else {
            unreachable!("a chunk was just ensured")
        };
        let start = chunk.items.len();
        // An open chunk is below its limit (it is sealed when it reaches it).
        let want = room.min(chunk.limit.saturating_sub(start).max(1));
        let got = ring.pop_batch(&mut chunk.items, want).unwrap_or(0);
        // Counted at once, so the counts stay true even if a `Weigh` below
        // panics (then only the bytes go uncounted, on both sides).
        *drained += got as u64;
        self.len += got;
        self.next_seq += got as u64;
        // The item that reaches `max_bytes` seals the chunk; any after it go
        // on through `append`, into the next chunk.
        let mut bytes = 0;
        let mut keep = got;
        for (k, item) in chunk.items[start..].iter().enumerate() {
            bytes += weigh(item);
            if limits.max_bytes > 0 && chunk.bytes + bytes >= limits.max_bytes {
                keep = k + 1;
                break;
            }
        }
        chunk.bytes += bytes;
        self.bytes += bytes;
        let rest = (keep < got).then(|| chunk.items.split_off(start + keep));
        self.len -= got - keep;
        self.next_seq -= (got - keep) as u64;
        let mut sealed = limits.full(chunk.items.len(), chunk.bytes, chunk.limit);
        if sealed {
            chunk.sealed = Some(FlushReason::Size);
        }
        for item in rest.into_iter().flatten() {
            let w = weigh(&item);
            sealed |= self.append(item, w, limits);
        }
        (got, sealed)
    }

    /// Seals the open chunk (if it has items) with `reason`, so the next
    /// flush takes it although it is not full.
    pub(crate) fn seal_open(&mut self, reason: FlushReason) {
        if let Some(c) = self.chunks.back_mut() {
            if c.sealed.is_none() && !c.items.is_empty() {
                c.sealed = Some(reason);
            }
        }
    }

    /// Takes the front chunk if it is sealed, with its reason.
    pub(crate) fn take_sealed(&mut self) -> Option<(Chunk<T>, FlushReason)> {
        let reason = self.chunks.front()?.sealed?;
        let chunk = self.chunks.pop_front()?;
        self.len -= chunk.items.len();
        self.bytes -= chunk.bytes;
        Some((chunk, reason))
    }

    /// Takes every chunk out, oldest first.
    pub(crate) fn take_all(&mut self) -> Vec<Chunk<T>> {
        self.len = 0;
        self.bytes = 0;
        self.chunks.drain(..).collect()
    }

    /// Puts a chunk taken by [`take_all`](Self::take_all) back at the end,
    /// with its counts.
    pub(crate) fn put_back(&mut self, chunk: Chunk<T>) {
        self.len += chunk.items.len();
        self.bytes += chunk.bytes;
        self.chunks.push_back(chunk);
    }

    /// Removes the oldest item. Returns it with its sequence number.
    pub(crate) fn pop_oldest(&mut self, weigh: impl Fn(&T) -> u64) -> Option<(T, u64)> {
        let chunk = self.chunks.front_mut()?;
        if chunk.items.is_empty() {
            return None;
        }
        // O(batch) move, on the overflow path only.
        let item = chunk.items.remove(0);
        let w = weigh(&item);
        let seq = chunk.first_seq;
        chunk.first_seq += 1;
        chunk.bytes -= w;
        if chunk.items.is_empty() {
            if let Some(c) = self.chunks.pop_front() {
                self.recycle(c.items);
            }
        }
        self.len -= 1;
        self.bytes -= w;
        Some((item, seq))
    }

    /// Keeps an emptied batch vector for the next chunk.
    pub(crate) fn recycle(&mut self, mut items: Vec<T>) {
        items.clear();
        if self.spare.len() < SPARE_VECS {
            self.spare.push(items);
        }
    }

    /// Takes an emptied vector from the spares, for scratch use.
    pub(crate) fn take_spare(&mut self) -> Vec<T> {
        self.spare.pop().unwrap_or_default()
    }
}
