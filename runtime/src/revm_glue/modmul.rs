//! 256-bit MULMOD and ADDMOD for compiled code: exact `a * b mod n` and
//! `a + b mod n`, faster than revm's generic path when the modulus repeats.
//!
//! Contract code that does modular arithmetic (elliptic curves, pairings,
//! big-number libraries) multiplies modulo one fixed 256-bit prime over
//! and over. The modulus `n` is shifted left until its top bit is set
//! (`d = n << s`, and `x mod n = ((x << s) mod d) >> s`), and the 512-bit
//! product is divided by `d` as if `d` were one digit in base 2^256:
//! Möller and Granlund's division by an invariant word with a precomputed
//! reciprocal ("Improved division by invariant integers", 2011, algorithm
//! 4), whose multiplications are independent of each other, where a
//! limb-by-limb long division is a chain of five dependent steps. The one
//! limb of quotient above that digit (the shifted product can reach
//! `d * 2^256` when the operands are not reduced) is removed first by one
//! long-division step (3-by-2 estimate, their algorithm 5). ADDMOD of
//! operands below `2n` needs two subtractions at most; larger ones divide
//! the 257-bit sum the same way.
//!
//! What depends only on the modulus (shift, shifted divisor, both
//! reciprocals) is kept for the last two moduli seen on the thread, so a
//! run of operations modulo one prime, or alternating between a curve's two
//! primes, computes it once; computing it costs about as much as one
//! multiplication. A modulus below 2^192 takes revm's generic path:
//! contract code rarely uses one.

use std::cell::Cell;

/// `(hi, lo)` of the full product `a * b`.
#[inline(always)]
fn mul_wide(a: u64, b: u64) -> (u64, u64) {
    let p = a as u128 * b as u128;
    ((p >> 64) as u64, p as u64)
}

/// `x * b` in five limbs.
#[inline(always)]
fn mul_row(x: u64, b: &[u64; 4]) -> [u64; 5] {
    let (h0, l0) = mul_wide(x, b[0]);
    let (h1, l1) = mul_wide(x, b[1]);
    let (h2, l2) = mul_wide(x, b[2]);
    let (h3, l3) = mul_wide(x, b[3]);
    // The high halves are at most 2^64 - 2: the last carry fits.
    let (r1, c) = adc(h0, l1, false);
    let (r2, c) = adc(h1, l2, c);
    let (r3, c) = adc(h2, l3, c);
    [l0, r1, r2, r3, h3 + c as u64]
}

/// The 512-bit product of two 256-bit numbers (limbs least significant
/// first), a row at a time: the four products of a row are independent,
/// and adding a whole row takes one carry chain (4% fewer instructions per
/// MULMOD than adding each product with its own carries, counted by
/// callgrind on weierstrudel's operands).
#[inline(always)]
fn mul_4x4(a: &[u64; 4], b: &[u64; 4]) -> [u64; 8] {
    let mut p = [0u64; 8];
    p[..5].copy_from_slice(&mul_row(a[0], b));
    for i in 1..4 {
        let row = mul_row(a[i], b);
        let mut c = false;
        for k in 0..4 {
            (p[i + k], c) = adc(p[i + k], row[k], c);
        }
        // p[i + 4] is still zero: the sum so far is below 2^(64 * (i + 4)).
        p[i + 4] = row[4] + c as u64;
    }
    p
}

/// `a * a` in eight limbs: each cross product `a[i] * a[j]` (`i < j`) once,
/// doubled by a shift, plus the squares of the limbs: 10 multiplications
/// where [`mul_4x4`] takes 16.
#[inline(always)]
fn sqr_4(a: &[u64; 4]) -> [u64; 8] {
    let mut c = [0u64; 8];
    for i in 0..3 {
        let mut carry = 0u64;
        for j in i + 1..4 {
            // At most (2^64 - 1)^2 + 2 * (2^64 - 1) = 2^128 - 1: no overflow.
            let t = a[i] as u128 * a[j] as u128 + c[i + j] as u128 + carry as u128;
            c[i + j] = t as u64;
            carry = (t >> 64) as u64;
        }
        c[i + 4] = carry;
    }
    // c < a^2 / 2, so doubling it stays within eight limbs, and so does
    // adding the squares (the sum is a^2).
    let mut p = [0u64; 8];
    let mut k = false;
    for i in 0..4 {
        let (h, l) = mul_wide(a[i], a[i]);
        let below = if i == 0 { 0 } else { c[2 * i - 1] >> 63 };
        (p[2 * i], k) = adc(c[2 * i] << 1 | below, l, k);
        (p[2 * i + 1], k) = adc(c[2 * i + 1] << 1 | c[2 * i] >> 63, h, k);
    }
    p
}

