//! A sequence of C ABI calls on one buffer, one ring and one spool, driven
//! by the fuzzer through the `extern "C"` functions a C program calls.
//!
//! Checked after every call:
//! - the status is one the header documents for that function in that state
//!   (never `SPW_ERR_PANIC`); for the ring and the spool, exactly the one a
//!   model of their contents predicts, and popped bytes are the model's;
//! - `spw_last_error()` is valid UTF-8, `""` after `SPW_OK` and a message
//!   after any other status.
//!
//! At the end the buffer is closed and its counters checked: the
//! conservation law of `spw_stats`, and the callback's accepted items are
//! `delivered` in number, each one inserted, none twice, in insertion order
//! for one partition. The spool is reopened through the C ABI after a close
//! and must hold what the model holds. Everything is freed; LeakSanitizer
//! (on in libFuzzer builds) reports anything left.

#![no_main]

use std::collections::{HashSet, VecDeque};
use std::ffi::{c_int, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use spillway::ffi::spw_status::{self, *};
use spillway::ffi::*;
use spillway_fuzz::fresh_dir;

const OVERFLOWS: [&str; 5] = ["block", "drop_newest", "drop_oldest", "reject", "spill"];
const SYNCS: [&str; 3] = ["batch", "always", "never"];
/// For `spw_config_set`: real keys, so values get exercised.
const KEYS: [&str; 8] = [
    "max_size",
    "capacity",
    "flush_interval",
    "overflow",
    "spool_max_bytes",
    "name",
    "spool_sync",
    "retry_backoff",
];

#[derive(Arbitrary, Debug)]
struct BufferSetup {
    max_size: u8,
    extra_capacity: u8,
    overflow: u8,
    two_partitions: bool,
    two_workers: bool,
    max_retries: u8,
    timer_flushes: bool,
}

#[derive(Arbitrary, Debug)]
enum Op {
    RingPush {
        data: Vec<u8>,
        null_data: bool,
    },
    RingPop {
        null_out: bool,
    },
    RingLen,
    RingClose,
    SpoolPush {
        data: Vec<u8>,
        null_data: bool,
    },
    SpoolPop,
    SpoolPeek,
    SpoolFlush,
    SpoolLen,
    SpoolSkipped,
    SpoolClose,
    SpoolReopen,
    SpoolOpenTwice,
    Insert(Vec<u8>),
    InsertBatch {
        items: Vec<Vec<u8>>,
        null_item: Option<u8>,
    },
    ProducerInsert(Vec<u8>),
    Flush,
    SyncFlush {
        timeout_ms: u8,
    },
    Len,
    Stats,
    Close {
        timeout_ms: u8,
    },
    SinkFails(bool),
    ConfigSet {
        key: u8,
        value: String,
        raw_key: Option<String>,
    },
    NullHandle(u8),
    BytesFreeNull(u16),
    StatusName(i32),
}

#[derive(Arbitrary, Debug)]
struct Input {
    ring_capacity: u8,
    spool_max: u8,
    spool_sync: u8,
    buffer: BufferSetup,
    ops: Vec<Op>,
}

/// What the flush callback sees, shared with the driving thread.
#[derive(Default)]
struct Sink {
    fail: AtomicBool,
    delivered: Mutex<Vec<Vec<u8>>>,
    /// The callback must not panic (it is called from C): it notes here
    /// what it found wrong, and the driver asserts.
    wrong: Mutex<Vec<String>>,
}

unsafe extern "C" fn on_flush(
    user_data: *mut c_void,
    items: *const spw_item,
    count: usize,
    info: *const spw_flush_info,
) -> c_int {
    // SAFETY: user_data is the `Sink` the driver passed to spw_buffer_new; it
    // outlives the buffer (freed after spw_buffer_free returns).
    let sink = unsafe { &*(user_data as *const Sink) };
    // SAFETY: the library passes `count` valid items and a valid info.
    let (items, info) = unsafe {
        (
            if count == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(items, count)
            },
            &*info,
        )
    };
    let batch: Vec<Vec<u8>> = items
        .iter()
        .map(|it| {
            if it.len == 0 {
                Vec::new()
            } else {
                // SAFETY: a non-empty item's data is readable for len bytes.
                unsafe { std::slice::from_raw_parts(it.data, it.len) }.to_vec()
            }
        })
        .collect();
    let bytes: u64 = batch.iter().map(|b| b.len() as u64).sum();
    let mut wrong = Vec::new();
    if count == 0 {
        wrong.push("an empty batch".to_owned());
    }
    if info.batch_bytes != bytes {
        wrong.push(format!(
            "batch_bytes {} for {bytes} bytes",
            info.batch_bytes
        ));
    }
    if !(SPW_FLUSH_SIZE..=SPW_FLUSH_REPLAY).contains(&info.reason) {
        wrong.push(format!("reason {}", info.reason));
    }
    if !wrong.is_empty() {
        sink.wrong
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(wrong);
    }
    if sink.fail.load(Ordering::SeqCst) {
        return 1;
    }
    sink.delivered
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(batch);
    0
}

