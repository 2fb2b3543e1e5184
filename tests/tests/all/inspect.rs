//! revm's inspectors on `NativeEvm`: traces of frame-level native runs
//! identical to the interpreter's (geth call, prestate and parity traces of
//! `revm-inspectors`, and every hook with its arguments), and per-opcode
//! inspectors served exactly by running every frame interpreted.

use alloy_rpc_types_trace::geth::{CallConfig, CallFrame, PreStateConfig, PreStateFrame};
use alloy_rpc_types_trace::parity::{TraceResults, TraceType};
use evmc_compiler::{CompileError, SpecId, B256};
use evmc_harness::fixture::{self, load_fixtures, Fixture};
use evmc_harness::statetest::{self, CacheState, Suite};
use evmc_runtime::{FrameLevel, LoadedArtifact, NativeEvm, Registry};
use evmc_tests::shared_dir;
use rayon::prelude::*;
use revm::context::{BlockEnv, CfgEnv, Context, ContextTr, TxEnv};
use revm::database::{CacheDB, EmptyDB, State};
use revm::handler::FrameResult;
use revm::handler::{ExecuteEvm, MainBuilder, MainContext};
use revm::inspector::{InspectEvm, Inspector};
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::interpreter_types::Jumps;
use revm::interpreter::{
    CallInputs, CallOutcome, CreateInputs, CreateOutcome, FrameInput, InstructionResult,
    Interpreter,
};
use revm::primitives::HashSet;
use revm::primitives::{address, keccak256, Address, Bytes, Log, TxKind, U256};
use revm::state::{AccountInfo, Bytecode};
use revm_inspectors::tracing::{TracingInspector, TracingInspectorConfig};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Records every hook revm fires, with its arguments, as text: the hash
/// of the whole text, and its beginning for reports (a transaction of
/// 50,000 calls would otherwise keep gigabytes of it).
#[derive(Default)]
struct Hooks(Vec<(B256, String)>);

impl Hooks {
    fn push(&mut self, text: String) {
        let head = text.chars().take(300).collect();
        self.0.push((keccak256(text.as_bytes()), head));
    }
}

/// What an inspector can see of an interpreter, memory by hash.
fn interp_view(interp: &Interpreter<EthInterpreter>) -> String {
    let memory = interp.memory.context_memory();
    format!(
        "pc={} gas={:?} stack={:?} mem={}:{}",
        interp.bytecode.pc(),
        interp.gas,
        interp.stack.data(),
        memory.len(),
        keccak256(&*memory)
    )
}

impl<CTX: ContextTr> Inspector<CTX> for Hooks {
    fn initialize_interp(&mut self, interp: &mut Interpreter<EthInterpreter>, _: &mut CTX) {
        self.push(format!(
            "initialize_interp {} input={:?} code={:?}",
            interp_view(interp),
            interp.input,
            interp.bytecode.hash()
        ));
    }

    fn log(&mut self, _: &mut CTX, log: Log) {
        self.push(format!("log {log:?}"));
    }

    fn log_full(&mut self, interp: &mut Interpreter<EthInterpreter>, _: &mut CTX, log: Log) {
        self.push(format!("log_full {log:?} at {}", interp_view(interp)));
    }

    fn frame_start(&mut self, _: &mut CTX, input: &mut FrameInput) -> Option<FrameResult> {
        self.push(format!("frame_start {input:?}"));
        None
    }

    fn frame_end(&mut self, _: &mut CTX, input: &FrameInput, result: &mut FrameResult) {
        self.push(format!("frame_end {input:?} -> {result:?}"));
    }

    fn call(&mut self, context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        let data = inputs.input.bytes(context);
        self.push(format!("call {inputs:?} data={data}"));
        None
    }

    fn call_end(&mut self, _: &mut CTX, inputs: &CallInputs, outcome: &mut CallOutcome) {
        self.push(format!("call_end {inputs:?} -> {outcome:?}"));
    }

    fn create(&mut self, _: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        self.push(format!("create {inputs:?}"));
        None
    }

    fn create_end(&mut self, _: &mut CTX, inputs: &CreateInputs, outcome: &mut CreateOutcome) {
        self.push(format!("create_end {inputs:?} -> {outcome:?}"));
    }

