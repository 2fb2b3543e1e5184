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

/// `words[0] / words[1]`, 0 when dividing by zero.
pub(crate) unsafe extern "C" fn div(words: *mut [u64; 4]) {
    binary(
        words,
        |a, b| if b.is_zero() { b } else { a.wrapping_div(b) },
    );
}

pub(crate) unsafe extern "C" fn sdiv(words: *mut [u64; 4]) {
    binary(words, i256_div);
}

pub(crate) unsafe extern "C" fn rem(words: *mut [u64; 4]) {
    binary(
        words,
        |a, b| if b.is_zero() { b } else { a.wrapping_rem(b) },
    );
}

pub(crate) unsafe extern "C" fn smod(words: *mut [u64; 4]) {
    binary(words, i256_mod);
}

pub(crate) unsafe extern "C" fn addmod(words: *mut [u64; 4]) {
    ternary(words, |a, b, n| a.add_mod(b, n));
}

pub(crate) unsafe extern "C" fn mulmod(words: *mut [u64; 4]) {
    ternary(words, |a, b, n| a.mul_mod(b, n));
}
