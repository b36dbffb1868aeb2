//! Telemetry for C: `spw_event`, its `SPW_EVENT_*` kinds, `spw_event_fn`
//! and `spw_buffer_observe`, and the Rust observer that forwards a buffer's
//! events to the function C set last.

use core::cell::RefCell;
use core::ffi::{c_char, c_void};
use std::time::Duration;

use super::buffer::spw_buffer;
use super::callback::{c_text, Gate};
use super::error::Error;
use super::guard;
use super::ptr;
use super::status::spw_status;
use crate::observer::{
    AbandonedReturnEvent, DropEvent, DropReason, FlushEnd, FlushStart, FlushTimeoutEvent, Observer,
    OverflowEvent, RetryEvent, SpillEvent, SpillReason, SpoolErrorEvent,
};
use crate::sync::rc::Arc;
use crate::sync::Mutex;

/// A callback call is about to start (`attempt`, `reason`, `items`).
pub const SPW_EVENT_FLUSH_START: u32 = 1;
/// A callback call returned (`duration_us`; `status` `SPW_ERR_SINK` and
/// `message` when it failed the batch).
pub const SPW_EVENT_FLUSH_END: u32 = 2;
/// A failed batch will be tried again (`attempt` is the coming one).
pub const SPW_EVENT_RETRY: u32 = 3;
/// Items were given up and counted as dropped (`items`; `status` and
/// `message` say why).
pub const SPW_EVENT_DROP: u32 = 4;
/// A partition was full when an item came (`message` is the `overflow`
/// policy that now decides).
pub const SPW_EVENT_OVERFLOW: u32 = 5;
/// Items went to the disk spool (`items`, `bytes` as encoded; `message`
/// says why).
pub const SPW_EVENT_SPILL: u32 = 6;
/// A spool operation failed (`status` `SPW_ERR_IO`, `message` names the
/// operation and the error).
pub const SPW_EVENT_SPOOL_ERROR: u32 = 7;
/// A callback call ran past `flush_timeout` and was abandoned
/// (`duration_us`, `status` `SPW_ERR_TIMEOUT`).
pub const SPW_EVENT_FLUSH_TIMEOUT: u32 = 8;
/// An abandoned callback call returned at last; its result is ignored
/// (`duration_us` in all; `status` `SPW_ERR_SINK` when it failed).
pub const SPW_EVENT_ABANDONED: u32 = 9;

/// One telemetry event of a buffer (see `spw_buffer_observe`). Fields that
/// do not apply to a kind are 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct spw_event {
    /// One of the `SPW_EVENT_*` values.
    pub kind: u32,
    /// The partition, 0-based.
    pub partition: u32,
    /// The attempt, 0 on the first try (flush events and retries).
    pub attempt: u32,
    /// `SPW_FLUSH_*` for flush start, end and timeout, else 0.
    pub reason: u32,
    /// How many items the event is about.
    pub items: u64,
    /// Bytes, where known (a spill's encoded size), else 0.
    pub bytes: u64,
    /// How long the callback ran, in microseconds (flush end, flush
    /// timeout, abandoned).
    pub duration_us: u64,
    /// `SPW_OK`, or the status of what failed (`spw_status` as an int).
    pub status: i32,
    /// What failed or why, NUL-terminated, valid during the call only; ""
    /// when nothing did. Never NULL.
    pub message: *const c_char,
}

/// Receives a buffer's telemetry events (set with `spw_buffer_observe`).
///
/// Runs on the thread where the event happens (a flusher thread, or the
/// inserting thread for overflow and drops), never with a lock of the
/// library held. It must be quick, must return normally (no C++ exception
/// or `longjmp` may leave it), and must not call back into the same buffer:
/// `spw_buffer_observe` on it returns `SPW_ERR_INVALID` from there, and
/// `spw_buffer_sync_flush`, `spw_buffer_close` and `spw_buffer_free` would
/// wait for the very thread they run on. `event` and its `message` are
/// valid during the call only.
pub type spw_event_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const spw_event)>;

