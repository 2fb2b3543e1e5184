use super::*;
use crate::revm_api::U256;

fn analyze(hex_code: &str) -> Analysis {
    Analysis::new(&hex::decode(hex_code).unwrap())
}

/// Without the copies of call paths, which resolve the returns of these
/// small programs statically.
fn analyze_uncopied(hex_code: &str) -> Analysis {
    Analysis::without_copies(&hex::decode(hex_code).unwrap())
}

#[test]
fn jumpdest_inside_push_data_is_not_a_destination() {
    // PUSH2 0x5b5b JUMPDEST
    let a = analyze("615b5b5b");
    assert_eq!(a.all_jumpdests.iter().copied().collect::<Vec<_>>(), vec![3]);
}

#[test]
fn only_pushed_jumpdests_start_blocks() {
    // JUMPDEST JUMPDEST PUSH1 5 POP; 5: JUMPDEST JUMPDEST STOP: pc 5 is
    // pushed, 1 and 6 are not (pc 0 starts the code anyway).
    let a = analyze("5b5b6005505b5b00");
    let all: Vec<u32> = a.all_jumpdests.iter().copied().collect();
    assert_eq!(all, vec![0, 1, 5, 6]);
    assert_eq!(a.jumpdests.keys().copied().collect::<Vec<_>>(), vec![0, 5]);
    // The two runs, then the implicit STOP.
    assert_eq!(a.blocks.len(), 3);
    assert_eq!(a.blocks[0].end - a.blocks[0].first, 4);
    assert_eq!(a.blocks[1].start_pc, 5);
    assert_eq!(a.blocks[1].end - a.blocks[1].first, 3);
}

#[test]
fn truncated_push_reads_zeros() {
    // PUSH3 0x01 0x02 <end>
    let a = analyze("620102");
    assert_eq!(a.insts[0].imm, U256::from(0x010200));
    assert_eq!(a.insts[1].pc, 4);
    assert_eq!(a.insts[1].op, op::STOP);
}

#[test]
fn empty_code_is_a_single_stop() {
    let a = analyze("");
    assert_eq!(a.blocks.len(), 1);
    assert_eq!(a.blocks[0].term, Terminator::Stop);
}

#[test]
fn static_jump_through_dup_and_swap() {
    // PUSH1 6 PUSH1 1 SWAP1 DUP1 POP JUMP ; JUMPDEST STOP
    // PUSH1 7, PUSH1 1, SWAP1, DUP1, POP, JUMP, INVALID, JUMPDEST, STOP
    let a = analyze("600760019080505600fe5b00");
    assert_eq!(a.blocks[0].term, Terminator::Jump(JumpTarget::Invalid));
    let a = analyze("6009600190805056fe5b00");
    assert_eq!(a.blocks[0].term, Terminator::Jump(JumpTarget::Static(9)));
    assert!(!a.blocks[1].reachable);
    assert!(a.blocks[2].reachable);
}

#[test]
fn stack_bounds_per_block() {
    // ADD ADD then five PUSH1: needs 3 on entry, ends 3 above it.
    let a = analyze("010160016001600160016001");
    let b = &a.blocks[0];
    assert_eq!(b.min_in, 3);
    assert_eq!(b.delta, 3);
    assert_eq!(b.max_growth, 3);
}

#[test]
fn call_starts_a_resume_block() {
    // 7 x PUSH0, CALL, POP, STOP
    let a = analyze("5f5f5f5f5f5f5ff15000");
    assert_eq!(a.blocks[0].term, Terminator::Suspend);
    assert!(a.blocks[1].is_resume && a.blocks[1].reachable);
}

