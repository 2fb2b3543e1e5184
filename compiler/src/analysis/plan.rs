//! What code generation decides about a contract before it emits anything:
//! which blocks inherit their predecessor's virtual stack, the stack bounds
//! each block checks, the cut into parts and shards, the entry numbers of
//! the jump table and which blocks take words as phis.
//!
//! It is computed once per compile and shared read-only by the threads that
//! emit the shards, so that they agree by construction.

use super::partition::Partition;
use super::Analysis;
use evmc_interface::STACK_LIMIT;

/// Most stack words a block receives as phis: enough for the loops and
/// joins of compiler-generated code, few enough that the edges into a
/// block do not load words it may not read.
const MAX_PHI_WORDS: i64 = 8;

/// EVM instructions per shard: a contract gets one shard per this many
/// instructions, up to the threads allowed.
const SHARD_INSTS: usize = 2000;

/// Contracts of more EVM instructions than this are cut into parts of a
/// quarter of the part size (see [`part_size`]).
pub const LARGE_CONTRACT_INSTS: usize = 10_000;

/// The part size for `analysis`: `part_insts`, or a quarter of it for a
/// contract above [`LARGE_CONTRACT_INSTS`]. LLVM's code generation costs
/// more than linearly in the size of a function, so smaller parts compile
/// faster (`EVMC_PART_INSTS` 1,500 → 400: Seaport 1.44-1.68 → 1.18 s,
/// memory_grow_mstore 2.3 → 1.7 s, the benchdata contracts over 1,000
/// instructions 12.5 → 9.6 s in all; 250 and 150 no faster). But every cut
/// can separate a hot internal function from its caller, whose return then
/// goes through the dispatch: burntpix ran 7% slower (4.3x → 4.0x) with
/// parts of 400 or 1,000 in every contract, and as fast as before with
/// only its contract of 15,000 instructions on small parts (the others,
/// of 2,700 and 4,900, compile in 0.4-0.6 s anyway). So only large contracts, where
/// the compile time is the problem, take small parts (benches/README.md,
/// "Part size of large contracts").
pub fn part_size(analysis: &Analysis, part_insts: usize) -> usize {
    let size = if analysis.weighted_len() > LARGE_CONTRACT_INSTS {
        part_insts / 4
    } else {
        part_insts
    };
    size.max(1)
}

/// Contracts of at most this many EVM instructions have their small loops
/// unrolled (see [`unrolls_loops`]).
pub const UNROLL_MAX_INSTS: usize = 2_000;

/// Whether the small loops of the contract are unrolled twice
/// (`backend::target::LOOP_PIPELINE`): only in small contracts, whose
/// compile time is tens of milliseconds either way. Unrolled loops are
/// more code to generate: with every contract up to 10,000 instructions,
/// onchain-lm-v2's largest contract compiled in 665 ms instead of 370 ms
/// and blake2b_shifts in 590 ms instead of 400 ms, neither running faster.
pub fn unrolls_loops(analysis: &Analysis) -> bool {
    analysis.insts.len() <= UNROLL_MAX_INSTS
}

/// The decisions code generation follows for one contract (see the module
/// documentation).
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    /// The analysis the plan is for.
    pub analysis: &'a Analysis,
    /// The only block each block is entered from, if any (see
    /// [`Analysis::single_predecessors`]): such a block starts from its
    /// predecessor's virtual stack, with no stack check of its own.
    pub(crate) preds: Vec<Option<usize>>,
    /// The blocks that inherit from each block: `preds` inverted. Each
    /// block without a predecessor roots a tree of them.
    pub(crate) children: Vec<Vec<usize>>,
    /// Entry-length bounds a block that others inherit from checks for all
    /// of them: `lower <= len <= upper` (see [`stack_bounds`]).
    pub(crate) bounds: Vec<(i64, i64)>,
    pub(crate) partition: Partition,
    /// For a block entered only by static edges of its own part (a loop
    /// header, a join, an internal function's entry): how many of its top
    /// stack words it receives as SSA values (phis) instead of through
    /// memory. 0 for all other blocks.
    pub(crate) phi_words: Vec<usize>,
    /// The shard of each part.
    pub(crate) shard_of: Vec<usize>,
    shards: usize,
}