    fn selfdestruct(&mut self, contract: Address, target: Address, value: U256) {
        self.push(format!("selfdestruct {contract} -> {target}: {value}"));
    }
}

/// Records every `step` and `step_end`: pc, opcode, gas, stack, memory.
#[derive(Default)]
struct Steps(Vec<String>);

impl<CTX: ContextTr> Inspector<CTX> for Steps {
    fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, _: &mut CTX) {
        let op = interp.bytecode.opcode();
        self.0
            .push(format!("step {op:02x} {}", interp_view(interp)));
    }

    fn step_end(&mut self, interp: &mut Interpreter<EthInterpreter>, _: &mut CTX) {
        self.0.push(format!("step_end {}", interp_view(interp)));
    }
}

/// The tracers of one run: geth call tracer, parity tracer, hook recorder.
type Tracers = ((TracingInspector, TracingInspector), Hooks);

fn call_config() -> CallConfig {
    CallConfig {
        with_log: Some(true),
        ..Default::default()
    }
}

fn parity_types() -> HashSet<TraceType> {
    [TraceType::Trace, TraceType::StateDiff]
        .into_iter()
        .collect()
}

fn tracers() -> Tracers {
    (
        (
            TracingInspector::new(TracingInspectorConfig::from_geth_call_config(&call_config())),
            TracingInspector::new(TracingInspectorConfig::from_parity_config(&parity_types())),
        ),
        Hooks::default(),
    )
}

/// Everything the tracers saw in one run of a transaction.
#[derive(Debug, PartialEq)]
struct Observed {
    result: String,
    call: CallFrame,
    prestate: PreStateFrame,
    prestate_diff: PreStateFrame,
    parity: Option<TraceResults>,
    hooks: Vec<(B256, String)>,
}

/// Runs `tx` on a copy of `pre` under the tracers: with plain revm, or with
/// `NativeEvm` in frame-level native mode. Returns what they saw and the
/// number of frames run natively.
fn traced_run(
    pre: &CacheState,
    cfg: CfgEnv,
    block: BlockEnv,
    tx: TxEnv,
    registry: Option<&Arc<Registry>>,
) -> (Observed, u64) {
    let mut state = State::builder().with_cached_prestate(pre.clone()).build();
    let ctx = Context::mainnet()
        .with_block(block)
        .with_cfg(cfg)
        .with_db(&mut state);
    let (res, tracers, native_frames) = match registry {
        Some(registry) => {
            let evm = ctx.build_mainnet_with_inspector(FrameLevel::new(tracers()));
            let mut evm = NativeEvm::new(evm, registry.clone()).with_frame_level_native();
            let res = evm.inspect_tx(tx);
            let frames = evm.native_frames;
            (res, evm.inner.inspector.into_inner(), frames)
        }
        None => {
            let mut evm = ctx.build_mainnet_with_inspector(tracers());
            let res = evm.inspect_tx(tx);
            (res, evm.inspector, 0)
        }
    };
    let ((geth, parity), hooks) = tracers;
    let db: &State<EmptyDB> = &state;
    let observed = match res {
        Ok(res) => {
            let builder = geth.geth_builder();
            let gas = res.result.tx_gas_used();
            let prestate = builder
                .geth_prestate_traces(&res, &PreStateConfig::default(), db)
                .unwrap();
            let diff = PreStateConfig {
                diff_mode: Some(true),
                ..Default::default()
            };
            let prestate_diff = builder.geth_prestate_traces(&res, &diff, db).unwrap();
            Observed {
                result: format!("{:?}", res.result),
                call: builder.geth_call_traces(call_config(), gas),
                prestate,
                prestate_diff,
                parity: Some(
                    parity
                        .into_parity_builder()
                        .into_trace_results_with_state(&res, &parity_types(), db)
                        .unwrap(),
                ),
                hooks: hooks.0,
            }
        }
        Err(e) => Observed {
            result: format!("error {e}"),
            call: geth.geth_builder().geth_call_traces(call_config(), 0),
            prestate: PreStateFrame::Default(Default::default()),
            prestate_diff: PreStateFrame::Default(Default::default()),
            parity: None,
            hooks: hooks.0,
        },
    };
    (observed, native_frames)
}

