//! `spw_buffer`: the batching buffer of byte items, with a C flush callback.

use core::ffi::c_void;

use super::callback::{spw_flush_fn, spw_item, CallbackSink, Gate};
use super::config::spw_config;
use super::error::Error;
use super::event::{Bridge, EventSlot};
use super::guard::{self, Fuse};
use super::outcome::{build_error, close_result, insert_error, sync_flush_result};
use super::ptr::{self, Handle};
use super::status::spw_status;
use super::wait::Wait;
use crate::buffer::{Buffer, SpillCodec};
use crate::engine::Engine;
use crate::stats::Counts;
use crate::sync::rc::Arc;

/// A batching buffer of byte items: inserts copy the bytes in, and a flusher
/// thread hands them in batches to the callback given to `spw_buffer_new`.
///
/// Every `spw_buffer_*` function may be called from several threads at once
/// on the same buffer, except `spw_buffer_free`, which must be the last call.
/// For a lock-free insert path from one thread, see `spw_buffer_producer`.
/// Create with `spw_buffer_new`, free with `spw_buffer_free`.
pub struct spw_buffer {
    fuse: Fuse,
    buffer: Buffer<Box<[u8]>>,
    gate: Arc<Gate>,
    /// The event function `spw_buffer_observe` set, if any.
    events: Arc<EventSlot>,
}

// C calls every function but free from many threads on one object; the Rust
// buffer takes care of that itself, so no lock of ours is needed.
const _: () = {
    const fn shared_between_threads<T: Sync + Send>() {}
    shared_between_threads::<spw_buffer>();
};

impl Handle for spw_buffer {
    fn fuse(&self) -> &Fuse {
        &self.fuse
    }
}

impl Drop for spw_buffer {
    fn drop(&mut self) {
        /// Shuts the gate and removes the event function when dropped, so
        /// that even a panic in `close` cannot let either callback reach its
        /// `user_data` after free.
        struct ShutOnDrop<'a>(&'a Gate, &'a EventSlot);
        impl Drop for ShutOnDrop<'_> {
            fn drop(&mut self) {
                self.0.shut();
                // Refused only from inside the event callback itself, which
                // the contract forbids (free there would wait for itself).
                let _ = self.1.replace(None, core::ptr::null_mut());
            }
        }
        // A call that outlived close's timeout may still be running, and
        // queued flushes may still start on a detached thread: once the gate
        // is shut, neither can reach the callback, and C may free user_data.
        let shut = ShutOnDrop(&self.gate, &self.events);
        // Idempotent: a buffer already closed returns at once.
        self.buffer.close(self.buffer.config().flush_timeout);
        drop(shut);
        // No callback runs now, nor ever will: every thread of a private
        // engine, one left in a callback by close's timeout included, can
        // only finish, so none outlives spw_buffer_free.
        self.buffer.join_private_threads();
        self.buffer.drop_undelivered();
    }
}

impl spw_buffer {
    pub(crate) fn buffer(&self) -> &Buffer<Box<[u8]>> {
        &self.buffer
    }

    pub(crate) fn events(&self) -> &EventSlot {
        &self.events
    }

    /// Builds the buffer behind `spw_buffer_new` and, with `engine`,
    /// `spw_engine_buffer_new`.
    pub(crate) fn build(
        cfg: &spw_config,
        on_flush: spw_flush_fn,
        user_data: *mut c_void,
        engine: Option<&Engine>,
    ) -> Result<Self, Error> {
        let config = cfg.snapshot();
        let gate = Arc::new(Gate::new());
        let sink = CallbackSink::new(on_flush, user_data, Arc::clone(&gate))
            .ok_or_else(|| Error::null("on_flush"))?
            .with_meta(config.flush_meta.as_deref());
        let events = Arc::new(EventSlot::new());
        // The codec is used only when `overflow` is `spill`; byte items
        // always have one, so C gets the spool whenever it asks. Byte items
        // can be copied, so an abandoned callback's batch goes on at once.
        let mut builder = Buffer::builder(config)
            .sink(sink)
            .spill(SpillCodec::of())
            .retry_abandoned_batches()
            .observer(Arc::new(Bridge(Arc::clone(&events))));
        if let Some(engine) = engine {
            builder = builder.engine(engine);
        }
        let buffer = builder.build().map_err(|e| build_error(&e))?;
        Ok(Self {
            fuse: Fuse::new(),
            buffer,
            gate,
            events,
        })
    }

