//! Keccak-256 for the KECCAK256 builtin: on CPUs with AVX-512F and
//! AVX-512VL a sponge of this module's own, elsewhere revm's.
//!
//! Keccak-f[1600] is most of a token call's native time (about three fifths
//! of a WETH transfer's compiled frame, nearly all of hash_10k's): what is
//! left once the contract's own code is compiled. revm's Keccak (the
//! CRYPTOGAMS scalar assembler) keeps the 25 lanes in 16 general registers
//! and memory and spends some 130 scalar operations a round. Here each lane
//! lives in an `xmm` register of its own (AVX-512 has 32): a round's
//! five-way column parities take two `vpternlogq` a column and χ one a
//! lane, every rotation is one `vprolq`, and π only renames registers, so
//! a round is about 95 vector operations with no shuffle and (but for two
//! spills) no memory access. Only the
//! results matter (they are Keccak's, checked against revm's for every
//! length around the block size); the interpreter keeps revm's function.

use revm::primitives::B256;

/// Bytes absorbed per permutation (1600 − 2·256 bits).
#[cfg(target_arch = "x86_64")]
const RATE: usize = 136;

/// Keccak-256 of `input`, as `revm::primitives::keccak256` computes it.
#[inline]
pub(crate) fn keccak256(input: &[u8]) -> B256 {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: the CPU has the features the function is compiled for.
        return B256::new(unsafe { x86::keccak256(input) });
    }
    revm::primitives::keccak256(input)
}

/// Whether this CPU runs the vector sponge (a cached feature test).
#[inline]
pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::RATE;
    use std::arch::x86_64::*;

    /// The round constants of ι.
    const ROUND_CONSTANTS: [u64; 24] = [
        0x0000_0000_0000_0001,
        0x0000_0000_0000_8082,
        0x8000_0000_0000_808A,
        0x8000_0000_8000_8000,
        0x0000_0000_0000_808B,
        0x0000_0000_8000_0001,
        0x8000_0000_8000_8081,
        0x8000_0000_0000_8009,
        0x0000_0000_0000_008A,
        0x0000_0000_0000_0088,
        0x0000_0000_8000_8009,
        0x0000_0000_8000_000A,
        0x0000_0000_8000_808B,
        0x8000_0000_0000_008B,
        0x8000_0000_0000_8089,
        0x8000_0000_0000_8003,
        0x8000_0000_0000_8002,
        0x8000_0000_0000_0080,
        0x0000_0000_0000_800A,
        0x8000_0000_8000_000A,
        0x8000_0000_8000_8081,
        0x8000_0000_0000_8080,
        0x0000_0000_8000_0001,
        0x8000_0000_8000_8008,
    ];

    /// ρ's rotation of lane `x + 5y`.
    const RHO: [i64; 25] = [
        0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56,
        14,
    ];

    /// `a ^ b ^ c`.
    const XOR3: i32 = 0x96;
    /// `a ^ (!b & c)`: χ.
    const CHI: i32 = 0xD2;

    /// Keccak-f[1600] on the lanes `a[x + 5y]`, each in the low half of a
    /// register. The loops have constant bounds: LLVM unrolls a round
    /// completely and keeps all 25 lanes (and the 25 of π's output) in
    /// registers, the rotations by constants folding to `vprolq`.
    #[target_feature(enable = "avx512f,avx512vl")]
    #[inline]
    unsafe fn permute(a: &mut [__m128i; 25]) {
        for rc in ROUND_CONSTANTS {
            // θ: the column parities (two three-way XORs a column).
            let mut c = [_mm_setzero_si128(); 5];
            for (x, c) in c.iter_mut().enumerate() {
                let t = _mm_ternarylogic_epi64::<XOR3>(a[x], a[x + 5], a[x + 10]);
                *c = _mm_ternarylogic_epi64::<XOR3>(t, a[x + 15], a[x + 20]);
            }
            // ρ and π: lane (x, y) rotated into (y, 2x + 3y). The two
            // parities are combined once per column and applied with a
            // plain XOR: Zen 4 issues `vpxor` to all four vector pipes and
            // `vpternlogq` to two, and a throwaway loop hashed 64 bytes 6%
            // faster so than with a three-way XOR per lane.
            let mut b = [_mm_setzero_si128(); 25];
            for x in 0..5 {
                let next = _mm_rolv_epi64(c[(x + 1) % 5], _mm_set1_epi64x(1));
                let d = _mm_xor_si128(c[(x + 4) % 5], next);
                for y in 0..5 {
                    let lane = _mm_xor_si128(a[x + 5 * y], d);
                    b[y + 5 * ((2 * x + 3 * y) % 5)] =
                        _mm_rolv_epi64(lane, _mm_set1_epi64x(RHO[x + 5 * y]));
                }
            }
            // χ along each row.
            for y in 0..5 {
                for x in 0..5 {
                    a[x + 5 * y] = _mm_ternarylogic_epi64::<CHI>(
                        b[x + 5 * y],
                        b[(x + 1) % 5 + 5 * y],
                        b[(x + 2) % 5 + 5 * y],
                    );
                }
            }
            // ι.
            a[0] = _mm_xor_si128(a[0], _mm_cvtsi64_si128(rc as i64));
        }
    }

    /// XORs the `RATE` bytes of `block` into the first 17 lanes.
    #[target_feature(enable = "avx512f,avx512vl")]
    #[inline]
    unsafe fn absorb(a: &mut [__m128i; 25], block: &[u8; RATE]) {
        for (i, lane) in block.chunks_exact(8).enumerate() {
            let w = u64::from_le_bytes(lane.try_into().expect("8 bytes"));
            a[i] = _mm_xor_si128(a[i], _mm_cvtsi64_si128(w as i64));
        }
    }

    /// Keccak-256 (the original padding, `0x01 … 0x80`) of `input`.
    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) unsafe fn keccak256(input: &[u8]) -> [u8; 32] {
        let mut a = [_mm_setzero_si128(); 25];
        let mut blocks = input.chunks_exact(RATE);
        for block in &mut blocks {
            absorb(&mut a, block.try_into().expect("RATE bytes"));
            permute(&mut a);
        }
        let rest = blocks.remainder();
        let mut last = [0u8; RATE];
        last[..rest.len()].copy_from_slice(rest);
        last[rest.len()] ^= 0x01;
        last[RATE - 1] ^= 0x80;
        absorb(&mut a, &last);
        permute(&mut a);
        let mut out = [0u8; 32];
        for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&(_mm_cvtsi128_si64(a[i]) as u64).to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_revms_keccak_for_every_length_around_the_blocks() {
        // On a CPU without AVX-512 both sides are revm's: say so rather
        // than pass as if the sponge had been tested.
        if !avx512() {
            eprintln!("no AVX-512F/VL on this CPU: the vector sponge was not run");
        }
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let data: Vec<u8> = (0..3 * 136 + 9)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        for len in 0..data.len() {
            let input = &data[..len];
            assert_eq!(
                keccak256(input),
                revm::primitives::keccak256(input),
                "{len} bytes"
            );
        }
        // Many blocks: the state carried from permutation to permutation.
        let long: Vec<u8> = data.iter().cycle().take(10_000).copied().collect();
        assert_eq!(keccak256(&long), revm::primitives::keccak256(&long));
        // The empty input's hash, spelled out.
        assert_eq!(keccak256(&[]), revm::primitives::KECCAK_EMPTY);
    }
}