#[test]
fn dynamic_jump_reaches_pushed_and_unpushed_jumpdests() {
    // PUSH1 8 POP CALLDATALOAD(0) JUMP ; 6: JUMPDEST STOP ; 8: JUMPDEST STOP
    // 8 is pushed (a return address); 6 only a computed target reaches.
    let a = analyze("6008505f35565b005b00");
    assert!(a.has_dynamic_jumps);
    assert_eq!(
        a.dynamic_targets.iter().copied().collect::<Vec<_>>(),
        vec![6, 8]
    );
    assert!(a.is_dynamic_target(a.jumpdests[&6]));
    assert!(a.is_dynamic_target(a.jumpdests[&8]));
    assert!(a.blocks[a.jumpdests[&6]].reachable);
}

#[test]
fn a_pushed_jump_target_consumed_at_once_is_not_a_dynamic_target() {
    // PUSH1 3 JUMP ; 3: JUMPDEST CALLDATALOAD(0) JUMP ; 7: JUMPDEST STOP
    let a = analyze("6003565b5f35565b00");
    assert!(a.has_dynamic_jumps);
    assert!(!a.is_dynamic_target(a.jumpdests[&3]));
    assert_eq!(
        a.dynamic_targets.iter().copied().collect::<Vec<_>>(),
        vec![7],
        "only a computed jump reaches 7"
    );
}

#[test]
fn unpushed_jumpdests_start_blocks_only_when_a_jump_may_compute_them() {
    // PUSH1 6 JUMP JUMPDEST JUMPDEST ; 6: JUMPDEST STOP: every jump is a
    // pushed constant, so the unpushed JUMPDESTs stay inside blocks.
    let a = analyze("6006565b5b5b5b00");
    assert!(!a.has_dynamic_jumps);
    assert!(a.dynamic_targets.is_empty());
    // 3 starts a block because a JUMP ends the one before.
    assert_eq!(a.jumpdests.keys().copied().collect::<Vec<_>>(), vec![3, 6]);

    // A return through the stack is dynamic but not computed:
    // 0: PUSH1 7 PUSH1 9 JUMP ; 5: JUMPDEST STOP (unpushed)
    // 7: JUMPDEST STOP ; 9: JUMPDEST JUMP (returns to what it was handed)
    let a = analyze_uncopied("60076009565b005b005b56");
    assert!(a.has_dynamic_jumps);
    assert_eq!(
        a.dynamic_targets.iter().copied().collect::<Vec<_>>(),
        vec![7]
    );
    assert!(!a.is_dynamic_target(a.jumpdests[&5]));
}

#[test]
fn constant_arithmetic_on_a_jump_target_is_folded() {
    // PUSH4 0xffffffff PUSH1 9 AND JUMP ; 9: JUMPDEST STOP
    let a = analyze("63ffffffff600916565b00");
    assert_eq!(a.blocks[0].term, Terminator::Jump(JumpTarget::Static(9)));
    assert!(!a.has_dynamic_jumps);
    // PUSH1 4 PUSH1 4 ADD JUMP: 8 is no JUMPDEST.
    let a = analyze("600460040156005b00");
    assert_eq!(a.blocks[0].term, Terminator::Jump(JumpTarget::Invalid));
}

#[test]
fn jumpdests_of_copied_code_are_no_computed_targets() {
    // 0: PUSH1 5 PUSH1 11 PUSH0 CODECOPY (copies [11, 16)),
    // 6: CALLDATALOAD(0) JUMP (computed) ; 9: JUMPDEST STOP
    // 11: STOP JUMPDEST STOP STOP STOP (copied) ; 16: JUMPDEST STOP
    let a = analyze("6005600b5f395f35565b00005b0000005b00");
    let targets: Vec<u32> = a.dynamic_targets.iter().copied().collect();
    assert_eq!(targets, vec![9, 16]);
}

#[test]
fn past_the_cap_unpushed_jumpdests_are_left_to_the_interpreter() {
    // CALLDATALOAD(0) JUMP, then JUMPDESTs: each one a block and a target
    // up to the cap, none past it (the run is cut only by its length).
    let n = super::MAX_COMPUTED_TARGETS;
    let a = analyze(&format!("5f3556{}00", "5b".repeat(n)));
    assert_eq!(a.dynamic_targets.len(), n);
    assert_eq!(a.blocks.len(), n + 2, "the entry, {n} JUMPDESTs, the end");
    let a = analyze(&format!("5f3556{}00", "5b".repeat(n + 1)));
    assert!(a.dynamic_targets.is_empty());
    assert_eq!(a.blocks.len(), 1 + (n + 1).div_ceil(MAX_BLOCK_INSTS) + 1);
}