    pub(crate) fn open(&self) -> Result<&Buffer<Box<[u8]>>, Error> {
        if self.buffer.is_closed() {
            Err(Error::closed("buffer is closed"))
        } else {
            Ok(&self.buffer)
        }
    }
}

/// The counters and gauges of a buffer (`spw_buffer_stats`).
///
/// Counters ("ever") only grow; gauges ("now") are a snapshot. When nothing
/// is moving (after `spw_buffer_sync_flush` returned, or after
/// `spw_buffer_close`):
/// `inserted == delivered + dropped + dumped + buffered + in_flight + spooled`.
///
/// ABI rule: fields never move; new ones are added only at the end, and
/// that bumps the major soname, because the library writes the whole struct
/// into the caller's memory. The fields from `flush_timeouts` on came with
/// 0.2 (`libspillway.so.1`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct spw_stats {
    /// Items accepted by an insert, ever (also those refused and counted
    /// dropped: by `drop_newest`, or by `drop_oldest` with nothing to evict).
    pub inserted: u64,
    /// Items the callback accepted, ever.
    pub delivered: u64,
    /// Items given up (overflow policy, callback failure after retries), ever.
    pub dropped: u64,
    /// Items in memory now, not handed to the callback.
    pub buffered: u64,
    /// Items handed to the callback now, or waiting for a retry.
    pub in_flight: u64,
    /// Items on disk now, awaiting delivery.
    pub spooled: u64,
    /// Successful callback calls, ever.
    pub batches: u64,
    /// Failed callback calls, ever.
    pub failed_flushes: u64,
    /// Retry attempts, ever.
    pub retries: u64,
    /// Since 0.2: callback calls that ran past `flush_timeout` and were
    /// abandoned, ever.
    pub flush_timeouts: u64,
    /// Since 0.2: abandoned callback calls still running, now.
    pub abandoned: u64,
    /// Since 0.2: items taken out by `spw_buffer_dump`, ever.
    pub dumped: u64,
    /// Since 0.2: spool operations that failed, ever.
    pub spool_errors: u64,
}

impl From<&Counts> for spw_stats {
    fn from(c: &Counts) -> Self {
        Self {
            inserted: c.inserted,
            delivered: c.delivered,
            dropped: c.dropped,
            buffered: c.buffered,
            in_flight: c.in_flight,
            spooled: c.spooled,
            batches: c.batches,
            failed_flushes: c.failed_flushes,
            retries: c.retries,
            flush_timeouts: c.flush_timeouts,
            abandoned: c.abandoned,
            dumped: c.dumped,
            spool_errors: c.spool_errors,
        }
    }
}