/// Checks the status against those allowed, and the thread's last error.
fn check(call: &str, got: spw_status, allowed: &[spw_status]) {
    assert!(
        allowed.contains(&got),
        "{call} returned {got:?}, expected one of {allowed:?}: {}",
        last_error()
    );
    let msg = last_error();
    if got == SPW_OK {
        assert!(
            msg.is_empty(),
            "{call} returned SPW_OK and left the error {msg:?}"
        );
    } else {
        assert!(!msg.is_empty(), "{call} returned {got:?} with no message");
    }
}

fn last_error() -> String {
    let p = spw_last_error();
    assert!(!p.is_null(), "spw_last_error returned NULL");
    // SAFETY: spw_last_error returns a NUL-terminated string valid until
    // this thread's next spw_ call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .expect("spw_last_error is UTF-8")
        .to_owned()
}

fn data_ptr(data: &[u8], null_data: bool) -> *const c_void {
    if null_data {
        null()
    } else {
        data.as_ptr().cast()
    }
}

/// Takes ownership of bytes the library handed out, freeing them.
fn take_bytes(data: *mut u8, len: usize) -> Vec<u8> {
    let v = if len == 0 {
        assert!(data.is_null(), "an empty item comes back as (NULL, 0)");
        Vec::new()
    } else {
        // SAFETY: on SPW_OK, data is readable for len bytes.
        unsafe { std::slice::from_raw_parts(data, len) }.to_vec()
    };
    // SAFETY: data and len are exactly what the library returned.
    unsafe { spw_bytes_free(data, len) };
    v
}

fn config_set(cfg: *mut spw_config, key: &str, value: &str) {
    let k = CString::new(key).unwrap();
    let v = CString::new(value).unwrap();
    // SAFETY: cfg is live; key and value are NUL-terminated.
    let st = unsafe { spw_config_set(cfg, k.as_ptr(), v.as_ptr()) };
    check(&format!("spw_config_set({key}, {value})"), st, &[SPW_OK]);
}

struct Spool {
    dir: CString,
    cfg: *mut spw_config,
    s: *mut spw_spool,
    model: VecDeque<Vec<u8>>,
    closed: bool,
    max_record: usize,
}

impl Spool {
    fn open(&mut self) {
        let mut s = null_mut();
        // SAFETY: dir is NUL-terminated, cfg live, out valid.
        let st = unsafe { spw_spool_open(self.dir.as_ptr(), self.cfg, &mut s) };
        check("spw_spool_open", st, &[SPW_OK]);
        self.s = s;
        self.closed = false;
        let mut len = 0;
        // SAFETY: s is live; out valid.
        check(
            "spw_spool_len",
            unsafe { spw_spool_len(self.s, &mut len) },
            &[SPW_OK],
        );
        assert_eq!(len, self.model.len() as u64, "records after reopening");
    }

