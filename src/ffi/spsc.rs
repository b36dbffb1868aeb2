//! `spw_spsc`: the lock-free single-producer/single-consumer ring of
//! fixed-size elements.
//!
//! One C object holds both halves of a `spsc::channel::<u8>`; an element is
//! `elem_size` bytes that move all-or-nothing. Which half a call touches
//! follows from the function: `push*` the producer, `pop*` the consumer.
//! `spw_spsc_close` and `spw_spsc_len` touch neither, so any thread may call
//! them: close goes through a `Closer`, len reads two counters.
//!
//! # A push racing a close
//!
//! A close from a third thread is not ordered with the producer's pushes, so
//! the ring alone cannot promise that a push which returned `SPW_OK` is
//! still popped: the consumer may see "closed" and "empty" just before that
//! push publishes. The `pushed` counter closes that gap, Dekker-style. The
//! producer counts a push, then a fence, then the ring looks at `closed`;
//! the consumer, after seeing `closed` with less than an element left, runs
//! a fence and then reads `pushed` (`settle`). Read both fences as SeqCst
//! first: if the push saw the ring open, its fence precedes the consumer's
//! in the SeqCst order (C++20 [atomics.order]: the push's read of `closed`
//! is coherence-ordered before the close), so the consumer sees the count
//! and waits until the element is published. If the push saw the ring
//! closed, it gives its count back and fails with `SPW_ERR_CLOSED`. Either
//! way nothing is left behind.
//!
//! Every push pays its fence, a close race happens once per ring: so the
//! push runs the light half of the asymmetric pair in `crate::sync` (a
//! compiler fence once `membarrier` is registered) and `settle` the heavy
//! half, once, before it first reads `pushed`. The pair gives the same two
//! cases, for the reason `ring/spsc/parking.rs` sets out: when the heavy
//! barrier reaches the producer's CPU, either the push has not yet read
//! `closed` (it reads it after a full barrier, later than the consumer saw
//! it set, so it sees the close) or it has, and then its count, stored
//! before, is drained to memory before `settle` reads it. The loom model
//! `loom-tests/tests/ffi_spsc.rs` checks the protocol, and fails without the
//! heavy half (`loom-tests/breakage.sh`).

use core::ffi::c_void;

use super::error::Error;
use super::guard::{self, Fuse};
use super::ptr::{self, Handle};
use super::status::spw_status;
use super::wait::Wait;
use crate::backoff::Backoff;
use crate::ring::spsc::{self, Closer, Consumer, Producer};
use crate::ring::WaitError;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::UnsafeCell;
use crate::sync::{heavy_fence, light_fence};

/// A lock-free ring of fixed-size elements for exactly one producer thread
/// and one consumer thread.
///
/// One thread calls `spw_spsc_push*`, one thread calls `spw_spsc_pop*` (they
/// may be the same thread); `spw_spsc_len` and `spw_spsc_close` may be
/// called from any thread.
/// Never call the push functions from two threads at once, nor the pop
/// functions: the ring takes no lock, and that is undefined behaviour. A role
/// may move to another thread only after the previous thread's last call
/// happens-before the new thread's first (a join, a mutex, ...).
/// Create with `spw_spsc_new`, free with `spw_spsc_free`.
pub struct spw_spsc {
    fuse: Fuse,
    elem_size: usize,
    /// In elements.
    capacity: usize,
    // SAFETY (of handing out `&mut`): only the producer thread touches
    // `producer` and only the consumer thread touches `consumer`, one call at
    // a time each; that is the C contract of this type, stated on every
    // push/pop function. So each `&mut` made in `with_producer` /
    // `with_consumer` is unique for as long as it lives.
    producer: UnsafeCell<Producer<u8>>,
    consumer: UnsafeCell<Consumer<u8>>,
    /// Closes the ring from any thread without touching either half.
    closer: Closer<u8>,
    /// Elements ever pushed (counted just before they are published, and
    /// given back if a close stopped them) and popped (counted just after),
    /// so `spw_spsc_len` can run on any thread without a reference to either
    /// half, and a pop after a close can wait out a push under way (see the
    /// module docs). Each has a single writer.
    pushed: AtomicUsize,
    popped: AtomicUsize,
}

