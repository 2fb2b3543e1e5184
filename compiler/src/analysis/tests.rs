use super::*;

fn analyze(hex_code: &str) -> Analysis {
    Analysis::new(&hex::decode(hex_code).unwrap())
}

#[test]
fn jumpdest_inside_push_data_is_not_a_destination() {
    // PUSH2 0x5b5b JUMPDEST
    let a = analyze("615b5b5b");
    assert_eq!(a.jumpdests.keys().copied().collect::<Vec<_>>(), vec![3]);
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
fn dynamic_jump_reaches_every_jumpdest() {
    // CALLDATALOAD(0) JUMP ; JUMPDEST STOP ; JUMPDEST STOP
    let a = analyze("5f35565b005b00");
    assert!(a.has_dynamic_jumps);
    assert!(a.jumpdests.values().all(|&b| a.blocks[b].reachable));
}

#[test]
fn snapshot_small_program() {
    // A loop: counter from calldata down to zero.
    let a = analyze("5f355b8015600f57600190036002565b00");
    insta::assert_snapshot!(a.to_string());
}