#[test]
fn snapshot_small_program() {
    // A loop: counter from calldata down to zero.
    let a = analyze("5f355b8015600f57600190036002565b00");
    insta::assert_snapshot!(a.to_string());
}

#[test]
fn single_predecessors_follow_static_edges_only() {
    // 0: PUSH1 1 PUSH1 8 JUMPI      (block 0)
    // 5: PUSH1 2 POP                (block 1: fallthrough of the JUMPI)
    // 8: JUMPDEST STOP              (block 2: JUMPI target and fallthrough of 1)
    // 10: JUMPDEST STOP             (block 3: unreachable)
    let a = analyze("60016008576002505b005b00");
    let preds = a.single_predecessors();
    assert_eq!(preds[0], None, "the entry block");
    assert_eq!(preds[1], Some(0), "only the JUMPI falls through into it");
    assert_eq!(preds[2], None, "entered from two blocks");
    assert_eq!(preds[3], None, "unreachable");

    // The same with a dynamic jump somewhere: JUMPDESTs are open.
    // 0: CALLDATASIZE JUMP  2: JUMPDEST PUSH1 0 PUSH1 7 JUMPI  7: JUMPDEST STOP
    let a = analyze("36565b60006007575b00");
    let preds = a.single_predecessors();
    assert!(a.has_dynamic_jumps);
    assert!(preds.iter().all(Option::is_none), "{preds:?}");
}

#[test]
fn returns_are_guessed_from_the_continuation_of_their_caller() {
    // 00 main: PUSH1 r1 PUSH1 F JUMP
    // 05 r1:   JUMPDEST PUSH1 r3 PUSH1 r3 PUSH1 G JUMP   (G with [r3, r3])
    // 0d r3:   JUMPDEST POP STOP
    // 10 F:    JUMPDEST PUSH1 g1 PUSH1 G JUMP            (G with [r1, g1])
    // 16 g1:   JUMPDEST JUMP                             (F returns to r1)
    // 18 G:    JUMPDEST JUMP                             (to r3 or g1)
    let a = analyze_uncopied(
        "6005601056 5b600d600d601856 5b5000 5b6016601856 5b56 5b56"
            .replace(' ', "")
            .as_str(),
    );
    let block = |pc: u32| a.jumpdests[&pc];
    let guessed = |pc: u32| {
        let mut pcs: Vec<u32> = a.jump_guesses[block(pc)]
            .iter()
            .map(|&t| a.blocks[t].start_pc)
            .collect();
        pcs.sort();
        pcs
    };
    // G is entered at one height from both callers: its return may go to
    // either.
    assert_eq!(guessed(0x18), vec![0x0d, 0x16]);
    // F's return continues on F's own stack from when it pushed g1, not on
    // G's, whose second slot also held r3: only r1.
    assert_eq!(guessed(0x16), vec![0x05]);
    // Blocks that do not jump dynamically get nothing.
    assert!(a.jump_guesses[block(0x05)].is_empty());
}

