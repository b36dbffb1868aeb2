//! Inputs the fuzz targets in `fuzz/` found failing, replayed on stable so
//! they stay fixed. Each test names its target and what the input was; the
//! bytes are written out here rather than loaded from fuzz/, so the test
//! reads without the fuzz crate. None is ignored: a regression is fixed
//! before its test lands.

use spillway::spool::{MemStorage, Spool, SpoolConfig};

/// A valid read-position file (see src/spool/position.rs): magic, `seq`,
/// `segment`, `offset`, then CRC32C of those 32 bytes.
fn position(seq: u64, segment: u64, offset: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(36);
    b.extend_from_slice(b"SPWPOS01");
    b.extend_from_slice(&seq.to_le_bytes());
    b.extend_from_slice(&segment.to_le_bytes());
    b.extend_from_slice(&offset.to_le_bytes());
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn drain(spool: &mut Spool) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while let Some(r) = spool.pop().expect("pop") {
        got.push(r);
        assert!(
            got.len() <= 10,
            "the spool returns more records than it holds"
        );
    }
    got
}

/// Pushes `records` into the spool `mem` holds, closes it, reopens it and
/// checks that every record whose push and close returned `Ok` comes back.
fn pushed_records_survive(mem: &MemStorage, records: &[&[u8]]) {
    let mut spool = Spool::open_with(mem.clone(), SpoolConfig::default()).expect("open");
    let before = drain(&mut spool);
    let mut taken = Vec::new();
    for r in records {
        if spool.push(r.to_vec()).is_ok() {
            taken.push(r.to_vec());
        }
    }
    if spool.close().is_err() {
        return;
    }
    drop(spool);
    let mut spool = Spool::open_with(mem.clone(), SpoolConfig::default()).expect("reopen");
    assert_eq!(
        drain(&mut spool),
        taken,
        "records pushed and closed with Ok were lost (first open returned {before:?})"
    );
}

/// spool_recover, artifact crash-15e61f75089d830c96b645f8d5a1308f41e5e280:
/// an empty spool whose position file (valid CRC) says seq u64::MAX was
/// consumed. The next push overflows `next_seq += 1` (src/spool/write.rs):
/// a panic with overflow checks, and without them the record gets seq 0,
/// below the consumed mark, so a push and close that returned `Ok` lose it.
/// The same class as issue 13's defect 1 (ids advanced with `+ 1`), for
/// sequence numbers read from disk.
#[test]
fn position_seq_near_u64_max_does_not_lose_pushed_records() {
    for seq in [u64::MAX, u64::MAX - 1] {
        let mem = MemStorage::new();
        mem.set_position(Some(position(seq, 0, 0)));
        pushed_records_survive(&mem, &[b"x", b"y"]);
    }
}

/// spool_recover, a stray segment named `ffffffffffffffff.seg` (one byte)
/// beside a valid spool: open computes the next id as `id + 1`
/// (src/spool/recover.rs), which overflows. This is issue 13's defect 1 as
/// the fuzzer met it (about 3,000 inputs into a run). Open must refuse the
/// name with an error naming the file, or ignore it; either way nothing
/// panics and, if it opens, the records pushed before come back.
#[test]
fn stray_segment_named_u64_max_is_refused_or_harmless() {
    let cfg = SpoolConfig {
        segment_bytes: 512,
        ..SpoolConfig::default()
    };
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), cfg.clone()).expect("open");
    let records: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 40]).collect();
    for r in &records {
        spool.push(r.clone()).expect("push");
    }
    spool.close().expect("close");
    drop(spool);
    mem.set_segment(u64::MAX, vec![0]);
    match Spool::open_with(mem.clone(), cfg) {
        Err(e) => assert!(
            e.to_string().contains("ffffffffffffffff"),
            "the error does not name the file: {e}"
        ),
        Ok(mut spool) => assert_eq!(drain(&mut spool), records),
    }
}

