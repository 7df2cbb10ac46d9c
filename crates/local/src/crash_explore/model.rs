//! What a crash may leave on disk after a recorded operation sequence, under two models.
//!
//! The log is replayed up to the crash point, tracking for every file (inode) its durable
//! content (as of its last fsync) and the data operations since, and for the directory its
//! durable entries (as of its last fsync) and the entry operations since. What a crash
//! leaves is the durable state plus some of the pending operations:
//!
//! - [`Model::Posix`], the strict reading of POSIX: any subset of the pending directory
//!   operations (a rename or unlink is not durable until the directory is fsynced, and
//!   several may persist out of order), and for every file any subset of its pending data
//!   units: each 4 KiB block of each write, each truncation, and each write's growth of the
//!   file size (which, without the block, leaves zeros). Data written but not fsynced may so
//!   be lost, persisted in part, or persisted while a later operation is not, or vice versa.
//! - [`Model::Ext4Ordered`], ext4 `data=ordered` as commonly relied on: the journal commits
//!   directory operations in order (a prefix of the pending ones persists), and a file's
//!   data written before a rename of it reaches disk before that rename commits. Other
//!   pending data is free as in the strict model.
//!
//! When a crash point has more combinations than the cap, a fixed-seed sample of the cap's
//! size is taken instead, always with "none" and "all" of the pending units among it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One file-system operation, with paths relative to the recorded directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "the variants' fields are named for what they are"
)]
pub enum Op {
    /// A new, empty file.
    Create {
        name: String,
    },
    /// An existing file cut to `len` bytes (opening with `O_TRUNC`).
    Truncate {
        name: String,
        len: u64,
    },
    /// `bytes` written at `offset`.
    Write {
        name: String,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// fsync of the file.
    Fsync {
        name: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Unlink {
        name: String,
    },
    /// fsync of the directory.
    DirFsync,
    /// The writer lock taken (no effect on what a crash leaves).
    Lock {
        name: String,
    },
    /// The store operation returned success: it is acknowledged from here on.
    Acknowledged {
        what: String,
    },
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Create { name } => write!(f, "create({name})"),
            Op::Truncate { name, len } => write!(f, "truncate({name}, {len})"),
            Op::Write {
                name,
                offset,
                bytes,
            } => write!(f, "write({name}, offset {offset}, {} bytes)", bytes.len()),
            Op::Fsync { name } => write!(f, "fsync({name})"),
            Op::Rename { from, to } => write!(f, "rename({from} -> {to})"),
            Op::Unlink { name } => write!(f, "unlink({name})"),
            Op::DirFsync => write!(f, "fsync(dir)"),
            Op::Lock { name } => write!(f, "lock({name})"),
            Op::Acknowledged { what } => write!(f, "-- {what} returned Ok --"),
        }
    }
}

/// The block size of the data model: a write persists or not per aligned block of this size.
pub const BLOCK: u64 = 4096;

/// A crash model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// The strict reading of POSIX (see the module docs).
    Posix,
    /// ext4 `data=ordered` as commonly relied on (see the module docs).
    Ext4Ordered,
}

impl Model {
    /// The model's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Model::Posix => "strict POSIX",
            Model::Ext4Ordered => "ext4 data=ordered",
        }
    }
}

/// The files a crash leaves, by name, and which pending operations it kept.
#[derive(Debug, Clone)]
pub struct CrashState {
    /// Every file the directory names after the crash, with its content.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Which pending operations persisted, in words.
    pub persisted: String,
}

/// The crash states of one crash point, and whether they are a sample.
pub struct PointStates {
    /// The states (not deduplicated).
    pub states: Vec<CrashState>,
    /// True when there were more combinations than the cap and these are a sample.
    pub sampled: bool,
}

type Ino = usize;

#[derive(Debug, Clone)]
enum Unit {
    Block { offset: u64, bytes: Vec<u8> },
    Truncate { len: u64 },
    Grow { len: u64 },
}

#[derive(Debug, Clone)]
struct PendingUnit {
    /// Index in the log of the operation this unit belongs to.
    at: usize,
    unit: Unit,
}

