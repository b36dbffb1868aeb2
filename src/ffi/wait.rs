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

impl Wait {
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
}
