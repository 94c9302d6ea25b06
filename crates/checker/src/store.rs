//! Storage of the exploration: the sharded fingerprint table (the seen
//! set), the reachable graph kept for liveness checking, and readings of
//! the process's memory use.
//!
//! * **Seen set.** A sharded hash table (`SHARDS` mutex-protected
//!   open-addressing tables of `(fingerprint, value)` slots, prefetchable
//!   without the lock) from 64-bit fingerprint to a value: in safety-only runs
//!   the value is the parent's fingerprint (`0` for initial states), like
//!   Stateright and TLC -- 16 bytes per slot and no states are kept except the
//!   BFS frontier; in liveness runs the value is a dense state id.
//! * **Liveness graph.** Per state: its successor edges (target id, interned
//!   fairness key, action index; 12 bytes each), a BFS parent id (4 bytes)
//!   and one bit per liveness predicate (8 bytes).

use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

const SHARDS: usize = 128;
/// Unfair edge key.
pub(crate) const UNFAIR: u32 = u32::MAX;
/// Edge key of a [`crate::Fairness::Finite`] step: unfair, and never on a cycle.
pub(crate) const FINITE: u32 = u32::MAX - 1;
/// "No parent" marker.
pub(crate) const NONE: u32 = u32::MAX;

/// One shard: open addressing with linear probing over `(fingerprint, value)` slots (a
/// fingerprint is never `0`, which marks an empty slot), at most 3/4 full.
#[derive(Default)]
struct Slots {
    slots: Vec<(u64, u64)>,
    len: usize,
}

impl Slots {
    const MIN: usize = 64;

    #[inline]
    fn find(&self, fp: u64) -> Result<u64, usize> {
        let mask = self.slots.len() - 1;
        let mut i = fp as usize & mask;
        loop {
            let (k, v) = self.slots[i];
            if k == fp {
                return Ok(v);
            }
            if k == 0 {
                return Err(i);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(Self::MIN);
        let old = std::mem::replace(&mut self.slots, vec![(0, 0); cap]);
        for (k, v) in old.into_iter().filter(|(k, _)| *k != 0) {
            let Err(i) = self.find(k) else {
                unreachable!("fingerprints are unique in a table")
            };
            self.slots[i] = (k, v);
        }
    }
}

/// A shard, alone on its cache lines (the workers lock different shards without sharing a
/// line).
#[derive(Default)]
#[repr(align(128))]
struct Shard {
    slots: Mutex<Slots>,
}

/// Where a shard's slots are, readable without its lock for prefetching; written only when
/// the shard grows, and kept apart from the locks so that reading it does not contend with
/// them.
#[derive(Default)]
struct Where {
    base: AtomicPtr<(u64, u64)>,
    mask: AtomicUsize,
}

/// Sharded fingerprint table: fingerprint -> value (the parent's fingerprint in safety-only
/// runs, a dense state id in liveness runs). Each shard is a mutex-protected open-addressing
/// table whose slot address can be computed without the lock, so a worker prefetches the
/// slots of a state's successors before inserting them one by one: most inserts of a large
/// search are cache misses, and prefetching overlaps them.
pub(crate) struct Table {
    shards: Vec<Shard>,
    places: Vec<Where>,
}

impl Table {
    pub(crate) fn new() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            places: (0..SHARDS).map(|_| Where::default()).collect(),
        }
    }
    #[inline]
    fn shard(fp: u64) -> usize {
        // bits independent of those the slot index uses (the low ones)
        ((fp >> 40) as usize) % SHARDS
    }
    /// Hints the CPU to fetch the slot where `fp` would be found. Reads the shard's slot
    /// address without its lock: a stale address only makes a useless prefetch (a prefetch
    /// never faults and the address is computed with wrapping arithmetic, never
    /// dereferenced).
    #[inline]
    pub(crate) fn prefetch(&self, fp: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            let w = &self.places[Self::shard(fp)];
            let base = w.base.load(Ordering::Relaxed);
            if !base.is_null() {
                let mask = w.mask.load(Ordering::Relaxed);
                let p = base.wrapping_add(fp as usize & mask);
                // SAFETY: `_mm_prefetch` does not access memory architecturally and never
                // faults, whatever the address.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        p as *const i8,
                    )
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = fp;
    }
    /// Insert `fp` if absent, with value `val()`. Returns (inserted, value).
    #[inline]
    pub(crate) fn insert_with(&self, fp: u64, val: impl FnOnce() -> u64) -> (bool, u64) {
        debug_assert_ne!(fp, 0, "fingerprint 0 is reserved");
        let i = Self::shard(fp);
        let mut s = self.shards[i].slots.lock().unwrap();
        if (s.len + 1) * 4 > s.slots.len() * 3 {
            s.grow();
            self.places[i]
                .base
                .store(s.slots.as_mut_ptr(), Ordering::Relaxed);
            self.places[i]
                .mask
                .store(s.slots.len() - 1, Ordering::Relaxed);
        }
        match s.find(fp) {
            Ok(v) => (false, v),
            Err(i) => {
                let v = val();
                s.slots[i] = (fp, v);
                s.len += 1;
                (true, v)
            }
        }
    }
    pub(crate) fn get(&self, fp: u64) -> Option<u64> {
        let s = self.shards[Self::shard(fp)].slots.lock().unwrap();
        if s.slots.is_empty() {
            return None;
        }
        s.find(fp).ok()
    }
    /// Bytes allocated by the table (16-byte slots).
    pub(crate) fn bytes(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.slots.lock().unwrap().slots.capacity() as u64 * 16)
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

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn the_table_keeps_every_fingerprint_with_its_first_value_across_growth() {
        let t = Table::new();
        // spread over the shards (high bits) and colliding in the low bits
        let fps: Vec<u64> = (1..=50_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
            .chain((1..=2_000u64).map(|i| i << 40))
            .collect();
        for (i, &fp) in fps.iter().enumerate() {
            t.prefetch(fp);
            assert_eq!(t.insert_with(fp, || i as u64), (true, i as u64));
        }
        for (i, &fp) in fps.iter().enumerate() {
            assert_eq!(t.insert_with(fp, || u64::MAX), (false, i as u64));
            assert_eq!(t.get(fp), Some(i as u64));
        }
        assert_eq!(t.get(2), None);
        assert!(t.bytes() >= fps.len() as u64 * 16 * 4 / 3);
    }
}
