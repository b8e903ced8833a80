//! What a consumer checks of a synthetic event (benchmarks, self-tests).

use super::Synthetic;

impl<B: AsRef<[u8]>> Synthetic<B> {
    /// The payload carries the pattern and `seq` the source wrote (and is
    /// empty when its data was lost).
    pub fn payload_intact(&self) -> bool {
        let payload = self.payload.as_ref();
        if self.data_lost {
            return payload.is_empty();
        }
        let pattern = |i: usize| (i as u8).wrapping_mul(131).wrapping_add(7);
        match payload.split_first_chunk::<8>() {
            Some((head, rest)) => {
                u64::from_ne_bytes(*head) == self.seq && rest.iter().enumerate().all(|(i, &b)| b == pattern(i + 8))
            }
            None => payload.iter().enumerate().all(|(i, &b)| b == pattern(i)),
        }
    }
}
