//! The physical limit: the fibonacci and factorial programs of
//! `contracts/fibonacci-calldata.json` and `contracts/factorial.json`
//! written by hand in Rust over 256-bit words, with the programs' gas
//! accounting. A compiled contract cannot be expected to beat these.
//!
//! Both programs read `n` from calldata word 0, loop `n` times over a
//! three-word stack and return one word from memory. Gas is charged per
//! basic block, before the block runs, with the static costs of its
//! instructions; running out of gas fails the run, as it halts the EVM.

use ruint::aliases::U256;

/// Output and execution gas (the frame's, without intrinsic gas).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefOutcome {
    pub output: [u8; 32],
    pub gas_used: u64,
}

/// A hand-written program: calldata and gas limit in, outcome out (`None`:
/// out of gas).
pub type RefProgram = fn(&[u8], u64) -> Option<RefOutcome>;

/// The hand-written version of a contract fixture, by fixture name.
pub fn for_program(name: &str) -> Option<RefProgram> {
    match name {
        "fibonacci-calldata" => Some(fibonacci),
        "factorial" => Some(factorial),
        _ => None,
    }
}

/// Static gas of the blocks both programs share.
mod gas {
    /// `PUSH0 CALLDATALOAD PUSH0 PUSH1`.
    pub(super) const ENTRY: u64 = 2 + 3 + 2 + 3;
    /// `JUMPDEST DUP3 ISZERO PUSH1 JUMPI`.
    pub(super) const LOOP_TEST: u64 = 1 + 3 + 3 + 3 + 10;
    /// `JUMPDEST SWAP2 POP POP PUSH0 MSTORE PUSH1 PUSH0 RETURN`, plus the
    /// expansion of memory to one word.
    pub(super) const EXIT: u64 = 1 + 3 + 2 + 2 + 2 + 3 + 3 + 2 + 3;
    /// fibonacci's loop body: `DUP2 DUP2 ADD SWAP2 POP SWAP1 SWAP2 PUSH1
    /// SWAP1 SUB SWAP2 PUSH1 JUMP`.
    pub(super) const FIB_BODY: u64 = 3 + 3 + 3 + 3 + 2 + 3 + 3 + 3 + 3 + 3 + 3 + 3 + 8;
    /// factorial's loop body: `SWAP1 PUSH1 ADD DUP1 SWAP2 MUL SWAP2 PUSH1
    /// SWAP1 SUB SWAP2 PUSH1 JUMP`.
    pub(super) const FACT_BODY: u64 = 3 + 3 + 3 + 3 + 3 + 5 + 3 + 3 + 3 + 3 + 3 + 3 + 8;
}

struct Gas {
    limit: u64,
    left: u64,
}

impl Gas {
    fn new(limit: u64) -> Self {
        Self { limit, left: limit }
    }

    #[inline(always)]
    fn charge(&mut self, cost: u64) -> Option<()> {
        self.left = self.left.checked_sub(cost)?;
        Some(())
    }

    fn used(&self) -> u64 {
        self.limit - self.left
    }
}

/// `CALLDATALOAD(0)`: the first 32 bytes, zero-padded.
fn word0(calldata: &[u8]) -> U256 {
    let mut w = [0u8; 32];
    let n = calldata.len().min(32);
    w[..n].copy_from_slice(&calldata[..n]);
    U256::from_be_bytes(w)
}

/// `n == 0`, as one OR over the limbs: `U256::is_zero` goes through memory
/// into vector registers, and reloading the counter the loop just stored
/// stalls store forwarding on every iteration.
#[inline(always)]
fn is_zero(n: &U256) -> bool {
    let [a, b, c, d] = *n.as_limbs();
    a | b | c | d == 0
}

/// `(a, b) := (0, 1); repeat n: (a, b) := (b, a + b); return b`.
pub fn fibonacci(calldata: &[u8], gas_limit: u64) -> Option<RefOutcome> {
    let mut gas = Gas::new(gas_limit);
    gas.charge(gas::ENTRY)?;
    let mut n = word0(calldata);
    let (mut a, mut b) = (U256::ZERO, U256::from(1u8));
    loop {
        gas.charge(gas::LOOP_TEST)?;
        if is_zero(&n) {
            break;
        }
        gas.charge(gas::FIB_BODY)?;
        (a, b) = (b, a.wrapping_add(b));
        n = n.wrapping_sub(U256::from(1u8));
    }
    gas.charge(gas::EXIT)?;
    Some(RefOutcome {
        output: b.to_be_bytes(),
        gas_used: gas.used(),
    })
}

/// `(i, acc) := (0, 1); repeat n: i += 1; acc *= i; return acc`.
pub fn factorial(calldata: &[u8], gas_limit: u64) -> Option<RefOutcome> {
    let mut gas = Gas::new(gas_limit);
    gas.charge(gas::ENTRY)?;
    let mut n = word0(calldata);
    let (mut i, mut acc) = (U256::ZERO, U256::from(1u8));
    loop {
        gas.charge(gas::LOOP_TEST)?;
        if is_zero(&n) {
            break;
        }
        gas.charge(gas::FACT_BODY)?;
        i = i.wrapping_add(U256::from(1u8));
        acc = acc.wrapping_mul(i);
        n = n.wrapping_sub(U256::from(1u8));
    }
    gas.charge(gas::EXIT)?;
    Some(RefOutcome {
        output: acc.to_be_bytes(),
        gas_used: gas.used(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(x: u64) -> [u8; 32] {
        U256::from(x).to_be_bytes()
    }

    #[test]
    fn values_and_gas() {
        let f = fibonacci(&n(10), u64::MAX).unwrap();
        assert_eq!(U256::from_be_bytes(f.output), U256::from(89u8));
        assert_eq!(f.gas_used, 10 + 11 * 20 + 10 * 43 + 21);
        let f = factorial(&n(5), u64::MAX).unwrap();
        assert_eq!(U256::from_be_bytes(f.output), U256::from(120u8));
        assert_eq!(f.gas_used, 10 + 6 * 20 + 5 * 46 + 21);
        assert_eq!(fibonacci(&n(10), 10 + 11 * 20 + 10 * 43 + 20), None);
        // 2^256 wraps: 60! has more than 256 bits of which the low 56 are 0.
        let f = factorial(&n(60), u64::MAX).unwrap();
        assert_ne!(f.output, [0; 32]);
    }
}