    fn closed_or<'a>(&self, open: &'a [spw_status]) -> &'a [spw_status] {
        if self.closed {
            &[SPW_ERR_CLOSED]
        } else {
            open
        }
    }

    fn run(&mut self, op: &Op) {
        let s = self.s;
        match op {
            Op::SpoolPush { data, null_data } => {
                let null_data = *null_data && !data.is_empty();
                // SAFETY: s is live; data readable for its length (or NULL).
                let st = unsafe { spw_spool_push(s, data_ptr(data, null_data), data.len()) };
                if null_data {
                    check("spw_spool_push", st, &[SPW_ERR_NULL]);
                } else if self.closed {
                    check("spw_spool_push", st, &[SPW_ERR_CLOSED]);
                } else if data.len() > self.max_record {
                    check("spw_spool_push", st, &[SPW_ERR_INVALID]);
                } else {
                    check("spw_spool_push", st, &[SPW_OK, SPW_ERR_FULL]);
                    if st == SPW_OK {
                        self.model.push_back(data.clone());
                    }
                }
            }
            Op::SpoolPop | Op::SpoolPeek => {
                let pop = matches!(op, Op::SpoolPop);
                let (mut data, mut len) = (null_mut(), usize::MAX);
                // SAFETY: s is live; data and len valid for writing.
                let st = unsafe {
                    if pop {
                        spw_spool_pop(s, &mut data, &mut len)
                    } else {
                        spw_spool_peek(s, &mut data, &mut len)
                    }
                };
                let want = if self.closed {
                    SPW_ERR_CLOSED
                } else if self.model.is_empty() {
                    SPW_ERR_EMPTY
                } else {
                    SPW_OK
                };
                check(
                    if pop {
                        "spw_spool_pop"
                    } else {
                        "spw_spool_peek"
                    },
                    st,
                    &[want],
                );
                if st == SPW_OK {
                    let got = take_bytes(data, len);
                    let front = if pop {
                        self.model.pop_front()
                    } else {
                        self.model.front().cloned()
                    };
                    assert_eq!(Some(got), front, "the spool's oldest record");
                } else {
                    assert!(
                        data.is_null() && len == usize::MAX,
                        "outputs written on failure"
                    );
                }
            }
            Op::SpoolFlush => {
                // SAFETY: s is live.
                let st = unsafe { spw_spool_flush(s) };
                check("spw_spool_flush", st, self.closed_or(&[SPW_OK]));
            }
            Op::SpoolLen => {
                let mut n = u64::MAX;
                // SAFETY: s is live; out valid.
                let st = unsafe { spw_spool_len(s, &mut n) };
                check("spw_spool_len", st, self.closed_or(&[SPW_OK]));
                if st == SPW_OK {
                    assert_eq!(n, self.model.len() as u64, "spw_spool_len");
                }
            }
            Op::SpoolSkipped => {
                let mut n = u64::MAX;
                // SAFETY: s is live; out valid.
                let st = unsafe { spw_spool_skipped(s, &mut n) };
                check("spw_spool_skipped", st, self.closed_or(&[SPW_OK]));
                if st == SPW_OK {
                    assert_eq!(n, 0, "records skipped from files that were never damaged");
                }
            }
            Op::SpoolClose => {
                // SAFETY: s is live.
                check("spw_spool_close", unsafe { spw_spool_close(s) }, &[SPW_OK]);
                self.closed = true;
            }
            Op::SpoolReopen => {
                // SAFETY: s is live and used by nobody else; not used after.
                unsafe { spw_spool_free(s) };
                self.open();
            }
            Op::SpoolOpenTwice => {
                let mut second = null_mut();
                // SAFETY: dir is NUL-terminated, cfg live, out valid.
                let st = unsafe { spw_spool_open(self.dir.as_ptr(), self.cfg, &mut second) };
                if self.closed {
                    // A closed spool released the directory.
                    check("spw_spool_open (after close)", st, &[SPW_OK]);
                    // SAFETY: second is live and unused elsewhere.
                    unsafe { spw_spool_free(second) };
                } else {
                    check("spw_spool_open (second)", st, &[SPW_ERR_IO]);
                    assert!(second.is_null(), "out written on failure");
                }
            }
            _ => unreachable!(),
        }
    }
}

