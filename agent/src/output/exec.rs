//! A command per batch: `sh -c COMMAND` with the batch on its standard
//! input; exit status 0 accepts it.

use std::io::{self, Write};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Runs a shell command for each batch.
#[derive(Debug)]
pub struct ExecOutput {
    command: String,
}

impl ExecOutput {
    /// An output that runs `command` with `sh -c`.
    pub fn new(command: String) -> Self {
        Self { command }
    }

    pub(super) fn send(&mut self, payload: Vec<u8>, deadline: Instant) -> io::Result<()> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run sh -c: {e}")))?;
        // The batch is written from a thread of its own: a command that reads
        // nothing, or exits early, must not stall the wait for its deadline.
        // A command that leaves a child holding the pipe open leaves only that
        // thread behind, until the pipe closes.
        let mut stdin = child.stdin.take();
        let data = payload;
        // Never joined: it ends when the pipe is written or broken.
        thread::Builder::new()
            .name("spillway-exec-stdin".into())
            .spawn(move || {
                if let Some(pipe) = stdin.as_mut() {
                    // A command may stop reading and still succeed: its exit
                    // status decides, so a broken pipe is not an error here.
                    let _ = pipe.write_all(&data);
                }
            })?;
        match wait_until(&mut child, deadline)? {
            Some(s) if s.success() => Ok(()),
            Some(s) => Err(io::Error::other(format!(
                "command `{}` failed ({s})",
                self.command
            ))),
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "command `{}` ran past flush_timeout and was killed",
                    self.command
                ),
            )),
        }
    }
}

/// Waits for `child` until `deadline`; kills it then. `None` on timeout.
fn wait_until(
    child: &mut Child,
    deadline: Instant,
) -> io::Result<Option<std::process::ExitStatus>> {
    // A child has no waitable handle in std; poll, quickly at first since
    // most commands finish fast, then at most every 50 ms.
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