/// config_text, artifact crash-83cd9419a7f6c74c50fa9360b6ab8955e2285fef:
/// `max_size_jitter=+0` through `set` is refused, while the YAML
/// `max_size_jitter: +0` is read as the number 0 and accepted. The class
/// of issue 13's "YAML accepts `0x10` where `set()` refuses it": YAML's
/// other spellings of integers and floats (`+0`, `0x10`, `0o17`, `1e3`)
/// must get the same answer as `set`.
#[test]
fn yaml_plain_numbers_get_the_same_answer_as_set() {
    use spillway::config::BufferConfig;
    for (key, value) in [
        ("max_size_jitter", "+0"),
        ("max_size", "0x10"),
        ("max_size", "0o17"),
        ("max_size", "1e3"),
        ("max_retries", "+3"),
    ] {
        let mut by_set = BufferConfig::default();
        let by_set = by_set.set(key, value).map(|()| by_set);
        let by_yaml = BufferConfig::from_yaml_str(&format!("{key}: {value}\n"));
        match (&by_set, &by_yaml) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{key}: {value}"),
            (Err(_), Err(_)) => {}
            _ => panic!(
                "{key}: {value}: set gives {:?}, YAML gives {:?}",
                by_set.map(|_| ()).map_err(|e| e.to_string()),
                by_yaml.map(|_| ()).map_err(|e| e.to_string())
            ),
        }
    }
}

/// A C buffer whose callback is held while a test acts.
mod held_support;
use held_support as held;

/// ffi_calls, known failure crash-7b4759e067947a38dff11675b4e7f5519ff53e0c
/// (fuzz/corpus/ffi_calls/drop-oldest-everything-in-flight): under
/// `overflow: drop_oldest` with `capacity` = `max_size` and a timer flush,
/// an insert found every item it held already in flight, so there was
/// nothing to evict and it returned `SPW_ERR_FULL`. The library counts that
/// item as inserted and dropped, as `drop_newest` does; the target's model
/// counted a refusal as inserted under `drop_newest` only, so whether it
/// failed depended on whether the flusher had taken the batch yet. Here the
/// batch is held in the callback, so the insert always meets that case.
#[test]
fn drop_oldest_refusal_with_everything_in_flight_counts_inserted_and_dropped() {
    use spillway::ffi::*;

    let held = held::buffer(
        &[
            ("max_size", "1"),
            ("capacity", "1"),
            ("overflow", "drop_oldest"),
        ],
        0,
    );
    assert_eq!(held.insert(b"a"), spw_status::SPW_OK);
    held.entered.recv().expect("the callback runs");
    // "a" is in flight and fills `capacity`: nothing buffered to evict.
    assert_eq!(held.insert(b"b"), spw_status::SPW_ERR_FULL);
    let s = held.stats();
    assert_eq!(
        (s.inserted, s.dropped, s.in_flight, s.buffered, s.delivered),
        (2, 1, 1, 0, 0),
        "the refused item counts as inserted and dropped: {s:?}"
    );

    held.release.send(()).expect("release the callback");
    // SAFETY: buf is live.
    let st = unsafe { spw_buffer_close(held.buf, 10_000) };
    assert_eq!(st, spw_status::SPW_OK);
    let s = held.stats();
    assert_eq!(
        (
            s.inserted,
            s.delivered,
            s.dropped,
            s.buffered,
            s.in_flight,
            s.spooled
        ),
        (2, 1, 1, 0, 0, 0),
        "after close: {s:?}"
    );
}

/// config_text, artifact crash-64b1635ce30eb1a9124e902aa33a5f3bedbe42dc
/// (the 10-minute run of 2026-12-02, after about 219,000 inputs): a YAML
/// complex key (`? ...`) whose text spans lines folded by carriage returns
/// is an unknown key holding `\n`, and `unknown key `...`` printed it
/// verbatim: a multi-line error. Keys in messages are escaped.
#[test]
fn unknown_key_with_line_breaks_gives_a_one_line_error() {
    use spillway::config::BufferConfig;
    let yaml = "# \r\r\r\r\r\r\r?\r\r\r\r\r\r\r\r\r a commen\r\r\r\r a co!!!!!!#!0\"\n";
    let e = BufferConfig::from_yaml_str(yaml).expect_err("an unknown key");
    let msg = e.to_string();
    assert!(!msg.contains(['\n', '\r']), "a multi-line error: {msg:?}");
    assert!(msg.starts_with("unknown key `a commen\\n"), "{msg}");

    let e = BufferConfig::new()
        .set("max\nsize", "1")
        .expect_err("an unknown key");
    assert_eq!(
        e.key(),
        Some("max\nsize"),
        "the key itself is kept as given"
    );
    let msg = e.to_string();
    assert!(
        msg.starts_with("unknown key `max\\nsize`"),
        "the key is escaped: {msg:?}"
    );
}