/// Creates a buffer from a configuration and a flush callback, with its own
/// flusher threads (`workers`) and timer thread.
///
/// The configuration is copied: `cfg` may be changed or freed afterwards. Its
/// combinations are checked now (say `capacity` below `max_size`).
/// `on_flush` is called on the flusher threads with `user_data`; both must be
/// usable from any thread and from several at once (see `spw_flush_fn`), and
/// `user_data` must stay valid until `spw_buffer_free` returns. On `SPW_OK`,
/// `*out` is the new buffer; free it with `spw_buffer_free`.
///
/// With `overflow` = `spill` and `spool_dir`, a full partition and a batch
/// that still fails after `max_retries` go to a disk spool under `spool_dir`,
/// which is delivered (oldest first, reason `SPW_FLUSH_REPLAY`) when the
/// callback accepts again, and by the next buffer opened on the same
/// directory.
///
/// Returns `SPW_OK`; `SPW_ERR_INVALID` for a configuration whose keys do not
/// fit together (the message names them); `SPW_ERR_IO` if the threads cannot
/// be started or the spool cannot be opened;
/// `SPW_ERR_NULL` (`cfg`, `on_flush` or `out`).
///
/// # Safety
/// `cfg` is NULL or a live configuration; a non-NULL `out` is valid for
/// writing one pointer; `on_flush` and `user_data` keep the promises of
/// `spw_flush_fn`.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_new(
    cfg: *const spw_config,
    on_flush: spw_flush_fn,
    user_data: *mut c_void,
    out: *mut *mut spw_buffer,
) -> spw_status {
    guard::status("spw_buffer_new", || {
        // SAFETY: the caller passes NULL or a pointer valid for writing one pointer.
        let out = unsafe { ptr::out(out, "out") }?;
        // SAFETY: the caller passes NULL or a live configuration from spw_config_new.
        let cfg = unsafe { ptr::handle(cfg, "cfg") }?;
        let buffer = spw_buffer::build(cfg, on_flush, user_data, None)?;
        out.write(ptr::into_c(buffer));
        Ok(())
    })
}

/// Inserts a copy of the `len` bytes at `data` as one item, into the calling
/// thread's home partition (assigned round-robin when the thread first
/// inserts, so one thread's items keep their order). `data` may be NULL when `len` is 0 (an empty
/// item). The caller keeps `data`.
///
/// When the partition holds `capacity` items (buffered and in flight),
/// `overflow` decides: `block` waits up to `block_timeout` for room,
/// `drop_oldest` evicts the oldest buffered item (counted as dropped) to make
/// room, `drop_newest` and `reject` refuse this one.
///
/// Returns `SPW_OK`; `SPW_ERR_FULL` (`reject`; `drop_newest`, which counts
/// the item as inserted and dropped; `drop_oldest` when every item held is
/// already in flight, so there is nothing to evict, also counting it as
/// inserted and dropped); `SPW_ERR_TIMEOUT` (`block`, still full after
/// `block_timeout`); `SPW_ERR_CLOSED` after `spw_buffer_close`;
/// `SPW_ERR_NULL` (`buf`, or `data` with `len > 0`); `SPW_ERR_INVALID` (`len`
/// larger than any object). Thread-safe.
///
/// # Safety
/// `buf` is NULL or a live buffer; a non-NULL `data` is readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_insert(
    buf: *mut spw_buffer,
    data: *const c_void,
    len: usize,
) -> spw_status {
    guard::status("spw_buffer_insert", || {
        // SAFETY: the caller passes NULL or a live buffer from spw_buffer_new.
        let b = unsafe { ptr::handle(buf, "buf") }?;
        // SAFETY: the caller passes NULL or a pointer readable for len bytes.
        let item = Box::<[u8]>::from(unsafe { ptr::bytes_in(data, len, "data") }?);
        b.fuse.run(|| {
            b.buffer
                .insert(item)
                .map_err(|e| insert_error(&e, b.buffer.config()))
        })
    })
}

