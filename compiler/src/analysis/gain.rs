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

/// Loop-free code that executes fewer instructions than this per entry
/// into compiled code (the frame's start, and each resume after a CALL or
/// CREATE) stays interpreted where contracts are picked for compilation
/// (hot-contract compilation, `bench`, `replay`'s selection).
///
/// Measured on `bench`'s contract fixtures, natively against interpreted
/// (AMD EPYC family 25 model 17, 2026-12-06, three alternating rounds):
/// `eip2935` (45 instructions, one entry) 1.03-1.04x against 0.96-1.01x
/// interpreted, `eip4788` (59, one entry) 1.04x against 1.01x, and
/// `push0_proxy` (23 over two entries: its DELEGATECALL suspends the
/// frame) 0.97-0.99x against 1.00-1.01x. So a frame must run a few dozen
/// instructions per entry; a proxy's dozen do not pay. An earlier bound
/// of 64 instructions per frame, whatever its entries, came from an
/// Intel Xeon (family 6 model 207) before entering compiled code got
/// cheaper: `push0_proxy` 0.87x, `eip2935` 0.92x, `eip4788` 1.00x there.
/// Where a contract compiled under this bound still loses, the safety net
/// runs it interpreted (`evmc_runtime::safety_net`).
pub const MIN_NATIVE_RUN: usize = 32;

/// The most a loop-free frame can do: instructions, and entries into
/// compiled code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundedRun {
    /// Instructions, over all its segments.
    pub instructions: usize,
    /// The frame's start, and one resume per CALL/CREATE it can reach.
    pub entries: usize,
}

impl Analysis {
    /// The most one frame of this code can execute, when that is bounded:
    /// no reachable dynamic jump and no static jump backwards, so no
    /// instruction runs twice. `None`: the code may loop.
    pub fn bounded_run(&self) -> Option<BoundedRun> {
        if self.has_dynamic_jumps {
            return None;
        }
        let mut run = BoundedRun {
            instructions: 0,
            entries: 1,
        };
        for b in self.blocks.iter().filter(|b| b.reachable) {
            match b.term {
                // A static target starts a block, so it is never inside
                // the jumping block: at or before its start is a loop.
                Terminator::Jump(JumpTarget::Static(t))
                | Terminator::JumpI(JumpTarget::Static(t))
                    if t <= b.start_pc =>
                {
                    return None
                }
                Terminator::Suspend => run.entries += 1,
                _ => {}
            }
            run.instructions += b.end - b.first;
        }
        Some(run)
    }
}

/// Why code [`too_short`] found bounded by `run` stays interpreted, for
/// every place that reports it.
pub fn too_short_why(run: BoundedRun) -> String {
    let n = run.instructions;
    let s = if n == 1 { "" } else { "s" };
    let (over, what) = match run.entries {
        1 => (String::new(), "entry"),
        e => (
            format!(" over {e} entries (one per CALL/CREATE resume)"),
            "entries",
        ),
    };
    format!(
        "loop-free, at most {n} instruction{s} per frame{over}: too short for compiled code to pay its {what}"
    )
}

/// The bound of `code`'s run when it is loop-free and executes fewer than
/// `min_run` instructions per entry into compiled code: compiled code
/// cannot pay for its entries there. `min_run` 0 never refuses.
pub fn too_short(code: &[u8], min_run: usize) -> Option<BoundedRun> {
    if min_run == 0 {
        return None;
    }
    Analysis::new(code)
        .bounded_run()
        .filter(|r| r.instructions < min_run.saturating_mul(r.entries))
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
        let run = Analysis::new(&proxy).bounded_run().unwrap();
        // The DELEGATECALL suspends the frame: entered twice.
        assert_eq!(run.entries, 2);
        assert!(run.instructions < 2 * MIN_NATIVE_RUN, "{run:?}");
        assert_eq!(too_short(&proxy, MIN_NATIVE_RUN), Some(run));
        assert!(too_short_why(run).contains("over 2 entries"));
        assert_eq!(too_short(&proxy, 0), None);
    }

    #[test]
    fn the_system_contracts_are_compiled() {
        // EIP-2935's and EIP-4788's runtime code: one entry, 45 and 59
        // instructions at most.
        let eip2935 = bytes(
            "3373fffffffffffffffffffffffffffffffffffffffe14604657602036036042575f35600143038111604257611fff81430311604257611fff9006545f5260205ff35b5f35611fff60014303065500",
        );
        let eip4788 = bytes(
            "3373fffffffffffffffffffffffffffffffffffffffe14604d57602036146024575f5ffd5b5f35801560495762001fff810690815414603c575f5ffd5b62001fff01545f5260205ff35b5f5ffd5b62001fff42064281555f359062001fff015500",
        );
        for code in [eip2935, eip4788] {
            let run = Analysis::new(&code).bounded_run().unwrap();
            assert_eq!(run.entries, 1);
            assert_eq!(too_short(&code, MIN_NATIVE_RUN), None, "{run:?}");
        }
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
    fn each_entry_needs_its_share_of_instructions() {
        // 20 x (PUSH1 1 POP) STOP: 41 instructions, one entry.
        let code = bytes(&format!("{}00", "600150".repeat(20)));
        let run = Analysis::new(&code).bounded_run().unwrap();
        assert_eq!((run.instructions, run.entries), (41, 1));
        assert_eq!(too_short(&code, MIN_NATIVE_RUN), None);
        // The same with a CALL in the middle (seven zero arguments): two
        // entries, 50 instructions, fewer than 32 each.
        let call = format!(
            "{}{}{}00",
            "600150".repeat(10),
            "5f".repeat(7) + "f150",
            "600150".repeat(10)
        );
        let run = Analysis::new(&bytes(&call)).bounded_run().unwrap();
        assert_eq!((run.instructions, run.entries), (50, 2));
        assert_eq!(too_short(&bytes(&call), MIN_NATIVE_RUN), Some(run));
        // 40 x (PUSH1 1 POP) STOP: 81 instructions.
        let long = bytes(&format!("{}00", "600150".repeat(40)));
        assert_eq!(too_short(&long, MIN_NATIVE_RUN), None);
    }
}
