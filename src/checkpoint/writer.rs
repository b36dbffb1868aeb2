//! Writing the file: one attempt at a time, and the background thread that
//! decides when (after `max_updates` updates or an interval).

use std::time::{Instant, SystemTime};

use super::{file, Shared};
use crate::checkpoint::CheckpointError;

/// One write attempt, if the file is not current. Writes never overlap
/// (`writer` lock) and the snapshot is taken under it, so the file only
/// moves forward.
pub(super) fn write_now(shared: &Shared) -> Result<(), CheckpointError> {
    let mut writer = shared.writer.lock();
    let (states, top, version) = {
        let mut st = shared.state.lock();
        // The count restarts with each attempt, successful or not, so a
        // failing disk is retried once per cycle rather than on every update.
        st.pending = 0;
        st.cycle_start = Instant::now();
        if st.is_current() {
            return Ok(());
        }
        (st.snapshot(), st.top.clone(), st.version)
    };
    writer.next_temp += 1;
    let result = file::encode(&states, &top, SystemTime::now())
        .and_then(|bytes| file::replace(&shared.path, writer.next_temp, &bytes));
    let mut st = shared.state.lock();
    st.generation += 1;
    match &result {
        Ok(()) => {
            st.saved = version;
            st.last_error = None;
        }
        Err(e) => st.last_error = Some(e.clone()),
    }
    drop(st);
    shared.written.notify_all();
    result
}

/// The writer thread: a write when `max_updates` is reached or an interval
/// ends with something unsaved; gone at shutdown, which does the last write.
pub(super) fn run_writer(shared: &Shared) {
    let mut st = shared.state.lock();
    loop {
        if st.closed {
            return;
        }
        if st.pending < shared.max_updates {
            let Some(deadline) = st.cycle_start.checked_add(shared.interval) else {
                shared.wake.wait(&mut st);
                continue;
            };
            if Instant::now() < deadline {
                shared.wake.wait_until(&mut st, deadline);
                continue;
            }
            if st.is_current() {
                st.cycle_start = Instant::now();
                continue;
            }
        }
        drop(st);
        // Failures are kept in `last_error` and retried next cycle.
        let _ = write_now(shared);
        st = shared.state.lock();
    }
}
