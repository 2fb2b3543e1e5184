//! The pure 256-bit builtins ([`evmc_interface::ArithFn`]): division and
//! modular arithmetic, which generated code calls instead of lowering them
//! inline (LLVM expands a 256-bit division into a long bit loop) or running
//! them through `exec_op` (which needs the stack written back and ends a
//! gas segment). Each one computes exactly what revm's instruction does,
//! through the same functions.

use super::modmul;
use revm::interpreter::instructions::i256::{i256_div, i256_mod};
use revm::primitives::U256;

/// Word `i`, read limb by limb (see [`limbs`]): a 16-byte load of two
/// limbs the generated code has just stored one by one cannot be forwarded
/// from those stores, and each DIV/SDIV/MOD/SMOD call waited on four.
#[inline(always)]
unsafe fn word(words: *mut [u64; 4], i: usize) -> U256 {
    U256::from_limbs(limbs(words.add(i)))
}

#[inline(always)]
unsafe fn set(words: *mut [u64; 4], v: U256) {
    *words = *v.as_limbs();
}

/// `f` of the top two words, into the top word.
#[inline(always)]
unsafe fn binary(words: *mut [u64; 4], f: impl FnOnce(U256, U256) -> U256) {
    set(words, f(word(words, 0), word(words, 1)));
}

/// `v` as a `u128`, if it fits.
#[inline(always)]
fn narrow(v: &U256) -> Option<u128> {
    let l = v.as_limbs();
    (l[2] == 0 && l[3] == 0).then(|| (l[1] as u128) << 64 | l[0] as u128)
}

/// `v` as an `i128`, if its two's complement value fits.
#[inline(always)]
fn narrow_signed(v: &U256) -> Option<i128> {
    let l = v.as_limbs();
    let low = ((l[1] as u128) << 64 | l[0] as u128) as i128;
    let ext = if low < 0 { u64::MAX } else { 0 };
    (l[2] == ext && l[3] == ext).then_some(low)
}

fn widen_signed(v: i128) -> U256 {
    let ext = if v < 0 { u64::MAX } else { 0 };
    let u = v as u128;
    U256::from_limbs([u as u64, (u >> 64) as u64, ext, ext])
}

// Fast paths: fixed-point contract code (snailtracer, burntpix) divides
// numbers that fit in 128 bits, where the generic 256-bit division is
// several times slower than the native one. Same results: EVM division
// truncates toward zero and the remainder takes the dividend's sign, as
// Rust's do; zero divisors and `i128::MIN / -1` take the generic path.

/// `(n / d, n % d)` for a non-zero divisor. A divisor below 2^64 (the
/// fixed-point scales, 10^6 to 10^18) takes one or two `div` instructions;
/// Rust's `u128` division calls a library routine, which took longer on
/// snailtracer-like operands (up to 90-bit dividends by 10^6: 4.1–6.2
/// against 2.4–4.0 ns per SDIV over three rounds of a throwaway loop, on a
/// machine that was busy at the time).
#[inline(always)]
fn div_rem_u128(n: u128, d: u128) -> (u128, u128) {
    #[cfg(target_arch = "x86_64")]
    if d >> 64 == 0 {
        let d = d as u64;
        let (hi, lo) = ((n >> 64) as u64, n as u64);
        // The high limb first, so that the 128-by-64 division below has a
        // quotient that fits in 64 bits (`div` faults otherwise).
        let (q1, r1) = if hi < d { (0, hi) } else { (hi / d, hi % d) };
        let (q0, r0): (u64, u64);
        // SAFETY: `d` is not zero and `r1 < d`, so the quotient of
        // `r1:lo / d` fits in 64 bits: `div` cannot fault.
        unsafe {
            std::arch::asm!(
                "div {d}",
                d = in(reg) d,
                inout("rax") lo => q0,
                inout("rdx") r1 => r0,
                options(pure, nomem, nostack),
            );
        }
        return ((q1 as u128) << 64 | q0 as u128, r0 as u128);
    }
    (n / d, n % d)
}