impl Handle for spw_spsc {
    fn fuse(&self) -> &Fuse {
        &self.fuse
    }
}

/// Adds `n` to a counter that only the calling thread writes.
fn bump(counter: &AtomicUsize, n: usize) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Release,
    );
}

/// Takes back `n` that [`bump`] added, on the same thread.
fn unbump(counter: &AtomicUsize, n: usize) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_sub(n),
        Ordering::Release,
    );
}

/// What a push gets once the ring is closed (by `spw_spsc_close`, or by a
/// panic in an earlier call).
fn closed() -> Error {
    Error::closed("ring is closed")
}

/// What a pop gets once the ring is closed and nothing is left in it.
fn drained() -> Error {
    Error::closed("ring is closed and empty")
}

/// Closes the ring if the call it guards unwinds, so the thread on the
/// other side does not wait forever for a peer whose calls now all fail.
struct CloseOnUnwind<'a>(&'a Closer<u8>);

impl Drop for CloseOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl spw_spsc {
    fn new(capacity: usize, elem_size: usize) -> Result<Self, Error> {
        if capacity == 0 {
            return Err(Error::invalid("capacity must be at least 1"));
        }
        if elem_size == 0 {
            return Err(Error::invalid("elem_size must be at least 1"));
        }
        let bytes = capacity
            .checked_mul(elem_size)
            .filter(|&b| isize::try_from(b).is_ok())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "capacity * elem_size ({capacity} * {elem_size}) is larger than any object can be"
                ))
            })?;
        // The ring allocates every slot up front, and a failed allocation
        // aborts the process; ask first, so C gets an error instead.
        Vec::<u8>::new().try_reserve_exact(bytes).map_err(|_| {
            Error::invalid(format!(
                "capacity * elem_size ({capacity} * {elem_size} = {bytes} bytes) cannot be allocated"
            ))
        })?;
        let (producer, consumer) = spsc::channel::<u8>(bytes);
        Ok(Self {
            fuse: Fuse::new(),
            elem_size,
            capacity,
            closer: producer.closer(),
            producer: UnsafeCell::new(producer),
            consumer: UnsafeCell::new(consumer),
            pushed: AtomicUsize::new(0),
            popped: AtomicUsize::new(0),
        })
    }

    /// Runs `f` with the producer half.
    ///
    /// # Safety
    /// Called only on the producer thread, never re-entrantly.
    unsafe fn with_producer<R>(&self, f: impl FnOnce(&mut Producer<u8>) -> R) -> R {
        self.fuse.run(|| {
            let armed = CloseOnUnwind(&self.closer);
            let result = self.producer.with_mut(|p| {
                // SAFETY: the caller is the one producer thread (see the field).
                f(unsafe { &mut *p })
            });
            core::mem::forget(armed);
            result
        })
    }

    /// Runs `f` with the consumer half.
    ///
    /// # Safety
    /// Called only on the consumer thread, never re-entrantly.
    unsafe fn with_consumer<R>(&self, f: impl FnOnce(&mut Consumer<u8>) -> R) -> R {
        self.fuse.run(|| {
            let armed = CloseOnUnwind(&self.closer);
            let result = self.consumer.with_mut(|c| {
                // SAFETY: the caller is the one consumer thread (see the field).
                f(unsafe { &mut *c })
            });
            core::mem::forget(armed);
            result
        })
    }

    /// Pushes `elems` (one or more whole elements) that the caller checked
    /// fit; `SPW_ERR_CLOSED`, with nothing pushed, if a close got there
    /// first.
    fn push_checked(&self, p: &mut Producer<u8>, elems: &[u8]) -> Result<(), Error> {
        let count = elems.len() / self.elem_size;
        // Count before publishing, so `len` never sees more popped than
        // pushed, and before the ring looks at `closed` (the fence), so a
        // consumer that saw the close waits for this push (module docs).
        bump(&self.pushed, count);
        light_fence();
        match p.push_slice(elems) {
            n if n == elems.len() => Ok(()),
            // `push_slice` looks at `closed` before it writes anything.
            0 if p.is_closed() => {
                unbump(&self.pushed, count);
                Err(closed())
            }
            // Only this thread adds, so the room it saw is still there.
            n => unreachable!(
                "spsc ring took {n} of {} bytes although it was open and had room",
                elems.len()
            ),
        }
    }

    /// Pops into `out` (whole elements) that the caller checked are there.
    fn pop_checked(&self, c: &mut Consumer<u8>, out: &mut [u8]) {
        let n = c.pop_slice(out);
        // Only this thread removes, so what it saw is still there (a close
        // does not stop pops: they drain).
        assert_eq!(n, out.len(), "spsc ring gave less than its length");
        bump(&self.popped, out.len() / self.elem_size);
    }

    /// Waits (as `wait` says) until one element fits.
    fn wait_for_room(&self, p: &mut Producer<u8>, wait: Wait) -> Result<(), Error> {
        let size = self.elem_size;
        match wait {
            Wait::No if p.is_closed() => Err(closed()),
            Wait::No if p.slots() < size => Err(Error::new(
                spw_status::SPW_ERR_FULL,
                format!("ring is full (capacity {} elements)", self.capacity),
            )),
            Wait::No => Ok(()),
            Wait::For(t) => p.wait_for_slots(size, Some(t)).map_err(|e| match e {
                WaitError::Timeout => Error::new(
                    spw_status::SPW_ERR_TIMEOUT,
                    format!("ring stayed full for {} ms", t.as_millis()),
                ),
                WaitError::Closed => closed(),
            }),
            Wait::Forever => p.wait_for_slots(size, None).map_err(|_| closed()),
        }
    }

    /// Waits (as `wait` says) until one element is there; once the ring is
    /// closed, it waits no more and says `SPW_ERR_CLOSED` when none is left.
    fn wait_for_elem(&self, c: &mut Consumer<u8>, wait: Wait) -> Result<(), Error> {
        let size = self.elem_size;
        let waited = match wait {
            Wait::No if c.len() >= size => return Ok(()),
            Wait::No if c.is_closed() => Err(WaitError::Closed),
            Wait::No => return Err(Error::new(spw_status::SPW_ERR_EMPTY, "ring is empty")),
            Wait::For(t) => c.wait_for_len(size, Some(t)),
            Wait::Forever => c.wait_for_len(size, None),
        };
        match waited {
            Ok(()) => Ok(()),
            Err(WaitError::Closed) => self.settle(c),
            Err(WaitError::Timeout) => Err(Error::new(
                spw_status::SPW_ERR_TIMEOUT,
                format!("ring stayed empty for {} ms", wait.as_timeout().as_millis()),
            )),
        }
    }

    /// Called once the consumer has seen the ring closed with less than one
    /// element in it: waits out a push that the producer's thread may have
    /// under way (counted, but not yet published or given back), then says
    /// whether an element came (`Ok`) or none ever will (`SPW_ERR_CLOSED`).
    /// The wait is a few instructions of the producer's, not a blocking one:
    /// a push blocks only before it counts.
    fn settle(&self, c: &Consumer<u8>) -> Result<(), Error> {
        let mut backoff = Backoff::new();
        // Pairs with the light fence in `push_checked` (module docs). Once is
        // enough: after it, a push that counted either publishes or gives its
        // count back, and both become visible without further fences.
        heavy_fence();
        loop {
            let pushed = self.pushed.load(Ordering::Acquire);
            if c.len() >= self.elem_size {
                return Ok(());
            }
            // Only this thread writes `popped`.
            if pushed == self.popped.load(Ordering::Relaxed) {
                return Err(drained());
            }
            // A producer that panicked between counting and publishing
            // never settles; its panic blew the fuse.
            self.fuse.check()?;
            backoff.snooze();
        }
    }

    /// How many whole elements a call may move: at most `n`, at most `room`
    /// bytes' worth.
    fn whole(&self, n: usize, room: usize) -> usize {
        n.min(room / self.elem_size)
    }
}