/// Inserts copies of `items[0..count]`, in order, into the calling thread's
/// home partition (as `spw_buffer_insert`) under one lock. Stops at the first item refused (for
/// the reasons of `spw_buffer_insert`); the items before it are in.
///
/// `*inserted`, when `inserted` is not NULL, is how many items went in: the
/// first `*inserted` of `items`. Unlike other output parameters it is
/// written on failure too, because that count is what the caller needs
/// then (to retry the rest): on `SPW_OK` it is `count`; on `SPW_ERR_FULL`,
/// `SPW_ERR_TIMEOUT` and `SPW_ERR_CLOSED` it is less. It is left untouched
/// on `SPW_ERR_NULL` and `SPW_ERR_INVALID` (nothing was inserted) and on
/// `SPW_ERR_PANIC`.
///
/// Every item is checked before any is inserted: `items` NULL with
/// `count > 0`, or an item whose `data` is NULL with `len > 0`, is
/// `SPW_ERR_NULL` (the message names the item, e.g. `items[3].data`); a
/// length larger than any object is `SPW_ERR_INVALID`. `count` 0 inserts
/// nothing and returns `SPW_OK` (`SPW_ERR_CLOSED` after close). Thread-safe.
///
/// # Safety
/// `buf` is NULL or a live buffer; a non-NULL `items` is readable for `count`
/// items, each of whose non-NULL `data` is readable for its `len` bytes; a
/// non-NULL `inserted` is valid for writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_insert_batch(
    buf: *mut spw_buffer,
    items: *const spw_item,
    count: usize,
    inserted: *mut usize,
) -> spw_status {
    guard::status("spw_buffer_insert_batch", || {
        // SAFETY: the caller passes NULL or a pointer valid for writing a size_t.
        let inserted = unsafe { ptr::out_opt(inserted) };
        // SAFETY: forwarded from this function's contract.
        let (went_in, result) = unsafe { insert_batch(buf, items, count) };
        if let (Some(n), Some(out)) = (went_in, inserted) {
            out.write(n);
        }
        result
    })
}

/// `spw_buffer_insert_batch` but for `inserted`: how many went in, when the
/// call got as far as inserting, and the status.
///
/// # Safety
/// As `spw_buffer_insert_batch`.
unsafe fn insert_batch(
    buf: *mut spw_buffer,
    items: *const spw_item,
    count: usize,
) -> (Option<usize>, Result<(), Error>) {
    // SAFETY: the caller passes NULL or a live buffer from spw_buffer_new.
    let b = match unsafe { ptr::handle(buf, "buf") } {
        Ok(b) => b,
        Err(e) if e.status() == spw_status::SPW_ERR_CLOSED => return (Some(0), Err(e)),
        Err(e) => return (None, Err(e)),
    };
    // SAFETY: the caller passes NULL or a pointer readable for count items,
    // each of whose data is NULL or readable for its len bytes.
    let slices = match unsafe { item_slices(items, count) } {
        Ok(s) => s,
        Err(e) => return (None, Err(e)),
    };
    let buffer = match b.open() {
        Ok(buffer) => buffer,
        Err(e) => return (Some(0), Err(e)),
    };
    let copies = slices.into_iter().map(Box::<[u8]>::from);
    match b.fuse.run(|| buffer.insert_batch(copies)) {
        Ok(n) => (Some(n), Ok(())),
        Err(e) => (
            Some(e.inserted),
            Err(insert_error(&e.error, buffer.config())),
        ),
    }
}

/// The bytes of every item, checked before any is inserted.
///
/// # Safety
/// A non-NULL `items` is readable for `count` items, each of whose non-NULL
/// `data` is readable for its `len` bytes, none written during the call.
unsafe fn item_slices<'a>(items: *const spw_item, count: usize) -> Result<Vec<&'a [u8]>, Error> {
    // SAFETY: the caller passes NULL or a pointer readable for count items.
    let items = unsafe { ptr::slice_in(items, count, "items") }?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            // SAFETY: the caller passes items whose data is NULL or readable for len bytes.
            unsafe { ptr::bytes_in(item.data.cast(), item.len, "data") }
                .map_err(|e| Error::new(e.status(), format!("items[{i}].{}", e.detail())))
        })
        .collect()
}

/// Asks every partition to flush what it holds now; returns at once (the
/// callback runs on the flusher threads).
///
/// Returns `SPW_OK`, `SPW_ERR_CLOSED` after `spw_buffer_close`, or
/// `SPW_ERR_NULL`. Thread-safe.
///
/// # Safety
/// `buf` is NULL or a live buffer.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_flush(buf: *mut spw_buffer) -> spw_status {
    guard::status("spw_buffer_flush", || {
        // SAFETY: the caller passes NULL or a live buffer from spw_buffer_new.
        let b = unsafe { ptr::handle(buf, "buf") }?;
        let buffer = b.open()?;
        b.fuse.run(|| buffer.flush());
        Ok(())
    })
}