/// `x / y` and `x % y` truncated toward zero, the remainder with the
/// dividend's sign (as the EVM and Rust have them), for `y != 0` and not
/// `i128::MIN / -1`.
#[inline(always)]
fn div_rem_i128(x: i128, y: i128) -> (i128, i128) {
    let (q, r) = div_rem_u128(x.unsigned_abs(), y.unsigned_abs());
    // `q` is at most 2^127 (`i128::MIN / 1`), which wraps to itself.
    let q = if (x < 0) != (y < 0) {
        (q as i128).wrapping_neg()
    } else {
        q as i128
    };
    let r = if x < 0 { -(r as i128) } else { r as i128 };
    (q, r)
}

/// `words[0] / words[1]`, 0 when dividing by zero.
pub(crate) unsafe extern "C" fn div(words: *mut [u64; 4]) {
    binary(words, |a, b| match (narrow(&a), narrow(&b)) {
        (Some(x), Some(y)) if y != 0 => U256::from(div_rem_u128(x, y).0),
        _ if b.is_zero() => b,
        _ => a.wrapping_div(b),
    });
}

pub(crate) unsafe extern "C" fn sdiv(words: *mut [u64; 4]) {
    binary(words, |a, b| match (narrow_signed(&a), narrow_signed(&b)) {
        (Some(x), Some(y)) if y != 0 && !(x == i128::MIN && y == -1) => {
            widen_signed(div_rem_i128(x, y).0)
        }
        _ => i256_div(a, b),
    });
}

pub(crate) unsafe extern "C" fn rem(words: *mut [u64; 4]) {
    binary(words, |a, b| match (narrow(&a), narrow(&b)) {
        (Some(x), Some(y)) if y != 0 => U256::from(div_rem_u128(x, y).1),
        _ if b.is_zero() => b,
        _ => a.wrapping_rem(b),
    });
}

pub(crate) unsafe extern "C" fn smod(words: *mut [u64; 4]) {
    binary(words, |a, b| match (narrow_signed(&a), narrow_signed(&b)) {
        (Some(x), Some(y)) if y != 0 && !(x == i128::MIN && y == -1) => {
            widen_signed(div_rem_i128(x, y).1)
        }
        _ => i256_mod(a, b),
    });
}

/// The limbs of `*w`, read one by one: generated code has just stored them
/// as separate limbs (a PUSHed constant, say), and a wider load spanning two
/// of those stores misses store forwarding and waits for them (perf put a
/// sixth of MULMOD's samples in weierstrudel on one such load).
#[inline(always)]
unsafe fn limbs(w: *const [u64; 4]) -> [u64; 4] {
    let p = w.cast::<u64>();
    // Volatile so LLVM does not merge them back into vector loads.
    std::array::from_fn(|k| p.add(k).read_volatile())
}

/// `f` of the top three words into the top word, or `generic` where `f`
/// declines (a modulus below 2^192).
#[inline(always)]
unsafe fn modular(
    words: *mut [u64; 4],
    f: impl FnOnce(&[u64; 4], &[u64; 4], &[u64; 4]) -> Option<[u64; 4]>,
    generic: impl FnOnce(U256, U256, U256) -> U256,
) {
    let (a, b, n) = (limbs(words), limbs(words.add(1)), limbs(words.add(2)));
    *words = match f(&a, &b, &n) {
        Some(r) => r,
        None => *generic(
            U256::from_limbs(a),
            U256::from_limbs(b),
            U256::from_limbs(n),
        )
        .as_limbs(),
    };
}

// ADDMOD and MULMOD modulo 2^192 or more (what modular arithmetic in
// contracts uses) take `modmul`, which keeps what it derives from the
// modulus between calls; smaller moduli a mask if they are a power of two,
// else revm's own functions. Both give 0 for a zero modulus.

/// A modulus that is a power of two divides 2^256, so reducing the
/// wrapped sum or product by it gives what reducing the exact one does:
/// a mask. Contracts do 64-bit arithmetic as ADDMOD modulo 2^64 (blake2b
/// in Solidity does, in its inner loop), where revm's generic path divides.
#[inline(always)]
fn power_of_two(n: U256) -> Option<U256> {
    n.is_power_of_two().then(|| n - U256::from(1u8))
}

pub(crate) unsafe extern "C" fn addmod(words: *mut [u64; 4]) {
    modular(words, modmul::add_mod_wide, add_mod_narrow);
}