#[test]
fn constants_reach_the_blocks_a_long_run_is_cut_into() {
    // 0: PUSH1 7, 2: PUSH1 3, 4: PUSH0 CALLDATALOAD, 6: DUP1 POP pairs past
    // two block-length cuts, then DUP3 SIGNEXTEND PUSH0 CALLDATALOAD PUSH2 t
    // JUMPI STOP, t: JUMPDEST STOP.
    let pairs = "8050".repeat(MAX_BLOCK_INSTS);
    let t = 6 + pairs.len() / 2 + 9;
    let a = analyze(&format!("600760035f35{pairs}820b5f3561{t:04x}57005b00"));
    let block = |pc: usize| {
        a.blocks
            .iter()
            .rposition(|b| b.start_pc as usize <= pc)
            .unwrap()
    };
    let consts = |b: usize| -> Vec<(u16, u64)> {
        a.entry_consts[b]
            .iter()
            .map(|&(d, v)| (d, v.to::<u64>()))
            .collect()
    };
    assert!(consts(0).is_empty());
    // The blocks the pairs are cut into (instruction k at pc k + 2): 3
    // and 7 below the calldata word.
    let (first_cut, second_cut) = (block(MAX_BLOCK_INSTS + 2), block(2 * MAX_BLOCK_INSTS + 2));
    assert!(0 < first_cut && first_cut < second_cut);
    for b in [first_cut, second_cut] {
        assert!(!a.blocks[b].is_jumpdest);
        assert_eq!(consts(b), vec![(1, 3), (2, 7)]);
    }
    // Both ways out of the JUMPI, its operands consumed: the fall-through
    // and the JUMPDEST only this jump reaches.
    assert_eq!(consts(block(t - 1)), vec![(1, 3), (2, 7)]);
    assert!(a.blocks[block(t)].is_jumpdest);
    assert_eq!(consts(block(t)), vec![(1, 3), (2, 7)]);
}

#[test]
fn a_block_entered_from_two_places_knows_no_constants() {
    // PUSH1 5, 2: JUMPDEST PUSH1 9 PUSH0 CALLDATALOAD PUSH1 2 JUMPI STOP:
    // the loop header at 2 is entered by falling in and by the jump, with
    // the stack one word higher each time round.
    let a = analyze("60055b60095f3560025700");
    let header = a.blocks.iter().position(|b| b.start_pc == 2).unwrap();
    assert!(a.entry_consts[header].is_empty());
    let stop = a.blocks.iter().position(|b| b.start_pc == 10).unwrap();
    assert_eq!(a.entry_consts[stop].len(), 1, "{:?}", a.entry_consts[stop]);
}

#[test]
fn memory_the_first_block_stores_to_covers_constant_accesses_after_it() {
    // PUSH1 0x80 PUSH1 0x40 MSTORE PUSH1 9 JUMP STOP
    // 9: JUMPDEST PUSH1 0x40 MLOAD PUSH1 0x41 MLOAD PUSH1 0x5f MSTORE8
    //    CALLDATALOAD MLOAD PUSH1 0x40 MLOAD STOP
    let a = analyze("6080604052600956005b604051604151605f53355160405160605100");
    assert_eq!(a.memory_floor, 0x60);
    let covered: Vec<(u32, u32)> = a.covered_accesses.iter().map(|(&k, &v)| (k, v)).collect();
    // MLOAD 0x40 (pc 12), MSTORE8 0x5f (pc 18), the last MLOAD 0x40 (pc
    // 23) and, once MLOAD 0x41 has grown memory to 0x80, MLOAD 0x60 (pc
    // 26); not MLOAD 0x41 (it ends past 0x60), nor the MLOAD at an offset
    // known only at run time, nor the first block's own MSTORE.
    assert_eq!(
        covered,
        vec![(12, 0x40), (18, 0x5f), (23, 0x40), (26, 0x60)]
    );
}

#[test]
fn no_floor_without_a_constant_access_in_the_first_block() {
    // CALLDATALOAD MLOAD PUSH1 6 JUMP; 6: JUMPDEST PUSH1 0 MLOAD STOP
    let a = analyze("3551600656005b60005100");
    assert_eq!(a.memory_floor, 0);
    assert!(a.covered_accesses.is_empty());
}