#[derive(Debug, Clone)]
enum DirOp {
    Link { name: String, ino: Ino },
    Rename { from: String, to: String, ino: Ino },
    Unlink { name: String },
}

#[derive(Debug, Clone, Default)]
struct Inode {
    durable: Vec<u8>,
    pending: Vec<PendingUnit>,
    /// The length the file has now (not necessarily on disk).
    len: u64,
}

/// The replayed state at a crash point.
struct Replay {
    inodes: Vec<Inode>,
    durable_dir: BTreeMap<String, Ino>,
    live_dir: BTreeMap<String, Ino>,
    pending_dir: Vec<(usize, DirOp)>,
}

impl Replay {
    fn new(initial: &BTreeMap<String, Vec<u8>>) -> Self {
        let mut replay = Replay {
            inodes: Vec::new(),
            durable_dir: BTreeMap::new(),
            live_dir: BTreeMap::new(),
            pending_dir: Vec::new(),
        };
        for (name, bytes) in initial {
            let ino = replay.inodes.len();
            replay.inodes.push(Inode {
                durable: bytes.clone(),
                pending: Vec::new(),
                len: bytes.len() as u64,
            });
            replay.durable_dir.insert(name.clone(), ino);
            replay.live_dir.insert(name.clone(), ino);
        }
        replay
    }

    fn apply(&mut self, at: usize, op: &Op) {
        match op {
            Op::Create { name } => {
                let ino = self.inodes.len();
                self.inodes.push(Inode::default());
                self.live_dir.insert(name.clone(), ino);
                self.pending_dir.push((
                    at,
                    DirOp::Link {
                        name: name.clone(),
                        ino,
                    },
                ));
            }
            Op::Truncate { name, len } => {
                if let Some(&ino) = self.live_dir.get(name) {
                    let inode = &mut self.inodes[ino];
                    inode.len = *len;
                    inode.pending.push(PendingUnit {
                        at,
                        unit: Unit::Truncate { len: *len },
                    });
                }
            }
            Op::Write {
                name,
                offset,
                bytes,
            } => {
                if let Some(&ino) = self.live_dir.get(name) {
                    let inode = &mut self.inodes[ino];
                    let end = offset + bytes.len() as u64;
                    let mut start = *offset;
                    while start < end {
                        let stop = ((start / BLOCK + 1) * BLOCK).min(end);
                        let (from, to) = (
                            usize::try_from(start - offset).unwrap_or(usize::MAX),
                            usize::try_from(stop - offset).unwrap_or(usize::MAX),
                        );
                        inode.pending.push(PendingUnit {
                            at,
                            unit: Unit::Block {
                                offset: start,
                                bytes: bytes[from..to].to_vec(),
                            },
                        });
                        start = stop;
                    }
                    if end > inode.len {
                        inode.len = end;
                        inode.pending.push(PendingUnit {
                            at,
                            unit: Unit::Grow { len: end },
                        });
                    }
                }
            }
            Op::Fsync { name } => {
                if let Some(&ino) = self.live_dir.get(name) {
                    let inode = &mut self.inodes[ino];
                    let pending = std::mem::take(&mut inode.pending);
                    for p in &pending {
                        apply_unit(&mut inode.durable, &p.unit);
                    }
                }
            }
            Op::Rename { from, to } => {
                if let Some(ino) = self.live_dir.remove(from) {
                    self.live_dir.insert(to.clone(), ino);
                    self.pending_dir.push((
                        at,
                        DirOp::Rename {
                            from: from.clone(),
                            to: to.clone(),
                            ino,
                        },
                    ));
                }
            }
            Op::Unlink { name } => {
                if self.live_dir.remove(name).is_some() {
                    self.pending_dir
                        .push((at, DirOp::Unlink { name: name.clone() }));
                }
            }
            Op::DirFsync => {
                for (_, op) in std::mem::take(&mut self.pending_dir) {
                    apply_dir(&mut self.durable_dir, &op);
                }
            }
            Op::Lock { .. } | Op::Acknowledged { .. } => {}
        }
    }
}

