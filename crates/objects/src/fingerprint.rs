//! A stable (run- and platform-independent) 64-bit hash of JSON values.

use serde_json::{Number, Value};
use std::hash::Hasher;

const SEED: u64 = 0x243f_6a88_85a3_08d3;
const P1: u64 = 0xa076_1d64_78bd_642f;
const P2: u64 = 0xe703_7ed1_a0b4_28db;
// the second lane's constants (see [`StableHasher::finish128`])
const SEED_B: u64 = 0x1319_8a2e_0370_7344;
const P3: u64 = 0x8ebc_6af0_9c88_c6e3;
const P4: u64 = 0x5899_65cc_7537_4cc3;

#[inline(always)]
fn mum(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

/// A fixed-seed multiply-fold hasher (wyhash-style mixing of every 64-bit little-endian word,
/// with a splitmix64 finaliser): deterministic across runs, processes and platforms (unlike
/// `std`'s `RandomState`), and fast on the short strings of Kubernetes objects because it
/// consumes eight bytes per multiplication.
#[derive(Clone, Copy, Debug)]
pub struct StableHasher(u64, u64);

impl StableHasher {
    /// A hasher in its fixed initial state.
    pub fn new() -> Self {
        StableHasher(SEED, SEED_B)
    }

    #[inline(always)]
    fn word(&mut self, w: u64) {
        self.0 = mum(self.0 ^ w ^ P1, P2 ^ self.0.rotate_left(23));
        self.1 = mum(self.1 ^ w ^ P3, P4 ^ self.1.rotate_left(41));
    }

    /// A 128-bit hash: [`Hasher::finish`] and a second lane mixed with other constants over
    /// the same words. Two different inputs agree on both with probability about 2^-128, so
    /// content equality can be decided by it (objects, object stores).
    pub fn finish128(&self) -> (u64, u64) {
        (self.finish(), splitmix_final(self.1))
    }
}

fn splitmix_final(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        splitmix_final(self.0)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
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
        self.word(u64::from(i))
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.word(i)
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.word(i as u64)
    }
}

/// An [`std::io::Write`] that feeds the bytes written into a [`StableHasher`] eight at a time
/// (serialisers write many short pieces; buffering makes the hash depend on the byte stream
/// only, and costs one mixing step per eight bytes). Call [`HashWriter::finish`] at the end.
pub struct HashWriter<'a> {
    h: &'a mut StableHasher,
    buf: u64,
    n: u32,
}

impl<'a> HashWriter<'a> {
    /// A writer into `h`.
    pub fn new(h: &'a mut StableHasher) -> Self {
        HashWriter { h, buf: 0, n: 0 }
    }

    /// Feeds the buffered remainder (tagged with its length).
    pub fn finish(self) {
        if self.n > 0 {
            self.h.word(self.buf ^ (u64::from(self.n) << 56));
        }
    }
}

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut rest = bytes;
        if self.n == 0 {
            let mut chunks = rest.chunks_exact(8);
            for c in &mut chunks {
                self.h
                    .word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
            }
            rest = chunks.remainder();
        }
        for &b in rest {
            self.buf |= u64::from(b) << (8 * self.n);
            self.n += 1;
            if self.n == 8 {
                self.h.word(self.buf);
                self.buf = 0;
                self.n = 0;
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hash_number(n: &Number, h: &mut StableHasher) {
    // serde_json's `Number` equality compares the representation (u64, i64 or f64), so
    // hashing the representation agrees with `==`.
    if let Some(u) = n.as_u64() {
        h.write_u8(0);
        h.write_u64(u);
    } else if let Some(i) = n.as_i64() {
        h.write_u8(1);
        h.write_u64(i as u64);
    } else {
        h.write_u8(2);
        h.write_u64(n.as_f64().map_or(0, f64::to_bits));
    }
}

/// Feeds a canonical encoding of `value` into `h`: every value is tagged with its type and
/// length, and object keys are visited in sorted order, so the result does not depend on the
/// insertion order of maps.
pub fn stable_hash_json(value: &Value, h: &mut StableHasher) {
    match value {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            h.write_u8(u8::from(*b));
        }
        Value::Number(n) => {
            h.write_u8(2);
            hash_number(n, h);
        }
        Value::String(s) => {
            h.write_u8(3);
            h.write_usize(s.len());
            h.write(s.as_bytes());
        }
        Value::Array(items) => {
            h.write_u8(4);
            h.write_usize(items.len());
            for item in items {
                stable_hash_json(item, h);
            }
        }
        Value::Object(map) => {
            h.write_u8(5);
            h.write_usize(map.len());
            let entry = |k: &String, v: &Value, h: &mut StableHasher| {
                h.write_usize(k.len());
                h.write(k.as_bytes());
                stable_hash_json(v, h);
            };
            // serde_json's map iterates in key order unless its `preserve_order` feature is
            // on; only then is a sorted copy of the keys needed
            if map.keys().is_sorted() {
                for (k, v) in map {
                    entry(k, v, h);
                }
            } else {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort_unstable();
                for k in keys {
                    entry(k, &map[k], h);
                }
            }
        }
    }
}