impl<'a> Plan<'a> {
    /// The plan for parts of about `part_insts` EVM instructions (a
    /// quarter of that for a large contract: [`part_size`]), in at most
    /// `max_shards` shards (one per 2,000 instructions).
    pub fn new(analysis: &'a Analysis, part_insts: usize, max_shards: usize) -> Self {
        let part_insts = part_size(analysis, part_insts);
        let mut preds = analysis.single_predecessors();
        cap_trees(analysis, &mut preds, part_insts);
        let children = children_of(&preds);
        let bounds = stack_bounds(analysis, &preds, &children);
        let partition = Partition::new(analysis, &preds, &children, part_insts);
        let phi_words = phi_words(analysis, &preds, &partition, &bounds);
        let (shard_of, shards) = shards(analysis, &partition, max_shards);
        Self {
            analysis,
            preds,
            children,
            bounds,
            partition,
            phi_words,
            shard_of,
            shards,
        }
    }

    /// Number of shards, each built as its own module: `0..shards()`.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Number of parts (LLVM functions holding blocks).
    pub fn parts(&self) -> usize {
        self.partition.heads.len()
    }

    /// The parts shard `shard` defines, in order.
    pub fn parts_of_shard(&self, shard: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.parts()).filter(move |&k| self.shard_of[k] == shard)
    }

    /// Whether block `to` starts from the virtual stack block `from` ends
    /// with.
    pub(crate) fn inherits(&self, from: usize, to: usize) -> bool {
        self.preds.get(to) == Some(&Some(from))
    }

    /// Whether the edge from `from` to `to` passes stack words as values
    /// (inheritance or phis) rather than through memory.
    pub(crate) fn takes_stack(&self, from: usize, to: usize) -> bool {
        self.inherits(from, to) || self.takes_phis(from, to)
    }

    /// Whether the edge from `from` to `to` passes `to`'s top words as
    /// phis: a join of the same part (from another part, the stack goes
    /// through memory and `to`'s part entry loads them).
    pub(crate) fn takes_phis(&self, from: usize, to: usize) -> bool {
        self.phi_words.get(to).is_some_and(|&k| k > 0)
            && self.partition.part_of[to] == self.partition.part_of[from]
    }

    /// Whether the jump table's elements need 32 bits: every entry number
    /// plus one, and a sentinel, must fit.
    pub(crate) fn wide_jump_table(&self) -> bool {
        self.partition.entries as u64 + 2 >= u16::MAX as u64
    }
}

/// The shard of each part and the number of shards: one per
/// [`SHARD_INSTS`] instructions, at most `max_shards`, at most one per part.
/// The count is that of the non-empty shards of a split into as many as
/// wanted, and the split is then made for that count; should that split
/// leave a shard empty in turn, the count shrinks again.
fn shards(a: &Analysis, partition: &Partition, max_shards: usize) -> (Vec<usize>, usize) {
    let wanted = (a.weighted_len() / SHARD_INSTS).clamp(1, max_shards.max(1));
    if wanted == 1 {
        return (vec![0; partition.heads.len()], 1);
    }
    let mut count = partition.shards(a, wanted).1;
    loop {
        let (shard_of, used) = partition.shards(a, count);
        if used == count {
            return (shard_of, count);
        }
        count = used;
    }
}