struct Buffer {
    b: *mut spw_buffer,
    producer: *mut spw_producer,
    closed: Option<spw_status>,
    next_id: u32,
    /// Ids of items an insert took (including refusals counted "inserted and dropped").
    inserted: Vec<u32>,
    /// Items a batch insert refused under drop_newest (or drop_oldest with
    /// everything in flight): the header does not say whether they count as
    /// inserted (and dropped), as a single insert's do.
    maybe_inserted: u64,
    in_order: bool,
    overflow: &'static str,
}

impl Buffer {
    fn check_inserted(&self, stats: &spw_stats) {
        let took = self.inserted.len() as u64;
        assert!(
            (took..=took + self.maybe_inserted).contains(&stats.inserted),
            "stats.inserted {} for {took} items taken (+{} refused by a batch): {stats:?}",
            stats.inserted,
            self.maybe_inserted
        );
    }

    fn item(&mut self, data: &[u8]) -> Vec<u8> {
        let mut v = self.next_id.to_le_bytes().to_vec();
        self.next_id += 1;
        v.extend_from_slice(&data[..data.len().min(64)]);
        v
    }

    fn insert_statuses(&self) -> &'static [spw_status] {
        if self.closed.is_some() {
            &[SPW_ERR_CLOSED]
        } else {
            &[SPW_OK, SPW_ERR_FULL, SPW_ERR_TIMEOUT]
        }
    }

    /// Whether `SPW_ERR_FULL` from `spw_buffer_insert` (or the item a batch
    /// stopped at) means the item counts as inserted and dropped. Under
    /// `drop_newest`, always. Under `drop_oldest` the buffer refuses the new
    /// item only when everything it holds is already in flight (nothing to
    /// evict), and counts it as `drop_newest` does; whether that happens
    /// depends on whether the flusher has taken the batch yet, so the model
    /// must not tell it apart from an eviction by timing.
    fn full_counts_inserted(&self) -> bool {
        matches!(self.overflow, "drop_newest" | "drop_oldest")
    }

    fn took(&mut self, item: &[u8], st: spw_status) {
        if st == SPW_OK || (st == SPW_ERR_FULL && self.full_counts_inserted()) {
            self.inserted
                .push(u32::from_le_bytes(item[..4].try_into().unwrap()));
        }
    }

    /// A producer's insert: `drop_newest` counts a refused item as inserted
    /// (and dropped); under `drop_oldest` a producer evicts from its own
    /// ring, and a refusal (the ring still full after that) is not counted.
    fn producer_took(&mut self, item: &[u8], st: spw_status) {
        if st == SPW_OK || (st == SPW_ERR_FULL && self.overflow == "drop_newest") {
            self.inserted
                .push(u32::from_le_bytes(item[..4].try_into().unwrap()));
        }
    }

    fn run(&mut self, op: &Op, sink: &Sink) {
        let b = self.b;
        match op {
            Op::Insert(data) => {
                let item = self.item(data);
                // SAFETY: b is live; item readable.
                let st = unsafe { spw_buffer_insert(b, item.as_ptr().cast(), item.len()) };
                check("spw_buffer_insert", st, self.insert_statuses());
                self.took(&item, st);
            }
            Op::InsertBatch { items, null_item } => {
                let owned: Vec<Vec<u8>> = items.iter().take(16).map(|d| self.item(d)).collect();
                let null_at = null_item
                    .map(|i| usize::from(i))
                    .filter(|&i| i < owned.len());
                let c: Vec<spw_item> = owned
                    .iter()
                    .enumerate()
                    .map(|(i, d)| spw_item {
                        data: if Some(i) == null_at {
                            null()
                        } else {
                            d.as_ptr()
                        },
                        len: d.len(),
                    })
                    .collect();
                let mut inserted = usize::MAX;
                // SAFETY: b is live; c holds c.len() items readable for their lengths
                // (or NULL data, which the call must refuse).
                let st = unsafe { spw_buffer_insert_batch(b, c.as_ptr(), c.len(), &mut inserted) };
                if null_at.is_some() {
                    check("spw_buffer_insert_batch", st, &[SPW_ERR_NULL]);
                    assert_eq!(inserted, usize::MAX, "inserted written on SPW_ERR_NULL");
                    return;
                }
                check("spw_buffer_insert_batch", st, self.insert_statuses());
                let n = if st == SPW_OK { c.len() } else { inserted };
                assert!(n <= c.len(), "inserted {inserted} of {}", c.len());
                if st == SPW_OK {
                    assert_eq!(inserted, c.len(), "inserted on SPW_OK");
                }
                for item in &owned[..n] {
                    self.took(item, SPW_OK);
                }
                if st == SPW_ERR_FULL && self.full_counts_inserted() {
                    self.maybe_inserted += 1;
                }
            }
            Op::ProducerInsert(data) => {
                if self.producer.is_null() {
                    let mut p = null_mut();
                    // SAFETY: b is live; out valid.
                    let st = unsafe { spw_buffer_producer(b, &mut p) };
                    let allowed: &[spw_status] = if self.closed.is_some() {
                        &[SPW_ERR_CLOSED]
                    } else {
                        &[SPW_OK]
                    };
                    check("spw_buffer_producer", st, allowed);
                    if st != SPW_OK {
                        return;
                    }
                    self.producer = p;
                    self.in_order = false;
                }
                let item = self.item(data);
                // SAFETY: the producer is live and used by this thread only.
                let st =
                    unsafe { spw_producer_insert(self.producer, item.as_ptr().cast(), item.len()) };
                check("spw_producer_insert", st, self.insert_statuses());
                self.producer_took(&item, st);
            }
            Op::Flush => {
                // SAFETY: b is live.
                let st = unsafe { spw_buffer_flush(b) };
                let allowed: &[spw_status] = if self.closed.is_some() {
                    &[SPW_ERR_CLOSED]
                } else {
                    &[SPW_OK]
                };
                check("spw_buffer_flush", st, allowed);
            }
            Op::SyncFlush { timeout_ms } => {
                // SAFETY: b is live.
                let st = unsafe { spw_buffer_sync_flush(b, u64::from(*timeout_ms)) };
                let allowed: &[spw_status] = if self.closed.is_some() {
                    &[SPW_ERR_CLOSED]
                } else {
                    &[SPW_OK, SPW_ERR_SINK, SPW_ERR_TIMEOUT]
                };
                check("spw_buffer_sync_flush", st, allowed);
            }
            Op::Len => {
                let mut n = usize::MAX;
                // SAFETY: b is live; out valid.
                check(
                    "spw_buffer_len",
                    unsafe { spw_buffer_len(b, &mut n) },
                    &[SPW_OK],
                );
                assert!(
                    n <= self.inserted.len(),
                    "len {n} above {} inserted",
                    self.inserted.len()
                );
            }
            Op::Stats => {
                let mut stats = spw_stats::default();
                // SAFETY: b is live; out valid.
                check(
                    "spw_buffer_stats",
                    unsafe { spw_buffer_stats(b, &mut stats) },
                    &[SPW_OK],
                );
                self.check_inserted(&stats);
            }
            Op::Close { timeout_ms } => {
                // SAFETY: b is live.
                let st = unsafe { spw_buffer_close(b, u64::from(*timeout_ms)) };
                match self.closed {
                    Some(first) => check("spw_buffer_close (again)", st, &[first]),
                    None => {
                        check(
                            "spw_buffer_close",
                            st,
                            &[SPW_OK, SPW_ERR_SINK, SPW_ERR_TIMEOUT],
                        );
                        self.closed = Some(st);
                    }
                }
            }
            Op::SinkFails(fail) => sink.fail.store(*fail, Ordering::SeqCst),
            _ => unreachable!(),
        }
    }
}