#[test]
fn memory_carries_over_from_an_only_predecessor() {
    // 0: MSTORE(0x80, CALLDATALOAD(0)) JUMPI(23, CALLDATALOAD(1)) (block 0)
    // 11: MLOAD(0x80) POP MLOAD(0x80) POP MLOAD(0xa0) POP (block 1)
    // 23: JUMPDEST MLOAD(0x80) STOP         (block 2: entered from 0 and 1)
    let a = analyze("5f35608052600135601757608051506080515060a051505b60805100");
    assert_eq!(a.memory_floor, 0xa0);
    let covered: Vec<u32> = a.covered_accesses.keys().copied().collect();
    // Block 1 starts with what block 0 left (0xa0): both MLOAD 0x80; then
    // MLOAD 0xa0 grows. Block 2, entered from two blocks, counts on the
    // first block's 0xa0 only: its MLOAD 0x80 too.
    assert_eq!(covered.len(), 3, "{covered:?}");
    assert!(!a.covered_accesses.values().any(|&o| o == 0xa0));
}

/// `entry_small` of the block starting at `pc`.
fn small_at(a: &Analysis, pc: u32) -> u64 {
    let b = a.blocks.iter().position(|b| b.start_pc == pc).unwrap();
    a.entry_small[b]
}

#[test]
fn a_word_used_as_a_memory_offset_is_small_after_it_in_every_copy() {
    // PUSH0 CALLDATALOAD DUP1 <access> PUSH1 t JUMP, t: JUMPDEST STOP: the
    // copy left on the stack is below 2^64 once MLOAD or MSTORE8 went on.
    for access in ["5150", "8053"] {
        let a = analyze(&format!("5f3580{access}6008565b00"));
        assert_eq!(small_at(&a, 8), 1, "{access}");
    }
    // Without the access nothing is known of it.
    let a = analyze("5f35600656005b00");
    assert_eq!(small_at(&a, 6), 0);
    // `x + 0` is the same word: the copy below the sum is small too. And
    // flags and sizes are small, a sum of small words is not: PUSH0
    // CALLDATALOAD DUP1 PUSH0 ADD MLOAD POP CALLDATASIZE DUP1 DUP1 ADD
    // PUSH1 t JUMP, t: JUMPDEST STOP.
    let a = analyze("5f35805f01515036808001600e565b00");
    assert_eq!(small_at(&a, 14), 0b110);
}

#[test]
fn small_words_a_block_does_not_touch_reach_its_successor_deeper() {
    // PUSH0 CALLDATALOAD DUP1 MLOAD POP PUSH1 8 JUMP, 8: JUMPDEST PUSH0
    // CALLDATALOAD PUSH1 14 JUMP, 14: JUMPDEST STOP: the first word stays
    // small under the second block's calldata word.
    let a = analyze("5f358051506008565b5f35600e565b00");
    assert_eq!(small_at(&a, 8), 0b1);
    assert_eq!(small_at(&a, 14), 0b10);
    // A loop header entered from two places knows nothing (PUSH0
    // CALLDATALOAD DUP1 MLOAD POP, 5: JUMPDEST PUSH0 CALLDATALOAD PUSH1 5
    // JUMPI STOP).
    let a = analyze("5f358051505b5f3560055700");
    assert_eq!(small_at(&a, 5), 0);
}

/// Main calls F twice; F returns its argument plus one:
/// 00: PUSH1 r1 PUSH1 42 PUSH1 F JUMP
/// 07 r1: JUMPDEST PUSH1 r2 SWAP1 PUSH1 F JUMP
/// 0e r2: JUMPDEST PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN
/// 17 F:  JUMPDEST PUSH1 1 ADD SWAP1 JUMP
const TWO_CALLS: &str = "6007602a6017565b600e906017565b60005260206000f35b6001019056";

