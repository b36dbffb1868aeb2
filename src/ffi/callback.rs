//! The buffer's sink as C sees it: `spw_flush_fn` and what it is handed
//! (`spw_item`, `spw_flush_info`, the `SPW_FLUSH_*` reasons), and the Rust
//! sink that calls it.

use core::ffi::{c_char, c_int, c_void};
use std::ffi::CString;
use std::time::Instant;

use crate::sink::{FlushContext, Sink, SinkError};
use crate::sync::rc::Arc;
use crate::sync::{Condvar, Mutex};

/// A flush because a partition reached `max_size` items or `max_bytes`.
pub const SPW_FLUSH_SIZE: u32 = 1;
/// A flush because a partition's `flush_interval` passed.
pub const SPW_FLUSH_TIME: u32 = 2;
/// A flush that `spw_buffer_flush` or `spw_buffer_sync_flush` asked for.
pub const SPW_FLUSH_MANUAL: u32 = 3;
/// A flush because the buffer is closing.
pub const SPW_FLUSH_CLOSE: u32 = 4;
/// Items read back from the disk spool (`overflow = spill`), oldest first.
pub const SPW_FLUSH_REPLAY: u32 = 5;

/// One byte item, borrowed: `len` bytes at `data`.
///
/// In a flush callback, `data` is valid only during the call, and is NULL
/// when `len` is 0. Passed to `spw_buffer_insert_batch`, it is read only
/// during the call, and `data` may be NULL when `len` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct spw_item {
    /// The first byte (NULL allowed for an empty item).
    pub data: *const u8,
    /// The number of bytes.
    pub len: usize,
}

impl spw_item {
    fn of(bytes: &[u8]) -> Self {
        Self {
            data: if bytes.is_empty() {
                core::ptr::null()
            } else {
                bytes.as_ptr()
            },
            len: bytes.len(),
        }
    }
}

/// What a flush callback is told about the batch it is handed.
///
/// ABI rule: fields never move; new ones are added only at the end, with a
/// new major soname. `deadline_ms` and `meta` came with 0.2
/// (`libspillway.so.1`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct spw_flush_info {
    /// The partition the batch comes from, 0-based.
    pub partition: u32,
    /// 0 on the first try, 1.. on retries of the same batch.
    pub attempt: u32,
    /// Why it is flushed now: one of the `SPW_FLUSH_*` values.
    pub reason: u32,
    /// The sum of the items' lengths.
    pub batch_bytes: u64,
    /// Since 0.2: milliseconds left, when the call starts, until
    /// `flush_timeout` passes; past it the attempt is abandoned (counted as
    /// failed and retried or spilled, so the batch may arrive twice).
    pub deadline_ms: u64,
    /// Since 0.2: the configured `flush_meta`, NUL-terminated (a NUL inside
    /// it became U+FFFD), valid during the call; NULL when it is not set.
    pub meta: *const c_char,
}

impl spw_flush_info {
    fn of(ctx: &FlushContext<'_>, meta: *const c_char, now: Instant) -> Self {
        let left = ctx.deadline.saturating_duration_since(now).as_millis();
        Self {
            partition: ctx.partition,
            attempt: ctx.attempt,
            reason: ctx.reason.code(),
            batch_bytes: ctx.batch_bytes,
            deadline_ms: u64::try_from(left).unwrap_or(u64::MAX),
            meta,
        }
    }
}

/// `flush_meta` as C reads it: NUL-terminated, with any NUL inside it (C
/// would stop reading there) turned into U+FFFD.
pub(crate) fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', "\u{fffd}")).unwrap_or_default()
}