/// Flushes everything buffered at the call and waits until the callback
/// accepted it, or it was given up, or `timeout_ms` passed (0 = do not wait,
/// `UINT64_MAX` = no limit). Items inserted meanwhile are not waited for.
///
/// Returns `SPW_OK` once every item buffered at the call was accepted by the
/// callback; `SPW_ERR_SINK` if some of them were given up (the callback kept
/// failing through `max_retries`, or `drop_oldest` evicted them; they are
/// counted as dropped); `SPW_ERR_TIMEOUT` if some were still undelivered when
/// the time ran out (they stay buffered or in flight); `SPW_ERR_CLOSED` after
/// `spw_buffer_close`; `SPW_ERR_NULL`. Thread-safe.
///
/// # Safety
/// `buf` is NULL or a live buffer.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_sync_flush(
    buf: *mut spw_buffer,
    timeout_ms: u64,
) -> spw_status {
    guard::status("spw_buffer_sync_flush", || {
        // SAFETY: the caller passes NULL or a live buffer from spw_buffer_new.
        let b = unsafe { ptr::handle(buf, "buf") }?;
        let buffer = b.open()?;
        let timeout = Wait::from_ms(timeout_ms).as_timeout();
        let result = b.fuse.run(|| buffer.sync_flush(timeout));
        sync_flush_result(result, timeout_ms)
    })
}

/// The number of items buffered or in flight now (`buffered + in_flight` of
/// `spw_buffer_stats`): a snapshot that other threads may change at once.
/// Works after close too.
///
/// Returns `SPW_OK` (`*out` written) or `SPW_ERR_NULL` (`buf` or `out`).
/// Thread-safe.
///
/// # Safety
/// `buf` is NULL or a live buffer; a non-NULL `out` is valid for writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_len(buf: *const spw_buffer, out: *mut usize) -> spw_status {
    guard::status("spw_buffer_len", || {
        // SAFETY: the caller passes NULL or a live buffer from spw_buffer_new.
        let b = unsafe { ptr::handle(buf, "buf") }?;
        // SAFETY: the caller passes NULL or a pointer valid for writing a size_t.
        let out = unsafe { ptr::out(out, "out") }?;
        out.write(b.fuse.run(|| b.buffer.len()));
        Ok(())
    })
}

/// Fills `*out` with the buffer's counters and gauges, summed over its
/// partitions. Works after close too (the final numbers).
///
/// Returns `SPW_OK` (`*out` written) or `SPW_ERR_NULL` (`buf` or `out`).
/// Thread-safe.
///
/// # Safety
/// `buf` is NULL or a live buffer; a non-NULL `out` is valid for writing a
/// `spw_stats`.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_stats(
    buf: *const spw_buffer,
    out: *mut spw_stats,
) -> spw_status {
    guard::status("spw_buffer_stats", || {
        // SAFETY: the caller passes NULL or a live buffer from spw_buffer_new.
        let b = unsafe { ptr::handle(buf, "buf") }?;
        // SAFETY: the caller passes NULL or a pointer valid for writing a spw_stats.
        let out = unsafe { ptr::out(out, "out") }?;
        out.write(spw_stats::from(&b.fuse.run(|| b.buffer.stats()).counts));
        Ok(())
    })
}

