//! Fork-join of two closures, for work that splits in halves (the spool's
//! recovery scan).

/// Runs `a` here and `b` on a scoped helper thread, and returns both
/// results; `b` runs here too when no thread can be started.
#[cfg(not(loom))]
pub(crate) fn join<RA, RB>(a: impl FnOnce() -> RA, b: impl Fn() -> RB + Sync) -> (RA, RB)
where
    RB: Send,
{
    std::thread::scope(|s| {
        let helper = std::thread::Builder::new().spawn_scoped(s, &b).ok();
        let ra = a();
        let rb = match helper {
            // A panic in `b` is raised again here, as in a plain call.
            Some(h) => match h.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            },
            None => b(),
        };
        (ra, rb)
    })
}

/// Same API; under loom both run here, one after the other (its only user,
/// spool recovery, is not a loom model).
#[cfg(loom)]
pub(crate) fn join<RA, RB>(a: impl FnOnce() -> RA, b: impl Fn() -> RB + Sync) -> (RA, RB)
where
    RB: Send,
{
    let ra = a();
    (ra, b())
}
