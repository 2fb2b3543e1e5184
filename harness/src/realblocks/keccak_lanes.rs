//! Keccak-256 of several short inputs at once: with AVX-512, eight
//! Keccak-f states side by side, one per 64-bit lane of 25 `zmm` registers.
//!
//! A receipt's logs bloom hashes each log's address and topics, and most
//! of what it hashes for the first time (the senders and recipients in a
//! Transfer's topics) comes several to a receipt. Eight lanes take about
//! 1.4-1.5 times one scalar hash (keccak-asm's): 40-45 ns a hash in
//! batches of eight, 73-75 in fours, 137-142 in pairs, against 233-235 ns
//! one by one on a Zen 5 (benches/README.md, "Bloom hashes eight at a
//! time").

use alloy_primitives::{keccak256, B256};

/// Inputs hashed together at most: one per 64-bit lane of a `zmm`
/// register.
pub(crate) const LANES: usize = 8;

/// Longest input hashed in one block: Keccak-256's rate (136 bytes) less
/// the padding's last byte. Log addresses (20 bytes) and topics (32) fit.
pub(crate) const MAX_LEN: usize = 135;

/// Keccak-256 of each of `inputs` (each at most [`MAX_LEN`] bytes) into
/// the same place of `out`.
pub(crate) fn keccak256_each(inputs: &[&[u8]], out: &mut [B256]) {
    assert_eq!(inputs.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    if inputs.len() > 1 && std::arch::is_x86_feature_detected!("avx512f") {
        for (inputs, out) in inputs.chunks(LANES).zip(out.chunks_mut(LANES)) {
            // SAFETY: the CPU has AVX-512F, checked above.
            unsafe { x86::keccak256_x8(inputs, out) };
        }
        return;
    }
    for (input, out) in inputs.iter().zip(out) {
        *out = keccak256(input);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{LANES, MAX_LEN};
    use alloy_primitives::B256;
    use std::arch::x86_64::*;

    /// Keccak-f[1600]'s round constants.
    const RC: [u64; 24] = [
        0x0000000000000001,
        0x0000000000008082,
        0x800000000000808a,
        0x8000000080008000,
        0x000000000000808b,
        0x0000000080000001,
        0x8000000080008081,
        0x8000000000008009,
        0x000000000000008a,
        0x0000000000000088,
        0x0000000080008009,
        0x000000008000000a,
        0x000000008000808b,
        0x800000000000008b,
        0x8000000000008089,
        0x8000000000008003,
        0x8000000000008002,
        0x8000000000000080,
        0x000000000000800a,
        0x800000008000000a,
        0x8000000080008081,
        0x8000000000008080,
        0x0000000080000001,
        0x8000000080008008,
    ];

    /// Hashes up to [`LANES`] inputs, one per lane; unused lanes hash nothing
    /// anyone reads.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn keccak256_x8(inputs: &[&[u8]], out: &mut [B256]) {
        debug_assert!(inputs.len() <= LANES && inputs.len() == out.len());
        // The padded block of each input, word by word: `words[w][j]` is
        // word `w` of input `j`, so that each word is one register.
        let mut words = [[0u64; LANES]; 17];
        for (j, input) in inputs.iter().enumerate() {
            assert!(input.len() <= MAX_LEN, "one block only");
            let mut block = [0u8; 136];
            block[..input.len()].copy_from_slice(input);
            block[input.len()] ^= 0x01;
            block[135] ^= 0x80;
            for (w, bytes) in block.chunks_exact(8).enumerate() {
                words[w][j] = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
            }
        }
        let mut a = [_mm512_setzero_si512(); 25];
        for (lane, w) in a.iter_mut().zip(&words) {
            *lane = _mm512_loadu_si512(w.as_ptr().cast());
        }
        for rc in RC {
            round(&mut a, rc);
        }
        let mut digest = [[0u64; LANES]; 4];
        for (w, lane) in digest.iter_mut().zip(&a) {
            _mm512_storeu_si512(w.as_mut_ptr().cast(), *lane);
        }
        for (j, out) in out.iter_mut().enumerate() {
            for (w, word) in digest.iter().enumerate() {
                out[8 * w..8 * w + 8].copy_from_slice(&word[j].to_le_bytes());
            }
        }
    }

    /// One round on eight states; lane `x + 5y` of the state is `a[x + 5y]`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn round(a: &mut [__m512i; 25], rc: u64) {
        // θ: each column's parity (two three-way XORs), then each lane
        // takes the parities of its neighbouring columns.
        let mut c = [_mm512_setzero_si512(); 5];
        for (x, c) in c.iter_mut().enumerate() {
            let t = _mm512_ternarylogic_epi64::<0x96>(a[x], a[x + 5], a[x + 10]);
            *c = _mm512_ternarylogic_epi64::<0x96>(t, a[x + 15], a[x + 20]);
        }
        for x in 0..5 {
            let d = _mm512_xor_si512(c[(x + 4) % 5], _mm512_rol_epi64::<1>(c[(x + 1) % 5]));
            for y in 0..5 {
                a[x + 5 * y] = _mm512_xor_si512(a[x + 5 * y], d);
            }
        }
        // ρ and π: lane (x, y) rotated into lane (y, 2x + 3y).
        let mut b = [_mm512_setzero_si512(); 25];
        macro_rules! rho_pi {
            ($(($from:expr, $to:expr, $by:expr)),* $(,)?) => {
                $( b[$to] = _mm512_rol_epi64::<$by>(a[$from]); )*
            };
        }
        rho_pi!(
            (0, 0, 0),
            (5, 16, 36),
            (10, 7, 3),
            (15, 23, 41),
            (20, 14, 18),
            (1, 10, 1),
            (6, 1, 44),
            (11, 17, 10),
            (16, 8, 45),
            (21, 24, 2),
            (2, 20, 62),
            (7, 11, 6),
            (12, 2, 43),
            (17, 18, 15),
            (22, 9, 61),
            (3, 5, 28),
            (8, 21, 55),
            (13, 12, 25),
            (18, 3, 21),
            (23, 19, 56),
            (4, 15, 27),
            (9, 6, 20),
            (14, 22, 39),
            (19, 13, 8),
            (24, 4, 14),
        );
        // χ: b ^ (!next & next-but-one), one ternary operation a lane.
        for y in 0..5 {
            for x in 0..5 {
                a[x + 5 * y] = _mm512_ternarylogic_epi64::<0xd2>(
                    b[x + 5 * y],
                    b[(x + 1) % 5 + 5 * y],
                    b[(x + 2) % 5 + 5 * y],
                );
            }
        }
        // ι
        a[0] = _mm512_xor_si512(a[0], _mm512_set1_epi64(rc as i64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(data: &[u8]) -> Vec<&[u8]> {
        (0..=MAX_LEN).map(|n| &data[n * 7..n * 7 + n]).collect()
    }

    fn data() -> Vec<u8> {
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    /// Every length a block holds, in batches of one to nine, against
    /// alloy's Keccak-256.
    #[test]
    fn each_hash_is_alloys() {
        let data = data();
        for batch in 1..=9 {
            for chunk in inputs(&data).chunks(batch) {
                let mut out = vec![B256::ZERO; chunk.len()];
                keccak256_each(chunk, &mut out);
                for (input, got) in chunk.iter().zip(&out) {
                    assert_eq!(
                        *got,
                        keccak256(input),
                        "{} bytes, batch {batch}",
                        input.len()
                    );
                }
            }
        }
    }

    /// The eight-lane permutation itself, every lane count, where the CPU
    /// has it (elsewhere `keccak256_each` takes the scalar path, which the
    /// test above checks).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn eight_lanes_are_alloys() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("no AVX-512F: the eight-lane path cannot run here");
            return;
        }
        let data = data();
        for lanes in 1..=8 {
            for chunk in inputs(&data).chunks(lanes) {
                let mut out = vec![B256::ZERO; chunk.len()];
                // SAFETY: the CPU has AVX-512F.
                unsafe { x86::keccak256_x8(chunk, &mut out) };
                for (input, got) in chunk.iter().zip(&out) {
                    assert_eq!(
                        *got,
                        keccak256(input),
                        "{} bytes, {lanes} lanes",
                        input.len()
                    );
                }
            }
        }
    }
}