/// Creates a ring of `capacity` elements of `elem_size` bytes each.
///
/// On `SPW_OK`, `*out` is the new ring; free it with `spw_spsc_free`. All
/// `capacity * elem_size` bytes are allocated now. See `spw_spsc` for the
/// threading rules.
///
/// Returns `SPW_ERR_NULL` if `out` is NULL; `SPW_ERR_INVALID` if `capacity` or
/// `elem_size` is 0, or `capacity * elem_size` overflows or cannot be allocated.
///
/// # Safety
/// A non-NULL `out` is valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn spw_spsc_new(
    capacity: usize,
    elem_size: usize,
    out: *mut *mut spw_spsc,
) -> spw_status {
    guard::status("spw_spsc_new", || {
        // SAFETY: the caller passes NULL or a pointer valid for writing one pointer.
        let out = unsafe { ptr::out(out, "out") }?;
        out.write(ptr::into_c(spw_spsc::new(capacity, elem_size)?));
        Ok(())
    })
}

/// Copies one element (`elem_size` bytes at `elem`) into the ring, without
/// waiting. Producer thread only.
///
/// Returns `SPW_OK`, `SPW_ERR_FULL`, `SPW_ERR_CLOSED` (after
/// `spw_spsc_close`; the element is not in the ring), or `SPW_ERR_NULL` (`r`
/// or `elem`).
///
/// # Safety
/// `r` is NULL or a live ring and the caller is its one producer thread; a
/// non-NULL `elem` is readable for `elem_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn spw_spsc_push(r: *mut spw_spsc, elem: *const c_void) -> spw_status {
    // SAFETY: forwarded from this function's contract.
    unsafe { push_one("spw_spsc_push", r, elem, 0) }
}

