//! The agent's one error type: a one-line message and the exit status it
//! leads to.

use std::fmt;

/// Exit status: everything read was delivered.
pub const EXIT_OK: u8 = 0;
/// Exit status: something read is left undelivered (it stays for the next
/// run), or the agent failed while running.
pub const EXIT_UNDELIVERED: u8 = 1;
/// Exit status: bad input (flag, value, input file, state directory,
/// checkpoint); nothing was shipped.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Why the agent stops with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentError {
    /// Something the user gave cannot be used: exit status 2.
    Input(String),
    /// Something failed while shipping: exit status 1.
    Runtime(String),
}

impl AgentError {
    /// Bad input (exit 2), described in one line.
    pub fn input(msg: impl Into<String>) -> Self {
        Self::Input(one_line(msg.into()))
    }

    /// A failure while running (exit 1), described in one line.
    pub fn runtime(msg: impl Into<String>) -> Self {
        Self::Runtime(one_line(msg.into()))
    }

    /// The exit status it leads to.
    pub fn exit_status(&self) -> u8 {
        match self {
            Self::Input(_) => EXIT_BAD_INPUT,
            Self::Runtime(_) => EXIT_UNDELIVERED,
        }
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input(m) | Self::Runtime(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AgentError {}

/// Messages are printed as one line, whatever a library or the OS put in them.
fn one_line(msg: String) -> String {
    if msg.contains(['\n', '\r']) {
        msg.split(['\n', '\r'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_statuses_follow_the_kind() {
        let e = AgentError::input("first\n  second\n");
        assert_eq!(e.to_string(), "first; second");
        assert_eq!(e.exit_status(), EXIT_BAD_INPUT);
        assert_eq!(AgentError::runtime("x").exit_status(), EXIT_UNDELIVERED);
    }
}