/// Cuts every inheritance tree into trees of about `budget` instructions
/// at most: walking each tree from its root, a block that would take its
/// tree past the budget starts a tree of its own (it no longer inherits:
/// it checks its stack bounds and takes its words as phis or from memory).
/// A part holds whole trees, so without the cut one chain of blocks that
/// each have one predecessor (thousands of pushed JUMPDESTs, a long run of
/// static jumps) became one function of any size, and the code generator
/// is superlinear in the size of a function.
fn cap_trees(a: &Analysis, preds: &mut [Option<usize>], budget: usize) {
    let children = children_of(preds);
    let roots: Vec<usize> = (0..preds.len())
        .filter(|&h| preds[h].is_none() && a.blocks[h].reachable)
        .collect();
    let mut tree_size = vec![0usize; preds.len()];
    for h in roots {
        // (block, root of its tree)
        let mut todo = vec![(h, h)];
        while let Some((b, mut root)) = todo.pop() {
            let size = a.weight(b);
            if b != root && tree_size[root] + size > budget {
                preds[b] = None;
                root = b;
            }
            tree_size[root] += size;
            todo.extend(children[b].iter().map(|&c| (c, root)));
        }
    }
}

pub(super) fn children_of(preds: &[Option<usize>]) -> Vec<Vec<usize>> {
    let mut children = vec![Vec::new(); preds.len()];
    for (s, p) in preds.iter().enumerate() {
        if let Some(p) = p {
            children[*p].push(s);
        }
    }
    children
}

/// The entry-length bounds of each block that does not inherit a virtual
/// stack, covering every block that inherits from it, directly or not (their
/// entry lengths differ from its own by constants). A failed check deopts at
/// the start of that block, where memory holds the stack, and the
/// interpreter takes over from there: exact, even when the block that
/// cannot run lies on a path the frame would not have taken.
fn stack_bounds(a: &Analysis, preds: &[Option<usize>], children: &[Vec<usize>]) -> Vec<(i64, i64)> {
    let n = a.blocks.len();
    let limit = STACK_LIMIT as i64;
    let mut bounds = vec![(0i64, limit); n];
    for h in 0..n {
        if preds[h].is_some() || !a.blocks[h].reachable {
            continue;
        }
        let (mut lower, mut upper) = (0i64, limit);
        // (block, its entry length minus the head's)
        let mut todo = vec![(h, 0i64)];
        while let Some((b, d)) = todo.pop() {
            let blk = &a.blocks[b];
            lower = lower.max(blk.min_in as i64 - d);
            upper = upper.min(limit - blk.max_growth as i64 - d);
            let next = d + blk.delta as i64;
            todo.extend(children[b].iter().map(|&s| (s, next)));
        }
        bounds[h] = (lower, upper);
    }
    bounds
}

