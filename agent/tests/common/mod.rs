//! Helpers shared by the agent's tests: a scratch directory, generated
//! inputs, running the `spillway` binary, and checking shipped lines.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_spillway")
}

/// A directory removed when dropped (kept if the test failed, to look at).
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "spillway-agent-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A small seeded generator (xorshift64*), so runs are repeatable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Line `n` (1-based) of a generated input: its number, then filler of a
/// length that varies with `n`.
pub fn line(n: u64) -> String {
    const FILL: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let len = (n.wrapping_mul(2_654_435_761) % FILL.len() as u64) as usize;
    format!("{n:010} {}", &FILL[..len])
}

/// Writes lines `from..=to` to `w`.
pub fn write_lines(w: &mut impl Write, from: u64, to: u64) {
    for n in from..=to {
        writeln!(w, "{}", line(n)).unwrap();
    }
}

/// Creates `path` holding lines `1..=n`.
pub fn generate(path: &Path, n: u64) {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    write_lines(&mut w, 1, n);
    w.flush().unwrap();
}

/// Appends lines `from..=to` to `path`.
pub fn append(path: &Path, from: u64, to: u64) {
    let f = fs::OpenOptions::new().append(true).open(path).unwrap();
    let mut w = BufWriter::new(f);
    write_lines(&mut w, from, to);
    w.flush().unwrap();
}

/// `spillway ARGS`, with no stdin, waited for.
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `ship --input INPUT --output OUTPUT --state STATE EXTRA...`: the
/// arguments of a run, for [`run`] and [`spawn`]. INPUT may be `-` or a
/// pattern.
pub fn ship_args(input: &str, output: &str, state: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "ship",
        "--input",
        input,
        "--output",
        output,
        "--state",
        state.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(extra.iter().map(|&a| a.to_owned()));
    args
}

/// `spillway ship --input IN --output OUT --state STATE EXTRA...`.
pub fn ship(input: &Path, output: &str, state: &Path, extra: &[&str]) -> Output {
    run(&ship_args(input.to_str().unwrap(), output, state, extra))
}