/// The first difference between two observations, readably.
fn difference(a: &Observed, b: &Observed) -> String {
    let hooks = a
        .hooks
        .iter()
        .zip(&b.hooks)
        .position(|(x, y)| x != y)
        .map(|i| {
            format!(
                "hook {i}:\n  interpreter: {}\n  native:      {}",
                a.hooks[i].1, b.hooks[i].1
            )
        })
        .unwrap_or_else(|| format!("{} vs {} hooks", a.hooks.len(), b.hooks.len()));
    let field = if a.result != b.result {
        format!("result {} vs {}", a.result, b.result)
    } else if a.call != b.call {
        format!("geth call trace\n{:#?}\nvs\n{:#?}", a.call, b.call)
    } else if a.prestate != b.prestate || a.prestate_diff != b.prestate_diff {
        "prestate trace".to_string()
    } else if a.parity != b.parity {
        format!("parity trace\n{:#?}\nvs\n{:#?}", a.parity, b.parity)
    } else {
        "hooks".to_string()
    };
    format!("{field}; {hooks}")
}

/// Compiles `codes` (code, spec) once each, in parallel, at `-O1` (enough
/// for exactness, faster to build), and registers them. A contract above
/// the size limit stays interpreted.
fn compile_all(codes: Vec<(&[u8], SpecId)>, dir: &Path) -> Arc<Registry> {
    let mut jobs: HashMap<(B256, SpecId), &[u8]> = HashMap::new();
    for (code, spec) in codes {
        jobs.entry((evmc_compiler::code_hash(code), spec))
            .or_insert(code);
    }
    let mut jobs: Vec<_> = jobs.into_iter().collect();
    jobs.sort_by_key(|(_, code)| std::cmp::Reverse(code.len()));
    let arts: Vec<(SpecId, Arc<LoadedArtifact>)> = jobs
        .par_iter()
        .filter_map(
            |((_, spec), code)| match evmc_runtime::compile_and_load(code, *spec, 1, dir) {
                Ok(a) => Some((*spec, a)),
                Err(evmc_runtime::Error::Compile(CompileError::TooLarge { .. })) => None,
                Err(e) => panic!("compiling {} for {spec:?}: {e}", hex::encode(code)),
            },
        )
        .collect();
    let registry = Registry::new();
    for (spec, art) in arts {
        registry.register(spec, art).unwrap();
    }
    registry
}

/// The state-test files of the shared data, less those of its `SKIP.txt`.
fn state_test_files() -> Vec<PathBuf> {
    let root = shared_dir().join("testdata");
    let skip = std::fs::read_to_string(root.join("SKIP.txt")).unwrap_or_default();
    let lines: Vec<&str> = skip
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let skipped = |p: &Path| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let full = p.to_string_lossy();
        lines.iter().any(|l| match l.strip_prefix("path:") {
            Some(part) => full.contains(part.trim()),
            None => name == *l,
        })
    };
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root, &mut files);
    // The tracers of revm-inspectors take minutes and gigabytes on the
    // transactions of 50,000 calls, in both modes alike.
    files.retain(|p| !skipped(p) && !p.to_string_lossy().contains("50000"));
    files.sort();
    files
}

/// Outcome of tracing a set of state tests both ways.
#[derive(Default)]
struct Tally {
    vectors: AtomicU64,
    native_frames: AtomicU64,
    /// Hooks fired in native runs, by hook.
    hooks: Mutex<BTreeMap<String, u64>>,
}

