//! The pure 256-bit builtins ([`evmc_interface::ArithFn`]): division and
//! modular arithmetic, which generated code calls instead of lowering them
//! inline (LLVM expands a 256-bit division into a long bit loop) or running
//! them through `exec_op` (which needs the stack written back and ends a
//! gas segment). Each one computes exactly what revm's instruction does,
//! through the same functions.

use revm::interpreter::instructions::i256::{i256_div, i256_mod};
use revm::primitives::U256;

#[inline(always)]
unsafe fn word(words: *mut [u64; 4], i: usize) -> U256 {
    U256::from_limbs(*words.add(i))
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

/// `f` of the top three words, into the top word.
#[inline(always)]
unsafe fn ternary(words: *mut [u64; 4], f: impl FnOnce(U256, U256, U256) -> U256) {
    set(words, f(word(words, 0), word(words, 1), word(words, 2)));
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

/// `words[0] / words[1]`, 0 when dividing by zero.
pub(crate) unsafe extern "C" fn div(words: *mut [u64; 4]) {
    binary(words, |a, b| match (narrow(&a), narrow(&b)) {
        (Some(x), Some(y)) if y != 0 => U256::from(x / y),
        _ if b.is_zero() => b,
        _ => a.wrapping_div(b),
    });
}

pub(crate) unsafe extern "C" fn sdiv(words: *mut [u64; 4]) {
    binary(words, |a, b| match (narrow_signed(&a), narrow_signed(&b)) {
        (Some(x), Some(y)) if y != 0 && !(x == i128::MIN && y == -1) => widen_signed(x / y),
        _ => i256_div(a, b),
    });
}

pub(crate) unsafe extern "C" fn rem(words: *mut [u64; 4]) {
    binary(words, |a, b| match (narrow(&a), narrow(&b)) {
        (Some(x), Some(y)) if y != 0 => U256::from(x % y),
        _ if b.is_zero() => b,
        _ => a.wrapping_rem(b),
    });
}

pub(crate) unsafe extern "C" fn smod(words: *mut [u64; 4]) {
    binary(words, |a, b| match (narrow_signed(&a), narrow_signed(&b)) {
        (Some(x), Some(y)) if y != 0 && !(x == i128::MIN && y == -1) => widen_signed(x % y),
        _ => i256_mod(a, b),
    });
}

pub(crate) unsafe extern "C" fn addmod(words: *mut [u64; 4]) {
    ternary(words, |a, b, n| a.add_mod(b, n));
}

pub(crate) unsafe extern "C" fn mulmod(words: *mut [u64; 4]) {
    ternary(words, |a, b, n| a.mul_mod(b, n));
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
