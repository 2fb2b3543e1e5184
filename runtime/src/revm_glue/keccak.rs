//! Keccak-256 for the KECCAK256 builtin: on CPUs with AVX-512F and
//! AVX-512VL a sponge of this module's own, elsewhere revm's.
//!
//! Keccak-f[1600] is most of a token call's native time (about three fifths
//! of a WETH transfer's compiled frame, nearly all of hash_10k's): what is
//! left once the contract's own code is compiled. revm's Keccak (the
//! CRYPTOGAMS scalar assembler) keeps the 25 lanes in 16 general registers
//! and memory and spends some 130 scalar operations a round. Here each lane
//! lives in an `xmm` register of its own (AVX-512 has 32): a round's
//! five-way column parities take three operations a column (made as χ's
//! rows come) and χ one `vpternlogq` a lane, every rotation is one
//! `vprolq`, and π only renames registers, so a round is about 100 vector
//! operations with no shuffle and (but for a few spills) no memory access.
//! Only the results matter (they are Keccak's, checked against revm's for
//! every length around the block size); the interpreter keeps revm's
//! function.
//!
//! The sponge and the permutation are written once, over a [`Lane`] type:
//! the AVX-512 lanes map each operation to its instruction, plain `u64`
//! lanes compute the same formulas. The tests run the `u64` sponge on every
//! CPU, so that its indices, rotations, padding and round constants are
//! checked where AVX-512 is missing too (CI's CPU may lack it), and check
//! `vpternlogq`'s two immediates against the formulas bit by bit. On
//! CPUs without AVX-512 the `u64` sponge is not used: it hashes 64 bytes
//! about 10% slower than revm's assembler (benches/README.md, "Keccak-f
//! without AVX-512, measured and not kept"), so revm's stays.

#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use revm::primitives::B256;

/// Bytes absorbed per permutation (1600 − 2·256 bits).
const RATE: usize = 136;

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
const RHO: [u32; 25] = [
    0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14,
];

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

/// A 64-bit lane of the state, and the operations a round takes of it.
/// Rotation amounts are constants once the round is unrolled.
trait Lane: Copy {
    /// The lane holding `w`.
    fn word(w: u64) -> Self;
    /// The lane's value.
    fn get(self) -> u64;
    fn xor(a: Self, b: Self) -> Self;
    /// `a ^ b ^ c`.
    fn xor3(a: Self, b: Self, c: Self) -> Self;
    /// χ: `a ^ (!b & c)`.
    fn chi(a: Self, b: Self, c: Self) -> Self;
    /// `a` rotated left by `n` bits.
    fn rol(a: Self, n: u32) -> Self;
}

/// Plain lanes: what the tests run on any CPU.
impl Lane for u64 {
    #[inline(always)]
    fn word(w: u64) -> Self {
        w
    }
    #[inline(always)]
    fn get(self) -> u64 {
        self
    }
    #[inline(always)]
    fn xor(a: Self, b: Self) -> Self {
        a ^ b
    }
    #[inline(always)]
    fn xor3(a: Self, b: Self, c: Self) -> Self {
        a ^ b ^ c
    }
    #[inline(always)]
    fn chi(a: Self, b: Self, c: Self) -> Self {
        a ^ (!b & c)
    }
    #[inline(always)]
    fn rol(a: Self, n: u32) -> Self {
        a.rotate_left(n)
    }
}

/// Keccak-f[1600] on the lanes `a[x + 5y]`. The loops in a round have
/// constant bounds: LLVM unrolls it completely and, with AVX-512's lanes,
/// keeps the state in registers. The 24 rounds stay a loop: written out for
/// the last block (about 18 KB of code), they hashed 64 bytes 4% faster
/// alone but made weth's and Seaport's calls 8–10% slower.
#[inline(always)]
fn permute<L: Lane>(a: &mut [L; 25]) {
    // θ's column parities (two three-way XORs a column); each round
    // leaves those of the next.
    let mut c = [L::word(0); 5];
    for (x, c) in c.iter_mut().enumerate() {
        let t = L::xor3(a[x], a[x + 5], a[x + 10]);
        *c = L::xor3(t, a[x + 15], a[x + 20]);
    }
    for rc in ROUND_CONSTANTS {
        round(a, &mut c, rc);
    }
}