/// Traces every transaction of the state-test `files` with the interpreter
/// and natively, and requires identical observations.
fn trace_state_tests(files: &[PathBuf]) -> Tally {
    let start = Instant::now();
    let suites: Vec<(PathBuf, Suite)> = files
        .par_iter()
        .filter_map(|f| statetest::load_suite(f).ok().map(|s| (f.clone(), s)))
        .collect();
    let mut codes = Vec::new();
    for (_, suite) in &suites {
        for v in statetest::vectors(suite).0 {
            codes.extend(statetest::contract_codes(v.unit).map(|c| (c.as_ref(), v.spec)));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = compile_all(codes, dir.path());
    let compiled = start.elapsed();
    let mut work = Vec::new();
    for (path, suite) in &suites {
        let mut pre_states: HashMap<&str, Arc<CacheState>> = HashMap::new();
        for v in statetest::vectors(suite).0 {
            let pre = pre_states
                .entry(v.name)
                .or_insert_with(|| Arc::new(statetest::pre_state(v.unit)))
                .clone();
            work.push((path, v, pre));
        }
    }
    let tally = Tally::default();
    let failures: Vec<String> = work
        .par_iter()
        .filter_map(|(path, v, pre)| {
            let Ok((cfg, block, tx)) = statetest::environment(v) else {
                return None;
            };
            let (interp, _) = traced_run(pre, cfg.clone(), block.clone(), tx.clone(), None);
            let (native, frames) = traced_run(pre, cfg, block, tx, Some(&registry));
            tally.vectors.fetch_add(1, Ordering::Relaxed);
            tally.native_frames.fetch_add(frames, Ordering::Relaxed);
            let mut kinds = BTreeMap::<String, u64>::new();
            for (_, text) in &native.hooks {
                let kind = text.split(' ').next().unwrap_or_default();
                *kinds.entry(kind.to_string()).or_default() += 1;
            }
            let mut hooks = tally.hooks.lock().unwrap();
            for (kind, n) in kinds {
                *hooks.entry(kind).or_default() += n;
            }
            drop(hooks);
            (interp != native).then(|| {
                format!(
                    "{} {}: {}",
                    path.display(),
                    v.label(),
                    difference(&interp, &native)
                )
            })
        })
        .collect();
    eprintln!(
        "traced {} vectors of {} files both ways ({} native frames; hooks each way: {:?}) in {:.1} s, {:.1} s of it compiling",
        tally.vectors.load(Ordering::Relaxed),
        suites.len(),
        tally.native_frames.load(Ordering::Relaxed),
        tally.hooks.lock().unwrap(),
        start.elapsed().as_secs_f64(),
        compiled.as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} vectors traced differently natively:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n\n")
    );
    assert!(
        tally.native_frames.load(Ordering::Relaxed) > 0,
        "no frame ran natively"
    );
    tally
}

/// Folders heavy in calls, creates, reverts, selfdestructs and logs.
const CALL_CREATE_FOLDERS: &[&str] = &[
    "stCallCodes",
    "stCallCreateCallCodeTest",
    "stCallDelegateCodesCallCodeHomestead",
    "stCallDelegateCodesHomestead",
    "stDelegatecallTestHomestead",
    "stStaticCall",
    "stCreate2",
    "stCreateTest",
    "stRevertTest",
    "stSelfBalance",
    "stSystemOperationsTest",
    "stLogTests",
    "stReturnDataTest",
    "stRecursiveCreate",
    "stZeroCallsRevert",
    "stNonZeroCallsTest",
    "stInitCodeTest",
];

/// Every state test (but those of 50,000 calls, see `state_test_files`),
/// the call/create-heavy folders included.
#[test]
fn state_tests_trace_identically_natively() {
    let files = state_test_files();
    for folder in CALL_CREATE_FOLDERS {
        let n = files
            .iter()
            .filter(|p| p.to_string_lossy().contains(&format!("/{folder}/")))
            .count();
        assert!(n > 0, "no state tests of {folder} in ../shared");
    }
    let tally = trace_state_tests(&files);
    let hooks = tally.hooks.into_inner().unwrap();
    for kind in [
        "initialize_interp",
        "call",
        "call_end",
        "create",
        "create_end",
        "log_full",
        "selfdestruct",
        "frame_start",
        "frame_end",
    ] {
        assert!(
            hooks.get(kind).is_some_and(|&n| n > 0),
            "no {kind} hook fired: {hooks:?}"
        );
    }
}

fn fixture_files() -> Vec<PathBuf> {
    let dir = shared_dir().join("benchdata/contracts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

const FIXTURE_SPEC: SpecId = SpecId::OSAKA;

/// Every real-contract fixture, with its contracts compiled (once for all
/// the tests of this module).
fn fixtures() -> &'static (Vec<Fixture>, Arc<Registry>) {
    static FIXTURES: OnceLock<(Vec<Fixture>, Arc<Registry>)> = OnceLock::new();
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let fixtures: Vec<Fixture> = fixture_files()
            .iter()
            .flat_map(|f| load_fixtures(f).unwrap())
            .collect();
        let codes = fixtures
            .iter()
            .flat_map(|f| f.codes())
            .filter(|c| c.len() <= evmc_compiler::DEFAULT_MAX_CODE_SIZE)
            .map(|c| (c.as_ref(), FIXTURE_SPEC))
            .collect();
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        let registry = compile_all(codes, dir.path());
        (fixtures, registry)
    })
}