/// The low 256 bits of `a * b`.
#[inline(always)]
fn mul_lo_4x4(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut p = [0u64; 4];
    for i in 0..4 {
        let mut carry = 0u64;
        for j in 0..4 - i {
            let t = a[i] as u128 * b[j] as u128 + p[i + j] as u128 + carry as u128;
            p[i + j] = t as u64;
            carry = (t >> 64) as u64;
        }
    }
    p
}

/// `floor((2^192 - 1) / (d1, d0)) - 2^64` for a normalised `d1` (top bit
/// set): the reciprocal [`div_3by2`] multiplies by (Möller and Granlund,
/// algorithm 6).
fn reciprocal_3by2(d1: u64, d0: u64) -> u64 {
    debug_assert!(d1 >> 63 == 1);
    // floor((2^128 - 1) / d1) - 2^64, which fits a limb for a normalised d1.
    let mut v = ((((!d1) as u128) << 64 | u64::MAX as u128) / d1 as u128) as u64;
    let mut p = d1.wrapping_mul(v).wrapping_add(d0);
    if p < d0 {
        v = v.wrapping_sub(1);
        if p >= d1 {
            v = v.wrapping_sub(1);
            p = p.wrapping_sub(d1);
        }
        p = p.wrapping_sub(d1);
    }
    let (t1, t0) = mul_wide(v, d0);
    p = p.wrapping_add(t1);
    if p < t1 {
        v = v.wrapping_sub(1);
        if (p, t0) >= (d1, d0) {
            v = v.wrapping_sub(1);
        }
    }
    v
}

/// `(q, r)` with `(u2, u1, u0) = q * (d1, d0) + r`, `r < (d1, d0)`, for a
/// normalised `d1`, `(u2, u1) < (d1, d0)` and `v = reciprocal_3by2(d1, d0)`
/// (Möller and Granlund, algorithm 5).
#[inline(always)]
fn div_3by2(u2: u64, u1: u64, u0: u64, d1: u64, d0: u64, v: u64) -> (u64, u128) {
    let d = (d1 as u128) << 64 | d0 as u128;
    let q = (v as u128 * u2 as u128).wrapping_add((u2 as u128) << 64 | u1 as u128);
    let (mut q1, q0) = ((q >> 64) as u64, q as u64);
    let r1 = u1.wrapping_sub(q1.wrapping_mul(d1));
    let t = d0 as u128 * q1 as u128;
    let mut r = ((r1 as u128) << 64 | u0 as u128)
        .wrapping_sub(t)
        .wrapping_sub(d);
    q1 = q1.wrapping_add(1);
    if (r >> 64) as u64 >= q0 {
        q1 = q1.wrapping_sub(1);
        r = r.wrapping_add(d);
    }
    if r >= d {
        q1 = q1.wrapping_add(1);
        r -= d;
    }
    (q1, r)
}

// `adc` and `sbb` through the x86 carry intrinsics: LLVM then keeps each
// chain's carry in the flags. Written as two overflowing operations, the
// comparisons of four-limb numbers (`lt_4`, `rem_2by1`'s correction) came
// out as `cmp`/`setb`/`sete`/`and`/`or` per limb; with the intrinsics
// MULMOD took 33.1 → 30.9 ns in a throwaway loop modulo bn254's prime,
// and weierstrudel's native runs 5% less (AMD EPYC family 25 model 17;
// benches/README.md, "MULMOD's carry chains").

