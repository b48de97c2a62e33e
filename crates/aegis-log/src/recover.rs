//! Rebuilding the index from the files on open.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result, io_err};
use crate::format::{
    self, GroupState, RECORD_BYTES_LIMIT, Record, SEGMENT_HEADER_LEN, decode_segment_header,
    encode_segment_header,
};
use crate::index::Loc;
use crate::log::{ApplyKind, Env, Inner, Segment, create_segment};
use crate::vfs::VfsFile;

/// Largest segment file recovery will load (4 GiB); anything bigger is not ours.
const SEGMENT_FILE_BYTES_LIMIT: u64 = 4 << 30;

/// Replays the directory into a fresh index and loads every group state.
pub(crate) fn recover(env: &Env) -> Result<(Inner, BTreeMap<u64, GroupState>)> {
    let vfs = &env.vfs;
    vfs.create_dir_all(&env.dir)
        .map_err(io_err("create", &env.dir))?;
    if env.sync_enabled()
        && let Some(parent) = env.dir.parent().filter(|p| !p.as_os_str().is_empty())
    {
        // The log directory's own entry must be durable before anything in it is.
        vfs.sync_dir(parent).map_err(io_err("fsync", parent))?;
    }
    let names = vfs.list(&env.dir).map_err(io_err("list", &env.dir))?;
    let mut seqs = Vec::new();
    let mut state_groups = Vec::new();
    let mut leftovers = Vec::new();
    for name in names {
        if let Some(seq) = parse_number(&name, "", ".wal") {
            seqs.push(seq);
        } else if let Some(group) = parse_number(&name, "group-", ".state") {
            state_groups.push(group);
        } else if name.starts_with("group-") && name.ends_with(".state.tmp") {
            leftovers.push(name);
        }
    }
    for name in leftovers {
        let path = env.dir.join(name);
        vfs.remove(&path).map_err(io_err("remove", &path))?;
    }
    seqs.sort_unstable();
    let mut inner = Inner::default();
    for (i, &seq) in seqs.iter().enumerate() {
        if i > 0 && seq != seqs[i - 1] + 1 {
            return Err(Error::Corrupt {
                path: env.segment_path(seqs[i - 1] + 1),
                offset: 0,
                reason: format!("segment missing between {} and {seq}", seqs[i - 1]),
            });
        }
        replay_segment(env, &mut inner, seq, i + 1 == seqs.len())?;
    }
    if inner.segments.is_empty() {
        let path = env.segment_path(1);
        let header = encode_segment_header(1);
        let file = create_segment(env, &path, &header)?;
        start_active(
            &mut inner,
            1,
            path.as_path(),
            file,
            SEGMENT_HEADER_LEN as u64,
        );
    }
    if env.sync_enabled() {
        vfs.sync_dir(&env.dir).map_err(io_err("fsync", &env.dir))?;
    }
    let mut states = BTreeMap::new();
    for group in state_groups {
        states.insert(group, load_state(env, group)?);
    }
    Ok((inner, states))
}

/// `prefix` + exactly 20 decimal digits + `suffix`.
fn parse_number(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn read_whole(file: &dyn VfsFile, path: &Path, limit: u64) -> Result<Vec<u8>> {
    let size = file.size().map_err(io_err("stat", path))?;
    if size > limit {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: limit,
            reason: format!("file of {size} bytes is larger than any this log writes"),
        });
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(size as usize)
        .map_err(|e| Error::Io {
            op: "allocate",
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::OutOfMemory, e),
        })?;
    bytes.resize(size as usize, 0);
    file.read_exact_at(&mut bytes, 0)
        .map_err(io_err("read", path))?;
    Ok(bytes)
}

fn start_active(inner: &mut Inner, seq: u64, path: &Path, file: Arc<dyn VfsFile>, len: u64) {
    // Replay may already have registered the segment and counted its live entries.
    inner.segments.entry(seq).or_insert_with(|| Segment {
        path: path.to_path_buf(),
        file,
        live: 0,
    });
    inner.active = seq;
    inner.active_len = len;
    inner.flushed_len = len;
    inner.active_base = SEGMENT_HEADER_LEN as u64;
    inner.allocated_len = inner.allocated_len.max(len);
}