/// Every handle-taking function, called with a NULL handle.
fn null_handle(which: u8) {
    let mut data = null_mut();
    let mut len = 0usize;
    let mut n64 = 0u64;
    let byte = [0u8; 1];
    // SAFETY: every handle is NULL, which each function must refuse; the
    // other pointers are valid.
    let (name, st) = unsafe {
        match which % 16 {
            0 => (
                "spw_ring_push",
                spw_ring_push(null_mut(), byte.as_ptr().cast(), 1, 0),
            ),
            1 => (
                "spw_ring_pop",
                spw_ring_pop(null_mut(), &mut data, &mut len, 0),
            ),
            2 => (
                "spw_spool_push",
                spw_spool_push(null_mut(), byte.as_ptr().cast(), 1),
            ),
            3 => (
                "spw_spool_pop",
                spw_spool_pop(null_mut(), &mut data, &mut len),
            ),
            4 => (
                "spw_spool_peek",
                spw_spool_peek(null_mut(), &mut data, &mut len),
            ),
            5 => ("spw_spool_flush", spw_spool_flush(null_mut())),
            6 => ("spw_spool_len", spw_spool_len(null(), &mut n64)),
            7 => ("spw_spool_close", spw_spool_close(null_mut())),
            8 => (
                "spw_buffer_insert",
                spw_buffer_insert(null_mut(), byte.as_ptr().cast(), 1),
            ),
            9 => ("spw_buffer_flush", spw_buffer_flush(null_mut())),
            10 => (
                "spw_buffer_sync_flush",
                spw_buffer_sync_flush(null_mut(), 0),
            ),
            11 => ("spw_buffer_len", spw_buffer_len(null(), &mut len)),
            12 => ("spw_buffer_close", spw_buffer_close(null_mut(), 0)),
            13 => (
                "spw_producer_insert",
                spw_producer_insert(null_mut(), byte.as_ptr().cast(), 1),
            ),
            14 => ("spw_spool_open", spw_spool_open(null(), null(), null_mut())),
            _ => (
                "spw_buffer_producer",
                spw_buffer_producer(null_mut(), null_mut()),
            ),
        }
    };
    check(name, st, &[SPW_ERR_NULL]);
    // SAFETY: NULL is a no-op for every *_free.
    unsafe {
        spw_ring_free(null_mut());
        spw_spool_free(null_mut());
        spw_buffer_free(null_mut());
        spw_producer_free(null_mut());
        spw_config_free(null_mut());
    }
    // SAFETY: NULL is reported, not dereferenced.
    assert_eq!(unsafe { spw_ring_len(null()) }, 0);
    assert!(!last_error().is_empty(), "spw_ring_len(NULL) says nothing");
}