/// Closes the buffer: stops accepting items (later inserts return
/// `SPW_ERR_CLOSED`), flushes everything it holds, waits up to `timeout_ms`
/// (0 = do not wait, `UINT64_MAX` = no limit) for the callback, and stops the
/// flusher threads. Whatever it returns, the buffer is closed.
///
/// Returns within `timeout_ms` even when a callback never returns. A
/// callback still running then (abandoned past `flush_timeout` or not) is
/// left to finish on its own, and `spw_buffer_free` waits for it. The items
/// of an abandoned call whose copy was delivered or spooled are not
/// undelivered, but the running call still makes the result
/// `SPW_ERR_TIMEOUT`.
/// Idempotent: a later call returns at once, with the first call's status.
/// `spw_buffer_len` and `spw_buffer_stats` still work afterwards.
///
/// Returns `SPW_OK` when every item buffered at close was accepted by the
/// callback (or, with `overflow` `spill`, is in the spool and durable);
/// `SPW_ERR_SINK` if some were given up (the callback failed through
/// `max_retries`); `SPW_ERR_TIMEOUT` if, when the time ran out, some were
/// still undelivered or a callback was still running; `SPW_ERR_IO` if the
/// spool's final flush failed, so that items it holds are only in memory
/// and lost when the process ends (each spool failure is also an
/// `SPW_EVENT_SPOOL_ERROR`, naming the file);
/// `SPW_ERR_INVALID`, closing nothing, when called from the buffer's own
/// flush callback (it would wait for itself); `SPW_ERR_NULL`. Thread-safe.
///
/// # Safety
/// `buf` is NULL or a live buffer.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_close(buf: *mut spw_buffer, timeout_ms: u64) -> spw_status {
    guard::status("spw_buffer_close", || {
        // SAFETY: the caller passes NULL or a live buffer from spw_buffer_new.
        let b = unsafe { ptr::handle(buf, "buf") }?;
        if b.buffer.in_own_sink() {
            return Err(Error::invalid(
                "spw_buffer_close called from the buffer's own flush callback, where it would wait for itself",
            ));
        }
        let timeout = Wait::from_ms(timeout_ms).as_timeout();
        let report = b.fuse.run(|| b.buffer.close(timeout));
        close_result(&report)
    })
}

