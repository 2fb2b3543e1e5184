use evmc_compiler::SpecId;
use evmc_runtime::NativeEvm;
use evmc_tests::*;

#[test]
fn add_and_return() {
    // PUSH1 2 PUSH1 3 ADD PUSH0 MSTORE PUSH1 32 PUSH0 RETURN
    let code = hex::decode("6002600301".to_string() + "5f52" + "60205ff3").unwrap();
    let o = assert_frame_eq(&code, &[], 100_000, SpecId::CANCUN);
    assert!(o.action.contains("Return"), "{}", o.action);
}

#[test]
fn compiled_code_is_fetched_at_its_first_frame_of_each_block() {
    use revm::context::BlockEnv;
    use revm::handler::ExecuteEvm;
    // PUSH1 0x2a PUSH1 0x11 ADD PUSH0 MSTORE PUSH1 32 PUSH0 RETURN: a
    // contract of its own, so that no other test runs its artefact.
    let code = hex::decode("602a601101".to_string() + "5f52" + "60205ff3").unwrap();
    let art = native(&code, SpecId::CANCUN);
    assert!(
        art.code_fetch_bytes() > 0,
        "an artefact this compiler builds has its code fetched"
    );
    let mut evm = native_evm(&code, SpecId::CANCUN, std::slice::from_ref(&art));
    let run = |evm: &mut NativeEvm<TestCtx>| {
        let r = evm.transact(call_tx(&[], 100_000)).unwrap();
        assert!(r.result.is_success(), "{:?}", r.result);
    };
    let before = art.code_fetches();
    run(&mut evm);
    run(&mut evm);
    assert_eq!(evm.native_frames, 2);
    assert_eq!(
        art.code_fetches(),
        before + 1,
        "once in the EVM's first block"
    );
    evm.set_block(BlockEnv::default());
    run(&mut evm);
    assert_eq!(art.code_fetches(), before + 2, "again in the next block");
    // A new EVM is a new block too.
    let mut other = native_evm(&code, SpecId::CANCUN, std::slice::from_ref(&art));
    run(&mut other);
    assert_eq!(art.code_fetches(), before + 3);
}