/// ADDMOD modulo a number below 2^192. Out of line, as
/// [`mul_mod_narrow`] is.
#[inline(never)]
fn add_mod_narrow(a: U256, b: U256, n: U256) -> U256 {
    match power_of_two(n) {
        Some(mask) => a.wrapping_add(b) & mask,
        None => a.add_mod(b, n),
    }
}

/// MULMOD for any CPU. Where the CPU has BMI2 and ADX (every x86-64
/// server CPU since Haswell and Zen), native runs take [`mulmod_bmi2`]
/// instead (see [`bmi2_adx`]).
pub(crate) unsafe extern "C" fn mulmod(words: *mut [u64; 4]) {
    modular(words, modmul::mul_mod_wide, mul_mod_narrow);
}

/// MULMOD modulo a number below 2^192. Out of line: inlined, it changed
/// how LLVM laid out the wide path around it, and a MULMOD modulo a
/// 254-bit prime took up to 14% longer in one run of a throwaway loop.
#[inline(never)]
fn mul_mod_narrow(a: U256, b: U256, n: U256) -> U256 {
    match power_of_two(n) {
        Some(mask) => a.wrapping_mul(b) & mask,
        None => a.mul_mod(b, n),
    }
}

/// MULMOD compiled for BMI2 and ADX: LLVM multiplies with `mulx`, which
/// leaves the flags alone and takes any registers, where `mul` ties both
/// halves of each product to `rax` and `rdx`, so the 512-bit product and
/// its reduction need fewer moves and spills (weierstrudel +5-8% on an
/// AMD EPYC family 25). Only for a CPU with both features.
///
/// The closures inherit the features, so the whole fast path is compiled
/// with them (the function item passed instead went through a `call_once`
/// shim compiled without them, called, not inlined).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "bmi2,adx")]
#[allow(clippy::redundant_closure)]
pub(crate) unsafe extern "C" fn mulmod_bmi2(words: *mut [u64; 4]) {
    modular(
        words,
        |a, b, n| modmul::mul_mod_wide(a, b, n),
        |a, b, n| mul_mod_narrow(a, b, n),
    );
}

/// MULMOD of a word by itself (`words[0]` squared modulo `words[1]`), which
/// generated code calls where both factors are one value, as after a DUP:
/// the square takes 10 limb multiplications where a product takes 16.
/// Elliptic-curve code squares often: 42% of weierstrudel's MULMODs have
/// equal factors, though only some of them are one value where code is
/// generated. Like [`mulmod`], for any CPU.
pub(crate) unsafe extern "C" fn sqrmod(words: *mut [u64; 4]) {
    squaring(words, modmul::sqr_mod_wide, mul_mod_narrow);
}

/// [`sqrmod`] compiled for BMI2 and ADX, as [`mulmod_bmi2`] is.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "bmi2,adx")]
#[allow(clippy::redundant_closure)]
pub(crate) unsafe extern "C" fn sqrmod_bmi2(words: *mut [u64; 4]) {
    squaring(
        words,
        |a, n| modmul::sqr_mod_wide(a, n),
        |a, b, n| mul_mod_narrow(a, b, n),
    );
}

/// `f` of the top two words (the factor and the modulus) into the top
/// word, or `generic` of the factor, itself and the modulus where `f`
/// declines (a modulus below 2^192).
#[inline(always)]
unsafe fn squaring(
    words: *mut [u64; 4],
    f: impl FnOnce(&[u64; 4], &[u64; 4]) -> Option<[u64; 4]>,
    generic: impl FnOnce(U256, U256, U256) -> U256,
) {
    let (a, n) = (limbs(words), limbs(words.add(1)));
    *words = match f(&a, &n) {
        Some(r) => r,
        None => {
            let a = U256::from_limbs(a);
            *generic(a, a, U256::from_limbs(n)).as_limbs()
        }
    };
}

/// Whether this CPU can run [`mulmod_bmi2`] (std caches the answer).
#[inline]
pub(crate) fn bmi2_adx() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("bmi2") && std::arch::is_x86_feature_detected!("adx")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The MULMOD native runs take on this CPU.
#[cfg(test)]
fn picked_mulmod() -> unsafe extern "C" fn(*mut [u64; 4]) {
    #[cfg(target_arch = "x86_64")]
    if bmi2_adx() {
        return mulmod_bmi2;
    }
    mulmod
}

