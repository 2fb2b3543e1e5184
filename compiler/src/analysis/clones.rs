//! Copies of internal functions on the paths that call them, so that
//! their returns are static jumps.
//!
//! Solidity calls an internal function by pushing the return address,
//! then the arguments, and jumping to the function; the function returns
//! with a JUMP to that address. Compiled as it stands, the call is a jump
//! into a block every caller enters (a join: its stack arrives as phis
//! and the words below them through memory), and the return is a dynamic
//! jump, to a block the dispatch may enter (which takes its whole stack
//! from memory). So each call writes the caller's live stack words to the
//! EVM stack in memory and the return reads them back: in burntpix's hot
//! loop, ten words around each call to a three-block array accessor.
//!
//! This pass follows each such call: from the calling block it walks the
//! callee's blocks with the constants of the stack (the analysis's
//! [`BlockStack`], exact for pushed and folded constants). A dynamic jump
//! whose target is a constant JUMPDEST on that path is a return resolved:
//! it becomes a static jump, and the block it returns to is on the path
//! too (which goes on while the stack holds return addresses, through
//! further calls). The blocks on the way to a resolved return, the blocks
//! returned to, and the blocks only they enter are copied for this call.
//! Every copy has one predecessor, so the virtual stack flows through the
//! call and the return as through straight-line code. A copy is a block
//! like any other (the original's instructions, gas and checks; its own
//! constants and stack bounds); the originals stay for the calls not
//! copied and for the dispatch. In burntpix, the snailtracer fixture and
//! curve this took a quarter off the native time (benches/README.md, "Call
//! paths copied").
//!
//! What is copied is bounded, so that compile time stays linear:
//! - a path is at most [`PATH_INSTS`] instructions (small helpers: checked
//!   arithmetic, array access, getters), and the walk stops at a loop (a
//!   block already on the path with the same return addresses; the same
//!   block with others is the function called again), at a CALL/CREATE
//!   (the frame resumes in the original block), and where no return
//!   address is left;
//! - a path that would leave the original of a block it copies with a
//!   predecessor fewer (a block only the copied one entered, left
//!   uncopied: the loop body of a callee whose first iteration was
//!   copied) is not copied: that block would become a join, its stack
//!   through memory, on every iteration;
//! - the shortest paths are copied first, then the calls made by the
//!   copies themselves (a block returned to that calls again), up to
//!   [`COPIED_SHARE`] of the contract's reachable instructions;
//! - contracts of more than `plan::LARGE_CONTRACT_INSTS` instructions get
//!   none.

use super::values::{BlockStack, Val};
use super::{Analysis, JumpTarget, Terminator};
use crate::revm_api::U256;

/// Most instructions copied on one call's path: paths of 48 and more ran
/// burntpix and the snailtracer fixture slower than paths of 24 (larger
/// functions, their values spilled), and 16 left out some of their hot
/// helpers.
pub(super) const PATH_INSTS: usize = 24;

/// Most instructions copied in one contract, as a share of its reachable
/// instructions (percent), and at least [`MIN_COPIED`].
pub(super) const COPIED_SHARE: usize = 50;

/// Copies every contract may make whatever its size.
const MIN_COPIED: usize = 256;

/// How a block continues into one of its successors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// Falls into the next block (`Block::next`).
    Next,
    /// Jumps to a static target (`Block::jump_to`).
    Jump,
    /// A return this pass resolved (`Block::jump_to`).
    Return,
}

/// One block on a call's path, before anything is copied.
struct Node {
    original: usize,
    /// The return addresses on the stack it is entered with, top first.
    returns: Vec<U256>,
    /// The node it is entered from (`None`: the calling block), and how.
    parent: Option<usize>,
    edge: Edge,
    /// The return this block's dynamic jump resolved to, if any.
    resolved: Option<u32>,
    children: Vec<usize>,
}

