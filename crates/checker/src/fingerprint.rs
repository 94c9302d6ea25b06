//! Stable 64-bit fingerprints of canonical states.
//!
//! The hasher is a fixed-seed, multiply-fold hasher (wyhash-style `mum`
//! mixing of every 64-bit word), so fingerprints are identical across runs
//! and machines (for a given `Hash` implementation of the state type).
//!
//! **Collisions.** Safety-only runs store fingerprints only (like TLC and
//! Stateright), so two distinct states with the same 64-bit fingerprint would
//! be merged and the second one never explored. Assuming the fingerprint
//! behaves like a random function, the probability of any collision among `n`
//! distinct states is at most `n^2 / 2^65` (about 3e-6 for ten million states);
//! every [`crate::CheckResult`] reports this bound as
//! `collision_probability`. Fingerprint `0` is reserved (mapped to `1`).

use std::hash::{Hash, Hasher};

const SEED: u64 = 0x243f_6a88_85a3_08d3;
const P1: u64 = 0xa076_1d64_78bd_642f;
const P2: u64 = 0xe703_7ed1_a0b4_28db;

#[inline(always)]
fn mum(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

/// The fingerprint hasher (fixed seed, not DoS-resistant, fast).
#[derive(Clone, Debug)]
pub struct FpHasher {
    h: u64,
}

impl Default for FpHasher {
    fn default() -> Self {
        FpHasher { h: SEED }
    }
}

impl FpHasher {
    #[inline(always)]
    fn word(&mut self, w: u64) {
        self.h = mum(self.h ^ w ^ P1, P2 ^ self.h.rotate_left(23));
    }
}

impl Hasher for FpHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.word(i as u64)
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.word(i as u64)
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.word(i as u64)
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.word(i)
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.word(i as u64);
        self.word((i >> 64) as u64)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.word(i as u64)
    }
    #[inline]
    fn write_i8(&mut self, i: i8) {
        self.word(i as u8 as u64)
    }
    #[inline]
    fn write_i16(&mut self, i: i16) {
        self.word(i as u16 as u64)
    }
    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.word(i as u32 as u64)
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.word(i as u64)
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.word(i as u64)
    }
    #[inline]
    fn finish(&self) -> u64 {
        // final avalanche (splitmix64 finaliser)
        let mut z = self.h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Fingerprint of a (canonical) value; never `0`.
#[inline]
pub fn fingerprint<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = FpHasher::default();
    value.hash(&mut h);
    match h.finish() {
        0 => 1,
        f => f,
    }
}

/// Upper bound on the probability that `n` distinct states contain a
/// fingerprint collision: `n^2 / 2^65`.
pub fn collision_probability(n: u64) -> f64 {
    let n = n as f64;
    (n * n / 2f64.powi(65)).min(1.0)
}
