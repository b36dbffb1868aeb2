//! Hostile directories: stray names, out-of-range ids, symbolic links,
//! FIFOs and oversized files where the spool keeps its files. Each is
//! either left alone (a name the spool does not write) or refused with a
//! one-line error naming the file; none is followed, waited on, read
//! without bound, or allowed to destroy queued records.

mod spool_support;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use spillway::spool::{MemStorage, PositionStatus, Spool, SpoolConfig, SpoolError, SyncMode};
use spool_support::{number, record, TempDir};

fn cfg() -> SpoolConfig {
    SpoolConfig {
        max_bytes: 1 << 20,
        segment_bytes: 512,
        max_record: 1024,
        sync: SyncMode::Batch,
        memory_bytes: 64,
        ..SpoolConfig::default()
    }
}

/// 20 records over several segments, closed.
fn twenty(dir: &Path) {
    let mut spool = Spool::open(dir, cfg()).unwrap();
    spool.push_batch((0..20).map(|n| record(n, 60))).unwrap();
    spool.close().unwrap();
}

/// Every file in `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn drain(spool: &mut Spool) -> Vec<u64> {
    let mut out = Vec::new();
    while let Some(r) = spool.pop().unwrap() {
        out.push(number(&r).expect("an intact record"));
    }
    out
}

fn open_err(dir: &Path) -> String {
    match Spool::open(dir, cfg()) {
        Ok(_) => panic!("open of {} succeeded", dir.display()),
        Err(e) => {
            assert!(matches!(e, SpoolError::Io(_)), "{e:?}");
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "one line: {msg}");
            msg
        }
    }
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn a_segment_name_outside_the_range_is_refused_and_nothing_is_destroyed() {
    let dir = TempDir::new("stray-max");
    twenty(dir.path());
    let before = files(dir.path());
    assert!(before.keys().filter(|n| n.ends_with(".seg")).count() >= 3);
    for stray in [
        "ffffffffffffffff.seg",
        "0000000000000000.seg",
        "0001000000000000.seg",
    ] {
        let path = dir.path().join(stray);
        std::fs::write(&path, b"").unwrap();
        let msg = open_err(dir.path());
        assert!(msg.contains(stray), "names the file: {msg}");
        assert!(msg.contains("not a segment this spool wrote"), "{msg}");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            files(dir.path()),
            before,
            "refusing {stray} changed the directory"
        );
    }
    let mut spool = Spool::open(dir.path(), cfg()).unwrap();
    assert_eq!(drain(&mut spool), (0..20).collect::<Vec<_>>());
}

#[test]
fn any_storage_refuses_an_id_the_spool_never_writes() {
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), cfg()).unwrap();
    spool.push_batch((0..20).map(|n| record(n, 60))).unwrap();
    spool.close().unwrap();
    let ids = mem.segment_ids();
    mem.set_segment(u64::MAX, Vec::new());
    let err = Spool::open_with(mem.clone(), cfg())
        .unwrap_err()
        .to_string();
    assert!(err.contains("ffffffffffffffff.seg"), "{err}");
    mem.remove_segment(u64::MAX);
    assert_eq!(mem.segment_ids(), ids);
    let mut spool = Spool::open_with(mem, cfg()).unwrap();
    assert_eq!(drain(&mut spool), (0..20).collect::<Vec<_>>());
}

#[test]
fn names_the_spool_does_not_write_are_left_alone() {
    let dir = TempDir::new("stray-case");
    twenty(dir.path());
    // Upper-case hex, a wrong width, a wrong case of the extension: not the
    // spool's names, so not segments, and not touched.
    let strays = [
        "00000000000000AB.seg",
        "0000000000000001.SEG",
        "000000000000001.seg",
        "notes.txt",
    ];
    for s in strays {
        std::fs::write(dir.path().join(s), b"not a segment").unwrap();
    }
    let mut spool = Spool::open(dir.path(), cfg()).unwrap();
    assert!(spool.report().is_clean(), "{:?}", spool.report());
    assert_eq!(drain(&mut spool), (0..20).collect::<Vec<_>>());
    spool.push(record(20, 60)).unwrap();
    spool.close().unwrap();
    for s in strays {
        assert_eq!(std::fs::read(dir.path().join(s)).unwrap(), b"not a segment");
    }
}

#[test]
fn a_link_planted_at_the_next_segment_name_is_not_followed() {
    let dir = TempDir::new("link-next");
    let outside = TempDir::new("link-target");
    let target = outside.path().join("victim");
    std::fs::write(&target, b"precious").unwrap();
    let mut spool = Spool::open(dir.path(), cfg()).unwrap();
    spool.push_batch((0..5).map(|n| record(n, 60))).unwrap();
    // Segment 1 holds the records so far; 2 is the next to be created.
    let next = dir.path().join("0000000000000002.seg");
    symlink(&target, &next).unwrap();
    let mut refused = None;
    for n in 5..40 {
        if let Err(e) = spool.push_batch([record(n, 60)]) {
            refused = Some(e.to_string());
            break;
        }
    }
    let msg = refused.expect("the spool rolled onto the planted link");
    assert!(msg.contains("0000000000000002.seg"), "{msg}");
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    drop(spool);
    // Reopening with the link still there is refused, naming it.
    let msg = open_err(dir.path());
    assert!(
        msg.contains("0000000000000002.seg") && msg.contains("symbolic link"),
        "{msg}"
    );
    std::fs::remove_file(&next).unwrap();
    let mut spool = Spool::open(dir.path(), cfg()).unwrap();
    let got = drain(&mut spool);
    assert_eq!(got[..5], [0, 1, 2, 3, 4], "{got:?}");
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
}