/// Copies the call paths of `a` (see the module documentation); whether
/// any was copied, in which case reachability must be marked again.
pub(super) fn copy_call_paths(a: &mut Analysis) -> bool {
    // Large contracts are cut into small parts for their compile time,
    // which copies would add to (Seaport +17%, onchain-lm-v2's largest
    // +50%) without running them faster: their calls are host-bound or
    // cross parts anyway.
    if !a.has_dynamic_jumps || a.insts.len() > super::plan::LARGE_CONTRACT_INSTS {
        return false;
    }
    let originals = a.blocks.len();
    let reachable_insts: usize = a
        .blocks
        .iter()
        .filter(|b| b.reachable)
        .map(|b| b.end - b.first)
        .sum();
    let mut budget = (reachable_insts * COPIED_SHARE / 100).max(MIN_COPIED);
    let g = Original {
        single: a.single_predecessors(),
        edges: a.blocks.iter().map(|b| (b.next, b.jump_to)).collect(),
    };
    // Every call's path first, then the cheapest copied first: the small
    // helpers (checked arithmetic, array access) are what loops call.
    // Then the calls that the copies make in turn (a block returned to
    // that calls again, past the end of its path), round by round.
    let mut callers = 0..originals;
    let mut copied = false;
    while !callers.is_empty() {
        let mut paths: Vec<(usize, usize, Vec<Node>, Vec<bool>)> = callers
            .filter_map(|caller| {
                let (nodes, keep) = call_path(a, &g, caller)?;
                let size = nodes
                    .iter()
                    .zip(&keep)
                    .filter(|(_, &k)| k)
                    .map(|(n, _)| a.blocks[n.original].end - a.blocks[n.original].first)
                    .sum();
                Some((size, caller, nodes, keep))
            })
            .collect();
        paths.sort_by_key(|p| (p.0, p.1));
        let made = a.blocks.len();
        for (size, caller, nodes, keep) in paths {
            if size > budget {
                continue;
            }
            budget -= size;
            copied = true;
            let mut copy_of_node = vec![usize::MAX; nodes.len()];
            for (i, node) in nodes.iter().enumerate() {
                if !keep[i] {
                    continue;
                }
                let copy = copy_block(a, &g, &nodes, i);
                copy_of_node[i] = copy;
                let from = node.parent.map_or(caller, |p| copy_of_node[p]);
                match node.edge {
                    Edge::Next => a.blocks[from].next = Some(copy),
                    Edge::Jump | Edge::Return => a.blocks[from].jump_to = Some(copy),
                }
            }
        }
        callers = made..a.blocks.len();
    }
    copied
}

/// The path of the call ending block `caller`, if it is one whose callee
/// returns to where the path knows: its nodes (parents before children)
/// and which of them to copy.
fn call_path(a: &Analysis, g: &Original, caller: usize) -> Option<(Vec<Node>, Vec<bool>)> {
    let single = &g.single;
    let blk = &a.blocks[caller];
    if !blk.reachable || !matches!(blk.term, Terminator::Jump(JumpTarget::Static(_))) {
        return None;
    }
    let mut st = BlockStack::default();
    for inst in blk.insts(a) {
        st.apply(inst);
    }
    if !holds_return_address(a, &st) {
        return None;
    }
    // A copy's call whose callee was copied on the copy's own path is
    // done already.
    let callee = blk.jump_to.filter(|&f| a.blocks[f].clone_of.is_none())?;
    let mut nodes: Vec<Node> = Vec::new();
    let mut work = vec![(callee, None, Edge::Jump, st)];
    let mut left = PATH_INSTS;
    while let Some((original, parent, edge, entry)) = work.pop() {
        let size = a.blocks[original].end - a.blocks[original].first;
        let returns = return_addresses(a, &entry);
        if size > left
            || !a.blocks[original].reachable
            || on_path(&nodes, caller, parent, original, &returns)
        {
            continue;
        }
        left -= size;
        let i = nodes.len();
        let (resolved, next) = successors(a, g, original, entry);
        nodes.push(Node {
            original,
            returns,
            parent,
            edge,
            resolved,
            children: Vec::new(),
        });
        if let Some(p) = parent {
            nodes[p].children.push(i);
        }
        work.extend(
            next.into_iter()
                .map(|(to, edge, st)| (to, Some(i), edge, st)),
        );
    }
    // Useful: a resolved return at or below the node. Kept (copied): the
    // useful nodes, the block each resolved return goes to, and the
    // blocks a kept block was the only way into (left to the original,
    // they would become joins, their stack through memory).
    let mut useful = vec![false; nodes.len()];
    for i in (0..nodes.len()).rev() {
        useful[i] = nodes[i].resolved.is_some() || nodes[i].children.iter().any(|&c| useful[c]);
    }
    if !useful.first().copied().unwrap_or(false) {
        return None;
    }
    let mut keep = vec![false; nodes.len()];
    for i in 0..nodes.len() {
        keep[i] = match nodes[i].parent {
            None => true,
            Some(p) => {
                keep[p]
                    && (useful[i]
                        || nodes[i].edge == Edge::Return
                        || single[nodes[i].original] == Some(nodes[p].original))
            }
        };
    }
    // A kept block falling or jumping into a block it was the only way
    // into, left to the original: that block would become a join, for
    // every path into it (in a loop whose first iteration was copied and
    // body not, on each iteration). A path that would do it is not copied.
    for (node, _) in nodes.iter().zip(&keep).filter(|(_, &k)| k) {
        let copied = |s: usize| {
            node.children
                .iter()
                .any(|&c| keep[c] && nodes[c].original == s)
        };
        if g.successors(a, node.original)
            .any(|s| single[s] == Some(node.original) && !copied(s))
        {
            return None;
        }
    }
    Some((nodes, keep))
}