/// Copies one element into the ring, waiting while it is full: `timeout_ms`
/// 0 = not at all (`SPW_ERR_FULL`), `UINT64_MAX` = until there is room,
/// otherwise up to that many milliseconds (`SPW_ERR_TIMEOUT`). Producer
/// thread only. `spw_spsc_close` ends the wait.
///
/// Returns `SPW_OK`, `SPW_ERR_FULL`, `SPW_ERR_TIMEOUT`, `SPW_ERR_CLOSED`
/// (after or during `spw_spsc_close`; the element is not in the ring), or
/// `SPW_ERR_NULL` (`r` or `elem`).
///
/// # Safety
/// As `spw_spsc_push`.
#[no_mangle]
pub unsafe extern "C" fn spw_spsc_push_timeout(
    r: *mut spw_spsc,
    elem: *const c_void,
    timeout_ms: u64,
) -> spw_status {
    // SAFETY: forwarded from this function's contract.
    unsafe { push_one("spw_spsc_push_timeout", r, elem, timeout_ms) }
}

/// # Safety
/// As `spw_spsc_push`.
unsafe fn push_one(
    func: &'static str,
    r: *mut spw_spsc,
    elem: *const c_void,
    timeout_ms: u64,
) -> spw_status {
    guard::status(func, || {
        // SAFETY: the caller passes NULL or a live ring from spw_spsc_new.
        let ring = unsafe { ptr::handle(r, "r") }?;
        // elem_size > 0, so a NULL elem is SPW_ERR_NULL.
        // SAFETY: the caller passes NULL or a pointer readable for elem_size bytes.
        let elem = unsafe { ptr::bytes_in(elem, ring.elem_size, "elem") }?;
        let push = |p: &mut Producer<u8>| {
            ring.wait_for_room(p, Wait::from_ms(timeout_ms))?;
            ring.push_checked(p, elem)
        };
        // SAFETY: the caller is the producer thread.
        unsafe { ring.with_producer(push) }
    })
}

/// Copies up to `n` elements from `elems` (`n * elem_size` bytes) into the
/// ring, as many whole elements as fit right now, without waiting. Producer
/// thread only.
///
/// Returns how many elements went in (the first ones of `elems`); 0 when the
/// ring is full, when `n` is 0, or on an error (`spw_last_error()` is `""`
/// unless it was an error: `r` NULL, `elems` NULL with `n > 0`, or the ring
/// closed by `spw_spsc_close`).
///
/// # Safety
/// `r` is NULL or a live ring and the caller is its one producer thread; a
/// non-NULL `elems` is readable for `n * elem_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn spw_spsc_push_n(
    r: *mut spw_spsc,
    elems: *const c_void,
    n: usize,
) -> usize {
    guard::value("spw_spsc_push_n", 0, || {
        // SAFETY: the caller passes NULL or a live ring from spw_spsc_new.
        let ring = unsafe { ptr::handle(r, "r") }?;
        if elems.is_null() && n > 0 {
            return Err(Error::null("elems"));
        }
        let push_n = |p: &mut Producer<u8>| {
            if p.is_closed() {
                return Err(closed());
            }
            let k = ring.whole(n, p.slots());
            if k == 0 {
                return Ok(0);
            }
            // k <= capacity, so k * elem_size cannot overflow.
            // SAFETY: elems is readable for n >= k elements (caller).
            let src = unsafe { ptr::bytes_in(elems, k * ring.elem_size, "elems") }?;
            ring.push_checked(p, src)?;
            Ok(k)
        };
        // SAFETY: the caller is the producer thread.
        unsafe { ring.with_producer(push_n) }
    })
}