/// Receives a batch of a buffer (see `spw_buffer_new`).
///
/// Runs on one of the buffer's flusher threads, never on the thread that
/// inserted. `items[0..count]` are the batch, oldest first; they and `info`
/// are valid only during the call (copy what you keep). Return 0 to accept
/// the batch; any other value fails this attempt, and the batch is retried
/// (`max_retries`, `retry_backoff`) and then given up (counted as dropped).
///
/// At most one call per partition at a time, so each partition's items arrive
/// in insertion order; different partitions may call at the same time, so
/// anything `user_data` points at must be safe to use from several threads.
///
/// A call that runs past `flush_timeout` is abandoned: the attempt counts as
/// failed, a replacement flusher thread starts (at most `workers` abandoned
/// calls per engine are replaced; past that the partition waits for the
/// call), and the partition flushes on, so an abandoned call is the one
/// exception to "one call per partition at a time". At that moment the
/// library copies its batch and retries, spills or gives up the copy as
/// configured, without waiting for the call; the abandoned call's own
/// `items` stay valid until it returns. When it returns, its result is
/// ignored and its batch discarded. So a batch may arrive twice (at least
/// once): in the abandoned call and in the retry.
///
/// The callback must return normally: no C++ exception and no `longjmp` may
/// leave it (that is undefined behaviour). It may insert into its own buffer;
/// `spw_buffer_sync_flush` and `spw_buffer_close` on it return
/// `SPW_ERR_INVALID` at once (they would wait for the callback itself), and
/// it must not call `spw_buffer_free` on it.
pub type spw_flush_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        items: *const spw_item,
        count: usize,
        info: *const spw_flush_info,
    ) -> c_int,
>;

/// The C function behind a buffer's sink.
type FlushFn =
    unsafe extern "C" fn(*mut c_void, *const spw_item, usize, *const spw_flush_info) -> c_int;

/// Keeps C's callback from being called once `spw_buffer_free` has begun.
///
/// A sink call that outlives `close`'s timeout is left running on a detached
/// flusher thread, which may then take further queued flushes; without the
/// gate those would reach `user_data` after C freed it.
pub(crate) struct Gate {
    state: Mutex<GateState>,
    idle: Condvar,
}

#[derive(Default)]
struct GateState {
    shut: bool,
    running: usize,
}

/// A callback call in progress; leaving the gate when dropped.
pub(crate) struct Entered<'a>(&'a Gate);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock();
        st.running -= 1;
        if st.shut && st.running == 0 {
            self.0.idle.notify_all();
        }
    }
}

impl Gate {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(GateState::default()),
            idle: Condvar::new(),
        }
    }

    pub(crate) fn enter(&self) -> Option<Entered<'_>> {
        let mut st = self.state.lock();
        if st.shut {
            return None;
        }
        st.running += 1;
        Some(Entered(self))
    }

    /// Lets no further call in, and waits for those in progress to return.
    pub(crate) fn shut(&self) {
        let mut st = self.state.lock();
        st.shut = true;
        while st.running > 0 {
            self.idle.wait(&mut st);
        }
    }
}

/// The sink of a C buffer: calls `spw_flush_fn` with a view of the batch.
pub(crate) struct CallbackSink {
    on_flush: FlushFn,
    user_data: *mut c_void,
    gate: Arc<Gate>,
    /// `flush_meta`, converted once rather than on every call.
    meta: Option<CString>,
}

// SAFETY: the sink is called on flusher threads, several at once (one per
// partition), with the raw `user_data` pointer. `spw_buffer_new` documents
// that `user_data` and the callback must be usable from any thread and from
// several at once; the sink itself only copies the pointer and never
// dereferences it.
unsafe impl Send for CallbackSink {}
// SAFETY: as for Send; `&CallbackSink` gives access to nothing but the
// pointer's value and the gate, which is Sync.
unsafe impl Sync for CallbackSink {}

impl CallbackSink {
    /// `None` when the callback is NULL.
    pub(crate) fn new(
        on_flush: spw_flush_fn,
        user_data: *mut c_void,
        gate: Arc<Gate>,
    ) -> Option<Self> {
        Some(Self {
            on_flush: on_flush?,
            user_data,
            gate,
            meta: None,
        })
    }

    /// Hands `meta` (the buffer's `flush_meta`) to every call as `info->meta`.
    pub(crate) fn with_meta(mut self, meta: Option<&str>) -> Self {
        self.meta = meta.map(c_text);
        self
    }
}

