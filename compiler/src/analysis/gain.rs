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
//! contracts on mainnet. So is code whose loops all go through a CALL or
//! CREATE with little between them: each iteration leaves compiled code
//! and enters it again (the 2016 state-bloat contracts of mainnet block
//! 2,462,997, 26 instructions per entry, ran that block 7% slower
//! natively).

use super::{Analysis, JumpTarget, Terminator};

/// Loop-free code that executes fewer instructions than this per entry
/// into compiled code (the frame's start, and each resume after a CALL or
/// CREATE), and code whose every loop goes through a CALL/CREATE with
/// fewer than this between two entries, stays interpreted where contracts
/// are picked for compilation (hot-contract compilation, `bench`,
/// `replay`'s selection).
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

/// The most a frame can do natively, when the code bounds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundedRun {
    /// Loop-free code: instructions over all of a frame's segments. Code
    /// whose every loop goes through a CALL/CREATE (`per_entry`): the
    /// most instructions between two entries.
    pub instructions: usize,
    /// Loop-free code: the frame's start, and one resume per CALL/CREATE it
    /// can reach. Code that loops through calls: 1 (`instructions` is
    /// per entry already).
    pub entries: usize,
    /// Whether the code loops, only ever through a CALL/CREATE: a frame
    /// may run any number of segments, each at most `instructions` long.
    pub per_entry: bool,
}

impl Analysis {
    /// The most one frame of this code can execute, when that is bounded:
    /// no reachable dynamic jump and no static jump backwards, so no
    /// instruction runs twice; or, for code whose loops all go through a
    /// CALL/CREATE, the most one segment between entries can execute
    /// (see [`Analysis::longest_segment`]). `None`: the code may loop
    /// without leaving compiled code.
    pub fn bounded_run(&self) -> Option<BoundedRun> {
        if self.has_dynamic_jumps {
            return None;
        }
        let mut run = BoundedRun {
            instructions: 0,
            entries: 1,
            per_entry: false,
        };
        for b in self.blocks.iter().filter(|b| b.reachable) {
            match b.term {
                // A static target starts a block, so it is never inside
                // the jumping block: at or before its start is a loop.
                Terminator::Jump(JumpTarget::Static(t))
                | Terminator::JumpI(JumpTarget::Static(t))
                    if t <= b.start_pc =>
                {
                    return self.longest_segment().map(|instructions| BoundedRun {
                        instructions,
                        entries: 1,
                        per_entry: true,
                    });
                }
                Terminator::Suspend => run.entries += 1,
                _ => {}
            }
            run.instructions += b.end - b.first;
        }
        Some(run)
    }

    /// The most instructions one run of compiled code can execute between
    /// entering (the frame's start, or a resume after a CALL/CREATE) and
    /// leaving (the frame's end, or the next CALL/CREATE), when every loop
    /// of the code goes through a CALL/CREATE: the longest path of the
    /// static control flow with the edges out of suspending blocks
    /// removed, which is then acyclic. `None` when a loop does not suspend
    /// (or a jump is dynamic). Linear: Kahn's order over the reachable
    /// blocks, then the longest path back to front.
    fn longest_segment(&self) -> Option<usize> {
        if self.has_dynamic_jumps {
            return None;
        }
        let n = self.blocks.len();
        // Within a segment a suspending block has no successor: the frame
        // leaves compiled code there and re-enters at the resume block.
        let succ = |b: usize| {
            let blk = &self.blocks[b];
            let through = blk.term != Terminator::Suspend;
            self.static_successors(b).filter(move |_| through)
        };
        let mut preds = vec![0usize; n];
        for b in (0..n).filter(|&b| self.blocks[b].reachable) {
            for s in succ(b) {
                preds[s] += 1;
            }
        }
        let mut order: Vec<usize> = (0..n)
            .filter(|&b| self.blocks[b].reachable && preds[b] == 0)
            .collect();
        let mut i = 0;
        while i < order.len() {
            for s in succ(order[i]) {
                preds[s] -= 1;
                if preds[s] == 0 {
                    order.push(s);
                }
            }
            i += 1;
        }
        if order.len() != self.blocks.iter().filter(|b| b.reachable).count() {
            // A loop that never suspends: its blocks never reach zero.
            return None;
        }
        let mut longest = vec![0usize; n];
        for &b in order.iter().rev() {
            let blk = &self.blocks[b];
            longest[b] = (blk.end - blk.first) + succ(b).map(|s| longest[s]).max().unwrap_or(0);
        }
        order.iter().map(|&b| longest[b]).max()
    }
}

/// Why code [`too_short`] found bounded by `run` stays interpreted, for
/// every place that reports it.
pub fn too_short_why(run: BoundedRun) -> String {
    let n = run.instructions;
    let s = if n == 1 { "" } else { "s" };
    if run.per_entry {
        return format!(
            "loops only through CALL/CREATE, at most {n} instruction{s} between entries into compiled code: too short for compiled code to pay its entries"
        );
    }
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

/// The bound of `code`'s run when it executes fewer than `min_run`
/// instructions per entry into compiled code (on average over a loop-free
/// frame's entries, or in every segment of code that loops only through
/// CALL/CREATE): compiled code cannot pay for its entries there. `min_run`
/// 0 never refuses.
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

    #[test]
    fn loops_through_calls_are_bounded_per_entry() {
        // JUMPDEST, seven zero arguments, CALL, POP, PUSH1 0 JUMP: each
        // iteration suspends, so every segment is short: 12 instructions
        // at most (the resume's POP PUSH1 JUMP, then the JUMPDEST, the
        // call's seven arguments and CALL).
        let code = bytes(&format!("5b{}f150600056", "5f".repeat(7)));
        let run = Analysis::new(&code).bounded_run().unwrap();
        assert!(run.per_entry);
        assert_eq!((run.instructions, run.entries), (12, 1));
        assert_eq!(too_short(&code, MIN_NATIVE_RUN), Some(run));
        assert!(too_short_why(run).contains("loops only through CALL/CREATE"));
        // The same loop with 40 x (PUSH1 1 POP) after each call: a segment
        // of more than 80 instructions pays for its entry.
        let long = bytes(&format!(
            "5b{}f150{}600056",
            "5f".repeat(7),
            "600150".repeat(40)
        ));
        let run = Analysis::new(&long).bounded_run().unwrap();
        assert!(run.per_entry && run.instructions > 80, "{run:?}");
        assert_eq!(too_short(&long, MIN_NATIVE_RUN), None);
        // A loop inside a segment (a JUMPI back to itself before the call)
        // is unbounded.
        let inner = bytes(&format!("5b600035600057{}f150600056", "5f".repeat(7)));
        assert_eq!(Analysis::new(&inner).bounded_run(), None);
    }
}