/// Moves the oldest element into `out` (`elem_size` bytes), without waiting.
/// Consumer thread only. `out` is written only on `SPW_OK`. After
/// `spw_spsc_close` it still hands out what is left, oldest first.
///
/// Returns `SPW_OK`, `SPW_ERR_EMPTY`, `SPW_ERR_CLOSED` (closed and nothing
/// left: no element will ever come), or `SPW_ERR_NULL` (`r` or `out`).
///
/// # Safety
/// `r` is NULL or a live ring and the caller is its one consumer thread; a
/// non-NULL `out` is writable for `elem_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn spw_spsc_pop(r: *mut spw_spsc, out: *mut c_void) -> spw_status {
    // SAFETY: forwarded from this function's contract.
    unsafe { pop_one("spw_spsc_pop", r, out, 0) }
}

/// Moves the oldest element into `out`, waiting while the ring is empty:
/// `timeout_ms` 0 = not at all (`SPW_ERR_EMPTY`), `UINT64_MAX` = until an
/// element arrives, otherwise up to that many milliseconds
/// (`SPW_ERR_TIMEOUT`). Consumer thread only. `out` is written only on `SPW_OK`.
/// After `spw_spsc_close` it hands out what is left, then returns
/// `SPW_ERR_CLOSED` at once, without waiting; a close during the wait ends it.
///
/// Returns `SPW_OK`, `SPW_ERR_EMPTY`, `SPW_ERR_TIMEOUT`, `SPW_ERR_CLOSED`
/// (closed and nothing left), or `SPW_ERR_NULL` (`r` or `out`).
///
/// # Safety
/// As `spw_spsc_pop`.
#[no_mangle]
pub unsafe extern "C" fn spw_spsc_pop_timeout(
    r: *mut spw_spsc,
    out: *mut c_void,
    timeout_ms: u64,
) -> spw_status {
    // SAFETY: forwarded from this function's contract.
    unsafe { pop_one("spw_spsc_pop_timeout", r, out, timeout_ms) }
}

/// # Safety
/// As `spw_spsc_pop`.
unsafe fn pop_one(
    func: &'static str,
    r: *mut spw_spsc,
    out: *mut c_void,
    timeout_ms: u64,
) -> spw_status {
    guard::status(func, || {
        // SAFETY: the caller passes NULL or a live ring from spw_spsc_new.
        let ring = unsafe { ptr::handle(r, "r") }?;
        // elem_size > 0, so a NULL out is SPW_ERR_NULL.
        // SAFETY: the caller passes NULL or a pointer writable for elem_size bytes.
        let out = unsafe { ptr::bytes_out(out, ring.elem_size, "out") }?;
        let pop = |c: &mut Consumer<u8>| {
            ring.wait_for_elem(c, Wait::from_ms(timeout_ms))?;
            ring.pop_checked(c, out);
            Ok(())
        };
        // SAFETY: the caller is the consumer thread.
        unsafe { ring.with_consumer(pop) }
    })
}