fn replay_segment(env: &Env, inner: &mut Inner, seq: u64, is_last: bool) -> Result<()> {
    let path = env.segment_path(seq);
    let file = env.vfs.open(&path).map_err(io_err("open", &path))?;
    let bytes = read_whole(file.as_ref(), &path, SEGMENT_FILE_BYTES_LIMIT)?;
    let corrupt = |offset: usize, reason: String| Error::Corrupt {
        path: path.clone(),
        offset: offset as u64,
        reason,
    };
    match decode_segment_header(&bytes) {
        Ok(found) if found == seq => {}
        Ok(found) => return Err(corrupt(0, format!("header names segment {found}"))),
        Err(_) if is_last && header_torn(&bytes) => {
            // A crash while the segment was being created: it never held a record.
            let header = encode_segment_header(seq);
            file.set_len(0).map_err(io_err("truncate", &path))?;
            file.write_all_at(&header, 0)
                .map_err(io_err("write", &path))?;
            if env.sync_enabled() {
                file.sync_data().map_err(io_err("fsync", &path))?;
            }
            start_active(inner, seq, &path, file, SEGMENT_HEADER_LEN as u64);
            return Ok(());
        }
        Err(e) => return Err(corrupt(0, format!("segment header: {e}"))),
    }
    inner.segments.insert(
        seq,
        Segment {
            path: path.clone(),
            file: Arc::clone(&file),
            live: 0,
        },
    );
    let mut offset = SEGMENT_HEADER_LEN;
    while offset < bytes.len() {
        let (payload, used) = match format::decode_frame(&bytes[offset..], RECORD_BYTES_LIMIT) {
            Ok(frame) => frame,
            Err(e) if !is_last => return Err(corrupt(offset, e.to_string())),
            Err(_) if bytes[offset..].iter().all(|&b| b == 0) => {
                // Space allocated ahead of the records: the log ends here.
                inner.allocated_len = bytes.len() as u64;
                break;
            }
            Err(e) => {
                if let Some(next) = find_valid_frame(&bytes, offset + 1)
                    && !has_zero_sector(&bytes[..next], offset)
                {
                    return Err(corrupt(
                        offset,
                        format!("{e}, yet a valid record follows at offset {next}"),
                    ));
                }
                cut_tail(env, file.as_ref(), &path, offset as u64)?;
                break;
            }
        };
        let record = Record::decode(payload).map_err(|e| corrupt(offset, e.to_string()))?;
        let loc = Loc {
            term: 0,
            segment: seq,
            offset: offset as u64,
            frame_len: used as u32,
        };
        let (group, index, kind) = match record {
            Record::Entry {
                group, index, term, ..
            } => (group, index, ApplyKind::Entry(Loc { term, ..loc })),
            Record::TruncateSuffix { group, index } => (group, index, ApplyKind::TruncateSuffix),
            Record::Compact { group, index } => (group, index, ApplyKind::Compact),
        };
        inner
            .apply(group, index, kind)
            .map_err(|e| corrupt(offset, e.to_string()))?;
        offset += used;
    }
    if is_last {
        let len = offset.min(bytes.len()) as u64;
        start_active(inner, seq, &path, file, len);
    }
    Ok(())
}

/// A header that a crash during segment creation explains: short, or all zeros.
fn header_torn(bytes: &[u8]) -> bool {
    bytes.len() < SEGMENT_HEADER_LEN || bytes.iter().all(|&b| b == 0)
}

/// Bytes of the unit a disk writes atomically; a crash loses whole sectors.
const SECTOR_BYTES: usize = 512;

/// Whether `bytes[from..]` contains a whole, aligned, all-zero sector: the mark of a
/// write whose pages did not all reach the disk before a crash (unwritten parts of
/// space allocated ahead read as zeros). Damage that includes one is a torn tail even
/// when valid records follow it, since those belong to the same unsynced write.
fn has_zero_sector(bytes: &[u8], from: usize) -> bool {
    let start = from.div_ceil(SECTOR_BYTES) * SECTOR_BYTES;
    bytes
        .get(start..)
        .unwrap_or_default()
        .chunks_exact(SECTOR_BYTES)
        .any(|sector| sector.iter().all(|&b| b == 0))
}

/// The first offset at or after `from` where a complete, checksummed, decodable record
/// starts. Its existence after a bad frame means the damage is not a torn tail.
fn find_valid_frame(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < bytes.len() {
        // A frame's length is not zero, so a run of zeros cannot hold a frame start
        // more than three bytes before its end.
        let nonzero = bytes[at..].iter().position(|&b| b != 0)?;
        if nonzero > 3 {
            at += nonzero - 3;
        }
        let found = format::decode_frame(&bytes[at..], RECORD_BYTES_LIMIT)
            .is_ok_and(|(payload, _)| Record::decode(payload).is_ok());
        if found {
            return Some(at);
        }
        at += 1;
    }
    None
}

fn cut_tail(env: &Env, file: &dyn VfsFile, path: &Path, offset: u64) -> Result<()> {
    file.set_len(offset).map_err(io_err("truncate", path))?;
    if env.sync_enabled() {
        file.sync_data().map_err(io_err("fsync", path))?;
    }
    Ok(())
}

fn load_state(env: &Env, group: u64) -> Result<GroupState> {
    let path = env.state_path(group);
    let file = env.vfs.open(&path).map_err(io_err("open", &path))?;
    let limit = (format::STATE_HEADER_LEN + format::STATE_BODY_FIXED_LEN) as u64
        + u64::from(RECORD_BYTES_LIMIT);
    let bytes = read_whole(file.as_ref(), &path, limit)?;
    let corrupt = |reason: String| Error::Corrupt {
        path: path.clone(),
        offset: 0,
        reason,
    };
    let (found, state) =
        format::decode_state(&bytes, RECORD_BYTES_LIMIT).map_err(|e| corrupt(e.to_string()))?;
    if found != group {
        return Err(corrupt(format!("file names group {found}")));
    }
    Ok(state)
}