/// One round of Keccak-f[1600] with its round constant `rc`, on the state
/// `a` whose column parities are `c`; leaves the new state's in `c`.
#[inline(always)]
fn round<L: Lane>(a: &mut [L; 25], c: &mut [L; 5], rc: u64) {
    // θ: the value each column's lanes take up. The two parities are
    // combined once per column and applied with a plain XOR: Zen 4 issues
    // `vpxor` to all four vector pipes and `vpternlogq` to two, and a
    // throwaway loop hashed 64 bytes 6% faster so than with a three-way XOR
    // per lane (still slower on a Zen 5, by 1–18% in the variants tried).
    let mut d = [L::word(0); 5];
    for (x, d) in d.iter_mut().enumerate() {
        *d = L::xor(c[(x + 4) % 5], L::rol(c[(x + 1) % 5], 1));
    }
    // ρ, π, χ and ι one output row at a time: π moves lane (x, y) to
    // (y, 2x + 3y), so the lane landing at (X, Y) is (x, y) with y = X and
    // x = 3(Y − 3X) mod 5. The order of the code is what the core issues
    // from, and on a Zen 5 every vector operation takes two cycles: making
    // χ's results row by row hashed 64 bytes 11–12% faster than computing
    // all of π before any of χ (with a few more copies and spills in the
    // round), and making the next round's parities from them as they come
    // (four rows are folded in before the last is done; five operations
    // more a round) another 2–3% (1,000 bytes, whose hashing is bound by
    // throughput, 2% slower: most of the EVM's hashes are of one block;
    // benches/README.md, "Keccak-f row by row").
    let old = *a;
    let mut next = [L::word(0); 5];
    for (i, row) in (0..5).rev().enumerate() {
        let mut b = [L::word(0); 5];
        for (col, b) in b.iter_mut().enumerate() {
            // (15 keeps the difference positive.)
            let (x, y) = ((3 * (row + 15 - 3 * col)) % 5, col);
            *b = L::rol(L::xor(old[x + 5 * y], d[x]), RHO[x + 5 * y]);
        }
        for col in 0..5 {
            let mut lane = L::chi(b[col], b[(col + 1) % 5], b[(col + 2) % 5]);
            if row == 0 && col == 0 {
                lane = L::xor(lane, L::word(rc));
            }
            a[col + 5 * row] = lane;
            // Rows 4 and 3 with a XOR, 2 and 1 with a three-way XOR once
            // row 1 is done, row 0 with a XOR.
            next[col] = match i {
                0 => lane,
                2 => next[col],
                3 => L::xor3(next[col], a[col + 5 * 2], lane),
                _ => L::xor(next[col], lane),
            };
        }
    }
    *c = next;
}

/// XORs the `RATE` bytes of `block` into the first 17 lanes.
#[inline(always)]
fn absorb<L: Lane>(a: &mut [L; 25], block: &[u8; RATE]) {
    for (i, lane) in block.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(lane.try_into().expect("8 bytes"));
        a[i] = L::xor(a[i], L::word(w));
    }
}

/// Keccak-256 (the original padding, `0x01 … 0x80`) of `input`.
#[inline(always)]
fn sponge<L: Lane>(input: &[u8]) -> [u8; 32] {
    let mut a = [L::word(0); 25];
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
        chunk.copy_from_slice(&a[i].get().to_le_bytes());
    }
    out
}