/// Starts `spillway ARGS` in the background, stderr captured.
pub fn spawn<S: AsRef<OsStr>>(args: &[S], stdin: Stdio) -> Child {
    Command::new(bin())
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `spillway ship --input - --output OUTPUT --state STATE EXTRA...`, stdin
/// piped, stderr captured.
pub fn spawn_stdin(output: &str, state: &Path, extra: &[&str]) -> Child {
    spawn(&ship_args("-", output, state, extra), Stdio::piped())
}

/// `spillway ship --input - ...` fed `input`, waited for. The input is
/// written from a thread, so an agent that stops reading early does not
/// block the test; what it did not take is dropped.
pub fn ship_stdin(output: &str, state: &Path, extra: &[&str], input: Vec<u8>) -> Output {
    let mut child = spawn_stdin(output, state, extra);
    let mut pipe = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Lines `from..=to` (none if `from > to`) as one buffer.
pub fn lines(from: u64, to: u64) -> Vec<u8> {
    let mut text = Vec::new();
    write_lines(&mut text, from, to);
    text
}

/// Writes `text` as the file `name` in `s` (a buffer configuration for
/// `--config`, say) and returns its path.
pub fn config_file(s: &Scratch, name: &str, text: &str) -> PathBuf {
    let path = s.path(name);
    fs::write(&path, text).unwrap();
    path
}

/// What `spillway inspect --state STATE` prints.
pub fn inspect(state: &Path) -> String {
    stdout(&run(&["inspect", "--state", state.to_str().unwrap()]))
}

/// A file's length; 0 while it does not exist.
pub fn file_len(p: &Path) -> u64 {
    fs::metadata(p).map_or(0, |m| m.len())
}

/// SIGKILLs at seeded random moments: each run of the agent is started
/// and killed once its progress (bytes in an output file, messages in a
/// stream, requests at a server) has grown past a random mark, so the kills
/// spread over the input whatever the machine's speed.
pub struct KillLoop {
    /// How many runs are killed.
    pub kills: usize,
    /// The seed of the random moments.
    pub seed: u64,
    /// A mark lies a random 1..=`step` of progress past where the run
    /// started.
    pub step: u64,
    /// Every fourth kill lands 0-6 ms after start-up began instead, before
    /// any progress.
    pub early_kills: bool,
    /// Up to this many microseconds (random) pass between the mark and the
    /// kill.
    pub jitter_us: u64,
    /// How often progress is read.
    pub poll: Duration,
    /// How long one run may go without reaching its mark.
    pub timeout: Duration,
}

impl KillLoop {
    /// Starts `spillway ARGS` and kills it, [`kills`](Self::kills) times;
    /// `progress` reads how far delivery got. Each run must still be going
    /// when its kill comes.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S], mut progress: impl FnMut() -> u64) {
        let mut rng = Rng::new(self.seed);
        for kill in 0..self.kills {
            let mut child = spawn(args, Stdio::null());
            if self.early_kills && kill % 4 == 3 {
                std::thread::sleep(Duration::from_millis(rng.between(0, 6)));
            } else {
                let mark = progress() + rng.between(1, self.step);
                let deadline = Instant::now() + self.timeout;
                while progress() < mark {
                    assert!(
                        Instant::now() < deadline,
                        "no progress before kill {kill} in {:?}",
                        self.timeout
                    );
                    assert!(
                        child.try_wait().unwrap().is_none(),
                        "the agent exited before kill {kill}"
                    );
                    std::thread::sleep(self.poll);
                }
            }
            if self.jitter_us > 0 {
                std::thread::sleep(Duration::from_micros(rng.between(0, self.jitter_us)));
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the agent finished before kill {kill}"
            );
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }
}

/// Runs `spillway ARGS` to its end (within `timeout`), which must be exit 0.
pub fn run_to_end<S: AsRef<OsStr>>(args: &[S], timeout: Duration) {
    let mut child = spawn(args, Stdio::null());
    let status = wait_exit(&mut child, timeout);
    assert_eq!(code(status), 0);
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn code(status: ExitStatus) -> i32 {
    status.code().unwrap_or(-1)
}

/// Sends SIGTERM (via kill(1): the tests have no `unsafe`).
pub fn terminate(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

/// Waits for `child` up to `timeout`; kills it and panics past that.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("spillway did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `cond` every 10 ms until it holds; panics after `timeout`
/// (generous: the machine may be loaded).
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Number of lines in a file (0 if it does not exist).
pub fn count_lines(path: &Path) -> usize {
    fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// What the output holds: the line numbers, checked to be generated lines.
pub fn numbers(path: &Path) -> Vec<u64> {
    let text = fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            let n: u64 = l
                .get(..10)
                .and_then(|d| d.parse().ok())
                .unwrap_or_else(|| panic!("not a generated line: {l:?}"));
            assert_eq!(l, line(n), "line {n} was changed");
            n
        })
        .collect()
}

/// How shipped line numbers relate to `1..=n`: checks that once repeats are
/// removed they are exactly `1..=n` in order, and returns the size of each
/// repeat (how far the output went back each time).
pub fn check_in_order_with_repeats(got: &[u64], n: u64) -> Vec<u64> {
    let mut next = 1;
    let mut rewinds = Vec::new();
    let mut in_rewind = false;
    for &x in got {
        if x == next {
            next += 1;
            in_rewind = false;
        } else if x < next {
            if !in_rewind {
                rewinds.push(next - x);
                in_rewind = true;
            }
        } else {
            panic!("line {x} came before line {next}: a line is missing");
        }
    }
    assert_eq!(next, n + 1, "lines {next}..={n} never arrived");
    rewinds
}

/// Collects a child's stderr on a thread, so a test can wait for a line.
pub struct StderrLog {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StderrLog {
    pub fn start(child: &mut Child) -> Self {
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&text);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match std::io::Read::read(&mut pipe, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => sink
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        Self {
            text,
            thread: Some(thread),
        }
    }

    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Waits until stderr holds `what`.
    pub fn wait_for(&self, what: &str, timeout: Duration) {
        wait_until(what, timeout, || self.text().contains(what));
    }

    /// Everything, once the child has exited.
    pub fn finish(mut self) -> String {
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.text()
    }
}