fn apply_unit(content: &mut Vec<u8>, unit: &Unit) {
    match unit {
        Unit::Block { offset, bytes } => {
            let start = usize::try_from(*offset).unwrap_or(usize::MAX);
            let end = start + bytes.len();
            if content.len() < end {
                content.resize(end, 0);
            }
            content[start..end].copy_from_slice(bytes);
        }
        Unit::Truncate { len } => content.truncate(usize::try_from(*len).unwrap_or(usize::MAX)),
        Unit::Grow { len } => {
            let len = usize::try_from(*len).unwrap_or(usize::MAX);
            if content.len() < len {
                content.resize(len, 0);
            }
        }
    }
}

fn apply_dir(dir: &mut BTreeMap<String, Ino>, op: &DirOp) {
    match op {
        DirOp::Link { name, ino } => {
            dir.insert(name.clone(), *ino);
        }
        DirOp::Rename { from, to, ino } => {
            dir.remove(from);
            dir.insert(to.clone(), *ino);
        }
        DirOp::Unlink { name } => {
            dir.remove(name);
        }
    }
}

/// A small fixed-seed generator for sampling (xorshift64*): reproducible runs, no
/// dependency for twenty lines.
struct Sampler(u64);

impl Sampler {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bits(&mut self, n: usize) -> Vec<bool> {
        (0..n).map(|_| self.next() & 1 == 1).collect()
    }
}

/// Every choice of `n` independent yes/no bits, or a sample of `cap` of them.
fn choices(n: usize, cap: usize, seed: u64) -> (Vec<Vec<bool>>, bool) {
    if n < 63 && (1u64 << n) <= cap as u64 {
        let all = (0..1u64 << n)
            .map(|mask| (0..n).map(|i| mask >> i & 1 == 1).collect())
            .collect();
        return (all, false);
    }
    let mut sampler = Sampler(seed | 1);
    let mut picked = vec![vec![false; n], vec![true; n]];
    while picked.len() < cap {
        picked.push(sampler.bits(n));
    }
    (picked, true)
}

/// The states a crash right after `ops[..point]` may leave, under `model`, starting from
/// `initial` (durable when the log began). At most `cap` data combinations per directory
/// outcome; more are sampled.
pub fn crash_states(
    initial: &BTreeMap<String, Vec<u8>>,
    ops: &[Op],
    point: usize,
    model: Model,
    cap: usize,
) -> PointStates {
    let mut replay = Replay::new(initial);
    for (at, op) in ops[..point].iter().enumerate() {
        replay.apply(at, op);
    }
    let m = replay.pending_dir.len();
    let dir_choices: Vec<Vec<bool>> = match model {
        Model::Posix => choices(m, cap, point as u64).0,
        Model::Ext4Ordered => (0..=m).map(|p| (0..m).map(|i| i < p).collect()).collect(),
    };
    let mut sampled = m >= 63 || (model == Model::Posix && (1u64 << m) > cap as u64);
    let mut states = Vec::new();
    for dir_pick in &dir_choices {
        let mut dir = replay.durable_dir.clone();
        let mut words = Vec::new();
        for ((at, op), &keep) in replay.pending_dir.iter().zip(dir_pick) {
            if keep {
                apply_dir(&mut dir, op);
                words.push(format!("#{at}"));
            }
        }
        // ext4 data=ordered: data written before a committed rename of the file is on disk.
        let forced = |ino: Ino, at: usize| {
            model == Model::Ext4Ordered
                && replay
                    .pending_dir
                    .iter()
                    .zip(dir_pick)
                    .any(|((r_at, op), &keep)| {
                        keep && matches!(op, DirOp::Rename { ino: i, .. } if *i == ino)
                            && at < *r_at
                    })
        };
        // The free data units of the files the directory now names.
        let mut inos: Vec<Ino> = dir.values().copied().collect();
        inos.sort_unstable();
        inos.dedup();
        let free: Vec<(Ino, usize)> = inos
            .iter()
            .flat_map(|&ino| {
                replay.inodes[ino]
                    .pending
                    .iter()
                    .enumerate()
                    .filter(move |(_, p)| !forced(ino, p.at))
                    .map(move |(i, _)| (ino, i))
                    .collect::<Vec<_>>()
            })
            .collect();
        let (data_choices, data_sampled) = choices(free.len(), cap, point as u64 + 7);
        sampled |= data_sampled;
        for data_pick in &data_choices {
            let mut files = BTreeMap::new();
            let mut kept_units = Vec::new();
            for (name, &ino) in &dir {
                let inode = &replay.inodes[ino];
                let mut content = inode.durable.clone();
                for (i, p) in inode.pending.iter().enumerate() {
                    let keep = forced(ino, p.at)
                        || free
                            .iter()
                            .zip(data_pick)
                            .any(|(&(f_ino, f_i), &k)| k && f_ino == ino && f_i == i);
                    if keep {
                        apply_unit(&mut content, &p.unit);
                        kept_units.push(describe_unit(p));
                    }
                }
                files.insert(name.clone(), content);
            }
            let mut persisted = String::new();
            let _ = write!(
                persisted,
                "directory ops persisted: [{}] of {} pending; data persisted: [{}]",
                words.join(", "),
                m,
                kept_units.join(", ")
            );
            states.push(CrashState { files, persisted });
        }
    }
    PointStates { states, sampled }
}