/// `a + b + carry` and the carry out.
#[inline(always)]
fn adc(a: u64, b: u64, carry: bool) -> (u64, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut s = 0;
        let c = core::arch::x86_64::_addcarry_u64(carry as u8, a, b, &mut s);
        (s, c != 0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let (s, c1) = a.overflowing_add(b);
        let (s, c2) = s.overflowing_add(carry as u64);
        (s, c1 | c2)
    }
}

/// `a - b - borrow` and the borrow out.
#[inline(always)]
fn sbb(a: u64, b: u64, borrow: bool) -> (u64, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut s = 0;
        let c = core::arch::x86_64::_subborrow_u64(borrow as u8, a, b, &mut s);
        (s, c != 0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let (s, b1) = a.overflowing_sub(b);
        let (s, b2) = s.overflowing_sub(borrow as u64);
        (s, b1 | b2)
    }
}

/// What a reduction modulo one 256-bit modulus needs.
#[derive(Clone, Copy)]
#[repr(C)]
struct Divisor {
    /// The modulus as given (the cache key); zero in the empty cache, which
    /// no lookup matches because only moduli of four limbs are cached.
    n: [u64; 4],
    /// `n << shift`: its top bit is set.
    d: [u64; 4],
    shift: u32,
    /// `reciprocal_3by2(d[3], d[2])`, for one limb of quotient.
    v: u64,
    /// `floor((2^512 - 1) / d) - 2^256`, for four limbs of quotient.
    m: [u64; 4],
}

impl Divisor {
    const EMPTY: Divisor = Divisor {
        n: [0; 4],
        d: [0; 4],
        shift: 0,
        v: 0,
        m: [0; 4],
    };

    /// For a modulus with a nonzero top limb.
    #[cold]
    #[inline(never)]
    fn new(n: &[u64; 4]) -> Self {
        debug_assert!(n[3] != 0);
        let shift = n[3].leading_zeros();
        let d = shl_4(n, shift);
        let mut div = Divisor {
            n: *n,
            d,
            shift,
            v: reciprocal_3by2(d[3], d[2]),
            m: [0; 4],
        };
        // 2^512 - 1 - 2^256 * d = (!d) * 2^256 + (2^256 - 1), divided by `d`
        // a limb at a time (`!d < d`, since `d >= 2^255`).
        let mut rem = [!d[0], !d[1], !d[2], !d[3]];
        for k in (0..4).rev() {
            let (q, r) = div.step(rem, u64::MAX);
            div.m[k] = q;
            rem = r;
        }
        div
    }

    /// The quotient limb and the remainder of `rem * 2^64 + next` divided
    /// by `d`, for `rem < d`: one step of a long division.
    #[inline(always)]
    fn step(&self, rem: [u64; 4], next: u64) -> (u64, [u64; 4]) {
        let d = &self.d;
        let [u1, u2, u3, u4] = rem;
        let u0 = next;
        if u4 == 0 && u3 < d[3] {
            // The window is already below `d`.
            return (0, [u0, u1, u2, u3]);
        }
        if (u4, u3) == (d[3], d[2]) {
            // The 3-by-2 division would overflow. The quotient limb is then
            // 2^64 - 1 exactly (the window minus `d * 2^64` is at least
            // `-2^192`, far less than `d` below zero), so the remainder is
            // `window + d - d * 2^64`, which is below `d` and, computed
            // modulo 2^256, comes out right.
            #[cfg(test)]
            tests::hit(tests::Path::TopEqual);
            let (r0, c) = adc(u0, d[0], false);
            let (r1, c) = adc(u1, d[1], c);
            let (r2, c) = adc(u2, d[2], c);
            let (r3, _) = adc(u3, d[3], c);
            let (r1, b) = sbb(r1, d[0], false);
            let (r2, b) = sbb(r2, d[1], b);
            let (r3, _) = sbb(r3, d[2], b);
            return (u64::MAX, [r0, r1, r2, r3]);
        }
        // The estimate from the top three limbs is the quotient limb or one
        // more; it is exact for the top two limbs of `d`, so what is left is
        // `(r1, r0, u1, u0) - q * (d1, d0)`.
        let (q, r) = div_3by2(u4, u3, u2, d[3], d[2], self.v);
        let (p1, p0) = mul_wide(q, d[0]);
        let (s1, s0) = mul_wide(q, d[1]);
        let (c1, k) = p1.overflowing_add(s0);
        let c2 = s1 + k as u64; // q * (d1, d0) < 2^192
        let (n0, b) = sbb(u0, p0, false);
        let (n1, b) = sbb(u1, c1, b);
        let (n2, b) = sbb(r as u64, c2, b);
        let (n3, b) = sbb((r >> 64) as u64, 0, b);
        if b {
            // One too many: add `d` back (the carry out cancels the borrow).
            #[cfg(test)]
            tests::hit(tests::Path::AddBack);
            let (n0, c) = adc(n0, d[0], false);
            let (n1, c) = adc(n1, d[1], c);
            let (n2, c) = adc(n2, d[2], c);
            let (n3, _) = adc(n3, d[3], c);
            return (q.wrapping_sub(1), [n0, n1, n2, n3]);
        }
        (q, [n0, n1, n2, n3])
    }