/// Moves up to `n` of the oldest elements into `out` (room for
/// `n * elem_size` bytes), as many whole elements as are there right now,
/// without waiting. Consumer thread only.
///
/// Returns how many elements were written to the start of `out`; 0 when the
/// ring is empty, when `n` is 0, or on an error (`spw_last_error()` is `""`
/// unless it was an error: `r` NULL, `out` NULL with `n > 0`, or the ring
/// closed by `spw_spsc_close` with nothing left in it).
///
/// # Safety
/// `r` is NULL or a live ring and the caller is its one consumer thread; a
/// non-NULL `out` is writable for `n * elem_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn spw_spsc_pop_n(r: *mut spw_spsc, out: *mut c_void, n: usize) -> usize {
    guard::value("spw_spsc_pop_n", 0, || {
        // SAFETY: the caller passes NULL or a live ring from spw_spsc_new.
        let ring = unsafe { ptr::handle(r, "r") }?;
        if out.is_null() && n > 0 {
            return Err(Error::null("out"));
        }
        let pop_n = |c: &mut Consumer<u8>| {
            let mut k = ring.whole(n, c.len());
            if k == 0 && c.is_closed() {
                ring.settle(c)?;
                k = ring.whole(n, c.len());
            }
            // k <= capacity, so k * elem_size cannot overflow.
            // SAFETY: out is writable for n >= k elements (caller).
            let dst = unsafe { ptr::bytes_out(out, k * ring.elem_size, "out") }?;
            ring.pop_checked(c, dst);
            Ok(k)
        };
        // SAFETY: the caller is the consumer thread.
        unsafe { ring.with_consumer(pop_n) }
    })
}

/// The number of elements in the ring: a snapshot, which the two threads
/// may change at once. May be called from any thread. 0 when `r` is NULL
/// (`spw_last_error()` then says so).
///
/// # Safety
/// `r` is NULL or a live ring.
#[no_mangle]
pub unsafe extern "C" fn spw_spsc_len(r: *const spw_spsc) -> usize {
    guard::value("spw_spsc_len", 0, || {
        // SAFETY: the caller passes NULL or a live ring from spw_spsc_new.
        let ring = unsafe { ptr::handle(r, "r") }?;
        // Popped first: every element counted as popped was counted as pushed
        // before (the ring's own release/acquire orders the two counters), so
        // the difference cannot go below zero.
        let popped = ring.popped.load(Ordering::Acquire);
        let pushed = ring.pushed.load(Ordering::Acquire);
        // Pushes are counted just before they are published, so the
        // difference may run ahead of the ring by one call's worth.
        Ok(pushed.wrapping_sub(popped).min(ring.capacity))
    })
}

/// Closes the ring: from now on every push returns `SPW_ERR_CLOSED` (and
/// `spw_spsc_push_n` 0, with `spw_last_error()` saying so), while pops hand
/// out the elements still inside, oldest first, and then return
/// `SPW_ERR_CLOSED` (`spw_spsc_pop_timeout` too, without waiting;
/// `spw_spsc_pop_n` 0 with the message). A push or pop waiting at the time
/// wakes up. This is how the producer says "no more", or either side says
/// "stop".
///
/// May be called from any thread (the producer's, the consumer's, or
/// another), any number of times: closing a closed ring does nothing and
/// returns `SPW_OK`. A push racing the close either fails with
/// `SPW_ERR_CLOSED` or, if it returns `SPW_OK`, its element is still popped.
/// The ring must still be freed with `spw_spsc_free`.
///
/// Returns `SPW_OK`, or `SPW_ERR_NULL`.
///
/// # Safety
/// `r` is NULL or a live ring.
#[no_mangle]
pub unsafe extern "C" fn spw_spsc_close(r: *mut spw_spsc) -> spw_status {
    guard::status("spw_spsc_close", || {
        // SAFETY: the caller passes NULL or a live ring from spw_spsc_new.
        let ring = unsafe { ptr::handle(r, "r") }?;
        ring.fuse.run(|| ring.closer.close());
        Ok(())
    })
}

/// Frees the ring and the elements still in it. NULL is a no-op.
///
/// Must be the last call on `r`: both threads must be done with it.
///
/// # Safety
/// `r` is NULL or a live ring that no thread is using any more; it is
/// invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn spw_spsc_free(r: *mut spw_spsc) {
    guard::void("spw_spsc_free", || {
        // SAFETY: the caller passes NULL or a live ring that nobody else uses.
        drop(unsafe { ptr::take(r) });
        Ok(())
    });
}

#[cfg(test)]
#[path = "spsc_tests.rs"]
mod tests;
