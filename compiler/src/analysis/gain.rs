//! Whether compiled code can pay for itself on a contract at all.
//!
//! Entering compiled code has a fixed cost per frame segment (setting up the
//! context, the entry and part prologues, handing the frame back), about
//! what the interpreter spends on a few dozen simple instructions, and every
//! runtime call from compiled code adds a little. Code that can loop earns
//! that back on its first iterations; loop-free code runs each instruction
//! at most once, so if it is short the native run can only lose. Minimal
//! proxies (EIP-1167 clones, 45 bytes) and the system contracts of EIP-2935
//! and EIP-4788 are that shape, and they are among the most called
//! contracts on mainnet.

use super::{Analysis, JumpTarget, Terminator};

/// Loop-free code that executes fewer instructions than this stays
/// interpreted where contracts are picked for compilation (hot-contract
/// compilation, `bench`, `replay`'s selection). Measured on `bench`'s
/// contract fixtures (Intel Xeon, family 6 model 207), natively against
/// interpreted: `push0_proxy` (23 instructions, one DELEGATECALL) 0.87x,
/// `eip2935` (45) 0.92x, `eip4788` (59) 1.00x; `counter` (128, with
/// dynamic jumps) 1.04x.
pub const MIN_NATIVE_RUN: usize = 64;

impl Analysis {
    /// The most instructions one frame of this code can execute, over all
    /// its segments, when that is bounded: no reachable dynamic jump and no
    /// static jump backwards, so no instruction runs twice. `None`: the
    /// code may loop.
    pub fn bounded_run(&self) -> Option<usize> {
        if self.has_dynamic_jumps {
            return None;
        }
        let mut n = 0;
        for b in self.blocks.iter().filter(|b| b.reachable) {
            if let Terminator::Jump(JumpTarget::Static(t))
            | Terminator::JumpI(JumpTarget::Static(t)) = b.term
            {
                // A static target starts a block, so it is never inside
                // the jumping block: at or before its start is a loop.
                if t <= b.start_pc {
                    return None;
                }
            }
            n += b.end - b.first;
        }
        Some(n)
    }
}

/// Why code [`too_short`] found to run at most `n` instructions stays
/// interpreted, for every place that reports it.
pub fn too_short_why(n: usize) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!(
        "loop-free, at most {n} instruction{s} per frame: too short for compiled code to pay its entry"
    )
}

/// `Some(n)` when `code` is loop-free and executes at most `n` instructions,
/// fewer than `min_run`: compiled code cannot pay for its entry there.
/// `min_run` 0 never refuses.
pub fn too_short(code: &[u8], min_run: usize) -> Option<usize> {
    if min_run == 0 {
        return None;
    }
    Analysis::new(code).bounded_run().filter(|&n| n < min_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn a_minimal_proxy_is_too_short() {
        // EIP-1167's runtime code, delegating to 0xbebe...be.
        let proxy = bytes(
            "363d3d373d3d3d363d73bebebebebebebebebebebebebebebebebebebebe5af43d82803e903d91602b57fd5bf3",
        );
        let n = Analysis::new(&proxy).bounded_run().unwrap();
        assert!(n < MIN_NATIVE_RUN, "{n}");
        assert_eq!(too_short(&proxy, MIN_NATIVE_RUN), Some(n));
        assert_eq!(too_short(&proxy, 0), None);
    }

    #[test]
    fn loops_and_dynamic_jumps_are_never_too_short() {
        // JUMPDEST PUSH1 0 JUMP: a backward static jump.
        assert_eq!(Analysis::new(&bytes("5b600056")).bounded_run(), None);
        // PUSH1 0 CALLDATALOAD PUSH1 6 JUMPI JUMPDEST STOP: forward only.
        let fwd = bytes("6000356006575b00");
        assert!(Analysis::new(&fwd).bounded_run().is_some());
        // PUSH1 0 CALLDATALOAD JUMP JUMPDEST STOP: the target is dynamic.
        assert_eq!(Analysis::new(&bytes("600035565b00")).bounded_run(), None);
        assert_eq!(too_short(&bytes("5b600056"), MIN_NATIVE_RUN), None);
    }

    #[test]
    fn long_loop_free_code_is_compiled() {
        // 40 x (PUSH1 1 POP) STOP: 81 instructions, no jump.
        let code = bytes(&format!("{}00", "600150".repeat(40)));
        assert_eq!(Analysis::new(&code).bounded_run(), Some(81));
        assert_eq!(too_short(&code, MIN_NATIVE_RUN), None);
    }
}