    /// `(hi * 2^256 + lo) mod d` for `hi < d`: algorithm 4 of Möller and
    /// Granlund in base 2^256, with `m` as the reciprocal.
    #[inline(always)]
    fn rem_2by1(&self, hi: &[u64; 4], lo: &[u64; 4]) -> [u64; 4] {
        let d = &self.d;
        // (q1, q0) = m * hi + (hi, lo), which fits in 512 bits for hi < d.
        let mut q = mul_4x4(&self.m, hi);
        let mut c = false;
        for k in 0..4 {
            (q[k], c) = adc(q[k], lo[k], c);
        }
        for k in 0..4 {
            (q[k + 4], c) = adc(q[k + 4], hi[k], c);
        }
        let q1 = [q[4], q[5], q[6], q[7]];
        // r = lo - (q1 + 1) * d, modulo 2^256.
        let t = mul_lo_4x4(&q1, d);
        let mut r = [0u64; 4];
        let mut b = false;
        for k in 0..4 {
            (r[k], b) = sbb(lo[k], t[k], b);
        }
        let mut b = false;
        for k in 0..4 {
            (r[k], b) = sbb(r[k], d[k], b);
        }
        // If r > q0 the estimate q1 + 1 was one too many: add `d` back. Either
        // way is common, so without a branch.
        let mut gt = false;
        for k in 0..4 {
            (_, gt) = sbb(q[k], r[k], gt);
        }
        let mask = (gt as u64).wrapping_neg();
        let mut c = false;
        for k in 0..4 {
            (r[k], c) = adc(r[k], d[k] & mask, c);
        }
        // Rarely, still one short.
        if !lt_4(&r, d) {
            #[cfg(test)]
            tests::hit(tests::Path::Rem2by1Subtract);
            let mut b = false;
            for k in 0..4 {
                (r[k], b) = sbb(r[k], d[k], b);
            }
        }
        r
    }

    /// `p mod n` for a 512-bit `p`.
    #[inline(always)]
    fn rem_512(&self, p: &[u64; 8]) -> [u64; 4] {
        let s = self.shift;
        // `p << s` in nine limbs; the top one is below 2^s <= d[3], so the
        // top four are below `d`, as `step` requires.
        let mut u = [0u64; 9];
        u[0] = p[0] << (s & 63);
        for k in 1..8 {
            u[k] = funnel_left(p[k], p[k - 1], s);
        }
        u[8] = funnel_left(0, p[7], s);
        // Reduced operands give a product below `n * d`, whose top five
        // limbs are below `d` already; others need one long-division step.
        let (_, hi) = self.step([u[5], u[6], u[7], u[8]], u[4]);
        let r = self.rem_2by1(&hi, &[u[0], u[1], u[2], u[3]]);
        shr_4(&r, s)
    }
}

/// `a < b`.
#[inline(always)]
fn lt_4(a: &[u64; 4], b: &[u64; 4]) -> bool {
    let mut borrow = false;
    for k in 0..4 {
        (_, borrow) = sbb(a[k], b[k], borrow);
    }
    borrow
}

