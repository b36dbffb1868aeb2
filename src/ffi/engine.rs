//! `spw_engine`: one timer thread and a bounded pool of flusher threads
//! shared by many buffers.

use core::ffi::c_void;
use std::time::Duration;

use super::buffer::spw_buffer;
use super::callback::spw_flush_fn;
use super::config::spw_config;
use super::error::Error;
use super::guard::{self, Fuse};
use super::ptr::{self, Handle};
use super::status::spw_status;
use super::wait::Wait;
use crate::engine::{Engine, EngineError};
use crate::stats::CloseReport;
use crate::sync::Mutex;

/// A shared engine: buffers made with `spw_engine_buffer_new` flush on its
/// `workers` threads instead of starting their own.
///
/// Every `spw_engine_*` function may be called from several threads at
/// once, except `spw_engine_free`, which must be the last call. Create with
/// `spw_engine_new`, free with `spw_engine_free`.
pub struct spw_engine {
    fuse: Fuse,
    engine: Engine,
    state: Mutex<EngineState>,
}

struct EngineState {
    /// `spw_engine_stop` has begun: no buffer may be added, since the
    /// threads that would flush it are going.
    stopped: bool,
    /// The longest `flush_timeout` of the buffers made on it: how long
    /// `spw_engine_free` waits for their callbacks when it has to stop.
    longest_flush_timeout: Duration,
}

const _: () = {
    const fn shared_between_threads<T: Sync + Send>() {}
    shared_between_threads::<spw_engine>();
};

impl Handle for spw_engine {
    fn fuse(&self) -> &Fuse {
        &self.fuse
    }
}

impl spw_engine {
    /// Closes every buffer on it and stops its threads, unless that was
    /// done before; `Ok` when no callback runs and nothing is undelivered.
    fn stop(&self, timeout: Duration) -> Result<(), Error> {
        self.state.lock().stopped = true;
        stop_result(&self.engine.stop(timeout))
    }
}

impl Drop for spw_engine {
    fn drop(&mut self) {
        let timeout = self.state.lock().longest_flush_timeout;
        // Idempotent: after spw_engine_stop no buffer is registered and the
        // threads are gone, so this returns at once.
        let _ = self.stop(timeout);
        // Stop leaves behind, so as never to hang, the threads still in a
        // callback: those abandoned past a buffer's flush_timeout, and any
        // call that outlived the stop's timeout. A buffer's free waits for
        // its own calls but does not join the engine's threads, and a
        // buffer may be freed after its engine. Waiting for them here is
        // what makes the C rule hold: after spw_engine_free no callback of
        // its buffers runs and none of its threads is left.
        self.engine.join_threads();
    }
}

/// The status of a stop: OK only when every buffer closed in time with
/// nothing left undelivered.
fn stop_result(reports: &[(String, CloseReport)]) -> Result<(), Error> {
    let late: Vec<String> = reports
        .iter()
        .filter(|(_, r)| r.timed_out || r.undelivered > 0)
        .map(|(name, r)| format!("`{name}` ({} undelivered)", r.undelivered))
        .collect();
    if late.is_empty() {
        Ok(())
    } else {
        Err(Error::new(
            spw_status::SPW_ERR_TIMEOUT,
            format!(
                "stopped, but when the timeout passed these buffers still had a callback \
                 running or items undelivered: {}",
                late.join(", ")
            ),
        ))
    }
}

/// Creates an engine with `workers` flusher threads and one timer thread,
/// for many buffers (`spw_engine_buffer_new`). On `SPW_OK`, `*out` is the
/// new engine; free it with `spw_engine_free`.
///
/// Returns `SPW_OK`; `SPW_ERR_INVALID` for `workers` 0; `SPW_ERR_IO` when a
/// thread cannot be started; `SPW_ERR_NULL` (`out`).
///
/// # Safety
/// A non-NULL `out` is valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn spw_engine_new(workers: u32, out: *mut *mut spw_engine) -> spw_status {
    guard::status("spw_engine_new", || {
        // SAFETY: the caller passes NULL or a pointer valid for writing one pointer.
        let out = unsafe { ptr::out(out, "out") }?;
        let workers = usize::try_from(workers)
            .map_err(|_| Error::invalid(format!("workers: {workers} threads cannot exist")))?;
        let engine = Engine::new(workers).map_err(|e| match e {
            EngineError::NoWorkers => Error::invalid(format!("workers: {e}")),
            EngineError::Spawn(_) => Error::new(spw_status::SPW_ERR_IO, e.to_string()),
        })?;
        out.write(ptr::into_c(spw_engine {
            fuse: Fuse::new(),
            engine,
            state: Mutex::new(EngineState {
                stopped: false,
                longest_flush_timeout: Duration::ZERO,
            }),
        }));
        Ok(())
    })
}

