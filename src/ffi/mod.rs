//! The C ABI: the `spw_*` functions declared in `include/spillway.h`.
//!
//! Thin by design: each entry point checks its pointers, catches panics,
//! converts, and calls the Rust API. No logic of its own lives here.
//!
//! # The rules every function follows
//!
//! These are the contract of `include/spillway.h`; the helpers named in
//! brackets are where each rule is enforced, so an entry point stays a few
//! lines long.
//!
//! - **Status codes.** A fallible function returns `spw_status`: `SPW_OK` or
//!   the reason it failed. Functions that return a count or length return 0
//!   on failure, and `*_free`/`*_close` return nothing; both report through
//!   `spw_last_error()`. Status codes only flow to C: a value C passes in is a
//!   plain integer that is checked, so no out-of-range enum reaches Rust
//!   (`spw_status_name` takes an `int`).
//! - **Last error.** Every function except `spw_last_error`, `spw_status_name`
//!   and `spw_version` replaces the calling thread's message: `""` on success,
//!   `"<function>: <what went wrong>"` on failure. The string is never NULL and
//!   stays valid until the same thread's next `spw_` call. (`error`)
//! - **No panic crosses into C.** Every entry point runs inside one guard
//!   that catches a panic and returns `SPW_ERR_PANIC` (0 / nothing for the
//!   others) with the panic's message. The object whose code panicked is
//!   closed: every later call on it returns `SPW_ERR_CLOSED`, and only its
//!   `*_free` still works. (`guard`)
//! - **Pointers.** A NULL where a pointer is required is `SPW_ERR_NULL` with a
//!   message naming the parameter, never a crash. A data pointer may be NULL
//!   when its length is 0. (`ptr`)
//! - **Invalid values** (a zero capacity, a length that cannot exist) are
//!   `SPW_ERR_INVALID` with a message naming the parameter and what it
//!   accepts. A failed call changes no state.
//! - **Output parameters** are written only when the call returns `SPW_OK`;
//!   the one exception is `spw_buffer_insert_batch`'s `inserted`, the count
//!   a caller needs most when the batch stopped part way.
//! - **Ownership.** Every object is created by one function and freed by its
//!   own `*_free`; `*_free(NULL)` is a no-op, and `*_free` must be the last
//!   call on the object (no other thread may still be using it). Bytes the
//!   library allocates for the caller are freed with `spw_bytes_free(data,
//!   len)`; an empty item comes back as `(NULL, 0)`, and freeing that is a
//!   no-op. Data the caller passes in is copied or only read during the call.
//! - **Timeouts** are `uint64_t timeout_ms`: 0 = do not wait, `UINT64_MAX` =
//!   wait forever, anything else = wait up to that many milliseconds. (`wait`)
//! - **Threads.** `spw_ring_*`, `spw_buffer_*`, `spw_config_*`,
//!   `spw_spool_*` and `spw_checkpoint_*` may be called from any number of
//!   threads at once. A `spw_spsc` has exactly one producer thread and one
//!   consumer thread (see `spw_spsc_new`); a `spw_producer` is used by one
//!   thread at a time.
//! - **Callbacks** (the buffer's `spw_flush_fn`, its `spw_event_fn`) run on
//!   the library's threads and must not unwind into the library: no C++
//!   exception and no `longjmp` may leave them, and neither may call
//!   `spw_buffer_sync_flush`, `spw_buffer_close` or `spw_buffer_free` on its
//!   own buffer (they would wait for the thread they run on; an event
//!   callback calling `spw_buffer_observe` on its buffer gets
//!   `SPW_ERR_INVALID`). `spw_buffer_free` returns only once no call of
//!   either callback is running, and none starts afterwards; the same holds
//!   for a replaced event function once `spw_buffer_observe` returns.

#![allow(non_camel_case_types)]

// The C-facing files, in the order the header lists them (cbindgen follows
// the declarations; blank lines keep rustfmt from sorting across groups).
mod status;
mod version;

mod error;

mod bytes;

mod spsc;

mod ring;

mod config;

mod callback;

mod buffer;
mod dump;
mod keyed;
mod outcome;

mod engine;

mod event;

mod producer;

mod spool;

mod checkpoint;

// The helpers every entry point goes through.
#[cfg(loom)]
pub use guard::loom_model;
mod guard;
mod ptr;
mod wait;

pub use buffer::{
    spw_buffer, spw_buffer_close, spw_buffer_flush, spw_buffer_free, spw_buffer_insert,
    spw_buffer_insert_batch, spw_buffer_len, spw_buffer_new, spw_buffer_stats,
    spw_buffer_sync_flush, spw_stats,
};
pub use bytes::spw_bytes_free;
pub use callback::{
    spw_flush_fn, spw_flush_info, spw_item, SPW_FLUSH_CLOSE, SPW_FLUSH_MANUAL, SPW_FLUSH_REPLAY,
    SPW_FLUSH_SIZE, SPW_FLUSH_TIME,
};
pub use checkpoint::{
    spw_checkpoint, spw_checkpoint_each, spw_checkpoint_flush, spw_checkpoint_fn,
    spw_checkpoint_free, spw_checkpoint_get, spw_checkpoint_open, spw_checkpoint_persist,
    spw_checkpoint_shutdown,
};
pub use config::{
    spw_config, spw_config_free, spw_config_load_yaml, spw_config_new, spw_config_set,
};
pub use dump::{spw_buffer_dump, spw_items_free};
pub use engine::{
    spw_engine, spw_engine_buffer_new, spw_engine_free, spw_engine_new, spw_engine_stop,
};
pub use error::spw_last_error;
pub use event::{
    spw_buffer_observe, spw_event, spw_event_fn, SPW_EVENT_ABANDONED, SPW_EVENT_DROP,
    SPW_EVENT_FLUSH_END, SPW_EVENT_FLUSH_START, SPW_EVENT_FLUSH_TIMEOUT, SPW_EVENT_OVERFLOW,
    SPW_EVENT_RETRY, SPW_EVENT_SPILL, SPW_EVENT_SPOOL_ERROR,
};
pub use keyed::spw_buffer_insert_keyed;
pub use producer::{spw_buffer_producer, spw_producer, spw_producer_free, spw_producer_insert};
pub use ring::{
    spw_ring, spw_ring_close, spw_ring_free, spw_ring_len, spw_ring_new, spw_ring_pop,
    spw_ring_push,
};
pub use spool::{
    spw_spool, spw_spool_close, spw_spool_flush, spw_spool_free, spw_spool_len, spw_spool_open,
    spw_spool_peek, spw_spool_peek_newest, spw_spool_pop, spw_spool_pop_newest, spw_spool_push,
    spw_spool_skipped,
};
pub use spsc::{
    spw_spsc, spw_spsc_close, spw_spsc_free, spw_spsc_len, spw_spsc_new, spw_spsc_pop,
    spw_spsc_pop_n, spw_spsc_pop_timeout, spw_spsc_push, spw_spsc_push_n, spw_spsc_push_timeout,
};
pub use status::{spw_status, spw_status_name};
pub use version::spw_version;