/// The high limb of `(hi, lo) << s`, for `s < 64`.
#[inline(always)]
fn funnel_left(hi: u64, lo: u64, s: u32) -> u64 {
    // The mask tells LLVM the shift is below 64: one `shld`.
    ((((hi as u128) << 64 | lo as u128) << (s & 63)) >> 64) as u64
}

/// The low limb of `(hi, lo) >> s`, for `s < 64`.
#[inline(always)]
fn funnel_right(hi: u64, lo: u64, s: u32) -> u64 {
    (((hi as u128) << 64 | lo as u128) >> (s & 63)) as u64
}

/// `x << s` for `s < 64`, dropping what leaves the top limb.
#[inline(always)]
fn shl_4(x: &[u64; 4], s: u32) -> [u64; 4] {
    [
        x[0] << (s & 63),
        funnel_left(x[1], x[0], s),
        funnel_left(x[2], x[1], s),
        funnel_left(x[3], x[2], s),
    ]
}

/// `x >> s` for `s < 64`.
#[inline(always)]
fn shr_4(x: &[u64; 4], s: u32) -> [u64; 4] {
    [
        funnel_right(x[1], x[0], s),
        funnel_right(x[2], x[1], s),
        funnel_right(x[3], x[2], s),
        x[3] >> (s & 63),
    ]
}

/// The divisors of the last two four-limb moduli a thread reduced by:
/// code that works in two fields (a curve's base field and its group
/// order) alternates between them.
struct Cache {
    slots: [Cell<Divisor>; 2],
    /// The slot used last; a miss replaces the other one.
    last: Cell<usize>,
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            slots: [Cell::new(Divisor::EMPTY), Cell::new(Divisor::EMPTY)],
            last: Cell::new(0),
        }
    };
}

/// Whether `slot` holds the divisor of `n`.
#[inline(always)]
fn holds(slot: &Cell<Divisor>, n: &[u64; 4]) -> bool {
    // Limb by limb: compared as a whole, LLVM spills `n` to the stack limb
    // by limb and reloads it as vectors, which misses store forwarding
    // (that stall was a sixth of the builtin's time). Volatile keeps the
    // loads apart.
    let key = slot.as_ptr().cast::<u64>();
    let mut diff = 0;
    for (k, &limb) in n.iter().enumerate() {
        // SAFETY: `n` is the first field of a `repr(C)` struct in a cell
        // that only this thread reaches, and nothing borrows it now.
        diff |= unsafe { key.add(k).read_volatile() } ^ limb;
    }
    diff == 0
}

impl Cache {
    /// The slot for `n` when the last one used holds another modulus: the
    /// other one, filled first if it holds another modulus too.
    #[cold]
    #[inline(never)]
    fn switch(&self, n: &[u64; 4]) -> usize {
        let other = (self.last.get() & 1) ^ 1;
        self.last.set(other);
        if !holds(&self.slots[other], n) {
            self.slots[other].set(Divisor::new(n));
        }
        other
    }
}

/// The divisor for `n` (top limb nonzero), from the cache or computed and
/// cached.
///
/// A reference, not a closure over it: the reductions are then inlined
/// into each caller, including MULMOD's copy compiled for BMI2 (a closure
/// passed in was compiled once, without the caller's target features).
///
/// # Safety
/// The reference must be dropped before the next call on this thread:
/// a later miss overwrites the slot it points into.
#[inline(always)]
unsafe fn cached_divisor<'a>(n: &[u64; 4]) -> &'a Divisor {
    // Only the address comes out of `with`: a closure that small is inlined,
    // and the caller reads the divisor in place instead of copying it out.
    let cache: *const Cache = CACHE.with(|c| c as *const Cache);
    // SAFETY: a thread-local with a const initialiser and no destructor
    // lives until the thread ends, which is after this call.
    let c = unsafe { &*cache };
    let last = c.last.get() & 1;
    let slot = if holds(&c.slots[last], n) {
        last
    } else {
        c.switch(n)
    };
    // SAFETY: nothing writes the slot before the caller is done with it
    // (this function's contract).
    unsafe { &*c.slots[slot].as_ptr() }
}

