//! Mutex-guarded bounded ring (placeholder until implemented).

/// A bounded FIFO ring guarded by a mutex.
pub struct LockingRing<T>(core::marker::PhantomData<T>);