#[test]
fn special_files_where_the_spool_keeps_regular_files_are_refused() {
    let outside = TempDir::new("special-target");
    let target = outside.path().join("elsewhere.seg");
    std::fs::write(&target, b"").unwrap();
    type Plant = fn(&Path, &Path);
    let link: Plant = |at, target| symlink(target, at).unwrap();
    let fifo: Plant = |at, _| mkfifo(at);
    let dir_: Plant = |at, _| std::fs::create_dir(at).unwrap();
    let zero: Plant = |at, _| symlink("/dev/zero", at).unwrap();
    let cases: [(&str, Plant, &str); 9] = [
        ("0000000000000001.seg", link, "symbolic link"),
        ("0000000000000001.seg", fifo, "FIFO"),
        ("0000000000000001.seg", dir_, "directory"),
        ("position", zero, "symbolic link"),
        ("position", fifo, "FIFO"),
        ("position", dir_, "directory"),
        ("position.tmp", link, "symbolic link"),
        ("lock", link, "symbolic link"),
        ("lock", fifo, "FIFO"),
    ];
    for (name, plant, what) in cases {
        let dir = TempDir::new("special");
        twenty(dir.path());
        let at = dir.path().join(name);
        let _ = std::fs::remove_file(&at);
        plant(&at, &target);
        let msg = open_err(dir.path());
        assert!(
            msg.contains(name) && msg.contains(what),
            "{name} as {what}: {msg}"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"", "{name}: followed");
    }
}

#[test]
fn an_oversized_position_file_is_ignored_without_reading_it() {
    let dir = TempDir::new("big-position");
    twenty(dir.path());
    {
        let mut spool = Spool::open(dir.path(), cfg()).unwrap();
        assert_eq!(spool.remove(3).unwrap(), 3);
        spool.close().unwrap();
    }
    // A 1 GiB file (sparse: costs nothing to make, everything to read whole).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("position"))
        .unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    let mut spool = Spool::open(dir.path(), cfg()).unwrap();
    assert_eq!(spool.report().position, PositionStatus::Invalid);
    // Nothing consumed is lost; records from before the position may repeat.
    let got = drain(&mut spool);
    assert_eq!(*got.last().unwrap(), 19);
    assert!(got.first().copied().unwrap() <= 3, "{got:?}");
    spool.close().unwrap();
    // The next save replaced it with a position of the right size.
    assert!(
        std::fs::metadata(dir.path().join("position"))
            .unwrap()
            .len()
            < 1024
    );
}

/// One segment: 5 intact records, `damage` bytes of `00 00 3F 00` repeated
/// (at every offset, a header whose length fits: the worst case for a
/// resync that checks each candidate afresh), then 5 more records.
fn crafted(damage: usize) -> MemStorage {
    let cfg = SpoolConfig::default();
    let mem = MemStorage::new();
    let mut spool = Spool::open_with(mem.clone(), cfg).unwrap();
    spool.push_batch((0..10).map(|n| record(n, 60))).unwrap();
    spool.close().unwrap();
    let ids = mem.segment_ids();
    assert_eq!(ids.len(), 1);
    let whole = mem.segment(ids[0]).unwrap();
    let half = 5 * (16 + 60);
    let mut seg = whole[..half].to_vec();
    seg.extend((0..damage).map(|i| [0u8, 0, 0x3F, 0][i % 4]));
    seg.extend_from_slice(&whole[half..]);
    mem.set_segment(ids[0], seg);
    mem.set_position(None);
    mem
}

/// Bytes read from storage to open the crafted spool, and then to drain it.
fn bytes_to_recover(damage: usize) -> (u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let (storage, read) = spool_support::Counting::new(crafted(damage));
    let mut spool = Spool::open_with(storage, SpoolConfig::default()).unwrap();
    let opened = read.swap(0, Relaxed);
    let rep = spool.report().clone();
    assert_eq!(rep.skipped_total, 1, "{rep:?}");
    assert_eq!(rep.skipped[0].bytes, damage as u64);
    assert_eq!(drain(&mut spool), (0..10).collect::<Vec<_>>());
    (opened, read.load(Relaxed))
}

#[test]
fn resync_past_crafted_damage_reads_each_byte_about_once() {
    let (small, small_drain) = bytes_to_recover(1 << 20);
    let (large, large_drain) = bytes_to_recover(4 << 20);
    // Open reads the file once, plus the probe for the first record.
    for (got, size) in [(small, 1u64 << 20), (large, 4 << 20)] {
        assert!(got >= size, "{got} bytes read for {size} of damage");
        assert!(
            got <= size + (64 << 10) + 1024,
            "{got} bytes read for {size} of damage"
        );
    }
    assert!(large <= 4 * small, "{small} then {large}: not linear");
    // The drain steps over the damage open found; it reads at most one
    // read-ahead window (memory_bytes) of it.
    let window = SpoolConfig::default().memory_bytes as u64;
    for d in [small_drain, large_drain] {
        assert!(d <= window + 1024, "drain read {d} bytes");
    }
}