/// `a + b`, and whether it carried out of 256 bits.
#[inline(always)]
fn add_4(a: &[u64; 4], b: &[u64; 4]) -> ([u64; 4], bool) {
    let mut s = [0u64; 4];
    let mut c = false;
    for k in 0..4 {
        (s[k], c) = adc(a[k], b[k], c);
    }
    (s, c)
}

/// `a - b`, modulo 2^256.
#[inline(always)]
fn sub_4(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut s = [0u64; 4];
    let mut borrow = false;
    for k in 0..4 {
        (s[k], borrow) = sbb(a[k], b[k], borrow);
    }
    s
}

/// `a * b mod n` when `n` has a nonzero top limb, else `None`.
#[inline(always)]
pub(crate) fn mul_mod_wide(a: &[u64; 4], b: &[u64; 4], n: &[u64; 4]) -> Option<[u64; 4]> {
    if n[3] == 0 {
        return None;
    }
    let p = mul_4x4(a, b);
    // SAFETY: `d` is dropped before anything else reads the cache.
    let d = unsafe { cached_divisor(n) };
    Some(d.rem_512(&p))
}

/// `a * a mod n` when `n` has a nonzero top limb, else `None`.
#[inline(always)]
pub(crate) fn sqr_mod_wide(a: &[u64; 4], n: &[u64; 4]) -> Option<[u64; 4]> {
    if n[3] == 0 {
        return None;
    }
    let p = sqr_4(a);
    // SAFETY: `d` is dropped before anything else reads the cache.
    let d = unsafe { cached_divisor(n) };
    Some(d.rem_512(&p))
}

