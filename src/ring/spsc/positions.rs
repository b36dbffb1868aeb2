//! Index arithmetic of the ring: positions run over `0..2 * capacity`.
//!
//! Why not plain wrapping counters: a free-running `usize` needs `pos %
//! capacity` to find a slot, a division on every operation unless the
//! capacity is rounded up to a power of two, and rounding would change the
//! capacity the caller asked for (the C ABI sizes rings in whole elements of
//! `elem_size` bytes). Why not `0..capacity`: then `head == tail` cannot tell
//! empty from full and one slot would be wasted. With positions in
//! `0..2 * capacity`, empty is `head == tail`, full is a distance of exactly
//! `capacity`, and a slot index is one compare-and-subtract.

/// The capacity of one ring, with the operations on its positions.
#[derive(Debug, Clone, Copy)]
pub(super) struct Positions {
    capacity: usize,
}

impl Positions {
    /// # Panics
    /// If `capacity` is 0 or larger than `usize::MAX / 2`.
    pub(super) fn new(capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "spsc::channel: capacity must be at least 1 (a ring of 0 slots can never take an item)"
        );
        assert!(
            capacity <= usize::MAX / 2,
            "spsc::channel: capacity {capacity} exceeds usize::MAX / 2"
        );
        Self { capacity }
    }

    #[inline(always)]
    pub(super) fn capacity(self) -> usize {
        self.capacity
    }

    /// Items between a consumer position `head` and a producer position `tail`.
    #[inline(always)]
    pub(super) fn distance(self, head: usize, tail: usize) -> usize {
        debug_assert!(head < 2 * self.capacity && tail < 2 * self.capacity);
        if head <= tail {
            tail - head
        } else {
            2 * self.capacity - head + tail
        }
    }

    /// The position `n` (at most `capacity`) steps after `pos`; written so
    /// that nothing exceeds `2 * capacity`, which cannot overflow.
    #[inline(always)]
    pub(super) fn advance(self, pos: usize, n: usize) -> usize {
        debug_assert!(pos < 2 * self.capacity && n <= self.capacity);
        let wrap_at = 2 * self.capacity - n;
        if pos < wrap_at {
            pos + n
        } else {
            pos - wrap_at
        }
    }

    /// The slot a position refers to.
    #[inline(always)]
    pub(super) fn slot(self, pos: usize) -> usize {
        debug_assert!(pos < 2 * self.capacity);
        if pos < self.capacity {
            pos
        } else {
            pos - self.capacity
        }
    }

    /// The slot ranges `n` items starting at `pos` occupy: `(first, len)` up
    /// to the end of the slots, then `len2` more from slot 0.
    #[inline(always)]
    pub(super) fn runs(self, pos: usize, n: usize) -> (usize, usize, usize) {
        debug_assert!(n <= self.capacity);
        let first = self.slot(pos);
        let len = n.min(self.capacity - first);
        (first, len, n - len)
    }
}

#[cfg(test)]
mod tests {
    use super::Positions;

    #[test]
    fn distance_advance_and_slot_agree_with_a_counter() {
        for capacity in 1..=5 {
            let p = Positions::new(capacity);
            // Walk head and tail as unbounded counters and compare.
            for head in 0..4 * capacity {
                for len in 0..=capacity {
                    let tail = head + len;
                    let (h, t) = (head % (2 * capacity), tail % (2 * capacity));
                    assert_eq!(p.distance(h, t), len);
                    assert_eq!(p.slot(t), tail % capacity);
                    for n in 0..=capacity {
                        assert_eq!(p.advance(h, n), (head + n) % (2 * capacity));
                    }
                    let (first, a, b) = p.runs(h, len);
                    assert_eq!((first, a + b), (head % capacity, len));
                    assert!(first + a <= capacity);
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "capacity must be at least 1")]
    fn zero_capacity_panics() {
        let _ = Positions::new(0);
    }
}