fuzz_target!(|input: Input| {
    let dir = fresh_dir("ffi");

    // The ring and its model.
    let capacity = 1 + usize::from(input.ring_capacity % 8);
    let mut ring = null_mut();
    // SAFETY: out is valid.
    check(
        "spw_ring_new",
        unsafe { spw_ring_new(capacity, &mut ring) },
        &[SPW_OK],
    );
    let mut ring_model: VecDeque<Vec<u8>> = VecDeque::new();
    let mut ring_closed = false;

    // The spool.
    let spool_cfg = spw_config_new();
    assert!(!spool_cfg.is_null());
    let max_bytes = 64usize << (input.spool_max % 10);
    config_set(spool_cfg, "spool_max_bytes", &max_bytes.to_string());
    config_set(
        spool_cfg,
        "spool_sync",
        SYNCS[usize::from(input.spool_sync) % SYNCS.len()],
    );
    let mut spool = Spool {
        dir: CString::new(dir.join("spool").to_str().unwrap()).unwrap(),
        cfg: spool_cfg,
        s: null_mut(),
        model: VecDeque::new(),
        closed: false,
        max_record: (max_bytes / 2).min(4 << 20),
    };
    spool.open();

    // The buffer, its callback and a configuration for spw_config_set.
    let setup = &input.buffer;
    let cfg = spw_config_new();
    assert!(!cfg.is_null());
    let max_size = 1 + usize::from(setup.max_size % 8);
    let overflow = OVERFLOWS[usize::from(setup.overflow) % OVERFLOWS.len()];
    config_set(cfg, "max_size", &max_size.to_string());
    config_set(
        cfg,
        "capacity",
        &(max_size + usize::from(setup.extra_capacity % 8)).to_string(),
    );
    config_set(cfg, "overflow", overflow);
    config_set(cfg, "block_timeout", "1ms");
    config_set(cfg, "max_retries", &(setup.max_retries % 3).to_string());
    config_set(cfg, "retry_backoff", "1ms");
    config_set(cfg, "retry_backoff_max", "2ms");
    config_set(
        cfg,
        "flush_interval",
        if setup.timer_flushes { "2ms" } else { "1h" },
    );
    config_set(
        cfg,
        "partitions",
        if setup.two_partitions { "2" } else { "1" },
    );
    config_set(cfg, "workers", if setup.two_workers { "2" } else { "1" });
    if overflow == "spill" {
        config_set(cfg, "spool_dir", dir.join("spill").to_str().unwrap());
        config_set(cfg, "spool_max_bytes", "4KiB");
    }
    let sink = Box::new(Sink::default());
    let mut b = null_mut();
    // SAFETY: cfg is live; on_flush keeps spw_flush_fn's promises; the sink
    // outlives the buffer (freed after spw_buffer_free).
    let st = unsafe {
        spw_buffer_new(
            cfg,
            Some(on_flush),
            (&*sink as *const Sink).cast_mut().cast(),
            &mut b,
        )
    };
    check("spw_buffer_new", st, &[SPW_OK]);
    let mut buffer = Buffer {
        b,
        producer: null_mut(),
        closed: None,
        next_id: 0,
        inserted: Vec::new(),
        maybe_inserted: 0,
        in_order: !setup.two_partitions && overflow != "spill",
        overflow,
    };

    for op in input.ops.iter().take(200) {
        match op {
            Op::RingPush { data, null_data } => {
                let null_data = *null_data && !data.is_empty();
                // SAFETY: ring is live; data readable (or NULL, to be refused).
                let st = unsafe { spw_ring_push(ring, data_ptr(data, null_data), data.len(), 0) };
                let want = if null_data {
                    SPW_ERR_NULL
                } else if ring_closed {
                    SPW_ERR_CLOSED
                } else if ring_model.len() == capacity {
                    SPW_ERR_FULL
                } else {
                    SPW_OK
                };
                check("spw_ring_push", st, &[want]);
                if st == SPW_OK {
                    ring_model.push_back(data.clone());
                }
            }
            Op::RingPop { null_out } => {
                let (mut data, mut len) = (null_mut(), usize::MAX);
                // SAFETY: ring is live; outputs valid or NULL (to be refused).
                let st = unsafe {
                    if *null_out {
                        spw_ring_pop(ring, null_mut(), &mut len, 0)
                    } else {
                        spw_ring_pop(ring, &mut data, &mut len, 0)
                    }
                };
                let want = if *null_out {
                    SPW_ERR_NULL
                } else if !ring_model.is_empty() {
                    SPW_OK
                } else if ring_closed {
                    SPW_ERR_CLOSED
                } else {
                    SPW_ERR_EMPTY
                };
                check("spw_ring_pop", st, &[want]);
                if st == SPW_OK {
                    assert_eq!(
                        Some(take_bytes(data, len)),
                        ring_model.pop_front(),
                        "ring pop"
                    );
                } else {
                    assert!(len == usize::MAX, "len written on failure");
                }
            }
            Op::RingLen => {
                // SAFETY: ring is live.
                let n = unsafe { spw_ring_len(ring) };
                assert_eq!(n, ring_model.len(), "spw_ring_len");
                assert!(last_error().is_empty());
            }
            Op::RingClose => {
                // SAFETY: ring is live.
                unsafe { spw_ring_close(ring) };
                ring_closed = true;
                assert!(last_error().is_empty());
            }
            Op::SpoolPush { .. }
            | Op::SpoolPop
            | Op::SpoolPeek
            | Op::SpoolFlush
            | Op::SpoolLen
            | Op::SpoolSkipped
            | Op::SpoolClose
            | Op::SpoolReopen
            | Op::SpoolOpenTwice => spool.run(op),
            Op::Insert(_)
            | Op::InsertBatch { .. }
            | Op::ProducerInsert(_)
            | Op::Flush
            | Op::SyncFlush { .. }
            | Op::Len
            | Op::Stats
            | Op::Close { .. }
            | Op::SinkFails(_) => buffer.run(op, &sink),
            Op::ConfigSet {
                key,
                value,
                raw_key,
            } => {
                let key = raw_key
                    .clone()
                    .unwrap_or_else(|| KEYS[usize::from(*key) % KEYS.len()].to_owned());
                let (Ok(k), Ok(v)) = (CString::new(key.clone()), CString::new(value.clone()))
                else {
                    continue;
                };
                // SAFETY: cfg is live; key and value are NUL-terminated.
                let st = unsafe { spw_config_set(cfg, k.as_ptr(), v.as_ptr()) };
                check(
                    &format!("spw_config_set({key:?}, {value:?})"),
                    st,
                    &[SPW_OK, SPW_ERR_INVALID],
                );
                // SAFETY: NULL value must be refused.
                let st = unsafe { spw_config_set(cfg, k.as_ptr(), null()) };
                check("spw_config_set(NULL value)", st, &[SPW_ERR_NULL]);
            }
            Op::NullHandle(which) => null_handle(*which),
            Op::BytesFreeNull(len) => {
                // SAFETY: (NULL, len) frees nothing.
                unsafe { spw_bytes_free(null_mut(), usize::from(*len)) };
                assert_eq!(
                    last_error().is_empty(),
                    *len == 0,
                    "spw_bytes_free(NULL, {len})"
                );
            }
            Op::StatusName(n) => {
                let p = spw_status_name(*n);
                assert!(!p.is_null());
                // SAFETY: a static NUL-terminated string.
                let name = unsafe { CStr::from_ptr(p) }.to_str().unwrap();
                assert_eq!(
                    name == "SPW_UNKNOWN",
                    !(0..=10).contains(n),
                    "spw_status_name({n}) = {name}"
                );
            }
        }
        let wrong = sink.wrong.lock().unwrap().clone();
        assert!(wrong.is_empty(), "the callback saw: {wrong:?}");
    }

    // Close the buffer (nothing inserts any more) and check its counts. The
    // callback accepts from now on: with `spill`, a failing callback keeps
    // what it refused in the spool and close waits out its whole timeout
    // retrying (documented: SPW_ERR_TIMEOUT); the sequence's own `Close` ops
    // cover that with short timeouts.
    sink.fail.store(false, Ordering::SeqCst);
    // SAFETY: b is live.
    let st = unsafe { spw_buffer_close(buffer.b, 10_000) };
    match buffer.closed {
        Some(first) => check("spw_buffer_close (again)", st, &[first]),
        None => check("spw_buffer_close", st, &[SPW_OK, SPW_ERR_SINK]),
    }
    let mut stats = spw_stats::default();
    // SAFETY: b is live; out valid.
    check(
        "spw_buffer_stats",
        unsafe { spw_buffer_stats(buffer.b, &mut stats) },
        &[SPW_OK],
    );
    let delivered = sink.delivered.lock().unwrap().clone();
    buffer.check_inserted(&stats);
    // After SPW_ERR_TIMEOUT a callback may still run: the counts move.
    let settled = buffer.closed.map_or(true, |first| first != SPW_ERR_TIMEOUT);
    assert!(
        !settled
            || stats.inserted
                == stats.delivered
                    + stats.dropped
                    + stats.buffered
                    + stats.in_flight
                    + stats.spooled,
        "conservation after close: {stats:?}"
    );
    assert!(
        !settled || stats.delivered == delivered.len() as u64,
        "delivered {} by the callback: {stats:?}",
        delivered.len()
    );
    let taken: HashSet<u32> = buffer.inserted.iter().copied().collect();
    let mut seen = HashSet::new();
    let mut last = None;
    for item in &delivered {
        let id = u32::from_le_bytes(item[..4].try_into().expect("an item starts with its id"));
        assert!(
            taken.contains(&id),
            "item {id} delivered but never inserted"
        );
        assert!(seen.insert(id), "item {id} delivered twice");
        if buffer.in_order {
            assert!(last < Some(id), "item {id} delivered after item {last:?}");
            last = Some(id);
        }
    }

    // SAFETY: each handle is live and used by nothing else; none is used after.
    unsafe {
        spw_producer_free(buffer.producer);
        spw_buffer_free(buffer.b);
        spw_config_free(cfg);
        spw_ring_free(ring);
        spw_spool_free(spool.s);
        spw_config_free(spool.cfg);
    }
    drop(sink);
});
