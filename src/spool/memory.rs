//! An in-memory [`Storage`] for tests: it knows which bytes were synced and
//! can simulate a crash (drop what was not synced, tear writes, flip bytes,
//! undo directory changes) and failing disks (fsync errors, full disks).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;

use super::error::IoError;
use super::storage::Storage;
use crate::sync::{Arc, Mutex};

/// What a simulated crash may do beyond dropping every unsynced byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash {
    /// Seeds the choices below, so a failing case can be replayed.
    pub seed: u64,
    /// Keep a random prefix of what was written but not synced (a torn
    /// write), instead of none of it.
    pub tear: bool,
    /// Flip random bytes in what was written but not synced and is kept.
    pub flip: bool,
    /// Undo, at random, segment creations, removals and the position update
    /// made since the last directory sync.
    pub dir: bool,
}

impl Crash {
    /// A crash that keeps exactly what was synced.
    pub fn drop_unsynced() -> Self {
        Self {
            seed: 0,
            tear: false,
            flip: false,
            dir: false,
        }
    }

    /// A crash that may do everything a crash may do, seeded by `seed`.
    pub fn any(seed: u64) -> Self {
        Self {
            seed,
            tear: true,
            flip: true,
            dir: true,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct MemFile {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    generation: u64,
    files: BTreeMap<u64, MemFile>,
    durable_names: BTreeSet<u64>,
    removed: BTreeMap<u64, Vec<u8>>,
    position: Option<Vec<u8>>,
    durable_position: Option<Vec<u8>>,
    /// (handle session, segment): poisoning belongs to one open storage, as
    /// a failed fsync concerns one process's open files.
    poisoned: BTreeSet<(u64, u64)>,
    sessions: u64,
    fail_syncs: u32,
    fail_writes: u32,
    max_file_size: Option<u64>,
    violations: Vec<String>,
    syncs: u64,
}

/// In-memory storage for tests. Clones share the same store, so a test can
/// keep one to crash or damage while a [`Spool`](super::Spool) uses another.
/// Each clone acts as a separate opening of the store: a segment whose fsync
/// failed is refused only through the clone that saw the failure.
///
/// After [`crash`](Self::crash), every handle from before the crash fails
/// all operations (as the crashed process would), and the returned handle
/// sees what survived.
///
/// ```
/// use spillway::spool::{Crash, MemStorage, Spool, SpoolConfig};
/// let mem = MemStorage::new();
/// let mut spool = Spool::open_with(mem.clone(), SpoolConfig::default()).unwrap();
/// spool.push(b"kept".to_vec()).unwrap();
/// spool.flush().unwrap();
/// spool.push(b"lost".to_vec()).unwrap(); // never synced
/// let after = mem.crash(Crash::drop_unsynced());
/// drop(spool); // its best-effort flush fails against the crashed store
/// let mut spool = Spool::open_with(after, SpoolConfig::default()).unwrap();
/// assert_eq!(spool.pop().unwrap(), Some(b"kept".to_vec()));
/// assert_eq!(spool.pop().unwrap(), None);
/// ```
#[derive(Debug)]
pub struct MemStorage {
    shared: Arc<Mutex<State>>,
    generation: u64,
    session: u64,
}

impl Clone for MemStorage {
    fn clone(&self) -> Self {
        let session = {
            let mut st = self.shared.lock();
            st.sessions += 1;
            st.sessions
        };
        Self {
            shared: Arc::clone(&self.shared),
            generation: self.generation,
            session,
        }
    }
}

impl Default for MemStorage {
    fn default() -> Self {
        Self::new()
    }
}

fn path(id: u64) -> PathBuf {
    PathBuf::from(format!("mem/{id:016x}.seg"))
}

fn os_err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// splitmix64: small, seedable, good enough to pick crash outcomes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Mutex::new(State::default())),
            generation: 0,
            session: 0,
        }
    }

    /// Simulates a crash of the machine: the store keeps what was synced
    /// plus whatever `crash` allows, every older handle stops working, and
    /// the returned handle sees the survivors (all of it now durable).
    pub fn crash(&self, crash: Crash) -> MemStorage {
        let mut st = self.shared.lock();
        let mut rng = Rng(crash.seed);
        st.generation += 1;
        let mut files = BTreeMap::new();
        let old = std::mem::take(&mut st.files);
        for (id, f) in old {
            if crash.dir && !st.durable_names.contains(&id) && rng.coin() {
                continue; // created since the last directory sync: may vanish
            }
            let common = f
                .data
                .iter()
                .zip(f.durable.iter())
                .take_while(|(a, b)| a == b)
                .count();
            let mut content = if crash.tear && f.data != f.durable && rng.below(4) != 0 {
                let keep = common as u64 + rng.below((f.data.len() - common) as u64 + 1);
                f.data[..keep as usize].to_vec()
            } else {
                f.durable.clone()
            };
            if crash.flip && content.len() > common && content != f.durable {
                for _ in 0..=rng.below(3) {
                    let at = common + rng.below((content.len() - common) as u64) as usize;
                    content[at] ^= 1 << rng.below(8);
                }
            }
            files.insert(
                id,
                MemFile {
                    data: content.clone(),
                    durable: content,
                },
            );
        }
        let removed = std::mem::take(&mut st.removed);
        for (id, durable) in removed {
            if crash.dir && rng.coin() && !files.contains_key(&id) {
                files.insert(
                    id,
                    MemFile {
                        data: durable.clone(),
                        durable,
                    },
                );
            }
        }
        if crash.dir && rng.coin() {
            st.position = st.durable_position.clone();
        }
        st.durable_position = st.position.clone();
        st.durable_names = files.keys().copied().collect();
        st.files = files;
        st.poisoned.clear();
        st.fail_syncs = 0;
        st.fail_writes = 0;
        st.max_file_size = None;
        st.sessions += 1;
        MemStorage {
            shared: Arc::clone(&self.shared),
            generation: st.generation,
            session: st.sessions,
        }
    }