/// `a + b mod n` when `n` has a nonzero top limb, else `None`.
#[inline(always)]
pub(crate) fn add_mod_wide(a: &[u64; 4], b: &[u64; 4], n: &[u64; 4]) -> Option<[u64; 4]> {
    if n[3] == 0 {
        return None;
    }
    if a[3] <= n[3] && b[3] <= n[3] {
        // Each operand is below 2n (n's top limb is nonzero), so one
        // subtraction reduces it, and one more reduces their sum.
        let reduce = |x: &[u64; 4]| if lt_4(x, n) { *x } else { sub_4(x, n) };
        let (s, carry) = add_4(&reduce(a), &reduce(b));
        return Some(if carry || !lt_4(&s, n) {
            sub_4(&s, n)
        } else {
            s
        });
    }
    // Larger operands (contracts add multiples of the modulus to avoid
    // negative values): divide the 257-bit sum, shifted, by `d`. Its part
    // above 256 bits fits a limb (the shift is below 64), far below `d`.
    let (s, carry) = add_4(a, b);
    // SAFETY: `d` is dropped before anything else reads the cache.
    let d = unsafe { cached_divisor(n) };
    let sh = d.shift;
    let lo = shl_4(&s, sh);
    let hi = [funnel_left(carry as u64, s[3], sh), 0, 0, 0];
    Some(shr_4(&d.rem_2by1(&hi, &lo), sh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use revm::primitives::alloy_primitives::U512;
    use revm::primitives::U256;

    /// The rare branches, counted per thread so a test can show it took
    /// them.
    #[derive(Clone, Copy)]
    pub(super) enum Path {
        /// [`Divisor::step`] with the window's top limbs equal to `d`'s.
        TopEqual,
        /// [`Divisor::step`] with the estimate one too large.
        AddBack,
        /// [`Divisor::rem_2by1`]'s final subtraction.
        Rem2by1Subtract,
    }

    thread_local! {
        static HITS: Cell<[u64; 3]> = const { Cell::new([0; 3]) };
    }

    pub(super) fn hit(p: Path) {
        HITS.with(|h| {
            let mut v = h.get();
            v[p as usize] += 1;
            h.set(v);
        });
    }

    fn hits() -> [u64; 3] {
        HITS.with(|h| h.get())
    }

    fn rng() -> impl Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(0x6d75_6c6d_6f64)
    }

    /// A limb biased toward the values carries and estimates turn on.
    fn limb(r: &mut impl Rng) -> u64 {
        match r.random_range(0..8) {
            0 => 0,
            1 => u64::MAX,
            2 => 1 << 63,
            3 => u64::MAX - r.random_range(0..4),
            4 => r.random_range(0..4),
            _ => r.random(),
        }
    }

    fn limbs<const N: usize>(r: &mut impl Rng) -> [u64; N] {
        std::array::from_fn(|_| limb(r))
    }

    /// A modulus of four limbs (top limb nonzero), with every shift.
    fn modulus(r: &mut impl Rng) -> [u64; 4] {
        let mut n: [u64; 4] = limbs(r);
        n[3] = (limb(r) | 1 << 63) >> r.random_range(0..64);
        n
    }

    fn u512(x: &[u64]) -> U512 {
        let mut l = [0u64; 8];
        l[..x.len()].copy_from_slice(x);
        U512::from_limbs(l)
    }

    fn low4(x: U512) -> [u64; 4] {
        let l = x.as_limbs();
        assert!(
            l[4..].iter().all(|&v| v == 0),
            "{x:x} has more than 256 bits"
        );
        [l[0], l[1], l[2], l[3]]
    }

    #[test]
    fn reciprocal_3by2_matches_definition() {
        let mut r = rng();
        let mut cases = vec![
            (1u64 << 63, 0u64),
            (1 << 63, 1),
            (1 << 63, u64::MAX),
            (u64::MAX, 0),
            (u64::MAX, u64::MAX),
            (u64::MAX, u64::MAX - 1),
            ((1 << 63) + 1, 0),
        ];
        cases.extend((0..20_000).map(|_| (limb(&mut r) | 1 << 63, limb(&mut r))));
        for (d1, d0) in cases {
            let d = U256::from_limbs([d0, d1, 0, 0]);
            let want = (U256::MAX >> 64) / d - (U256::from(1u8) << 64);
            assert_eq!(U256::from(reciprocal_3by2(d1, d0)), want, "{d1:x} {d0:x}");
        }
    }

    #[test]
    fn reciprocal_256_matches_definition() {
        let mut r = rng();
        let mut ns = vec![
            [0, 0, 0, 1 << 63],
            [1, 0, 0, 1 << 63],
            [u64::MAX; 4],
            [0, 0, 0, 1],
            [u64::MAX, u64::MAX, u64::MAX, 1],
            [0, 0, u64::MAX, 1 << 63],
            [u64::MAX, u64::MAX, 0, 1 << 63],
        ];
        ns.extend((0..5_000).map(|_| modulus(&mut r)));
        for n in ns {
            let div = Divisor::new(&n);
            assert_eq!(div.shift, n[3].leading_zeros());
            assert_eq!(
                U512::from_limbs(n_pad(&div.d)),
                u512(&n) << div.shift as usize
            );
            let want = U512::MAX / u512(&div.d) - (U512::from(1u8) << 256);
            assert_eq!(div.m, low4(want), "n = {n:x?}");
        }
    }

    fn n_pad(x: &[u64; 4]) -> [u64; 8] {
        let mut l = [0u64; 8];
        l[..4].copy_from_slice(x);
        l
    }

    /// `step` against a division, on windows built to reach each branch.
    #[test]
    fn step_matches_division() {
        let mut r = rng();
        let before = hits();
        for _ in 0..20_000 {
            let n = modulus(&mut r);
            let div = Divisor::new(&n);
            let d = div.d;
            let dd = u512(&d);
            let random = low4(u512(&limbs::<4>(&mut r)) % dd);
            // Below `d` with the top two limbs equal to `d`'s, when `d`'s
            // lower half is not zero.
            let (y, x) = (limb(&mut r), limb(&mut r));
            let equal_top = ((y, x) < (d[1], d[0])).then_some([x, y, d[2], d[3]]);
            let mut rems = vec![
                random,
                low4(dd - U512::from(1u8)),
                [0; 4],
                [0, 0, d[2], d[3]],
            ];
            rems.extend(equal_top);
            for rem in rems {
                if u512(&rem) >= dd {
                    continue;
                }
                for next in [limb(&mut r), 0, u64::MAX] {
                    let (q, got) = div.step(rem, next);
                    let w = (u512(&rem) << 64) + U512::from(next);
                    assert_eq!(U512::from(q), w / dd, "rem = {rem:x?}, next = {next:x}");
                    assert_eq!(u512(&got), w % dd, "rem = {rem:x?}, next = {next:x}");
                }
            }
        }
        let after = hits();
        assert!(after[Path::TopEqual as usize] > before[Path::TopEqual as usize]);
        assert!(after[Path::AddBack as usize] > before[Path::AddBack as usize]);
    }

    /// The square against the product with itself and a 512-bit
    /// multiplication: limbs biased toward all ones, where the doubled cross
    /// products carry into every limb.
    #[test]
    fn sqr_4_is_the_product_with_itself() {
        let mut r = rng();
        let mut xs = vec![
            [u64::MAX; 4],
            [0; 4],
            [1 << 63; 4],
            [u64::MAX, 0, u64::MAX, 0],
        ];
        xs.extend((0..200_000).map(|_| limbs::<4>(&mut r)));
        for a in xs {
            let want = u512(&a) * u512(&a);
            assert_eq!(sqr_4(&a), *want.as_limbs(), "{a:x?}");
            assert_eq!(sqr_4(&a), mul_4x4(&a, &a), "{a:x?}");
        }
    }

    /// `rem_512` against a 512-bit division, on numerators built to reach
    /// each branch, and the branches counted.
    #[test]
    fn rem_512_matches_division() {
        let mut r = rng();
        let before = hits();
        for _ in 0..20_000 {
            let n = modulus(&mut r);
            let div = Divisor::new(&n);
            let nn = u512(&n);
            let s = div.shift as usize;
            let y_max = U512::from(1u8) << (256 - s);
            let ps = vec![
                // Random.
                u512(&limbs::<8>(&mut r)),
                // Just below n * 2^256: the largest quotients, with a
                // remainder near `n` after the first step.
                (nn << 256) - U512::from(1u8),
                (nn << 256) - (u512(&limbs::<4>(&mut r)) % y_max) - U512::from(1u8),
                (nn << 256) - y_max,
                // A product of reduced operands, the largest one.
                (nn - U512::from(1u8)) * (nn - U512::from(1u8)),
                // Top limbs equal to the divisor's, lower ones small: the
                // 3-by-2 estimate is one too large.
                u512(&[limb(&mut r), 0, 0, 0, 0, 0, div.d[2], div.d[3]]) >> s,
                u512(&[limb(&mut r), 0, 0, 0, 0, div.d[2], div.d[3], 0]) >> s,
                U512::MAX,
                U512::ZERO,
            ];
            for p in ps {
                let got = div.rem_512(p.as_limbs());
                assert_eq!(u512(&got), p % nn, "p = {p:x}, n = {n:x?}");
            }
        }
        // Its one long-division step never sees the top limbs equal to
        // `d`'s (the numerator's top limb is below 2^shift).
        assert!(hits()[Path::AddBack as usize] > before[Path::AddBack as usize]);
    }

    /// `rem_2by1` against a 512-bit division, including the numerators just
    /// below `d * 2^256` where its final correction is taken.
    #[test]
    fn rem_2by1_matches_division() {
        let mut r = rng();
        let before = hits()[Path::Rem2by1Subtract as usize];
        for _ in 0..20_000 {
            let mut n = modulus(&mut r);
            n[3] |= 1 << 63;
            let div = Divisor::new(&n);
            let d = u512(&div.d);
            let rand_hi = low4(u512(&limbs::<4>(&mut r)) % d);
            for hi in [
                low4(d - U512::from(1u8)),
                low4(d - U512::from(2u8)),
                rand_hi,
                [0; 4],
            ] {
                for lo in [[u64::MAX; 4], limbs(&mut r), [0; 4], div.d] {
                    let got = div.rem_2by1(&hi, &lo);
                    let p = (u512(&hi) << 256) + u512(&lo);
                    assert_eq!(u512(&got), p % d, "hi = {hi:x?}, lo = {lo:x?}, d = {d:x}");
                }
            }
        }
        assert!(hits()[Path::Rem2by1Subtract as usize] > before);
    }
}
