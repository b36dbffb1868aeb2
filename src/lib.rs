//! spillway buffers data in memory and hands it to a sink in batches, on plain
//! threads, with no async runtime.
//!
//! The layers, bottom up:
//! - [`ring`]: bounded FIFO rings, a mutex-guarded one for any number of threads
//!   and a lock-free single-producer/single-consumer one.
//!
//! Everything concurrent is model-checked with loom (`loom-tests/`), and a C ABI
//! (`include/spillway.h`) serves C and C++ programs.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

mod sync;

pub mod checkpoint;
pub mod config;
pub mod ffi;
pub mod ring;
pub mod spool;
