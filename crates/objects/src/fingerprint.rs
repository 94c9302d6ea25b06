//! A stable (run- and platform-independent) 64-bit hash of JSON values.

use serde_json::Value;
use std::hash::Hasher;

/// FNV-1a 64 with a final avalanche step: deterministic across runs, processes and platforms
/// (unlike `std`'s `RandomState`), and fast for the small byte strings of Kubernetes objects.
#[derive(Clone, Copy, Debug)]
pub struct StableHasher(u64);

impl StableHasher {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A hasher in its fixed initial state.
    pub fn new() -> Self {
        StableHasher(Self::OFFSET)
    }
}

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        // splitmix64 finaliser, so that nearby inputs spread over all 64 bits.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
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
            let s = n.to_string();
            h.write_usize(s.len());
            h.write(s.as_bytes());
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
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            for k in keys {
                h.write_usize(k.len());
                h.write(k.as_bytes());
                stable_hash_json(&map[k], h);
            }
        }
    }
}