/// The squaring native runs take on this CPU.
#[cfg(test)]
fn picked_sqrmod() -> unsafe extern "C" fn(*mut [u64; 4]) {
    #[cfg(target_arch = "x86_64")]
    if bmi2_adx() {
        return sqrmod_bmi2;
    }
    sqrmod
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Values around every boundary the fast paths test: 0, ±1, the 64-
    /// and 128-bit signed and unsigned limits, the 256-bit extremes.
    fn edges() -> Vec<U256> {
        let mut v = Vec::new();
        for k in [0usize, 1, 63, 64, 127, 128, 255] {
            let p = U256::from(1u8) << k;
            for w in [
                p,
                p.wrapping_sub(U256::from(1u8)),
                p.wrapping_add(U256::from(1u8)),
            ] {
                v.push(w);
                v.push(w.wrapping_neg());
            }
        }
        v.push(U256::ZERO);
        v.push(U256::MAX);
        // Fixed-point scales, and dividends whose high limb is one of them
        // (the quotient's high limb then is 1).
        for scale in [1_000_000u64, 1_000_000_000_000_000_000] {
            let s = U256::from(scale);
            v.extend([s, s.wrapping_neg(), s << 64, (s << 64) - U256::from(1u8)]);
        }
        v
    }

    fn random(r: &mut impl Rng) -> U256 {
        let bits = r.random_range(0..=256usize);
        let v = U256::from_limbs([r.random(), r.random(), r.random(), r.random()]);
        let v = if bits == 256 {
            v
        } else {
            v & ((U256::from(1u8) << bits) - U256::from(1u8))
        };
        if r.random() {
            v.wrapping_neg()
        } else {
            v
        }
    }

    fn run(f: unsafe extern "C" fn(*mut [u64; 4]), a: U256, b: U256) -> U256 {
        let mut w = [*a.as_limbs(), *b.as_limbs()];
        unsafe { f(w.as_mut_ptr()) };
        U256::from_limbs(w[0])
    }

    fn run3(f: unsafe extern "C" fn(*mut [u64; 4]), a: U256, b: U256, n: U256) -> U256 {
        let mut w = [*a.as_limbs(), *b.as_limbs(), *n.as_limbs()];
        unsafe { f(w.as_mut_ptr()) };
        U256::from_limbs(w[0])
    }

    fn hex(s: &str) -> U256 {
        U256::from_str_radix(s, 16).unwrap()
    }

    /// Moduli MULMOD must get right: the primes contracts use, the
    /// extremes, powers of two and their neighbours at every limb boundary.
    fn moduli() -> Vec<U256> {
        let mut v = vec![
            // bn254 base field and group order.
            hex("30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47"),
            hex("30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001"),
            // secp256k1 base field and group order.
            hex("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f"),
            hex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"),
            // P-256 base field.
            hex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"),
            U256::ZERO,
            U256::from(1u8),
            U256::from(2u8),
            U256::from(3u8),
            U256::MAX,
            U256::MAX - U256::from(1u8),
        ];
        for k in [63usize, 64, 127, 128, 191, 192, 193, 255] {
            let p = U256::from(1u8) << k;
            v.extend([p, p - U256::from(1u8), p + U256::from(1u8)]);
        }
        v
    }

    /// An operand for modulus `n`: of any width, or near a multiple of `n`.
    fn operand(r: &mut impl Rng, n: U256) -> U256 {
        let small = U256::from(r.random_range(0..4u8));
        let c = U256::from(r.random_range(1..8u8));
        match r.random_range(0..10) {
            0 => n.wrapping_sub(small),
            1 => n.wrapping_add(small),
            2 => c.wrapping_mul(n).wrapping_add(small),
            3 => c.wrapping_mul(n).wrapping_sub(small),
            4 => U256::MAX - small,
            5 => small,
            6 => U256::from_limbs([r.random(), r.random(), r.random(), r.random()]).reduce_mod(n),
            _ => random(r),
        }
    }

    /// A random modulus: any width, top bit of its top limb set or not.
    fn random_modulus(r: &mut impl Rng) -> U256 {
        let limbs = r.random_range(1..=4usize);
        let mut l = [0u64; 4];
        for x in l.iter_mut().take(limbs) {
            *x = r.random();
        }
        l[limbs - 1] >>= r.random_range(0..64);
        l[limbs - 1] |= 1;
        U256::from_limbs(l)
    }

    /// `check(a, b, n)` on every operand kind for each modulus, random
    /// ones included (the builtins cache what they derive from the last
    /// moduli: interleaved ones check the cache's key).
    fn each_operation(mut check: impl FnMut(U256, U256, U256)) {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut ns = moduli();
        ns.extend((0..2_000).map(|_| random_modulus(&mut r)));
        let mut checked = 0usize;
        for (i, &n) in ns.iter().enumerate() {
            let others = [ns[(i * 7 + 3) % ns.len()], ns[(i * 13 + 5) % ns.len()]];
            let rounds = if i < moduli().len() { 20_000 } else { 200 };
            for k in 0..rounds {
                // Now and then one or two other moduli in between, or one
                // that differs in the low limb only.
                let n = match k % 17 {
                    8 => others[0],
                    9 => others[1],
                    16 => n ^ U256::from(2u8),
                    _ => n,
                };
                let (a, b) = (operand(&mut r, n), operand(&mut r, n));
                check(a, b, n);
                checked += 1;
            }
        }
        assert!(checked > 800_000);
    }

    /// [`each_operation`] on `f` against revm's `reference`, both ways round.
    fn agrees_with_revm(
        name: &str,
        f: unsafe extern "C" fn(*mut [u64; 4]),
        reference: fn(U256, U256, U256) -> U256,
    ) {
        each_operation(|a, b, n| {
            let want = reference(a, b, n);
            assert_eq!(run3(f, a, b, n), want, "{name} {a} {b} {n}");
            assert_eq!(run3(f, b, a, n), want, "{name} {b} {a} {n}");
        });
    }

    /// The squaring builtin `f` (factor and modulus) against revm's MULMOD
    /// of the factor by itself, on [`each_operation`]'s operands.
    fn squares_agree_with_revm(name: &str, f: unsafe extern "C" fn(*mut [u64; 4])) {
        each_operation(|a, b, n| {
            for x in [a, b] {
                let want = x.mul_mod(x, n);
                assert_eq!(run(f, x, n), want, "{name} {x} {n}");
            }
        });
    }

    /// The copy native runs take on this machine (the BMI2 one on any
    /// x86-64 server CPU).
    #[test]
    fn mulmod_agrees_with_revm() {
        agrees_with_revm("mulmod", picked_mulmod(), |a, b, n| a.mul_mod(b, n));
    }

    /// The copy of a CPU without BMI2 or ADX.
    #[test]
    fn portable_mulmod_agrees_with_revm() {
        agrees_with_revm("mulmod_portable", mulmod, |a, b, n| a.mul_mod(b, n));
    }

    #[test]
    fn sqrmod_agrees_with_revm() {
        squares_agree_with_revm("sqrmod", picked_sqrmod());
    }

    #[test]
    fn portable_sqrmod_agrees_with_revm() {
        squares_agree_with_revm("sqrmod_portable", sqrmod);
    }

    #[test]
    fn addmod_agrees_with_revm() {
        agrees_with_revm("addmod", addmod, |a, b, n| a.add_mod(b, n));
    }

    #[test]
    fn mulmod_edge_cases() {
        let bn = moduli()[0];
        let cases = [
            (U256::MAX, U256::MAX, U256::ZERO, U256::ZERO),
            (U256::MAX, U256::MAX, U256::from(1u8), U256::ZERO),
            (U256::MAX, U256::MAX, U256::MAX, U256::ZERO),
            (
                U256::MAX - U256::from(1u8),
                U256::from(2u8),
                U256::MAX,
                U256::MAX - U256::from(2u8),
            ),
            (
                U256::from(10u8),
                U256::from(10u8),
                U256::from(8u8),
                U256::from(4u8),
            ),
            (
                bn - U256::from(1u8),
                bn - U256::from(1u8),
                bn,
                U256::from(1u8),
            ),
            (
                bn + U256::from(1u8),
                bn - U256::from(1u8),
                bn,
                bn - U256::from(1u8),
            ),
            (bn, U256::MAX, bn, U256::ZERO),
            (
                U256::from(1u8) << 255,
                U256::from(2u8),
                U256::MAX,
                U256::from(1u8),
            ),
            // Power-of-two moduli take a mask of the wrapped product.
            (U256::MAX, U256::MAX, U256::from(1u8) << 64, U256::from(1u8)),
            (
                U256::from(u64::MAX),
                U256::from(u64::MAX),
                U256::from(1u8) << 128,
                U256::from(u64::MAX).wrapping_mul(U256::from(u64::MAX)),
            ),
            (
                U256::from(1u8) << 200,
                U256::from(7u8),
                U256::from(2u8),
                U256::ZERO,
            ),
        ];
        for (a, b, n, want) in cases {
            assert_eq!(a.mul_mod(b, n), want, "reference {a} {b} {n}");
            assert_eq!(run3(mulmod, a, b, n), want, "mulmod {a} {b} {n}");
            assert_eq!(run3(picked_mulmod(), a, b, n), want, "picked {a} {b} {n}");
            for x in [a, b] {
                let want = x.mul_mod(x, n);
                assert_eq!(run(sqrmod, x, n), want, "sqrmod {x} {n}");
                assert_eq!(run(picked_sqrmod(), x, n), want, "picked sqrmod {x} {n}");
            }
        }
    }

    #[test]
    fn addmod_edge_cases() {
        let bn = moduli()[0];
        let one = U256::from(1u8);
        let cases = [
            (U256::MAX, U256::MAX, U256::ZERO, U256::ZERO),
            (U256::MAX, U256::MAX, one, U256::ZERO),
            (U256::MAX, U256::MAX, U256::MAX, U256::ZERO),
            (U256::MAX, one, U256::MAX, one),
            // 2^257 - 2 mod (2^256 - 2) = 2.
            (U256::MAX, U256::MAX, U256::MAX - one, U256::from(2u8)),
            (
                U256::from(5u8),
                U256::from(7u8),
                U256::from(8u8),
                U256::from(4u8),
            ),
            (bn - one, bn - one, bn, bn - U256::from(2u8)),
            (bn, bn, bn, U256::ZERO),
            (
                U256::MAX,
                U256::MAX,
                bn,
                (U256::MAX % bn + U256::MAX % bn) % bn,
            ),
            (
                U256::from(1u8) << 255,
                U256::from(1u8) << 255,
                U256::from(1u8) << 255,
                U256::ZERO,
            ),
            // Power-of-two moduli take a mask: the sum's 257th bit and
            // everything above the modulus's bit go.
            (
                U256::MAX,
                U256::MAX,
                U256::from(1u8) << 64,
                U256::from(u64::MAX - 1),
            ),
            (U256::MAX, one, U256::from(1u8) << 191, U256::ZERO),
            (U256::from(5u8), U256::from(7u8), one, U256::ZERO),
        ];
        for (a, b, n, want) in cases {
            assert_eq!(a.add_mod(b, n), want, "reference {a} {b} {n}");
            assert_eq!(run3(addmod, a, b, n), want, "addmod {a} {b} {n}");
        }
    }

    #[test]
    fn fast_paths_agree_with_revm() {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut pairs: Vec<(U256, U256)> = Vec::new();
        for a in edges() {
            for b in edges() {
                pairs.push((a, b));
            }
        }
        pairs.extend((0..20_000).map(|_| (random(&mut r), random(&mut r))));
        for (a, b) in pairs {
            let want_div = if b.is_zero() { b } else { a.wrapping_div(b) };
            let want_rem = if b.is_zero() { b } else { a.wrapping_rem(b) };
            assert_eq!(run(div, a, b), want_div, "div {a} {b}");
            assert_eq!(run(rem, a, b), want_rem, "mod {a} {b}");
            assert_eq!(run(sdiv, a, b), i256_div(a, b), "sdiv {a} {b}");
            assert_eq!(run(smod, a, b), i256_mod(a, b), "smod {a} {b}");
        }
    }
}
