//! Storage of the exploration: the sharded fingerprint table (the seen
//! set), the reachable graph kept for liveness checking, and readings of
//! the process's memory use.
//!
//! * **Seen set.** A sharded hash table (`SHARDS` mutex-protected
//!   `HashMap<u64, u64>` with an identity hasher) from 64-bit fingerprint to a
//!   value: in safety-only runs the value is the parent's fingerprint (`0` for
//!   initial states), like Stateright and TLC -- 16 bytes per slot and no
//!   states are kept except the BFS frontier; in liveness runs the value is a
//!   dense state id.
//! * **Liveness graph.** Per state: its successor edges (target id, interned
//!   fairness key, action index; 12 bytes each), a BFS parent id (4 bytes)
//!   and one bit per liveness predicate (8 bytes).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

const SHARDS: usize = 128;
/// Unfair edge key.
pub(crate) const UNFAIR: u32 = u32::MAX;
/// "No parent" marker.
pub(crate) const NONE: u32 = u32::MAX;

#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);
impl Hasher for IdHasher {
    fn write(&mut self, _: &[u8]) {
        unreachable!()
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
type Shard = HashMap<u64, u64, BuildHasherDefault<IdHasher>>;

/// Sharded fingerprint table.
pub(crate) struct Table {
    shards: Vec<Mutex<Shard>>,
}

impl Table {
    pub(crate) fn new() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }
    #[inline]
    fn shard(fp: u64) -> usize {
        // bits independent of those hashbrown uses (low bits: bucket, top 7: tag)
        ((fp >> 32) as usize) % SHARDS
    }
    /// Insert `fp` if absent, with value `val()`. Returns (inserted, value).
    #[inline]
    pub(crate) fn insert_with(&self, fp: u64, val: impl FnOnce() -> u64) -> (bool, u64) {
        let mut s = self.shards[Self::shard(fp)].lock().unwrap();
        match s.entry(fp) {
            std::collections::hash_map::Entry::Occupied(e) => (false, *e.get()),
            std::collections::hash_map::Entry::Vacant(e) => {
                let v = val();
                e.insert(v);
                (true, v)
            }
        }
    }
    pub(crate) fn get(&self, fp: u64) -> Option<u64> {
        self.shards[Self::shard(fp)]
            .lock()
            .unwrap()
            .get(&fp)
            .copied()
    }
    /// Bytes allocated by the table (hashbrown: 16-byte slot + 1 control byte).
    pub(crate) fn bytes(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap().capacity() as u64 * 17)
            .sum()
    }
}

/// One successor edge of the liveness graph.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edge {
    pub to: u32,
    pub key: u32,
    pub action: u32,
}

/// The reachable graph kept for liveness checking.
#[derive(Default)]
pub(crate) struct Graph {
    /// `offsets[i]..offsets[i+1]` are the edges of state `i`.
    pub offsets: Vec<u64>,
    pub edges: Vec<Edge>,
    pub parent: Vec<u32>,
    /// Bit `j` = liveness predicate `j` holds.
    pub preds: Vec<u64>,
    /// Ids of initial states.
    pub roots: Vec<u32>,
    /// Per interned key: is it strong?
    pub key_strong: Vec<bool>,
    /// Per interned key: human-readable key (for messages).
    pub key_names: Vec<String>,
}

impl Graph {
    pub fn n(&self) -> usize {
        self.parent.len()
    }
    #[inline]
    pub fn out(&self, v: u32) -> &[Edge] {
        &self.edges[self.offsets[v as usize] as usize..self.offsets[v as usize + 1] as usize]
    }
    pub(crate) fn bytes(&self) -> u64 {
        (self.offsets.capacity() * 8
            + self.edges.capacity() * 12
            + self.parent.capacity() * 4
            + self.preds.capacity() * 8) as u64
    }
}

/// Current resident set size in bytes (Linux), if readable.
pub(crate) fn current_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Peak resident set size in bytes (Linux `VmHWM`), if readable.
pub(crate) fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