/// Frees the buffer. NULL is a no-op.
///
/// A buffer still open is closed first, waiting up to its `flush_timeout`
/// for the callback (as `spw_buffer_close`). Then it waits for any callback
/// still running to return, abandoned ones (past `flush_timeout`) included,
/// so once it returns the callback is never called again and `user_data`
/// may be freed; the buffer's own flusher threads have exited by then too.
/// (A callback that never returns makes this wait forever.) Items still
/// undelivered are not delivered any more. Producers of the buffer stay
/// valid: their inserts then return `SPW_ERR_CLOSED`, and each is still
/// freed with `spw_producer_free`.
///
/// Must be the last call on `buf`: no other thread may be using it, and the
/// callback must not call it.
///
/// # Safety
/// `buf` is NULL or a live buffer that no other thread is using; it is
/// invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_free(buf: *mut spw_buffer) {
    guard::void("spw_buffer_free", || {
        // SAFETY: the caller passes NULL or a live buffer that nobody else uses.
        drop(unsafe { ptr::take(buf) });
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::callback::spw_flush_info;
    use crate::ffi::config::spw_config_free;
    use crate::ffi::error::last_error_string;
    use crate::ffi::spw_config_new;
    use core::ffi::c_int;
    use core::ptr::null_mut;
    use std::sync::atomic::{AtomicUsize, Ordering};

    unsafe extern "C" fn count_items(
        user_data: *mut c_void,
        _items: *const spw_item,
        count: usize,
        _info: *const spw_flush_info,
    ) -> c_int {
        // SAFETY: the test passes a live AtomicUsize that outlives the buffer.
        let n = unsafe { &*user_data.cast::<AtomicUsize>() };
        n.fetch_add(count, Ordering::SeqCst);
        0
    }

    #[test]
    fn a_panic_inside_a_buffer_call_closes_it_and_free_still_delivers() {
        let delivered = AtomicUsize::new(0);
        let cfg = spw_config_new();
        let mut buf = null_mut();
        // SAFETY: cfg is live, buf is valid for one pointer; `delivered`
        // outlives the buffer, which is freed below.
        unsafe {
            let user_data = (&delivered as *const AtomicUsize).cast_mut().cast();
            let st = spw_buffer_new(cfg, Some(count_items), user_data, &mut buf);
            assert_eq!(st, spw_status::SPW_OK, "{}", last_error_string());
            spw_config_free(cfg);
            assert_eq!(
                spw_buffer_insert(buf, b"a".as_ptr().cast(), 1),
                spw_status::SPW_OK
            );

            let st = guard::status("spw_buffer_insert", || {
                let b = ptr::handle(buf, "buf")?;
                b.fuse.run(|| panic!("injected"))
            });
            assert_eq!(st, spw_status::SPW_ERR_PANIC);
            assert_eq!(
                last_error_string(),
                "spw_buffer_insert: internal panic: injected"
            );

            let st = spw_buffer_insert(buf, b"b".as_ptr().cast(), 1);
            assert_eq!(st, spw_status::SPW_ERR_CLOSED);
            assert!(last_error_string().contains("panicked"));
            let mut len = 7;
            assert_eq!(spw_buffer_len(buf, &mut len), spw_status::SPW_ERR_CLOSED);
            assert_eq!(len, 7);
            assert_eq!(spw_buffer_close(buf, 0), spw_status::SPW_ERR_CLOSED);

            spw_buffer_free(buf);
            assert_eq!(last_error_string(), "");
        }
        assert_eq!(delivered.load(Ordering::SeqCst), 1);
    }

    unsafe extern "C" fn always_fail(
        _user_data: *mut c_void,
        _items: *const spw_item,
        _count: usize,
        _info: *const spw_flush_info,
    ) -> c_int {
        1
    }

    #[test]
    fn free_counts_what_is_still_undelivered_as_dropped() {
        let cfg = spw_config_new();
        let mut buf = null_mut();
        // SAFETY: cfg is live, buf is valid for one pointer; the callback
        // uses no user_data.
        unsafe {
            for (k, v) in [
                ("max_retries", "100"),
                ("retry_backoff", "1h"),
                ("retry_backoff_max", "1h"),
            ] {
                let (k, v) = (
                    std::ffi::CString::new(k).unwrap(),
                    std::ffi::CString::new(v).unwrap(),
                );
                assert_eq!(
                    crate::ffi::config::spw_config_set(cfg, k.as_ptr(), v.as_ptr()),
                    spw_status::SPW_OK
                );
            }
            let st = spw_buffer_new(cfg, Some(always_fail), null_mut(), &mut buf);
            assert_eq!(st, spw_status::SPW_OK, "{}", last_error_string());
            spw_config_free(cfg);
            for item in [b"a", b"b", b"c"] {
                let st = spw_buffer_insert(buf, item.as_ptr().cast(), 1);
                assert_eq!(st, spw_status::SPW_OK);
            }
            assert_eq!(spw_buffer_close(buf, 0), spw_status::SPW_ERR_TIMEOUT);
            // What spw_buffer_free does, step by step, so the counts can be
            // read before the buffer goes.
            let b = &*buf;
            b.gate.shut();
            b.buffer.join_private_threads();
            b.buffer.drop_undelivered();
            let c = b.buffer.stats().counts;
            assert!(c.is_conserved(), "{c:?}");
            assert_eq!(
                (c.inserted, c.dropped, c.buffered, c.in_flight),
                (3, 3, 0, 0)
            );
            spw_buffer_free(buf);
        }
    }

    #[test]
    fn stats_copy_every_counter() {
        let c = Counts {
            inserted: 1,
            delivered: 2,
            dropped: 3,
            dumped: 100,
            buffered: 4,
            in_flight: 5,
            spooled: 6,
            batches: 7,
            failed_flushes: 8,
            retries: 9,
            flush_timeouts: 200,
            abandoned: 300,
            spool_errors: 400,
        };
        assert_eq!(
            spw_stats::from(&c),
            spw_stats {
                inserted: 1,
                delivered: 2,
                dropped: 3,
                buffered: 4,
                in_flight: 5,
                spooled: 6,
                batches: 7,
                failed_flushes: 8,
                retries: 9,
                flush_timeouts: 200,
                abandoned: 300,
                dumped: 100,
                spool_errors: 400,
            }
        );
    }
}