fn describe_unit(p: &PendingUnit) -> String {
    match &p.unit {
        Unit::Block { offset, bytes } => {
            format!("#{} block @{offset}+{}", p.at, bytes.len())
        }
        Unit::Truncate { len } => format!("#{} truncate to {len}", p.at),
        Unit::Grow { len } => format!("#{} size {len}", p.at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> String {
        s.to_owned()
    }

    /// temp file, write two blocks, fsync, rename over `f`, directory fsync.
    fn replace_log() -> Vec<Op> {
        vec![
            Op::Create { name: name("t") },
            Op::Write {
                name: name("t"),
                offset: 0,
                bytes: vec![2; 5000],
            },
            Op::Fsync { name: name("t") },
            Op::Rename {
                from: name("t"),
                to: name("f"),
            },
            Op::DirFsync,
        ]
    }

    fn initial() -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(name("f"), vec![1; 10])])
    }

    #[test]
    fn unsynced_data_may_be_lost_in_part() {
        let states = crash_states(&initial(), &replace_log(), 2, Model::Posix, 1024).states;
        // The directory entry of t may or may not exist; its two blocks and size are free.
        let contents: Vec<_> = states
            .iter()
            .filter_map(|s| s.files.get("t").map(Vec::len))
            .collect();
        assert!(contents.contains(&0));
        assert!(contents.contains(&4096));
        assert!(contents.contains(&5000));
        assert!(states.iter().all(|s| s.files["f"] == vec![1; 10]));
    }

    #[test]
    fn a_rename_is_durable_only_after_the_directory_fsync() {
        let log = replace_log();
        let before = crash_states(&initial(), &log, 4, Model::Posix, 1024).states;
        assert!(before.iter().any(|s| s.files["f"] == vec![1; 10]));
        assert!(before.iter().any(|s| s.files["f"] == vec![2; 5000]));
        let after = crash_states(&initial(), &log, 5, Model::Posix, 1024).states;
        assert!(after.iter().all(|s| s.files["f"] == vec![2; 5000]));
        assert!(after.iter().all(|s| !s.files.contains_key("t")));
    }

    #[test]
    fn ext4_ordered_flushes_data_before_a_rename_commits() {
        let mut log = replace_log();
        log.remove(2); // no fsync of t
        let posix = crash_states(&initial(), &log, 3, Model::Posix, 1024).states;
        assert!(posix.iter().any(|s| s.files["f"].len() < 5000));
        let ext4 = crash_states(&initial(), &log, 3, Model::Ext4Ordered, 1024).states;
        assert!(
            ext4.iter()
                .all(|s| s.files["f"] == vec![1; 10] || s.files["f"] == vec![2; 5000])
        );
    }

    #[test]
    fn too_many_combinations_are_sampled_to_the_cap() {
        let log = vec![Op::Write {
            name: name("f"),
            offset: 0,
            bytes: vec![3; 40 * 4096],
        }];
        let point = crash_states(&initial(), &log, 1, Model::Posix, 64);
        assert!(point.sampled);
        assert_eq!(point.states.len(), 64);
    }
}
