//! The CRC32C of any range of a segment's bytes in constant time, from
//! checkpoints of a running CRC: what keeps resynchronisation past damage
//! linear in the size of the damage.
//!
//! After damage, a reader tries a candidate frame at every byte, and each
//! candidate's checksum covers up to `max_record` bytes ahead; checking each
//! one afresh costs the size of the damage times `max_record`. Instead,
//! [`Prefix`] keeps `C(p)`, the CRC32C of the bytes from a base offset to
//! `p`, every [`BLOCK`] bytes, computed once as the scan moves forward. The
//! CRC of a range then follows from the two ends, because CRC32C is linear:
//! `crc(A ‖ B) = crc(B) ⊕ shift(crc(A), |B|)`, so
//! `crc([a, b)) = C(b) ⊕ shift(C(a), b − a)`, where `shift` multiplies by
//! `x^(8n)` modulo the polynomial: four multiplications with [`TABLES`].

use std::collections::VecDeque;

/// Distance between checkpoints: the most bytes hashed to find `C(p)`.
pub(crate) const BLOCK: u64 = 64;

/// CRC32C's polynomial, bit-reflected (bit 31 is `x^0`).
const POLY: u32 = 0x82F6_3B78;

/// `x^0`, bit-reflected.
const ONE: u32 = 1 << 31;

/// `a · b` modulo the polynomial, bit-reflected, one bit at a time (for the
/// tables, built at compile time).
const fn mul_slow(a: u32, b: u32) -> u32 {
    let mut p = 0;
    let mut b = b;
    let mut i = 0;
    while i < 32 {
        if a & (1 << (31 - i)) != 0 {
            p ^= b;
        }
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
        i += 1;
    }
    p
}

/// `REDUCE[v]`: `v` (the coefficients of `x^28..x^31`, bits 3..0) times `x^4`.
const REDUCE: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut v = 0;
    while v < 16 {
        let mut r = v as u32;
        let mut i = 0;
        while i < 4 {
            r = if r & 1 != 0 { (r >> 1) ^ POLY } else { r >> 1 };
            i += 1;
        }
        t[v] = r;
        v += 1;
    }
    t
};

/// `a · b` modulo the polynomial, bit-reflected: four bits of `a` at a time
/// (Horner's rule, from the highest powers), with the 16 multiples of `b`.
fn mul(a: u32, b: u32) -> u32 {
    let mut m = [0u32; 4]; // b · x^j
    m[0] = b;
    for j in 1..4 {
        let p = m[j - 1];
        m[j] = if p & 1 != 0 { (p >> 1) ^ POLY } else { p >> 1 };
    }
    let mut t = [0u32; 16]; // bit 3 of the index is x^0, bit 0 is x^3
    for (v, slot) in t.iter_mut().enumerate() {
        for (j, mj) in m.iter().enumerate() {
            if v & (8 >> j) != 0 {
                *slot ^= mj;
            }
        }
    }
    let mut p = 0u32;
    for k in (0..8).rev() {
        p = (p >> 4) ^ REDUCE[(p & 0xF) as usize];
        p ^= t[((a >> (28 - 4 * k)) & 0xF) as usize];
    }
    p
}

/// `TABLES[k][j] = x^(8 · j · 256^k)`: with one entry per byte of `n`,
/// `x^(8n)` is a product of four.
const TABLES: [[u32; 256]; 4] = {
    let mut t = [[0u32; 256]; 4];
    let mut step = 1 << 23; // x^8
    let mut k = 0;
    while k < 4 {
        t[k][0] = ONE;
        let mut j = 1;
        while j < 256 {
            t[k][j] = mul_slow(t[k][j - 1], step);
            j += 1;
        }
        step = mul_slow(t[k][255], step); // step^256
        k += 1;
    }
    t
};

/// What the CRC `crc` of some bytes becomes once `n` zero bytes follow them
/// (before the final inversion is undone): the `shift` of the module docs.
pub(crate) fn shift(crc: u32, n: u32) -> u32 {
    let b = n.to_le_bytes();
    // A zero byte of `n` contributes x^0: skip its multiplication.
    let mut x = TABLES[0][b[0] as usize];
    for k in 1..4 {
        if b[k] != 0 {
            x = mul(x, TABLES[k][b[k] as usize]);
        }
    }
    mul(x, crc)
}

/// Checkpoints of the running CRC of one segment from `base`: `cp[i]` is the
/// CRC32C of bytes `[base, base + BLOCK·(first + i))`.
#[derive(Debug, Default)]
pub(crate) struct Prefix {
    valid: bool,
    seg: u64,
    base: u64,
    first: u64,
    cp: VecDeque<u32>,
}

impl Prefix {
    /// Forgets everything (the bytes may have changed).
    pub(crate) fn invalidate(&mut self) {
        self.valid = false;
        self.cp.clear();
    }

    /// Whether it holds checkpoints of segment `seg`.
    pub(crate) fn on(&self, seg: u64) -> bool {
        self.valid && self.seg == seg
    }

    /// The lowest offset with a checkpoint.
    pub(crate) fn lo(&self) -> u64 {
        self.base + BLOCK * self.first
    }

    /// The highest offset with a checkpoint.
    pub(crate) fn frontier(&self) -> u64 {
        self.base + BLOCK * (self.first + self.cp.len().saturating_sub(1) as u64)
    }

    /// Starts afresh at `at` of segment `seg`.
    pub(crate) fn reset(&mut self, seg: u64, at: u64) {
        self.valid = true;
        self.seg = seg;
        self.base = at;
        self.first = 0;
        self.cp.clear();
        self.cp.push_back(0);
    }