type EventFn = unsafe extern "C" fn(*mut c_void, *const spw_event);

/// The function C set, with its `user_data`, and the gate that lets
/// `spw_buffer_observe` wait for its calls in progress.
struct Target {
    on_event: EventFn,
    user_data: *mut c_void,
    gate: Gate,
}

// SAFETY: events come from several threads at once; `spw_buffer_observe`
// documents that `on_event` and `user_data` must be usable from any thread
// and from several at once. Rust only copies the pointer, never reads it.
unsafe impl Send for Target {}
// SAFETY: as for Send; `&Target` exposes the pointer's value and the Sync gate.
unsafe impl Sync for Target {}

/// The observer C set last, replaced safely while events fire: an event
/// takes a clone of the current target under the lock and calls it outside
/// the lock, through the target's gate; a replacement swaps the target and
/// then shuts the old one's gate, which waits for its calls in progress.
/// Once `spw_buffer_observe` returns, the old function is never called
/// again, so C may free its `user_data`.
pub(crate) struct EventSlot {
    current: Mutex<Option<Arc<Target>>>,
}

thread_local! {
    /// The slots whose callback this thread is inside, innermost last: a
    /// replacement from inside its own callback would wait for itself.
    static DISPATCHING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks this thread as inside a slot's callback until dropped.
struct Dispatching;

impl Dispatching {
    fn enter(slot: &EventSlot) -> Self {
        let _ = DISPATCHING.try_with(|d| d.borrow_mut().push(slot.id()));
        Self
    }
}

impl Drop for Dispatching {
    fn drop(&mut self) {
        let _ = DISPATCHING.try_with(|d| d.borrow_mut().pop());
    }
}

impl EventSlot {
    pub(crate) fn new() -> Self {
        Self {
            current: Mutex::new(None),
        }
    }

    fn id(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    fn inside_own_callback(&self) -> bool {
        DISPATCHING
            .try_with(|d| d.borrow().contains(&self.id()))
            .unwrap_or(false)
    }

    /// Sets the function that receives events (`None` removes it) and waits
    /// until no call of the previous one runs.
    ///
    /// # Errors
    /// `SPW_ERR_INVALID` from inside this slot's own callback, where the
    /// wait could never end; nothing changes then.
    pub(crate) fn replace(
        &self,
        on_event: spw_event_fn,
        user_data: *mut c_void,
    ) -> Result<(), Error> {
        if self.inside_own_callback() {
            return Err(Error::invalid(
                "called from inside this buffer's own event callback, which must not call \
                 back into the same buffer",
            ));
        }
        let next = on_event.map(|on_event| {
            Arc::new(Target {
                on_event,
                user_data,
                gate: Gate::new(),
            })
        });
        let old = core::mem::replace(&mut *self.current.lock(), next);
        if let Some(old) = old {
            old.gate.shut();
        }
        Ok(())
    }

    /// Calls the current function, if any, with `event` and `message`.
    fn emit(&self, mut event: spw_event, message: Option<&str>) {
        let Some(target) = self.current.lock().clone() else {
            return;
        };
        let Some(_entered) = target.gate.enter() else {
            return;
        };
        let text = message.map(c_text);
        event.message = text.as_deref().map_or(c"".as_ptr(), |t| t.as_ptr());
        let _inside = Dispatching::enter(self);
        // SAFETY: on_event is the non-NULL function C gave spw_buffer_observe,
        // with its user_data, usable from any thread by that function's
        // contract. `event` and the message it points at live until the call
        // returns; the gate keeps the call from starting once a later
        // spw_buffer_observe (or spw_buffer_free) has replaced this target.
        unsafe { (target.on_event)(target.user_data, &event) };
    }
}

/// The observer every C buffer is built with: forwards to its slot.
pub(crate) struct Bridge(pub(crate) Arc<EventSlot>);

fn event(kind: u32, partition: u32) -> spw_event {
    spw_event {
        kind,
        partition,
        attempt: 0,
        reason: 0,
        items: 0,
        bytes: 0,
        duration_us: 0,
        status: spw_status::SPW_OK as i32,
        message: core::ptr::null(),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The status and text a drop is reported with.
fn drop_cause(reason: DropReason) -> (spw_status, &'static str) {
    match reason {
        DropReason::DropNewest => (
            spw_status::SPW_ERR_FULL,
            "overflow drop_newest refused the item",
        ),
        DropReason::DropOldest => (
            spw_status::SPW_ERR_FULL,
            "overflow drop_oldest evicted the item",
        ),
        DropReason::NothingToEvict => (
            spw_status::SPW_ERR_FULL,
            "overflow drop_oldest found everything in flight and refused the item",
        ),
        DropReason::SinkFailed => (
            spw_status::SPW_ERR_SINK,
            "the callback failed after max_retries",
        ),
        DropReason::Closed => (
            spw_status::SPW_ERR_CLOSED,
            "the buffer closed before delivery",
        ),
        DropReason::Corrupt => (
            spw_status::SPW_ERR_CORRUPT,
            "spooled records could not be read back",
        ),
    }
}

fn spill_cause(reason: SpillReason) -> &'static str {
    match reason {
        SpillReason::Overflow => "overflow spill met a full partition",
        SpillReason::SinkFailed => "the callback failed after max_retries",
        SpillReason::Close => "the buffer closed before delivery",
    }
}

impl Observer for Bridge {
    fn on_flush_start(&self, e: &FlushStart<'_>) {
        let mut ev = event(SPW_EVENT_FLUSH_START, e.partition);
        ev.attempt = e.attempt;
        ev.reason = e.reason.code();
        ev.items = count(e.items);
        self.0.emit(ev, None);
    }

    fn on_flush_end(&self, e: &FlushEnd<'_>) {
        let mut ev = event(SPW_EVENT_FLUSH_END, e.partition);
        ev.attempt = e.attempt;
        ev.reason = e.reason.code();
        ev.items = count(e.items);
        ev.duration_us = micros(e.duration);
        if e.error.is_some() {
            ev.status = spw_status::SPW_ERR_SINK as i32;
        }
        self.0.emit(ev, e.error);
    }

    fn on_retry(&self, e: &RetryEvent<'_>) {
        let mut ev = event(SPW_EVENT_RETRY, e.partition);
        ev.attempt = e.attempt;
        ev.items = count(e.items);
        self.0.emit(ev, None);
    }

    fn on_drop(&self, e: &DropEvent<'_>) {
        let mut ev = event(SPW_EVENT_DROP, e.partition);
        ev.items = count(e.count);
        let (status, why) = drop_cause(e.reason);
        ev.status = status as i32;
        self.0.emit(ev, Some(why));
    }

    fn on_overflow(&self, e: &OverflowEvent<'_>) {
        let mut ev = event(SPW_EVENT_OVERFLOW, e.partition);
        ev.status = spw_status::SPW_ERR_FULL as i32;
        self.0.emit(ev, Some(e.policy.as_str()));
    }

    fn on_spill(&self, e: &SpillEvent<'_>) {
        let mut ev = event(SPW_EVENT_SPILL, e.partition);
        ev.items = count(e.items);
        ev.bytes = e.bytes;
        self.0.emit(ev, Some(spill_cause(e.reason)));
    }

    fn on_spool_error(&self, e: &SpoolErrorEvent<'_>) {
        let mut ev = event(SPW_EVENT_SPOOL_ERROR, e.partition);
        ev.status = spw_status::SPW_ERR_IO as i32;
        self.0
            .emit(ev, Some(&format!("{}: {}", e.operation, e.error)));
    }

    fn on_flush_timeout(&self, e: &FlushTimeoutEvent<'_>) {
        let mut ev = event(SPW_EVENT_FLUSH_TIMEOUT, e.partition);
        ev.attempt = e.attempt;
        ev.reason = e.reason.code();
        ev.items = count(e.items);
        ev.duration_us = micros(e.duration);
        ev.status = spw_status::SPW_ERR_TIMEOUT as i32;
        self.0.emit(
            ev,
            Some(if e.abandoned {
                "the callback ran past flush_timeout and was abandoned"
            } else {
                "the callback ran past flush_timeout; the engine already has `workers` \
                 abandoned callbacks, so this one keeps its thread and the partition waits"
            }),
        );
    }

    fn on_abandoned_return(&self, e: &AbandonedReturnEvent<'_>) {
        let mut ev = event(SPW_EVENT_ABANDONED, e.partition);
        ev.attempt = e.attempt;
        ev.items = count(e.items);
        ev.duration_us = micros(e.duration);
        if e.error.is_some() {
            ev.status = spw_status::SPW_ERR_SINK as i32;
        }
        self.0.emit(ev, e.error);
    }
}

/// Sets the function that receives the buffer's telemetry events
/// (`spw_event_fn`), replacing the previous one; `on_event` NULL removes it.
///
/// When it returns, the previous function is not running and is never
/// called again, so its `user_data` may be freed. `on_event` and
/// `user_data` must be usable from any thread and from several at once, and
/// `user_data` must stay valid until the next `spw_buffer_observe` or
/// `spw_buffer_free` returns. Works on a closed buffer too (an abandoned
/// callback may still return after close).
///
/// Returns `SPW_OK`; `SPW_ERR_INVALID` when called from inside this
/// buffer's own event callback (nothing changes); `SPW_ERR_NULL` (`buf`).
/// Thread-safe.
///
/// # Safety
/// `buf` is NULL or a live buffer; `on_event` and `user_data` keep the
/// promises of `spw_event_fn`.
#[no_mangle]
pub unsafe extern "C" fn spw_buffer_observe(
    buf: *mut spw_buffer,
    on_event: spw_event_fn,
    user_data: *mut c_void,
) -> spw_status {
    guard::status("spw_buffer_observe", || {
        // SAFETY: the caller passes NULL or a live buffer from spw_buffer_new.
        let b = unsafe { ptr::handle(buf, "buf") }?;
        b.events().replace(on_event, user_data)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::FlushReason;
    use core::ffi::CStr;
    use std::sync::Mutex as StdMutex;

    /// What the test callback saw: (kind, partition, items, status, message).
    type Seen = StdMutex<Vec<(u32, u32, u64, i32, String)>>;

    unsafe extern "C" fn record(user_data: *mut c_void, e: *const spw_event) {
        // SAFETY: the tests pass a live `Seen`; `e` and its message are
        // valid during the call.
        unsafe {
            let seen = &*user_data.cast::<Seen>();
            let e = &*e;
            let msg = CStr::from_ptr(e.message).to_string_lossy().into_owned();
            seen.lock()
                .unwrap()
                .push((e.kind, e.partition, e.items, e.status, msg));
        }
    }

    fn ptr_of(seen: &Seen) -> *mut c_void {
        (seen as *const Seen).cast_mut().cast()
    }

    #[test]
    fn events_reach_the_current_function_only() {
        let slot = Arc::new(EventSlot::new());
        let bridge = Bridge(Arc::clone(&slot));
        let first = Seen::default();
        let second = Seen::default();
        let drop = DropEvent {
            buffer: "b",
            partition: 1,
            count: 3,
            reason: DropReason::SinkFailed,
        };
        bridge.on_drop(&drop);
        slot.replace(Some(record), ptr_of(&first)).unwrap();
        bridge.on_drop(&drop);
        slot.replace(Some(record), ptr_of(&second)).unwrap();
        bridge.on_flush_start(&FlushStart {
            buffer: "b",
            partition: 0,
            reason: FlushReason::Manual,
            attempt: 0,
            items: 5,
        });
        slot.replace(None, core::ptr::null_mut()).unwrap();
        bridge.on_drop(&drop);
        assert_eq!(
            *first.lock().unwrap(),
            [(
                SPW_EVENT_DROP,
                1,
                3,
                spw_status::SPW_ERR_SINK as i32,
                "the callback failed after max_retries".to_string()
            )]
        );
        assert_eq!(
            *second.lock().unwrap(),
            [(SPW_EVENT_FLUSH_START, 0, 5, 0, String::new())]
        );
    }

    /// A target that counts its calls and any call after it was retired.
    #[derive(Default)]
    struct Retirable {
        calls: std::sync::atomic::AtomicUsize,
        retired: std::sync::atomic::AtomicBool,
        late_calls: std::sync::atomic::AtomicUsize,
    }

    unsafe extern "C" fn count_unless_retired(user_data: *mut c_void, _e: *const spw_event) {
        use std::sync::atomic::Ordering::SeqCst;
        // SAFETY: the test keeps every Retirable alive until the end.
        let r = unsafe { &*user_data.cast::<Retirable>() };
        if r.retired.load(SeqCst) {
            r.late_calls.fetch_add(1, SeqCst);
        }
        r.calls.fetch_add(1, SeqCst);
    }

    #[test]
    fn replacing_while_events_fire_never_calls_a_replaced_function() {
        use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
        let slot = Arc::new(EventSlot::new());
        let stop = Arc::new(AtomicBool::new(false));
        let emitters: Vec<_> = (0..2)
            .map(|p| {
                let (slot, stop) = (Arc::clone(&slot), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let bridge = Bridge(slot);
                    while !stop.load(SeqCst) {
                        bridge.on_retry(&RetryEvent {
                            buffer: "b",
                            partition: p,
                            attempt: 1,
                            backoff: Duration::ZERO,
                            items: 1,
                        });
                    }
                })
            })
            .collect();
        let targets: Vec<Retirable> = (0..50).map(|_| Retirable::default()).collect();
        for t in &targets {
            let user_data = (t as *const Retirable).cast_mut().cast();
            slot.replace(Some(count_unless_retired), user_data).unwrap();
            // Wait until this target got an event, so replacements race calls.
            while t.calls.load(SeqCst) == 0 {
                std::thread::yield_now();
            }
            slot.replace(None, core::ptr::null_mut()).unwrap();
            t.retired.store(true, SeqCst);
        }
        stop.store(true, SeqCst);
        for e in emitters {
            e.join().unwrap();
        }
        for t in &targets {
            assert!(t.calls.load(SeqCst) > 0);
            assert_eq!(t.late_calls.load(SeqCst), 0);
        }
    }

    unsafe extern "C" fn replace_from_inside(user_data: *mut c_void, _e: *const spw_event) {
        // SAFETY: the test passes a live (slot, statuses) pair.
        let (slot, out) = unsafe { &*user_data.cast::<(Arc<EventSlot>, StdMutex<Vec<bool>>)>() };
        let refused = slot.replace(None, core::ptr::null_mut()).is_err();
        out.lock().unwrap().push(refused);
    }

    #[test]
    fn replacing_from_inside_its_own_callback_is_refused_not_a_deadlock() {
        let slot = Arc::new(EventSlot::new());
        let state = (Arc::clone(&slot), StdMutex::new(Vec::new()));
        let user_data = (&state as *const (Arc<EventSlot>, StdMutex<Vec<bool>>))
            .cast_mut()
            .cast();
        slot.replace(Some(replace_from_inside), user_data).unwrap();
        Bridge(Arc::clone(&slot)).on_overflow(&OverflowEvent {
            buffer: "b",
            partition: 0,
            policy: crate::config::Overflow::Block,
        });
        assert_eq!(*state.1.lock().unwrap(), [true]);
        // Outside the callback the same call works.
        slot.replace(None, core::ptr::null_mut()).unwrap();
    }
}