/// `vpternlogq`'s immediate for `a ^ b ^ c`.
const XOR3: i32 = 0x96;
/// `vpternlogq`'s immediate for χ, `a ^ (!b & c)`.
const CHI: i32 = 0xD2;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Lane, CHI, XOR3};
    use std::arch::x86_64::*;

    /// A lane in the low half of an `xmm` register.
    #[derive(Clone, Copy)]
    struct Avx512(__m128i);

    // SAFETY (every method): the sponge runs these only inside `keccak256`
    // below, compiled for (and called on a CPU with) AVX-512F and VL;
    // inlined there, each is one instruction.
    impl Lane for Avx512 {
        #[inline(always)]
        fn word(w: u64) -> Self {
            Self(unsafe { _mm_cvtsi64_si128(w as i64) })
        }
        #[inline(always)]
        fn get(self) -> u64 {
            unsafe { _mm_cvtsi128_si64(self.0) as u64 }
        }
        #[inline(always)]
        fn xor(a: Self, b: Self) -> Self {
            Self(unsafe { _mm_xor_si128(a.0, b.0) })
        }
        #[inline(always)]
        fn xor3(a: Self, b: Self, c: Self) -> Self {
            Self(unsafe { _mm_ternarylogic_epi64::<XOR3>(a.0, b.0, c.0) })
        }
        #[inline(always)]
        fn chi(a: Self, b: Self, c: Self) -> Self {
            Self(unsafe { _mm_ternarylogic_epi64::<CHI>(a.0, b.0, c.0) })
        }
        #[inline(always)]
        fn rol(a: Self, n: u32) -> Self {
            Self(unsafe { _mm_rolv_epi64(a.0, _mm_set1_epi64x(n as i64)) })
        }
    }

    /// Keccak-256 of `input` with the lanes in `xmm` registers.
    #[target_feature(enable = "avx512f,avx512vl")]
    pub(super) unsafe fn keccak256(input: &[u8]) -> [u8; 32] {
        super::sponge::<Avx512>(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `vpternlogq`'s result for `imm`, bit by bit as Intel defines it:
    /// bit `i` is bit `4a + 2b + c` of `imm` (`a`, `b`, `c` bit `i` of each
    /// operand).
    fn ternlog(imm: i32, a: u64, b: u64, c: u64) -> u64 {
        (0..64).fold(0, |r, i| {
            let at = (a >> i & 1) << 2 | (b >> i & 1) << 1 | (c >> i & 1);
            r | ((imm as u64 >> at) & 1) << i
        })
    }

    /// Pseudo-random bytes (xorshift).
    fn data(len: usize) -> Vec<u8> {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn the_ternary_immediates_are_the_lane_formulas() {
        let words = data(8 * 3 * 64);
        for w in words.chunks_exact(24) {
            let [a, b, c] = [0, 8, 16].map(|i| u64::from_le_bytes(w[i..i + 8].try_into().unwrap()));
            assert_eq!(ternlog(XOR3, a, b, c), u64::xor3(a, b, c));
            assert_eq!(ternlog(CHI, a, b, c), u64::chi(a, b, c));
        }
    }

    #[test]
    fn equals_revms_keccak_for_every_length_around_the_blocks() {
        // The plain lanes run everywhere; the builtin's function is the
        // vector sponge only where the CPU has AVX-512 (revm's elsewhere,
        // then compared with itself: say so).
        if !avx512() {
            eprintln!("no AVX-512F/VL on this CPU: the sponge ran on plain lanes only");
        }
        let data = data(3 * RATE + 9);
        let long: Vec<u8> = data.iter().cycle().take(10_000).copied().collect();
        // Every length around three blocks, then many blocks: the state
        // carried from permutation to permutation.
        let inputs = (0..data.len())
            .map(|len| &data[..len])
            .chain([long.as_slice()]);
        for input in inputs {
            let want = revm::primitives::keccak256(input);
            assert_eq!(sponge::<u64>(input), want.0, "{} bytes", input.len());
            assert_eq!(keccak256(input), want, "{} bytes", input.len());
        }
        // The empty input's hash, spelled out.
        assert_eq!(keccak256(&[]), revm::primitives::KECCAK_EMPTY);
        assert_eq!(sponge::<u64>(&[]), revm::primitives::KECCAK_EMPTY.0);
    }
}