/// The original blocks' graph, as it was before any edge was rewired to a
/// copy (a calling block's jump goes to its path's copy): what every path
/// walks.
struct Original {
    /// The only predecessor of each block ([`Analysis::single_predecessors`]).
    single: Vec<Option<usize>>,
    /// Each block's `(next, jump_to)`.
    edges: Vec<(Option<usize>, Option<usize>)>,
}

impl Original {
    /// [`Analysis::static_successors`] over these edges.
    fn successors(&self, a: &Analysis, b: usize) -> impl Iterator<Item = usize> {
        let (next, jump_to) = self.edges[b];
        super::successors_by(a.blocks[b].term, next, jump_to)
    }
}

/// Appends a copy of the block of node `i`: its original's edges, its
/// resolved return as a static jump to the original continuation (the
/// edges into copies are set as those are made).
fn copy_block(a: &mut Analysis, g: &Original, nodes: &[Node], i: usize) -> usize {
    let original = nodes[i].original;
    let mut b = a.blocks[original].clone();
    // The original's edges before a calling block's jump was rewired.
    (b.next, b.jump_to) = g.edges[original];
    if let Some(pc) = nodes[i].resolved {
        b.term = match b.term {
            Terminator::Jump(_) => Terminator::Jump(JumpTarget::Static(pc)),
            _ => Terminator::JumpI(JumpTarget::Static(pc)),
        };
        b.jump_to = Some(a.jumpdests[&pc]);
    }
    // The runtime resumes a frame in the original block.
    b.is_resume = false;
    b.clone_of = Some(original);
    a.blocks.push(b);
    a.blocks.len() - 1
}

/// Whether `original` is already on the path from the calling block to
/// node `parent` with the same return addresses: a loop, where the path
/// stops. (With others it is a function called again, a call of its own.)
fn on_path(
    nodes: &[Node],
    caller: usize,
    mut parent: Option<usize>,
    original: usize,
    returns: &[U256],
) -> bool {
    while let Some(p) = parent {
        if nodes[p].original == original && nodes[p].returns == returns {
            return true;
        }
        parent = nodes[p].parent;
    }
    caller == original
}

/// Runs block `original` on `entry`: the return its dynamic jump takes
/// when the target is a constant JUMPDEST starting a block (exact: the
/// constant is what the stack holds on this path), and the successors the
/// path follows, with the stack they are entered with.
fn successors(
    a: &Analysis,
    g: &Original,
    original: usize,
    mut st: BlockStack,
) -> (Option<u32>, Vec<(usize, Edge, BlockStack)>) {
    let blk = &a.blocks[original];
    let (next, jump_to) = g.edges[original];
    let jumps = matches!(blk.term, Terminator::Jump(_) | Terminator::JumpI(_));
    let insts = blk.insts(a);
    let (body, last) = insts.split_at(insts.len() - jumps as usize);
    for inst in body {
        st.apply(inst);
    }
    let target = st.peek(0);
    for inst in last {
        st.apply(inst);
    }
    let dynamic = matches!(
        blk.term,
        Terminator::Jump(JumpTarget::Dynamic) | Terminator::JumpI(JumpTarget::Dynamic)
    );
    let resolved = match (dynamic, target) {
        (true, Val::Const(t)) => u32::try_from(t)
            .ok()
            .filter(|pc| a.jumpdests.contains_key(pc)),
        _ => None,
    };
    let mut edges = Vec::new();
    if let Some(pc) = resolved {
        edges.push((a.jumpdests[&pc], Edge::Return));
    } else if let Some(to) = jump_to {
        edges.push((to, Edge::Jump));
    }
    if matches!(blk.term, Terminator::Fallthrough | Terminator::JumpI(_)) {
        edges.extend(next.map(|to| (to, Edge::Next)));
    }
    let carries = holds_return_address(a, &st);
    let next = edges
        .into_iter()
        .filter(|&(to, edge)| edge == Edge::Return || carries || g.single[to] == Some(original))
        .map(|(to, edge)| (to, edge, st.clone()))
        .collect();
    (resolved, next)
}

/// Whether `c` is a return address: a JUMPDEST the dispatch enters
/// (pushed, not jumped to at once).
fn is_return_address(a: &Analysis, c: U256) -> bool {
    u32::try_from(c)
        .ok()
        .and_then(|pc| a.jumpdests.get(&pc))
        .is_some_and(|&b| a.is_dynamic_target(b))
}

/// Whether the stack holds a return address.
fn holds_return_address(a: &Analysis, st: &BlockStack) -> bool {
    st.constants().any(|c| is_return_address(a, c))
}

/// The return addresses on the stack, top first.
fn return_addresses(a: &Analysis, st: &BlockStack) -> Vec<U256> {
    let mut r: Vec<U256> = st
        .constants()
        .filter(|&c| is_return_address(a, c))
        .collect();
    r.reverse();
    r
}