    /// Makes it usable for offsets from `at` on, keeping what it has when it
    /// can: checkpoints wholly below `at` are dropped (memory stays bounded
    /// by the span ahead), and it starts afresh at `at` if it holds another
    /// segment or `at` is outside `[lo, frontier]`.
    pub(crate) fn anchor(&mut self, seg: u64, at: u64) {
        if !self.on(seg) || at < self.lo() || at > self.frontier() {
            self.reset(seg, at);
            return;
        }
        while self.cp.len() > 1 && self.lo() + BLOCK <= at {
            self.cp.pop_front();
            self.first += 1;
        }
    }

    /// The checkpoint at or below `p` (which is at least `base`).
    pub(crate) fn floor(&self, p: u64) -> u64 {
        self.base + (p - self.base) / BLOCK * BLOCK
    }

    /// Adds checkpoints until the frontier is within one block below `to`,
    /// hashing `bytes`, which hold the segment from offset `at` and reach
    /// `to`; `at` is at most the frontier. Each byte is hashed once however
    /// often this is called.
    pub(crate) fn extend(&mut self, bytes: &[u8], at: u64, to: u64) {
        #[cfg(test)]
        let before = self.frontier();
        while self.frontier() + BLOCK <= to {
            let s = (self.frontier() - at) as usize;
            let Some(block) = bytes.get(s..s + BLOCK as usize) else {
                break;
            };
            let last = self.cp.back().copied().unwrap_or(0);
            self.cp.push_back(crc32c::crc32c_append(last, block));
        }
        #[cfg(test)]
        tests::HASHED.with(|h| h.set(h.get() + (self.frontier() - before)));
    }

    /// The CRC32C of `[base, p)`, for `p` within one block above a
    /// checkpoint it holds; `bytes` hold the segment from offset `at` (at
    /// most the checkpoint below `p`) through `p`.
    fn upto(&self, p: u64, bytes: &[u8], at: u64) -> Option<u32> {
        let f = self.floor(p);
        let i = usize::try_from((f - self.lo()) / BLOCK).ok()?;
        let c = *self.cp.get(i)?;
        let tail = bytes.get((f - at) as usize..(p - at) as usize)?;
        #[cfg(test)]
        tests::HASHED.with(|h| h.set(h.get() + tail.len() as u64));
        Some(crc32c::crc32c_append(c, tail))
    }

    /// The CRC32C of bytes `[a, b)`, with `lo <= a < b`, extending the
    /// checkpoints to `b` first; `bytes` hold the segment from offset `at`
    /// through `b`, where `at` is at most both the frontier and the
    /// checkpoint below `a`. `None` if `bytes` fall short (the segment ended).
    pub(crate) fn range(&mut self, bytes: &[u8], at: u64, a: u64, b: u64) -> Option<u32> {
        self.extend(bytes, at, b);
        let ca = self.upto(a, bytes, at)?;
        let cb = self.upto(b, bytes, at)?;
        Some(cb ^ shift(ca, u32::try_from(b - a).ok()?))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Bytes hashed through checkpoints, for tests of the work done.
        pub(crate) static HASHED: Cell<u64> = const { Cell::new(0) };
    }

    fn bytes(n: usize) -> Vec<u8> {
        let mut x = 0x1234_5678_9abc_def0u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn fast_multiplication_agrees_with_the_bitwise_one() {
        let mut x = 0x9E37_79B9u32;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let y = x.rotate_left(11) ^ 0x5bd1_e995;
            assert_eq!(mul(x, y), mul_slow(x, y), "{x:#x} {y:#x}");
        }
        assert_eq!(mul(ONE, 0x1234_5678), 0x1234_5678);
        assert_eq!(mul(0, 0x1234_5678), 0);
    }

    #[test]
    fn shift_agrees_with_the_crate_combine() {
        let d = bytes(5000);
        for (a, b) in [(0, 1), (3, 700), (100, 5000), (4999, 5000), (0, 0)] {
            let (x, y) = d.split_at(a);
            let y = &y[..b - a];
            let c1 = crc32c::crc32c(x);
            let c2 = crc32c::crc32c(y);
            let both = crc32c::crc32c(&d[..b]);
            assert_eq!(crc32c::crc32c_combine(c1, c2, y.len()), both);
            assert_eq!(c2 ^ shift(c1, y.len() as u32), both, "{a}..{b}");
        }
        // Large shifts, against the crate's (slow, independent) combine.
        for n in [255u32, 256, 65_535, 65_536, 1 << 24, u32::MAX - 16] {
            for c in [1u32, 0xdead_beef, u32::MAX] {
                assert_eq!(shift(c, n), crc32c::crc32c_combine(c, 0, n as usize), "{n}");
            }
        }
    }

    #[test]
    fn ranges_match_a_direct_crc_from_any_base() {
        let d = bytes(3000);
        for base in [0u64, 5, 64, 130] {
            let mut p = Prefix::default();
            p.reset(7, base);
            for (a, b) in [
                (base, base + 1),
                (base + 3, 2000),
                (base + 64, 2999),
                (900, 901),
            ] {
                if a < base {
                    continue;
                }
                let want = crc32c::crc32c(&d[a as usize..b as usize]);
                let from = p.frontier().min(p.floor(a));
                let got = p.range(&d[from as usize..], from, a, b);
                assert_eq!(got, Some(want), "base {base}: {a}..{b}");
            }
            // Dropping checkpoints behind keeps later answers right.
            p.anchor(7, 1000);
            assert!(p.lo() <= 1000 && p.lo() + BLOCK > 1000);
            let from = p.frontier().min(p.floor(1001));
            let got = p.range(&d[from as usize..], from, 1001, 2500);
            assert_eq!(got, Some(crc32c::crc32c(&d[1001..2500])));
        }
    }
}
