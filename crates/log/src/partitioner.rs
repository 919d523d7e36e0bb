//! Kafka's default partitioner: murmur2 of the key bytes, so a key lands on the same partition
//! number in the embedded log, in rdkafka (`partitioner=murmur2_random`) and in Java clients.
//! Records without a key are spread round-robin.

use std::sync::atomic::{AtomicU32, Ordering};

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed 0x9747b28c.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition Kafka's default partitioner picks for `key` among `partitions`.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// Chooses partitions: by key hash, else round-robin.
#[derive(Debug, Default)]
pub struct Partitioner {
    next: AtomicU32,
}

impl Partitioner {
    pub fn partition(&self, key: Option<&[u8]>, partitions: u32) -> u32 {
        match key {
            Some(k) => partition_for_key(k, partitions),
            None => self.next.fetch_add(1, Ordering::Relaxed) % partitions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values computed by Kafka's Java `Utils.murmur2` (the same vectors its own tests use).
    #[test]
    fn matches_kafka_java_murmur2() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
        ];
        for (input, want) in cases {
            assert_eq!(murmur2(input) as i32, want, "murmur2({:?})", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn keys_are_stable_and_null_keys_rotate() {
        let p = Partitioner::default();
        let a = p.partition(Some(b"user-1"), 3);
        assert_eq!(a, p.partition(Some(b"user-1"), 3));
        let spread: Vec<u32> = (0..6).map(|_| p.partition(None, 3)).collect();
        assert_eq!(spread, [0, 1, 2, 0, 1, 2]);
    }
}
