//! The instance's one source of randomness: a seeded ChaCha stream, so the
//! same seed and inputs give the same outputs.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Seeded randomness for probe order, peer selection, staggering and nonces.
#[derive(Debug, Clone)]
pub(crate) struct Rng(ChaCha8Rng);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A uniform value in `0..n` (`n > 0`; 0 when `n == 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift; the bias for n ≪ 2^64 is negligible.
        ((self.0.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// A uniform duration in `0..max` nanoseconds.
    pub(crate) fn below_nanos(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        ((self.0.next_u64() as u128 * max as u128) >> 64) as u64
    }

    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    pub(crate) fn nonce(&mut self) -> [u8; 12] {
        let mut n = [0; 12];
        self.0.fill_bytes(&mut n);
        n
    }
}