#[test]
fn calls_are_copied_with_their_returns_resolved() {
    let uncopied = analyze_uncopied(TWO_CALLS);
    assert!(uncopied.has_dynamic_jumps);
    let a = analyze(TWO_CALLS);
    // Each call's path is copied: F and the block it returns to, for the
    // first call on to the second one's. Every return is then a static
    // jump, the originals of F, r1 and r2 are left unreachable, and with
    // them every dynamic jump.
    assert!(!a.has_dynamic_jumps, "{a}");
    let reachable: Vec<(u32, Option<usize>, Terminator)> = a
        .blocks
        .iter()
        .filter(|b| b.reachable)
        .map(|b| (b.start_pc, b.clone_of, b.term))
        .collect();
    let f = a.jumpdests[&0x17];
    let (r1, r2) = (a.jumpdests[&0x07], a.jumpdests[&0x0e]);
    assert_eq!(
        reachable,
        vec![
            (0x00, None, Terminator::Jump(JumpTarget::Static(0x17))),
            (0x17, Some(f), Terminator::Jump(JumpTarget::Static(0x07))),
            (0x07, Some(r1), Terminator::Jump(JumpTarget::Static(0x17))),
            (0x17, Some(f), Terminator::Jump(JumpTarget::Static(0x0e))),
            (0x0e, Some(r2), Terminator::Exit),
        ],
        "{a}"
    );
    // Each copy is entered from one block: their stacks flow as values.
    let preds = a.single_predecessors();
    for (b, blk) in a
        .blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| b.reachable && b.clone_of.is_some())
    {
        assert!(preds[b].is_some(), "block {b} @{:#x}", blk.start_pc);
    }
    // The constant argument reaches the copies: F's first copy is entered
    // with 42 on top.
    let first_f = a.blocks[0].jump_to.unwrap();
    assert!(a.entry_consts[first_f].contains(&(0, crate::revm_api::U256::from(42u8))));
}

#[test]
fn a_pc_is_a_covered_access_only_where_every_copy_proves_the_same_offset() {
    // 00: MSTORE(0x40, 0x80) (memory every frame has: 0x60)
    // 05: PUSH1 r1 PUSH1 off1 PUSH1 F JUMP
    // 0c r1: JUMPDEST POP PUSH1 r2 PUSH1 off2 PUSH1 F JUMP
    // 15 r2: JUMPDEST STOP
    // 17 F:  JUMPDEST MLOAD SWAP1 JUMP
    let program = |off1: u8, off2: u8| {
        format!("6080604052600c60{off1:02x}6017565b50601560{off2:02x}6017565b005b519056")
    };
    // Two offsets at one pc: neither copy's proof may stand for the other.
    let a = analyze(&program(0x00, 0x40));
    let copies = a
        .blocks
        .iter()
        .filter(|b| b.reachable && b.start_pc == 0x17)
        .count();
    assert_eq!(copies, 2, "{a}");
    assert!(
        !a.covered_accesses.contains_key(&0x18),
        "{:?}",
        a.covered_accesses
    );
    // The same offset from both calls: covered, at that offset.
    let a = analyze(&program(0x40, 0x40));
    assert_eq!(a.covered_accesses.get(&0x18), Some(&0x40));
    // Uncopied, F is entered from two places and knows no offset.
    let a = analyze_uncopied(&program(0x40, 0x40));
    assert!(!a.covered_accesses.contains_key(&0x18));
}

#[test]
fn a_call_made_by_a_copy_past_its_path_is_copied_in_turn() {
    // TWO_CALLS with a longer F (JUMPDEST, four PUSH1/op pairs, SWAP1
    // JUMP: 11 instructions): the first call's path (F and r1, 16) has
    // no room left for the second call, which r1's copy then makes.
    let code = "6007602a6017565b600e906017565b60005260206000f35b6001016002026003186004019056";
    let a = analyze(code);
    assert!(!a.has_dynamic_jumps, "{a}");
    let path: Vec<(u32, bool)> = a
        .blocks
        .iter()
        .filter(|b| b.reachable)
        .map(|b| (b.start_pc, b.clone_of.is_some()))
        .collect();
    assert_eq!(
        path,
        vec![
            (0x00, false),
            (0x17, true),
            (0x07, true),
            (0x17, true),
            (0x0e, true)
        ],
        "{a}"
    );
}
