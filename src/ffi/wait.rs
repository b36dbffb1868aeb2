//! The `timeout_ms` parameter of blocking calls, as the rings understand it.

use std::time::{Duration, Instant};

/// How long a call may wait, from C's `uint64_t timeout_ms`:
/// 0 = not at all, `UINT64_MAX` = forever, anything else = that many ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    No,
    For(Duration),
    Forever,
}

/// What `Forever` becomes for calls that take a `Duration` and add it to
/// `Instant::now()`: a century, which every platform's clock can add.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

impl Wait {
    /// The wait as a timeout for the Rust API (`sync_flush`, `close`):
    /// `No` is zero, `Forever` is a century.
    pub(crate) fn as_timeout(self) -> Duration {
        match self {
            Self::No => Duration::ZERO,
            Self::For(d) => d.min(FOREVER),
            Self::Forever => FOREVER,
        }
    }

    pub(crate) fn from_ms(timeout_ms: u64) -> Self {
        match timeout_ms {
            0 => Self::No,
            u64::MAX => Self::Forever,
            ms => {
                let d = Duration::from_millis(ms);
                // A deadline the clock cannot represent is, in practice, forever;
                // the rings would panic computing it.
                match Instant::now().checked_add(d) {
                    Some(_) => Self::For(d),
                    None => Self::Forever,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_max_and_in_between() {
        assert_eq!(Wait::from_ms(0), Wait::No);
        assert_eq!(Wait::from_ms(u64::MAX), Wait::Forever);
        assert_eq!(Wait::from_ms(25), Wait::For(Duration::from_millis(25)));
    }

    #[test]
    fn timeouts_for_the_rust_api_can_always_be_added_to_now() {
        assert_eq!(Wait::from_ms(0).as_timeout(), Duration::ZERO);
        assert_eq!(
            Wait::from_ms(1500).as_timeout(),
            Duration::from_millis(1500)
        );
        for ms in [u64::MAX, u64::MAX - 1] {
            let t = Wait::from_ms(ms).as_timeout();
            assert!(t <= FOREVER);
            assert!(Instant::now().checked_add(t).is_some());
        }
    }
}