#[test]
fn real_contract_fixtures_trace_identically_natively() {
    let (fixtures, registry) = fixtures();
    assert!(fixtures.len() >= 20, "expected the contract fixtures");
    for f in fixtures {
        let pre = f.pre_state();
        let (cfg, block, tx) = fixture::environment(f, FIXTURE_SPEC);
        let (interp, _) = traced_run(&pre, cfg.clone(), block.clone(), tx.clone(), None);
        let (native, frames) = traced_run(&pre, cfg, block, tx, Some(registry));
        assert!(
            interp == native,
            "{}: {}",
            f.name,
            difference(&interp, &native)
        );
        assert!(frames > 0, "{}: nothing ran natively", f.name);
        assert!(interp.result.starts_with("Success"), "{}", interp.result);
    }
}

/// A step tracer on `NativeEvm` with every contract compiled: every frame
/// runs interpreted, and the tracer sees exactly the interpreter's steps.
#[test]
fn step_inspectors_see_every_step_of_compiled_contracts() {
    let (fixtures, registry) = fixtures();
    let mut checked = 0;
    for name in [
        "weth",
        "usdc_proxy",
        "uniswap_v2_pair",
        "univ2_router",
        "fiat_token",
    ] {
        let Some(f) = fixtures.iter().find(|f| f.name.starts_with(name)) else {
            continue;
        };
        // Every contract of the transaction is compiled and runs natively
        // without an inspector.
        assert!(f.codes().all(|c| registry
            .get(evmc_compiler::code_hash(c), FIXTURE_SPEC)
            .is_some()));
        let pre = f.pre_state();
        let run = |native: bool| {
            let (cfg, block, tx) = fixture::environment(f, FIXTURE_SPEC);
            let mut state = State::builder().with_cached_prestate(pre.clone()).build();
            let ctx = Context::mainnet()
                .with_block(block)
                .with_cfg(cfg)
                .with_db(&mut state);
            let geth = TracingInspector::new(TracingInspectorConfig::default_geth());
            let inspector = (Steps::default(), geth);
            if native {
                let mut evm = NativeEvm::new(
                    ctx.build_mainnet_with_inspector(inspector),
                    registry.clone(),
                );
                let untraced = evm.transact(tx.clone()).unwrap();
                assert!(evm.native_frames > 0, "{}: nothing compiled ran", f.name);
                evm.native_frames = 0;
                let res = evm.inspect_tx(tx).unwrap();
                assert_eq!(untraced.result, res.result);
                assert_eq!(
                    evm.native_frames, 0,
                    "a frame ran natively under a step tracer"
                );
                let (steps, geth) = evm.inner.inspector;
                let structs = geth.geth_builder().geth_traces(
                    res.result.tx_gas_used(),
                    res.result.output().cloned().unwrap_or_default(),
                    Default::default(),
                );
                (steps.0, structs)
            } else {
                let mut evm = ctx.build_mainnet_with_inspector(inspector);
                let res = evm.inspect_tx(tx).unwrap();
                let (steps, geth) = evm.inspector;
                let structs = geth.geth_builder().geth_traces(
                    res.result.tx_gas_used(),
                    res.result.output().cloned().unwrap_or_default(),
                    Default::default(),
                );
                (steps.0, structs)
            }
        };
        let (interp_steps, interp_structs) = run(false);
        let (native_steps, native_structs) = run(true);
        assert!(
            interp_steps.len() > 100,
            "{}: {} steps",
            f.name,
            interp_steps.len()
        );
        if let Some(i) = interp_steps
            .iter()
            .zip(&native_steps)
            .position(|(a, b)| a != b)
        {
            panic!(
                "{}: step {i} differs:\n  {}\n  {}",
                f.name, interp_steps[i], native_steps[i]
            );
        }
        assert_eq!(interp_steps.len(), native_steps.len(), "{}", f.name);
        assert_eq!(
            interp_structs, native_structs,
            "{}: struct logs differ",
            f.name
        );
        checked += 1;
    }
    assert!(checked >= 3, "expected the contract fixtures");
}