impl Sink<Box<[u8]>> for CallbackSink {
    fn flush(&self, batch: &[Box<[u8]>], ctx: &FlushContext<'_>) -> Result<(), SinkError> {
        let Some(_entered) = self.gate.enter() else {
            return Err(SinkError::msg(
                "the buffer was freed; its flush callback is no longer called",
            ));
        };
        let items: Vec<spw_item> = batch.iter().map(|b| spw_item::of(b)).collect();
        let meta = self
            .meta
            .as_deref()
            .map_or(core::ptr::null(), |m| m.as_ptr());
        let info = spw_flush_info::of(ctx, meta, Instant::now());
        // SAFETY: on_flush is the non-NULL function C gave spw_buffer_new,
        // with its user_data (usable from this thread by that function's
        // contract). items and info live until after the call returns, as
        // the callback's documentation promises; the gate keeps the call from
        // starting after spw_buffer_free.
        let rc = unsafe { (self.on_flush)(self.user_data, items.as_ptr(), items.len(), &info) };
        if rc == 0 {
            Ok(())
        } else {
            Err(SinkError::msg(format!("the flush callback returned {rc}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::FlushReason;
    use std::time::Instant;

    #[test]
    fn reason_codes_are_the_c_constants() {
        assert_eq!(FlushReason::Size.code(), SPW_FLUSH_SIZE);
        assert_eq!(FlushReason::Time.code(), SPW_FLUSH_TIME);
        assert_eq!(FlushReason::Manual.code(), SPW_FLUSH_MANUAL);
        assert_eq!(FlushReason::Close.code(), SPW_FLUSH_CLOSE);
        assert_eq!(FlushReason::Replay.code(), SPW_FLUSH_REPLAY);
    }

    #[test]
    fn items_view_the_batch_and_empty_items_are_null() {
        let a = spw_item::of(b"abc");
        assert_eq!(a.len, 3);
        // SAFETY: a points into the static literal.
        let bytes = unsafe { core::slice::from_raw_parts(a.data, a.len) };
        assert_eq!(bytes, b"abc");
        let e = spw_item::of(b"");
        assert!(e.data.is_null());
        assert_eq!(e.len, 0);
    }

    #[test]
    fn info_copies_the_context() {
        let now = Instant::now();
        let ctx = FlushContext {
            buffer: "b",
            partition: 3,
            reason: FlushReason::Time,
            attempt: 2,
            deadline: now + std::time::Duration::from_millis(1500),
            flush_meta: None,
            batch_bytes: 99,
        };
        let meta = c_text("topic=a");
        assert_eq!(
            spw_flush_info::of(&ctx, meta.as_ptr(), now),
            spw_flush_info {
                partition: 3,
                attempt: 2,
                reason: SPW_FLUSH_TIME,
                batch_bytes: 99,
                deadline_ms: 1500,
                meta: meta.as_ptr(),
            }
        );
        // A deadline already passed is 0 ms left, not a wrap-around.
        let late = spw_flush_info::of(
            &ctx,
            core::ptr::null(),
            now + std::time::Duration::from_secs(9),
        );
        assert_eq!(late.deadline_ms, 0);
        assert!(late.meta.is_null());
    }

    #[test]
    fn meta_with_a_nul_inside_reaches_c_whole() {
        assert_eq!(c_text("a\0b").to_str().unwrap(), "a\u{fffd}b");
    }

    unsafe extern "C" fn count_and_fail_on_odd(
        user_data: *mut c_void,
        items: *const spw_item,
        count: usize,
        info: *const spw_flush_info,
    ) -> c_int {
        // SAFETY: the test passes a live AtomicUsize; info and items are
        // valid during the call.
        unsafe {
            let calls = &*user_data.cast::<std::sync::atomic::AtomicUsize>();
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            assert_eq!(count, 2);
            assert_eq!(*(*items.add(1)).data, b'z');
            assert_eq!((*info).batch_bytes, 4);
            (n % 2) as c_int
        }
    }

    #[test]
    fn nonzero_returns_fail_and_a_shut_gate_stops_calls() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let gate = Arc::new(Gate::new());
        assert!(CallbackSink::new(None, core::ptr::null_mut(), Arc::clone(&gate)).is_none());
        let sink = CallbackSink::new(
            Some(count_and_fail_on_odd),
            (&calls as *const std::sync::atomic::AtomicUsize)
                .cast_mut()
                .cast(),
            Arc::clone(&gate),
        )
        .unwrap();
        let batch: Vec<Box<[u8]>> = vec![Box::from(&b"xyz"[..]), Box::from(&b"z"[..])];
        let ctx = FlushContext {
            buffer: "b",
            partition: 0,
            reason: FlushReason::Manual,
            attempt: 0,
            deadline: Instant::now(),
            flush_meta: None,
            batch_bytes: 4,
        };
        assert!(sink.flush(&batch, &ctx).is_ok());
        let err = sink.flush(&batch, &ctx).unwrap_err();
        assert_eq!(err.to_string(), "the flush callback returned 1");
        gate.shut();
        let err = sink.flush(&batch, &ctx).unwrap_err();
        assert!(err.to_string().contains("freed"), "{err}");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
