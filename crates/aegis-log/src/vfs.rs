//! The file operations the log needs, behind a trait, so that tests can swap the real
//! file system for [`MemVfs`], which forgets everything not fsynced when told to crash.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A directory tree of files the log reads and writes.
///
/// Durability follows POSIX: file contents are durable after [`VfsFile::sync_data`];
/// creating, renaming and removing a file are durable after [`Vfs::sync_dir`] on its
/// directory.
pub trait Vfs: Send + Sync + fmt::Debug + 'static {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the files directly inside `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates `path` (emptying it if it exists) for reading and writing.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>>;
    /// Opens the existing file `path` for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>>;
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An open file. All methods take `&self` so that readers and the single writer can
/// share one handle; positions are explicit.
pub trait VfsFile: Send + Sync + fmt::Debug {
    /// The current length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset`; fails if the file ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Cuts or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the contents (and length) durable.
    fn sync_data(&self) -> io::Result<()>;
}

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdVfs;

#[derive(Debug)]
struct StdFile(File);

impl Vfs for StdVfs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Arc::new(StdFile(file)))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(StdFile(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

impl VfsFile for StdFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.0, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(&self.0, buf, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// An in-memory file system that models what survives a power failure.
///
/// Each file keeps its current bytes and the bytes as of its last `sync_data`; the
/// directory keeps its current entries and the entries as of the last `sync_dir`.
/// [`MemVfs::crash`] throws away everything that was not made durable (optionally
/// keeping a random prefix of each file's un-synced appended bytes, like a torn write)
/// and returns the file system a rebooted machine would see. Clones share state.
#[derive(Clone, Debug, Default)]
pub struct MemVfs {
    state: Arc<Mutex<MemState>>,
}

#[derive(Debug, Default)]
struct MemState {
    live: BTreeMap<PathBuf, Arc<MemNode>>,
    durable: BTreeMap<PathBuf, Arc<MemNode>>,
    fail_syncs: bool,
    /// Successful syncs left before every sync fails.
    syncs_left: Option<u64>,
    syncs: u64,
}

#[derive(Debug, Default)]
struct MemNode {
    data: Mutex<NodeData>,
}

#[derive(Debug, Default)]
struct NodeData {
    current: Vec<u8>,
    synced: Vec<u8>,
    /// Set when bytes below `synced.len()` changed since the last sync, so that the
    /// un-synced part is not a pure append.
    rewritten: bool,
}

#[derive(Debug)]
struct MemFile {
    node: Arc<MemNode>,
    vfs: MemVfs,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

impl MemVfs {
    /// An empty file system.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates a power failure: returns a new file system holding only durable
    /// directory entries with their durable contents. When `torn_seed` is `Some`, each
    /// file that grew since its last sync also keeps a pseudo-random prefix of the
    /// un-synced bytes, chosen from the seed. Handles opened before the crash stay
    /// attached to the old state.
    #[must_use]
    pub fn crash(&self, torn_seed: Option<u64>) -> MemVfs {
        let state = lock(&self.state);
        let mut rng = torn_seed.map(SplitMix);
        let mut files = BTreeMap::new();
        for (path, node) in &state.durable {
            let data = lock(&node.data);
            let mut bytes = data.synced.clone();
            if let Some(rng) = rng.as_mut()
                && !data.rewritten
                && data.current.len() > bytes.len()
            {
                let extra = (data.current.len() - bytes.len()) as u64;
                let keep = rng.next() % (extra + 1);
                bytes.extend_from_slice(&data.current[data.synced.len()..][..keep as usize]);
            }
            let node = Arc::new(MemNode {
                data: Mutex::new(NodeData {
                    synced: bytes.clone(),
                    current: bytes,
                    rewritten: false,
                }),
            });
            files.insert(path.clone(), node);
        }
        let fresh = MemState {
            live: files.clone(),
            durable: files,
            ..MemState::default()
        };
        MemVfs {
            state: Arc::new(Mutex::new(fresh)),
        }
    }

    /// While `fail` is set, every `sync_data` and `sync_dir` returns an error.
    pub fn set_fail_syncs(&self, fail: bool) {
        lock(&self.state).fail_syncs = fail;
    }

    /// Lets the next `n` calls of `sync_data` or `sync_dir` succeed and fails every one
    /// after them.
    pub fn fail_syncs_after(&self, n: u64) {
        lock(&self.state).syncs_left = Some(n);
    }

    /// How many `sync_data` and `sync_dir` calls succeeded so far.
    #[must_use]
    pub fn sync_count(&self) -> u64 {
        lock(&self.state).syncs
    }

    /// The current bytes of `path`, if it exists.
    #[must_use]
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let state = lock(&self.state);
        state.live.get(path).map(|n| lock(&n.data).current.clone())
    }

    /// Replaces the current bytes of `path` (creating it if needed) and marks them
    /// durable, as if written by another program before the log opened.
    pub fn write_durable(&self, path: &Path, bytes: &[u8]) {
        let mut state = lock(&self.state);
        let node = Arc::new(MemNode {
            data: Mutex::new(NodeData {
                current: bytes.to_vec(),
                synced: bytes.to_vec(),
                rewritten: false,
            }),
        });
        state.live.insert(path.to_path_buf(), Arc::clone(&node));
        state.durable.insert(path.to_path_buf(), node);
    }

    fn sync_point(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        if state.fail_syncs || state.syncs_left == Some(0) {
            return Err(io::Error::other("injected fsync failure"));
        }
        if let Some(left) = state.syncs_left.as_mut() {
            *left -= 1;
        }
        state.syncs += 1;
        Ok(())
    }
}

impl Vfs for MemVfs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = lock(&self.state);
        Ok(state
            .live
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let mut state = lock(&self.state);
        let node = Arc::new(MemNode::default());
        state.live.insert(path.to_path_buf(), Arc::clone(&node));
        Ok(Arc::new(MemFile {
            node,
            vfs: self.clone(),
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let state = lock(&self.state);
        let node = state.live.get(path).ok_or_else(|| not_found(path))?;
        Ok(Arc::new(MemFile {
            node: Arc::clone(node),
            vfs: self.clone(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        let node = state.live.remove(from).ok_or_else(|| not_found(from))?;
        state.live.insert(to.to_path_buf(), node);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        state
            .live
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.sync_point()?;
        let mut state = lock(&self.state);
        let state = &mut *state;
        state.durable.retain(|p, _| p.parent() != Some(dir));
        for (path, node) in &state.live {
            if path.parent() == Some(dir) {
                state.durable.insert(path.clone(), Arc::clone(node));
            }
        }
        Ok(())
    }
}

impl VfsFile for MemFile {
    fn size(&self) -> io::Result<u64> {
        Ok(lock(&self.node.data).current.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let data = lock(&self.node.data);
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let src = data
            .current
            .get(start..)
            .and_then(|s| s.get(..buf.len()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut data = lock(&self.node.data);
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let end = start + buf.len();
        data.rewritten |= start < data.synced.len();
        if data.current.len() < end {
            data.current.resize(end, 0);
        }
        data.current[start..end].copy_from_slice(buf);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        let mut data = lock(&self.node.data);
        data.rewritten |= len < data.synced.len();
        data.current.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.vfs.sync_point()?;
        let mut data = lock(&self.node.data);
        let data = &mut *data;
        if data.rewritten {
            data.synced.clone_from(&data.current);
            data.rewritten = false;
        } else {
            let from = data.synced.len();
            data.synced.extend_from_slice(&data.current[from..]);
        }
        debug_assert_eq!(data.synced.len(), data.current.len());
        Ok(())
    }
}

/// A tiny seeded generator, enough to pick torn-write lengths reproducibly.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