/// Under `FrameLevel` a step tracer sees no step at all, in interpreted
/// frames as in compiled ones: the same (empty) sequence both ways.
#[test]
fn frame_level_hides_steps_in_both_modes() {
    let (fixtures, registry) = fixtures();
    let f = fixtures
        .iter()
        .find(|f| f.name.starts_with("weth"))
        .unwrap();
    let pre = f.pre_state();
    for registry in [Registry::new(), registry.clone()] {
        let (cfg, block, tx) = fixture::environment(f, FIXTURE_SPEC);
        let mut state = State::builder().with_cached_prestate(pre.clone()).build();
        let ctx = Context::mainnet()
            .with_block(block)
            .with_cfg(cfg)
            .with_db(&mut state);
        let evm = ctx.build_mainnet_with_inspector(FrameLevel::new(Steps::default()));
        let mut evm = NativeEvm::new(evm, registry).with_frame_level_native();
        evm.inspect_tx(tx).unwrap();
        assert!(evm.inner.inspector.inner().0.is_empty());
    }
}

/// Cost of call tracing the real-contract fixtures: untraced interpreter and
/// native runs, call-traced interpreter and frame-level native runs.
/// `cargo test --release -p evmc-tests --test all inspect::call_trace_cost -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn call_trace_cost() {
    let (fixtures, registry) = fixtures();
    let reps = 15;
    println!(
        "{:<24} {:>11} {:>11} {:>11} {:>11} {:>8} {:>8}",
        "fixture", "interp", "native", "interp+call", "native+call", "traced×", "cost×"
    );
    let mut ratios = Vec::new();
    for f in fixtures {
        let pre = f.pre_state();
        let time = |mode: u8| -> Duration {
            let mut times: Vec<Duration> = (0..reps)
                .map(|_| {
                    let (cfg, block, tx) = fixture::environment(f, FIXTURE_SPEC);
                    let mut state = State::builder().with_cached_prestate(pre.clone()).build();
                    let ctx = Context::mainnet()
                        .with_block(block)
                        .with_cfg(cfg)
                        .with_db(&mut state);
                    let config = TracingInspectorConfig::from_geth_call_config(&call_config());
                    let t = Instant::now();
                    let ok = match mode {
                        0 => ctx.build_mainnet().transact(tx).is_ok(),
                        1 => NativeEvm::new(ctx.build_mainnet(), registry.clone())
                            .transact(tx)
                            .is_ok(),
                        2 => {
                            let mut evm =
                                ctx.build_mainnet_with_inspector(TracingInspector::new(config));
                            let res = evm.inspect_tx(tx).unwrap();
                            let gas = res.result.tx_gas_used();
                            let frame = evm
                                .inspector
                                .geth_builder()
                                .geth_call_traces(call_config(), gas);
                            std::hint::black_box(frame);
                            true
                        }
                        _ => {
                            let evm = ctx.build_mainnet_with_inspector(FrameLevel::new(
                                TracingInspector::new(config),
                            ));
                            let mut evm =
                                NativeEvm::new(evm, registry.clone()).with_frame_level_native();
                            let res = evm.inspect_tx(tx).unwrap();
                            let gas = res.result.tx_gas_used();
                            let frame = evm
                                .inner
                                .inspector
                                .inner()
                                .geth_builder()
                                .geth_call_traces(call_config(), gas);
                            std::hint::black_box(frame);
                            true
                        }
                    };
                    let elapsed = t.elapsed();
                    assert!(ok);
                    elapsed
                })
                .collect();
            times.sort();
            times[reps / 2]
        };
        let [interp, native, interp_call, native_call] = [0, 1, 2, 3].map(time);
        let traced = interp_call.as_secs_f64() / native_call.as_secs_f64();
        let cost = native_call.as_secs_f64() / native.as_secs_f64();
        ratios.push((traced, cost));
        println!(
            "{:<24} {:>11.1?} {:>11.1?} {:>11.1?} {:>11.1?} {:>7.2}× {:>7.2}×",
            f.name, interp, native, interp_call, native_call, traced, cost
        );
    }
    let geo = |v: &mut dyn Iterator<Item = f64>| {
        let (s, n) = v.fold((0.0, 0), |(s, n), x| (s + x.ln(), n + 1));
        (s / n as f64).exp()
    };
    println!(
        "geometric means: call-traced interp / call-traced native {:.2}×, call-traced native / untraced native {:.2}×",
        geo(&mut ratios.iter().map(|r| r.0)),
        geo(&mut ratios.iter().map(|r| r.1))
    );
}

