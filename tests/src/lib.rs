//! Test harness shared by the integration tests: run the same bytecode in
//! revm's interpreter and natively, at frame level or as a whole
//! transaction, and describe everything observable about the outcome.

use evmc_compiler::{SpecId, B256};
use evmc_runtime::{run_native, LoadedArtifact, NativeEvm, Registry};
use revm::bytecode::Bytecode;
use revm::context::{Context, ContextTr, JournalTr, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{ExecuteEvm, MainBuilder, MainnetContext};
use revm::interpreter::instructions::{gas_table_spec, instruction_table};
use revm::interpreter::interpreter::{EthInterpreter, ExtBytecode, InputsImpl, SharedMemory};
use revm::interpreter::{CallInput, Interpreter, InterpreterAction};
use revm::primitives::{address, Address, Bytes, TxKind, U256};
use revm::state::AccountInfo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub mod diff;
pub mod gen;
pub mod shapes;

pub use evmc_compiler;
pub use evmc_runtime;
pub use revm;

pub type TestCtx = MainnetContext<CacheDB<EmptyDB>>;

pub const TARGET: Address = address!("0xcccccccccccccccccccccccccccccccccccccccc");
pub const CALLER: Address = address!("0x1111111111111111111111111111111111111111");
/// An account with code, balance and storage, for EXTCODE*/BALANCE/CALL tests.
pub const OTHER: Address = address!("0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
pub const OTHER_CODE: &[u8] = &[0x60, 0x2a, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3]; // return 42

pub use evmc_harness::shared_dir;

/// Runs of memory accesses the code compiled for `code` under `spec` pays
/// for with one check each: its calls of `mem_reserve`, read off the IR
/// (emitting it costs milliseconds, next to the compile's tens of them).
pub fn memory_runs_in(code: &[u8], spec: SpecId) -> usize {
    ir_of(code, spec)
        .matches("call i32 @evmc_builtin_mem_reserve(")
        .count()
}

/// The LLVM IR generated for `code` under `spec`, before the IR pipeline;
/// empty for code the compiler refuses (it runs interpreted).
pub fn ir_of(code: &[u8], spec: SpecId) -> String {
    use evmc_compiler::{compile_emit, CompileOptions, Emit};
    match compile_emit(code, &CompileOptions::new(spec), Emit::LlvmIr) {
        Ok((ir, _)) => String::from_utf8_lossy(&ir).into_owned(),
        Err(_) => String::new(),
    }
}

/// Compiles through the real path (object → `cc -shared` → validating
/// loader), once per (code, spec, opt level) in this process.
pub fn native(code: &[u8], spec: SpecId) -> Arc<LoadedArtifact> {
    native_opt(code, spec, 2)
}

pub fn native_opt(code: &[u8], spec: SpecId, opt: u8) -> Arc<LoadedArtifact> {
    let mut opts = evmc_compiler::CompileOptions::new(spec);
    opts.opt_level = opt;
    native_with(code, &opts)
}

/// Compiles only part of `code` (once per code, spec and `salt`): a block
/// is left out, and hands its frames to the interpreter, when a hash of its
/// first pc, the code and `salt` is a multiple of three; the rest compile as
/// if a profile had seen them run (`evmc_compiler::profile`).
pub fn native_in_part(code: &[u8], spec: SpecId, salt: u64) -> Arc<LoadedArtifact> {
    let hash = evmc_compiler::code_hash(code);
    let mix = u64::from_le_bytes(hash[..8].try_into().unwrap()) ^ salt;
    let ran = (0..=code.len() as u32).filter(|&pc| {
        !((u64::from(pc) ^ mix).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32).is_multiple_of(3)
    });
    let mut opts = evmc_compiler::CompileOptions::new(spec);
    opts.ran = Some(Arc::new(evmc_compiler::RanPcs::new(ran)));
    native_with(code, &opts)
}

/// Compiles through the real path with `opts`, once per (code, spec,
/// options that change the artefact) in this process.
fn native_with(code: &[u8], opts: &evmc_compiler::CompileOptions) -> Arc<LoadedArtifact> {
    type Cache = Mutex<HashMap<(B256, SpecId, String), Arc<LoadedArtifact>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let key = (
        evmc_compiler::code_hash(code),
        opts.spec,
        opts.codegen_fingerprint(),
    );
    let cache = CACHE.get_or_init(Default::default);
    if let Some(a) = cache.lock().unwrap().get(&key) {
        return a.clone();
    }
    let art = evmc_runtime::compile_and_load_with(code, opts, dir.path()).unwrap_or_else(|e| {
        panic!(
            "compiling {} for {:?} ({}): {e}",
            hex::encode(code),
            opts.spec,
            key.2
        )
    });
    cache.lock().unwrap().insert(key, art.clone());
    art
}

fn test_db() -> CacheDB<EmptyDB> {
    let mut db = CacheDB::<EmptyDB>::default();
    db.insert_account_info(
        CALLER,
        AccountInfo {
            balance: U256::from(10u128.pow(24)),
            ..Default::default()
        },
    );
    let other = Bytecode::new_raw(Bytes::from_static(OTHER_CODE));
    db.insert_account_info(
        OTHER,
        AccountInfo {
            balance: U256::from(12345),
            code_hash: other.hash_slow(),
            code: Some(other),
            nonce: 1,
            ..Default::default()
        },
    );
    db.insert_account_storage(OTHER, U256::from(1), U256::from(99))
        .unwrap();
    db
}

fn test_ctx(spec: SpecId, code: &[u8]) -> TestCtx {
    let mut db = test_db();
    let bc = Bytecode::new_raw(Bytes::copy_from_slice(code));
    db.insert_account_info(
        TARGET,
        AccountInfo {
            balance: U256::from(1000),
            code_hash: bc.hash_slow(),
            code: Some(bc),
            nonce: 1,
            ..Default::default()
        },
    );
    db.insert_account_storage(TARGET, U256::from(0), U256::from(5))
        .unwrap();
    db.insert_account_storage(TARGET, U256::from(1), U256::from(7))
        .unwrap();
    let mut ctx: TestCtx = Context::new(db, spec);
    ctx.modify_block(|b| {
        b.number = U256::from(1000);
        b.timestamp = U256::from(1_700_000_000u64);
        b.gas_limit = 30_000_000;
        b.basefee = 7;
    });
    ctx.modify_tx(|t| {
        t.caller = CALLER;
        t.gas_price = 10;
    });
    ctx.journal_mut().load_account(TARGET).expect("load target");
    ctx.journal_mut().load_account(CALLER).expect("load caller");
    ctx
}

/// Everything observable after one frame ran.
#[derive(Debug, PartialEq, Eq)]
pub struct FrameOutcome {
    pub action: String,
    /// The stack, when the frame is suspended in a CALL/CREATE and will
    /// continue with it; the stack of a finished frame is never read again.
    pub stack: Option<Vec<U256>>,
    /// The memory, unless the frame halted exceptionally (then empty).
    pub memory: Vec<u8>,
    /// The interpreter's record of the memory paid for: words and their
    /// expansion cost (a resumed frame charges its next growth from it).
    pub memory_gas: (usize, u64),
    pub gas_remaining: u64,
    pub gas_refunded: i64,
    pub return_data: Vec<u8>,
    pub logs: String,
    pub storage: String,
}

/// Runs one frame of `code` at depth 0 with `input` and `gas`, interpreted
/// (`native = false`) or compiled.
pub fn run_frame(
    code: &[u8],
    input: &[u8],
    gas: u64,
    spec: SpecId,
    native_mode: bool,
) -> FrameOutcome {
    let art = native_mode.then(|| native(code, spec));
    run_frame_with(code, input, gas, spec, art.as_deref())
}

pub fn run_frame_with(
    code: &[u8],
    input: &[u8],
    gas: u64,
    spec: SpecId,
    art: Option<&LoadedArtifact>,
) -> FrameOutcome {
    let mut ctx = test_ctx(spec, code);
    let bytecode = Bytecode::new_raw(Bytes::copy_from_slice(code));
    let hash = bytecode.hash_slow();
    let inputs = InputsImpl {
        target_address: TARGET,
        bytecode_address: None,
        caller_address: CALLER,
        input: CallInput::Bytes(Bytes::copy_from_slice(input)),
        call_value: U256::from(3),
        depth: 0,
    };
    let mut interp: Interpreter<EthInterpreter> = Interpreter::new(
        SharedMemory::new(),
        ExtBytecode::new_with_hash(bytecode, hash),
        inputs,
        false,
        spec,
        gas,
    );
    let table = instruction_table::<EthInterpreter, TestCtx>();
    let gas_table = gas_table_spec(spec);
    let action = match art {
        None => interp.run_plain(&table, &gas_table, &mut ctx),
        Some(a) => unsafe { run_native(a.entry(), &mut interp, &table, &gas_table, &mut ctx) },
    };
    let journal = &ctx.journaled_state;
    let target = journal.inner.state.get(&TARGET);
    let finished = matches!(action, InterpreterAction::Return(_));
    // The memory of a frame that halted exceptionally is gone with it: no
    // output, nothing its caller sees. Compiled code charges a gas segment
    // before its stores inside memory the frame already has, so an
    // out-of-gas halt may come before stores the interpreter made.
    let halted = matches!(&action, InterpreterAction::Return(r) if r.result.is_halt());
    let memory = match halted {
        true => Vec::new(),
        false => interp.memory.context_memory().to_vec(),
    };
    FrameOutcome {
        action: format!("{action:?}"),
        stack: (!finished).then(|| interp.stack.data().clone()),
        memory,
        memory_gas: (
            interp.gas.memory().words_num,
            interp.gas.memory().expansion_cost,
        ),
        gas_remaining: interp.gas.remaining(),
        gas_refunded: interp.gas.refunded(),
        return_data: interp.return_data.0.to_vec(),
        logs: format!("{:?}", journal.logs()),
        storage: format!(
            "{:?} {:?}",
            target.map(|a| {
                let mut s: Vec<_> = a
                    .storage
                    .iter()
                    .map(|(k, v)| (*k, v.present_value))
                    .collect();
                s.sort();
                s
            }),
            {
                let mut t: Vec<_> = journal
                    .inner
                    .transient_storage
                    .iter()
                    .flat_map(|(a, m)| m.iter().map(move |(k, v)| (*a, *k, *v)))
                    .collect();
                t.sort();
                t
            }
        ),
    }
}

/// Runs a frame both ways and panics with both outcomes if they differ.
pub fn assert_frame_eq(code: &[u8], input: &[u8], gas: u64, spec: SpecId) -> FrameOutcome {
    let want = run_frame(code, input, gas, spec, false);
    let got = run_frame(code, input, gas, spec, true);
    if want != got {
        panic!(
            "native differs from interpreter\n code: {}\n input: {}\n gas: {gas}\n spec: {spec:?}\n interpreter: {want:#?}\n native: {got:#?}",
            hex::encode(code),
            hex::encode(input)
        );
    }
    want
}

/// Outcome of a whole transaction.
#[derive(Debug, PartialEq, Eq)]
pub struct TxOutcome {
    pub result: String,
    pub state: String,
}

/// Every touched account's post-state (info and storage), one per line, sorted.
pub fn state_summary(state: &revm::state::EvmState) -> String {
    let mut accounts: Vec<_> = state
        .iter()
        .map(|(a, acc)| {
            let mut st: Vec<_> = acc
                .storage
                .iter()
                .map(|(k, v)| (*k, v.present_value))
                .collect();
            st.sort();
            format!("{a}: {:?} {st:?}", acc.info)
        })
        .collect();
    accounts.sort();
    accounts.join("\n")
}

/// `NativeEvm` over a state in which `TARGET` holds `code`, with
/// `artifacts` registered for `spec`.
pub fn native_evm(
    code: &[u8],
    spec: SpecId,
    artifacts: &[Arc<LoadedArtifact>],
) -> NativeEvm<TestCtx> {
    let registry = Registry::new();
    for a in artifacts {
        registry.register(spec, a.clone()).unwrap();
    }
    NativeEvm::new(test_ctx(spec, code).build_mainnet(), registry)
}

/// A call from `CALLER` to `TARGET` with `input`.
pub fn call_tx(input: &[u8], gas_limit: u64) -> TxEnv {
    TxEnv::builder()
        .caller(CALLER)
        .kind(TxKind::Call(TARGET))
        .data(Bytes::copy_from_slice(input))
        .gas_limit(gas_limit)
        .gas_price(10)
        .build()
        .unwrap()
}

/// Executes a call to `TARGET` (holding `code`) as a full transaction,
/// natively when `artifacts` is non-empty.
pub fn run_tx(
    code: &[u8],
    input: &[u8],
    gas_limit: u64,
    spec: SpecId,
    artifacts: &[Arc<LoadedArtifact>],
) -> (TxOutcome, u64) {
    let mut evm = native_evm(code, spec, artifacts);
    let out = evm.transact(call_tx(input, gas_limit));
    let native_frames = evm.native_frames;
    let desc = match out {
        Ok(r) => TxOutcome {
            result: format!("{:?}", r.result),
            state: state_summary(&r.state),
        },
        Err(e) => TxOutcome {
            result: format!("error: {e:?}"),
            state: String::new(),
        },
    };
    (desc, native_frames)
}
