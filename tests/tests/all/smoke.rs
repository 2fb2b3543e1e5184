use evmc_compiler::SpecId;
use evmc_tests::*;

#[test]
fn add_and_return() {
    // PUSH1 2 PUSH1 3 ADD PUSH0 MSTORE PUSH1 32 PUSH0 RETURN
    let code = hex::decode("6002600301".to_string() + "5f52" + "60205ff3").unwrap();
    let o = assert_frame_eq(&code, &[], 100_000, SpecId::CANCUN);
    assert!(o.action.contains("Return"), "{}", o.action);
}
