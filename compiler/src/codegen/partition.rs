//! Assignment of blocks to LLVM functions.
//!
//! LLVM's register allocator and its live-interval analyses grow faster
//! than linearly with the size of a function. One function per contract
//! made large contracts cost seconds at the optimising code generator, so
//! the contract is cut into *parts* of bounded size, each its own function.
//! A part holds whole inheritance trees (a block that starts from its
//! predecessor's virtual stack is always in that predecessor's part), so
//! every edge between parts already passes the stack through memory; it
//! becomes a tail call that carries gas and stack length in registers.

use crate::analysis::Analysis;

/// EVM instructions per part, unless `EVMC_PART_INSTS` says otherwise
/// (for experiments). Trees are never split, so a part can be larger.
pub const DEFAULT_PART_INSTS: usize = 1500;

pub(crate) struct Partition {
    /// Part of each reachable block.
    pub part_of: Vec<usize>,
    /// Tree roots of each part, in block order.
    pub heads: Vec<Vec<usize>>,
    /// Whether a block is entered from outside its part: the frame's entry
    /// or a resume point (from the runtime), a dynamic-jump target (from
    /// the dispatch), or the target of a static edge from another part.
    pub external: Vec<bool>,
    /// Entry number of each external block: dense, and contiguous within a
    /// part, so that the switches entering a part and taking a dynamic
    /// jump compile to jump tables.
    pub entry_of: Vec<Option<u32>>,
    /// Number of entries.
    pub entries: u32,
}

pub(crate) fn part_budget() -> usize {
    std::env::var("EVMC_PART_INSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_PART_INSTS)
}

impl Partition {
    /// Fills parts with whole trees in block order (code of one source
    /// function tends to be contiguous, and so do its loops) until each
    /// holds at least `budget` instructions.
    pub fn new(
        a: &Analysis,
        preds: &[Option<usize>],
        children: &[Vec<usize>],
        budget: usize,
    ) -> Self {
        let n = a.blocks.len();
        // Trees: root, members, size.
        let roots: Vec<usize> = (0..n)
            .filter(|&h| a.blocks[h].reachable && preds[h].is_none())
            .collect();
        let mut tree_of = vec![usize::MAX; n];
        let mut size = vec![0usize; roots.len()];
        for (t, &h) in roots.iter().enumerate() {
            let mut todo = vec![h];
            while let Some(b) = todo.pop() {
                tree_of[b] = t;
                size[t] += a.blocks[b].end - a.blocks[b].first;
                todo.extend(children[b].iter().copied());
            }
        }
        let order = Self::order(a, &roots, &tree_of, &size, budget);
        let mut part_of = vec![usize::MAX; n];
        let mut heads: Vec<Vec<usize>> = Vec::new();
        let mut filled = budget;
        for t in order {
            if filled >= budget {
                heads.push(Vec::new());
                filled = 0;
            }
            let part = heads.len() - 1;
            heads[part].push(roots[t]);
            filled += size[t];
        }
        for heads_k in &mut heads {
            heads_k.sort_unstable();
        }
        for (k, hs) in heads.iter().enumerate() {
            for &h in hs {
                let t = tree_of[h];
                for b in 0..n {
                    if tree_of[b] == t {
                        part_of[b] = k;
                    }
                }
            }
        }
        let mut external = vec![false; n];
        for b in 0..n {
            if !a.blocks[b].reachable {
                continue;
            }
            external[b] |= b == 0 || a.blocks[b].is_resume || a.is_dynamic_target(b);
            for s in a.static_successors(b) {
                if part_of[s] != part_of[b] {
                    external[s] = true;
                }
            }
        }
        let mut entry_of = vec![None; n];
        let mut entries = 0;
        for part in 0..heads.len() {
            for b in (0..n).filter(|&b| external[b] && part_of[b] == part) {
                entry_of[b] = Some(entries);
                entries += 1;
            }
        }
        Self {
            part_of,
            heads,
            external,
            entry_of,
            entries,
        }
    }

    /// The order in which trees fill parts. Block order by default; with
    /// `EVMC_PARTITION=graph`, a breadth-first walk over the trees linked
    /// by static edges and by pushed return addresses (the tree that pushes
    /// a return address and the tree it returns to), so that callers,
    /// callees and return points tend to share a part.
    fn order(
        a: &Analysis,
        roots: &[usize],
        tree_of: &[usize],
        size: &[usize],
        budget: usize,
    ) -> Vec<usize> {
        let graph = std::env::var("EVMC_PARTITION").is_ok_and(|v| v == "graph");
        if !graph {
            return (0..roots.len()).collect();
        }
        let n = a.blocks.len();
        let mut adj: Vec<Vec<usize>> = vec![Vec::new(); roots.len()];
        for b in (0..n).filter(|&b| a.blocks[b].reachable) {
            let t = tree_of[b];
            for s in a.static_successors(b) {
                if tree_of[s] != t {
                    adj[t].push(tree_of[s]);
                    adj[tree_of[s]].push(t);
                }
            }
            for inst in a.blocks[b].insts(a) {
                let pushed = u32::try_from(inst.imm)
                    .ok()
                    .filter(|pc| a.pushed_targets.contains(pc));
                if let Some(&r) = pushed.and_then(|pc| a.jumpdests.get(&pc)) {
                    if a.blocks[r].reachable && tree_of[r] != t {
                        adj[t].push(tree_of[r]);
                        adj[tree_of[r]].push(t);
                    }
                }
            }
        }
        let mut placed = vec![false; roots.len()];
        let mut order = Vec::with_capacity(roots.len());
        for start in 0..roots.len() {
            if placed[start] {
                continue;
            }
            let mut filled = 0;
            let mut queue = std::collections::VecDeque::from([start]);
            while let Some(t) = queue.pop_front() {
                if placed[t] || (filled > 0 && filled + size[t] > budget) {
                    continue;
                }
                placed[t] = true;
                order.push(t);
                filled += size[t];
                queue.extend(adj[t].iter().copied().filter(|&u| !placed[u]));
            }
        }
        order
    }

    /// The shard of each part: up to `count` contiguous runs of parts, cut
    /// where the running instruction count crosses a multiple of the
    /// average; shards left empty by uneven parts are dropped. Returns the
    /// shard of each part and the number of shards.
    pub fn shards(&self, a: &Analysis, count: usize) -> (Vec<usize>, usize) {
        let size = |k: usize| -> usize {
            (0..a.blocks.len())
                .filter(|&b| self.part_of[b] == k)
                .map(|b| a.blocks[b].end - a.blocks[b].first)
                .sum()
        };
        let sizes: Vec<usize> = (0..self.heads.len()).map(size).collect();
        let total: usize = sizes.iter().sum::<usize>().max(1);
        let count = count.clamp(1, self.heads.len().max(1));
        let mut before = 0;
        let mut shard_of: Vec<usize> = sizes
            .iter()
            .map(|&s| {
                let shard = ((before + s / 2) * count / total).min(count - 1);
                before += s;
                shard
            })
            .collect();
        // Renumber densely (the runs are contiguous and ascending).
        let mut used = 0;
        let mut last = None;
        for s in shard_of.iter_mut() {
            if last != Some(*s) {
                last = Some(*s);
                used += 1;
            }
            *s = used - 1;
        }
        (shard_of, used.max(1))
    }
}
