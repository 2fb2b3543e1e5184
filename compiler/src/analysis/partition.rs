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

use super::Analysis;

#[derive(Clone, Debug)]
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

impl Partition {
    /// Fills parts with whole trees in block order (code of one source
    /// function tends to be contiguous, and so do its loops) until each
    /// holds at least `budget` instructions (trees are never split, so a
    /// part can be larger).
    pub(crate) fn new(
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
                size[t] += a.weight(b);
                todo.extend(children[b].iter().copied());
            }
        }
        // Trees fill parts in block order: code of one source function
        // tends to be contiguous, and so do its loops. (A breadth-first walk
        // over trees linked by static edges and return addresses was tried:
        // burntpix +5%, snailtracer -5%, onchain-lm-v2 -48%.)
        let mut part_of_tree = vec![0; roots.len()];
        let mut heads: Vec<Vec<usize>> = Vec::new();
        let mut filled = budget;
        for (t, &h) in roots.iter().enumerate() {
            if filled >= budget {
                heads.push(Vec::new());
                filled = 0;
            }
            part_of_tree[t] = heads.len() - 1;
            heads.last_mut().unwrap().push(h);
            filled += size[t];
        }
        let part_of: Vec<usize> = tree_of
            .iter()
            .map(|&t| part_of_tree.get(t).copied().unwrap_or(usize::MAX))
            .collect();
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
        let mut outside: Vec<usize> = (0..n).filter(|&b| external[b]).collect();
        outside.sort_by_key(|&b| (part_of[b], b));
        let mut entry_of = vec![None; n];
        for (e, &b) in outside.iter().enumerate() {
            entry_of[b] = Some(e as u32);
        }
        let entries = outside.len() as u32;
        Self {
            part_of,
            heads,
            external,
            entry_of,
            entries,
        }
    }

    /// The blocks of part `k`, in block order.
    pub(crate) fn members(&self, k: usize) -> Vec<usize> {
        (0..self.part_of.len())
            .filter(|&b| self.part_of[b] == k)
            .collect()
    }

    /// The shard of each part: up to `count` contiguous runs of parts, cut
    /// where the running instruction count crosses a multiple of the
    /// average; shards left empty by uneven parts are dropped. Returns the
    /// shard of each part and the number of shards.
    pub(crate) fn shards(&self, a: &Analysis, count: usize) -> (Vec<usize>, usize) {
        let mut sizes = vec![0usize; self.heads.len()];
        for (b, &k) in self.part_of.iter().enumerate() {
            if let Some(s) = sizes.get_mut(k) {
                *s += a.weight(b);
            }
        }
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