    /// An independent copy of the current contents (synced or not), for
    /// running many experiments on the same starting point.
    pub fn snapshot(&self) -> MemStorage {
        let st = self.shared.lock();
        let copy = State {
            files: st.files.clone(),
            durable_names: st.durable_names.clone(),
            removed: st.removed.clone(),
            position: st.position.clone(),
            durable_position: st.durable_position.clone(),
            ..State::default()
        };
        MemStorage {
            shared: Arc::new(Mutex::new(copy)),
            generation: 0,
            session: 0,
        }
    }

    /// Ids of the segments present.
    pub fn segment_ids(&self) -> Vec<u64> {
        self.shared.lock().files.keys().copied().collect()
    }

    /// The current bytes of segment `id`.
    pub fn segment(&self, id: u64) -> Option<Vec<u8>> {
        self.shared.lock().files.get(&id).map(|f| f.data.clone())
    }

    /// Replaces segment `id` (creating it) with `bytes`, as durable: for
    /// damaged-file fixtures.
    pub fn set_segment(&self, id: u64, bytes: Vec<u8>) {
        let mut st = self.shared.lock();
        st.durable_names.insert(id);
        st.files.insert(
            id,
            MemFile {
                data: bytes.clone(),
                durable: bytes,
            },
        );
    }

    /// Deletes segment `id`, as durable.
    pub fn remove_segment(&self, id: u64) {
        let mut st = self.shared.lock();
        st.files.remove(&id);
        st.durable_names.remove(&id);
    }

    /// The stored read-position bytes.
    pub fn position(&self) -> Option<Vec<u8>> {
        self.shared.lock().position.clone()
    }

    /// Replaces the stored read-position bytes, as durable.
    pub fn set_position(&self, bytes: Option<Vec<u8>>) {
        let mut st = self.shared.lock();
        st.position = bytes.clone();
        st.durable_position = bytes;
    }

    /// The next `n` segment syncs fail (EIO); each failed segment is then
    /// refused further writes and syncs, as a real storage must.
    pub fn fail_next_syncs(&self, n: u32) {
        self.shared.lock().fail_syncs = n;
    }

    /// The next `n` writes fail (EIO) after writing half of their bytes.
    pub fn fail_next_writes(&self, n: u32) {
        self.shared.lock().fail_writes = n;
    }

    /// Writes that would make a segment longer than `max` write up to it and
    /// fail with EFBIG, like a process under `ulimit -f`. `None` lifts it.
    pub fn set_max_file_size(&self, max: Option<u64>) {
        self.shared.lock().max_file_size = max;
    }

    /// Segment syncs that succeeded so far.
    pub fn sync_count(&self) -> u64 {
        self.shared.lock().syncs
    }

    /// Misuses seen: a write or sync of a segment after its sync failed.
    /// Tests expect this to stay empty.
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }

    fn state(
        &self,
        op: &'static str,
        id: u64,
    ) -> Result<crate::sync::MutexGuard<'_, State>, IoError> {
        let st = self.shared.lock();
        if st.generation != self.generation {
            return Err(IoError::new(
                op,
                path(id),
                io::Error::other("storage crashed (simulated)"),
            ));
        }
        Ok(st)
    }
}

fn refuse_poisoned(st: &mut State, session: u64, op: &'static str, id: u64) -> Result<(), IoError> {
    if st.poisoned.contains(&(session, id)) {
        st.violations
            .push(format!("{op} of segment {id} after its fsync failed"));
        return Err(IoError::new(
            op,
            path(id),
            io::Error::other("segment was retired after a failed fsync"),
        ));
    }
    Ok(())
}

fn missing(op: &'static str, id: u64) -> IoError {
    IoError::new(op, path(id), io::Error::from(io::ErrorKind::NotFound))
}

impl Storage for MemStorage {
    fn list(&mut self) -> Result<Vec<u64>, IoError> {
        let st = self.state("list", 0)?;
        Ok(st.files.keys().copied().collect())
    }