/// See [`Plan::phi_words`]: as many words as the block and the blocks that
/// inherit from it read below its entry height (the lower bound of its
/// stack check), at most [`MAX_PHI_WORDS`].
fn phi_words(
    a: &Analysis,
    preds: &[Option<usize>],
    partition: &Partition,
    bounds: &[(i64, i64)],
) -> Vec<usize> {
    let n = a.blocks.len();
    // Blocks a static edge of their own part enters.
    let mut entered_inside = vec![false; n];
    for b in (0..n).filter(|&b| a.blocks[b].reachable) {
        for s in a.static_successors(b) {
            entered_inside[s] |= partition.part_of[s] == partition.part_of[b];
        }
    }
    (0..n)
        .map(|b| {
            let blk = &a.blocks[b];
            let joins = blk.reachable && preds[b].is_none();
            // A join that other parts also enter (a tail call, its stack in
            // memory) takes phis from the edges of its part all the same:
            // its part's entry loads them from memory for the others. Not
            // the frame's entry, a resume point or a dynamic-jump target,
            // which the entry and the dispatch enter with the stack in
            // memory.
            let takes = match partition.external[b] {
                false => joins,
                true => {
                    joins
                        && entered_inside[b]
                        && b != 0
                        && !blk.is_resume
                        && !a.is_dynamic_target(b)
                }
            };
            match takes {
                true => bounds[b].0.clamp(0, MAX_PHI_WORDS) as usize,
                false => 0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyze(hex_code: &str) -> Analysis {
        Analysis::new(&hex::decode(hex_code).unwrap())
    }

    /// PUSH0 CALLDATALOAD; loop: JUMPDEST DUP1 ISZERO PUSH1 15 JUMPI;
    /// PUSH1 1 SWAP1 SUB PUSH1 2 JUMP; end: JUMPDEST STOP.
    const COUNTED_LOOP: &str = "5f355b8015600f57600190036002565b00";

    #[test]
    fn loop_header_checks_its_body_and_takes_its_counter_as_a_phi() {
        let a = analyze(COUNTED_LOOP);
        let plan = Plan::new(&a, 1500, 1);
        // The loop header has two predecessors (entry, back edge); the
        // body and the exit inherit from it. (Block 4 is the implicit STOP
        // at the end of the code, unreachable.)
        assert!(!a.blocks[4].reachable);
        assert_eq!(plan.preds, vec![None, None, Some(1), Some(1), None]);
        assert_eq!(plan.children[1], vec![2, 3]);
        // The entry pushes one word; the header, its body and the exit
        // read one word below the header's entry and grow by two at most.
        assert_eq!(plan.bounds[0], (0, 1023));
        assert_eq!(plan.bounds[1], (1, 1022));
        assert_eq!(plan.phi_words, vec![0, 1, 0, 0, 0]);
        assert_eq!(plan.parts(), 1);
        assert_eq!(plan.partition.heads, vec![vec![0, 1]]);
        assert_eq!(
            plan.partition.entry_of,
            vec![Some(0), None, None, None, None]
        );
        assert_eq!(plan.partition.entries, 1);
        assert!(plan.inherits(1, 2) && !plan.inherits(2, 1));
        assert!(plan.takes_stack(0, 1) && plan.takes_stack(1, 3));
        assert!(!plan.takes_stack(1, 0));
    }

    #[test]
    fn a_block_entered_from_another_part_takes_no_phis() {
        let a = analyze(COUNTED_LOOP);
        // Trees capped at one instruction: every block roots its own tree
        // and fills its own part.
        let plan = Plan::new(&a, 1, 1);
        assert_eq!(plan.preds, vec![None; 5]);
        assert_eq!(
            plan.partition.heads,
            vec![vec![0], vec![1], vec![2], vec![3]]
        );
        assert_eq!(plan.partition.part_of[..4], [0, 1, 2, 3]);
        assert_eq!(plan.partition.external, vec![true, true, true, true, false]);
        assert_eq!(
            plan.partition.entry_of,
            vec![Some(0), Some(1), Some(2), Some(3), None]
        );
        assert_eq!(plan.phi_words, vec![0; 5]);
        assert_eq!(plan.partition.members(1), vec![1]);
    }

    #[test]
    fn a_loop_header_entered_from_another_part_takes_phis_from_its_own() {
        // COUNTED_LOOP behind 14 more DUP1 POP in its first block (30
        // instructions): with parts of 20, that block fills a part, the
        // loop (its header's tree, 12) takes the next.
        let code = format!("5f35{}5b8015602b57600190036 01e565b00", "8050".repeat(14));
        let a = analyze(&code.replace(' ', ""));
        let plan = Plan::new(&a, 20, 1);
        assert_eq!(plan.partition.heads, vec![vec![0], vec![1]]);
        assert!(plan.partition.external[1]);
        // Its back edge passes the counter as a phi; the edge from the
        // entry's part goes through memory, and the loop's part entry
        // loads the word.
        assert_eq!(plan.phi_words[1], 1);
        assert!(plan.takes_phis(2, 1) && !plan.takes_phis(0, 1));
    }

    #[test]
    fn chains_of_single_predecessors_are_cut_at_the_part_size() {
        // JUMPDEST PUSH2 <its pc> POP, 100 times: each JUMPDEST is
        // pushed, so each unit is a block of 3 instructions (the last one
        // 4, with the implicit STOP) that only the one before enters.
        let code: String = (0..100).map(|i| format!("5b61{:04x}50", i * 5)).collect();
        let a = analyze(&code);
        assert_eq!(a.blocks.len(), 100);
        let plan = Plan::new(&a, 31, 1);
        let roots: Vec<usize> = (0..100).filter(|&b| plan.preds[b].is_none()).collect();
        assert_eq!(roots, (0..100).step_by(10).collect::<Vec<_>>());
        // Parts fill with whole trees until they reach the budget.
        assert_eq!(plan.parts(), 5);
        // Uncapped, the chain is one tree and one part.
        let plan = Plan::new(&a, 1_000_000, 1);
        assert_eq!(plan.parts(), 1);
        assert_eq!(plan.preds.iter().filter(|p| p.is_none()).count(), 1);
    }

    #[test]
    fn stack_bounds_that_no_height_meets_are_empty() {
        // POP with nothing below, then 1,024 pushes: no entry height fits.
        let code = format!("50{}00", "5f".repeat(1025));
        let a = analyze(&code);
        let plan = Plan::new(&a, 1500, 1);
        let (lower, upper) = plan.bounds[0];
        assert_eq!(lower, 1);
        assert!(upper < lower, "{lower}..={upper}");
    }

    #[test]
    fn dynamic_targets_are_numbered_entries_and_never_inherit() {
        // PUSH1 5 CALLDATALOAD JUMP; INVALID; 5: JUMPDEST STOP. The pushed
        // 5 makes that JUMPDEST a target of the dynamic jump.
        let a = analyze("60053556fe5b00");
        let plan = Plan::new(&a, 1500, 1);
        let target = a.jumpdests[&5];
        assert!(a.is_dynamic_target(target));
        assert_eq!(plan.preds[target], None);
        assert!(plan.partition.external[target]);
        assert!(plan.partition.entry_of[target].is_some());
        assert_eq!(plan.phi_words[target], 0);
        assert!(!plan.wide_jump_table());
    }

    /// `n` blocks after calls (resume points, so each roots its own tree)
    /// of `len` instructions each: PUSH0 x7, CALL, POP.
    fn calls(n: usize) -> Analysis {
        let seg = format!("{}f150", "5f".repeat(7));
        analyze(&seg.repeat(n))
    }

    #[test]
    fn shards_follow_the_instruction_count_and_the_threads() {
        let a = calls(1000); // 9,000 instructions
        assert_eq!(Plan::new(&a, 1500, 1).shards(), 1);
        assert_eq!(Plan::new(&a, 1500, 2).shards(), 2);
        assert_eq!(Plan::new(&a, 1500, 8).shards(), 4);
        // One part cannot be split.
        assert_eq!(Plan::new(&a, usize::MAX, 4).shards(), 1);
        assert_eq!(Plan::new(&calls(10), 1500, 4).shards(), 1);
    }

    #[test]
    fn large_contracts_are_cut_into_smaller_parts() {
        let small = calls(1111); // 9,999 instructions
        let large = calls(1112); // 10,008
        assert_eq!(part_size(&small, 1500), 1500);
        assert_eq!(part_size(&large, 1500), 375);
        assert_eq!(part_size(&large, 3), 1);
        let parts = |a: &Analysis| Plan::new(a, 1500, 1).partition.heads.len();
        assert!(
            parts(&large) >= 3 * parts(&small),
            "{} vs {}",
            parts(&large),
            parts(&small)
        );
    }

    #[test]
    fn every_shard_holds_a_contiguous_run_of_parts() {
        // Uneven trees: one long block, then many small ones.
        let long = analyze(&format!("{}{}", "5f50".repeat(3000), "5ff150".repeat(900)));
        for a in [calls(1000), long] {
            for part_insts in [1, 50, 150, 400, 1500, 5000] {
                for threads in 1..=4 {
                    let plan = Plan::new(&a, part_insts, threads);
                    assert!(plan.shard_of.windows(2).all(|w| w[0] <= w[1]));
                    for s in 0..plan.shards() {
                        assert!(plan.parts_of_shard(s).next().is_some());
                    }
                    assert_eq!(plan.shard_of.last(), Some(&(plan.shards() - 1)));
                }
            }
        }
    }
}