const A: Address = address!("0x00000000000000000000000000000000000a0a0a");
const B: Address = address!("0x00000000000000000000000000000000000b0b0b");
const HEIR: Address = address!("0x00000000000000000000000000000000000c0c0c");
const SENDER: Address = address!("0x1111111111111111111111111111111111111111");

/// A: LOG1, CALL B with value, STATICCALL B with 0x4000 gas (whose LOG0
/// then fails),
/// SELFDESTRUCT to HEIR. B: LOG0 of the word it was sent, returns it.
fn log_call_selfdestruct() -> (Vec<u8>, Vec<u8>) {
    let mut a = vec![
        0x60, 0x2a, 0x5f, 0x52, // mstore(0, 42)
        0x60, 0xaa, 0x60, 0x20, 0x5f, 0xa1, // log1(0, 32, 0xaa)
        0x60, 0x20, 0x60, 0x20, 0x60, 0x20, 0x5f, 0x60, 0x01,
        0x73, // call(gas, B, 1, 0, 32, 32, 32)
    ];
    a.extend_from_slice(B.as_slice());
    a.extend_from_slice(&[0x5a, 0xf1, 0x50]);
    a.extend_from_slice(&[0x5f, 0x5f, 0x60, 0x20, 0x5f, 0x73]); // staticcall(gas, B, 0, 32, 0, 0)
    a.extend_from_slice(B.as_slice());
    a.extend_from_slice(&[0x61, 0x40, 0x00, 0xfa, 0x50, 0x73]); // gas 0x4000
    a.extend_from_slice(HEIR.as_slice());
    a.push(0xff);
    let b = vec![
        0x5f, 0x35, 0x5f, 0x52, // mstore(0, calldataload(0))
        0x60, 0x20, 0x5f, 0xa0, // log0(0, 32)
        0x60, 0x20, 0x5f, 0xf3, // return(0, 32)
    ];
    (a, b)
}

/// Stops the interpreter where an inspector may: in `log_full` at the
/// `at_log`-th log, in `initialize_interp` of the `at_frame`-th frame.
#[derive(Default)]
struct Halter {
    at_log: Option<usize>,
    at_frame: Option<usize>,
    logs: usize,
    frames: usize,
}

impl<CTX> Inspector<CTX> for Halter {
    fn initialize_interp(&mut self, interp: &mut Interpreter<EthInterpreter>, _: &mut CTX) {
        if Some(self.frames) == self.at_frame {
            interp.halt(InstructionResult::Revert);
        }
        self.frames += 1;
    }

    fn log_full(&mut self, interp: &mut Interpreter<EthInterpreter>, _: &mut CTX, _: Log) {
        if Some(self.logs) == self.at_log {
            interp.halt(InstructionResult::Stop);
        }
        self.logs += 1;
    }
}

type SmallCtx = revm::handler::MainnetContext<CacheDB<EmptyDB>>;