    fn create(&mut self, id: u64) -> Result<(), IoError> {
        let mut st = self.state("create", id)?;
        if st.files.contains_key(&id) {
            return Err(IoError::new("create", path(id), os_err(17))); // EEXIST
        }
        st.poisoned.remove(&(self.session, id));
        st.files.insert(id, MemFile::default());
        Ok(())
    }

    fn create_with(&mut self, id: u64, data: &[u8]) -> Result<(), IoError> {
        let mut st = self.state("create", id)?;
        if st.fail_writes > 0 {
            st.fail_writes -= 1;
            return Err(IoError::new("write", path(id), os_err(5)));
        }
        if st.max_file_size.is_some_and(|max| data.len() as u64 > max) {
            return Err(IoError::new("write", path(id), os_err(27)));
        }
        if st.fail_syncs > 0 {
            st.fail_syncs -= 1;
            return Err(IoError::new("fsync", path(id), os_err(5)));
        }
        st.poisoned.remove(&(self.session, id));
        st.files.insert(
            id,
            MemFile {
                data: data.to_vec(),
                durable: data.to_vec(),
            },
        );
        st.syncs += 1;
        Ok(())
    }

    fn size(&mut self, id: u64) -> Result<u64, IoError> {
        let st = self.state("stat", id)?;
        st.files
            .get(&id)
            .map(|f| f.data.len() as u64)
            .ok_or_else(|| missing("stat", id))
    }

    fn read_at(&mut self, id: u64, offset: u64, buf: &mut [u8]) -> Result<usize, IoError> {
        let st = self.state("read", id)?;
        let f = st.files.get(&id).ok_or_else(|| missing("read", id))?;
        let start = (offset as usize).min(f.data.len());
        let n = buf.len().min(f.data.len() - start);
        buf[..n].copy_from_slice(&f.data[start..start + n]);
        Ok(n)
    }

    fn write_at(&mut self, id: u64, offset: u64, data: &[u8]) -> Result<(), IoError> {
        let mut st = self.state("write", id)?;
        refuse_poisoned(&mut st, self.session, "write", id)?;
        let mut data = data;
        let mut err = None;
        if st.fail_writes > 0 {
            st.fail_writes -= 1;
            data = &data[..data.len() / 2];
            err = Some(os_err(5));
        }
        if let Some(max) = st.max_file_size {
            let room = max.saturating_sub(offset) as usize;
            if data.len() > room {
                data = &data[..room];
                err = Some(os_err(27));
            }
        }
        let f = st.files.get_mut(&id).ok_or_else(|| missing("write", id))?;
        let start = offset as usize;
        if f.data.len() < start {
            f.data.resize(start, 0);
        }
        let overlap = (f.data.len() - start).min(data.len());
        f.data[start..start + overlap].copy_from_slice(&data[..overlap]);
        f.data.extend_from_slice(&data[overlap..]);
        match err {
            Some(e) => Err(IoError::new("write", path(id), e)),
            None => Ok(()),
        }
    }

    fn truncate(&mut self, id: u64, len: u64) -> Result<(), IoError> {
        let mut st = self.state("truncate", id)?;
        refuse_poisoned(&mut st, self.session, "truncate", id)?;
        let f = st
            .files
            .get_mut(&id)
            .ok_or_else(|| missing("truncate", id))?;
        f.data.resize(len as usize, 0);
        Ok(())
    }

    fn sync(&mut self, id: u64) -> Result<(), IoError> {
        let mut st = self.state("fsync", id)?;
        refuse_poisoned(&mut st, self.session, "fsync", id)?;
        if st.fail_syncs > 0 {
            st.fail_syncs -= 1;
            st.poisoned.insert((self.session, id));
            return Err(IoError::new("fsync", path(id), os_err(5)));
        }
        let f = st.files.get_mut(&id).ok_or_else(|| missing("fsync", id))?;
        f.durable = f.data.clone();
        st.syncs += 1;
        Ok(())
    }

    fn remove(&mut self, id: u64) -> Result<(), IoError> {
        let mut st = self.state("delete", id)?;
        st.poisoned.remove(&(self.session, id));
        if let Some(f) = st.files.remove(&id) {
            if st.durable_names.contains(&id) {
                st.removed.insert(id, f.durable);
            }
        }
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), IoError> {
        let mut st = self.state("fsync directory", 0)?;
        st.durable_names = st.files.keys().copied().collect();
        st.removed.clear();
        st.durable_position = st.position.clone();
        Ok(())
    }

    fn load_position(&mut self) -> Result<Option<Vec<u8>>, IoError> {
        let st = self.state("read", 0)?;
        Ok(st.position.clone())
    }

    fn store_position(&mut self, bytes: &[u8]) -> Result<(), IoError> {
        let mut st = self.state("rename", 0)?;
        st.position = Some(bytes.to_vec());
        Ok(())
    }
}