/// Creates a buffer that flushes on the engine's threads, as
/// `spw_buffer_new` does otherwise (same configuration, callback and
/// `user_data` rules; the configuration's `workers` is not used). Its
/// `name` must be unique among the engine's open buffers.
///
/// The buffer is freed with `spw_buffer_free`, before `spw_engine_free`. A
/// buffer freed after its engine is still safe: `spw_engine_free` closed it
/// (its inserts return `SPW_ERR_CLOSED`), and the engine's memory lives
/// until its last buffer is freed.
///
/// Returns `SPW_OK`; `SPW_ERR_INVALID` when another open buffer of the
/// engine has the same `name`, or for a configuration whose keys do not fit
/// together; `SPW_ERR_CLOSED` after `spw_engine_stop`; `SPW_ERR_IO` when the
/// spool cannot be opened; `SPW_ERR_NULL` (`e`, `cfg`, `on_flush` or `out`).
/// Thread-safe.
///
/// # Safety
/// `e` and `cfg` are NULL or live objects; a non-NULL `out` is valid for
/// writing one pointer; `on_flush` and `user_data` keep the promises of
/// `spw_flush_fn`.
#[no_mangle]
pub unsafe extern "C" fn spw_engine_buffer_new(
    e: *mut spw_engine,
    cfg: *const spw_config,
    on_flush: spw_flush_fn,
    user_data: *mut c_void,
    out: *mut *mut spw_buffer,
) -> spw_status {
    guard::status("spw_engine_buffer_new", || {
        // SAFETY: the caller passes NULL or a live engine from spw_engine_new.
        let engine = unsafe { ptr::handle(e, "e") }?;
        // SAFETY: the caller passes NULL or a pointer valid for writing one pointer.
        let out = unsafe { ptr::out(out, "out") }?;
        // SAFETY: the caller passes NULL or a live configuration from spw_config_new.
        let cfg = unsafe { ptr::handle(cfg, "cfg") }?;
        // Held while the buffer is built, so that a stop either comes first
        // (and is reported here) or finds the buffer registered and closes it.
        let mut state = engine.state.lock();
        if state.stopped {
            return Err(Error::closed("the engine was stopped"));
        }
        let buffer = engine
            .fuse
            .run(|| spw_buffer::build(cfg, on_flush, user_data, Some(&engine.engine)))?;
        let flush_timeout = buffer.buffer().config().flush_timeout;
        state.longest_flush_timeout = state.longest_flush_timeout.max(flush_timeout);
        out.write(ptr::into_c(buffer));
        Ok(())
    })
}

/// Stops the engine: closes every buffer on it that is still open (each
/// flushes what it holds, in parallel), waits up to `timeout_ms` (0 = do
/// not wait, `UINT64_MAX` = no limit) for their callbacks, and stops the
/// threads. Later `spw_engine_buffer_new` calls return `SPW_ERR_CLOSED`; the
/// buffers stay valid until each is freed with `spw_buffer_free`.
/// Idempotent: a later call returns at once.
///
/// Returns `SPW_OK` when, at return, no callback runs and nothing is
/// undelivered; `SPW_ERR_TIMEOUT` otherwise (the message names the
/// buffers); `SPW_ERR_NULL`. Thread-safe.
///
/// # Safety
/// `e` is NULL or a live engine.
#[no_mangle]
pub unsafe extern "C" fn spw_engine_stop(e: *mut spw_engine, timeout_ms: u64) -> spw_status {
    guard::status("spw_engine_stop", || {
        // SAFETY: the caller passes NULL or a live engine from spw_engine_new.
        let engine = unsafe { ptr::handle(e, "e") }?;
        let timeout = Wait::from_ms(timeout_ms).as_timeout();
        engine.fuse.run(|| engine.stop(timeout))
    })
}

/// Frees the engine. NULL is a no-op. An engine still running is stopped
/// first (as `spw_engine_stop`), waiting up to the longest `flush_timeout`
/// of its buffers.
///
/// Then it waits for every callback still running on the engine's threads
/// to return, abandoned ones (past `flush_timeout`) included, and joins
/// those threads: once it returns, no callback of its buffers runs and no
/// thread of the engine is left. (A callback that never returns makes this
/// wait forever, as `spw_buffer_free` does.)
///
/// Buffers made on it are freed with `spw_buffer_free` before this; one
/// that is not stays valid (closed, see `spw_engine_buffer_new`) until it
/// is freed. Must be the last call on `e`, and must not be called from a
/// callback of its buffers.
///
/// # Safety
/// `e` is NULL or a live engine that no other thread is using; it is
/// invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn spw_engine_free(e: *mut spw_engine) {
    guard::void("spw_engine_free", || {
        // SAFETY: the caller passes NULL or a live engine that nobody else uses.
        drop(unsafe { ptr::take(e) });
        Ok(())
    });
}