/// Runs A as a transaction under `inspector`: with plain revm, or with
/// both contracts compiled in frame-level native mode. Returns the result,
/// the inspector and the frames run natively.
fn run_small<I: Inspector<SmallCtx>>(spec: SpecId, native: bool, inspector: I) -> (String, I, u64) {
    let (a, b) = log_call_selfdestruct();
    let mut db = CacheDB::new(EmptyDB::default());
    let registry = Registry::new();
    for (address, code) in [(A, &a), (B, &b)] {
        let bc = Bytecode::new_raw(Bytes::copy_from_slice(code));
        db.insert_account_info(
            address,
            AccountInfo {
                balance: U256::from(1000),
                code_hash: bc.hash_slow(),
                code: Some(bc),
                nonce: 1,
                ..Default::default()
            },
        );
        if native {
            registry
                .register(spec, evmc_tests::native(code, spec))
                .unwrap();
        }
    }
    db.insert_account_info(
        SENDER,
        AccountInfo {
            balance: U256::from(10u64.pow(18)),
            ..Default::default()
        },
    );
    let ctx: SmallCtx = Context::new(db, spec);
    let tx = TxEnv::builder()
        .caller(SENDER)
        .kind(TxKind::Call(A))
        .gas_limit(1_000_000)
        .build()
        .unwrap();
    if native {
        let evm = ctx.build_mainnet_with_inspector(FrameLevel::new(inspector));
        let mut evm = NativeEvm::new(evm, registry).with_frame_level_native();
        let r = evm.inspect_tx(tx).map(|r| r.result);
        let frames = evm.native_frames;
        (format!("{r:?}"), evm.inner.inspector.into_inner(), frames)
    } else {
        let mut evm = ctx.build_mainnet_with_inspector(inspector);
        let r = evm.inspect_tx(tx).map(|r| r.result);
        (format!("{r:?}"), evm.inspector, 0)
    }
}

/// LOG, CALL with value, a STATICCALL violation and SELFDESTRUCT in
/// compiled frames: every hook, with its arguments, as in the interpreter,
/// on specs before and after EIP-6780.
#[test]
fn compiled_frames_fire_log_call_and_selfdestruct_hooks() {
    for spec in [SpecId::SHANGHAI, SpecId::CANCUN, SpecId::OSAKA] {
        let (r_interp, h_interp, _) = run_small(spec, false, Hooks::default());
        let (r_native, h_native, frames) = run_small(spec, true, Hooks::default());
        assert_eq!(frames, 5, "{spec:?}: A, B, A again, B, A again");
        assert!(r_native.contains("Success"), "{spec:?}: {r_native}");
        assert_eq!(r_interp, r_native, "{spec:?}");
        let kinds = |h: &Hooks| h.0.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>();
        assert_eq!(kinds(&h_interp), kinds(&h_native), "{spec:?}");
        assert_eq!(h_interp.0, h_native.0, "{spec:?}");
        let fired = kinds(&h_native);
        for kind in ["log_full", "selfdestruct", "call_end"] {
            assert!(
                fired.iter().any(|t| t.starts_with(kind)),
                "{spec:?}: no {kind}: {fired:#?}"
            );
        }
    }
}

/// An inspector that halts the interpreter in `log_full` or in
/// `initialize_interp` ends the frame there, natively as interpreted.
#[test]
fn inspector_halts_end_compiled_frames_as_interpreted() {
    let spec = SpecId::CANCUN;
    let mut cases = Vec::new();
    for at_log in [None, Some(0), Some(1)] {
        for at_frame in [None, Some(0), Some(1), Some(2)] {
            cases.push(Halter {
                at_log,
                at_frame,
                ..Default::default()
            });
        }
    }
    let mut outcomes = HashSet::new();
    for case in cases {
        let what = format!("at_log {:?}, at_frame {:?}", case.at_log, case.at_frame);
        let make = || {
            (
                Hooks::default(),
                Halter {
                    at_log: case.at_log,
                    at_frame: case.at_frame,
                    ..Default::default()
                },
            )
        };
        let (r_interp, (h_interp, _), _) = run_small(spec, false, make());
        let (r_native, (h_native, _), frames) = run_small(spec, true, make());
        assert_eq!(r_interp, r_native, "{what}");
        assert_eq!(h_interp.0, h_native.0, "{what}");
        if case.at_frame != Some(0) {
            assert!(frames > 0, "{what}: nothing ran natively");
        }
        outcomes.insert((r_native, h_native.0.len()));
    }
    assert!(
        outcomes.len() >= 6,
        "the halts changed nothing: {outcomes:?}"
    );
}
