//! Execution limits, each checked against the interpreter: many threads
//! running one compiled contract; registry removal while compiled frames
//! run; 1024-deep call and create chains through compiled code only, on a
//! small thread stack; memory expansion up to what the gas limit allows;
//! RETURNDATACOPY out of bounds. Also bounds the compile time of hostile
//! bytecode shapes per KB and in its growth with size (printed, so CI logs
//! show it), and runs them against the interpreter.

use evmc_compiler::{CompileOptions, SpecId, B256};
use evmc_runtime::{Expect, LoadedArtifact, NativeEvm, Registry};
use evmc_tests::diff::h;
use evmc_tests::gen::{address, Contract, Kind, Variant, World};
use evmc_tests::native;
use revm::bytecode::Bytecode;
use revm::context::{CfgEnv, Context, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::database_interface::Database;
use revm::handler::{ExecuteEvm, MainBuilder, MainContext};
use revm::primitives::{Address, Bytes, StorageKey, StorageValue, TxKind, U256};
use revm::state::AccountInfo;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

const SPEC: SpecId = SpecId::OSAKA;

/// Past the harness's capture, so measurements show in CI logs.
fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn word(v: U256) -> Vec<u8> {
    v.to_be_bytes::<32>().to_vec()
}

fn words(vs: &[U256]) -> Vec<u8> {
    vs.iter().flat_map(|v| word(*v)).collect()
}

fn world(contracts: Vec<Vec<u8>>) -> World {
    World {
        spec: SPEC,
        opt_level: 2,
        contracts: contracts
            .into_iter()
            .map(|code| Contract {
                code,
                kind: Kind::Structured,
                compiled: true,
            })
            .collect(),
        seed: 0,
    }
}

fn must_agree(
    w: &World,
    v: &Variant,
    registry: &Arc<Registry>,
) -> evmc_harness::statetest::Outcome {
    w.check(v, registry)
        .unwrap_or_else(|report| panic!("{report}"))
}

/// Loops n (the first calldata word) times: hash memory, store the hash in
/// slot `n & 3`;
/// returns the last hash.
const HASH_LOOP: &str = "
    5f 35                       // n
    5b 80 15 60 1c 57           // loop: if n == 0 goto end
    60 40 5f 20 5f 52           // mstore(0, keccak(0, 64))
    5f 51 81 60 03 16 55        // sstore(n & 3, mload(0))
    60 01 90 03 60 02 56        // n - 1, goto loop
    5b 50 60 20 5f f3           // end: return mload(0)
";

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

#[test]
fn many_threads_run_one_compiled_contract_at_once() {
    let w = world(vec![h(HASH_LOOP)]);
    let registry = w.compile();
    let variant = |n: u64| Variant::call(word(U256::from(n)), 1_000_000);
    // The interpreter's answers, computed once.
    let expected: Vec<String> = (0..40)
        .map(|n| {
            let (want, _) = w.run_both(&variant(n), &Registry::new());
            want.exact()
        })
        .collect();
    let native_frames = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (w, registry, expected, native_frames) = (&w, &registry, &expected, &native_frames);
            s.spawn(move || {
                for i in 0..30u64 {
                    let n = (t * 7 + i * 3) % 40;
                    let (_, got) = w.run_both(&variant(n), registry);
                    assert_eq!(got.exact(), expected[n as usize], "thread {t}, n = {n}");
                    native_frames.fetch_add(got.native_frames, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(native_frames.load(Ordering::Relaxed), 8 * 30);
}

#[test]
fn registering_and_removing_while_threads_execute_is_safe() {
    let w = world(vec![h(HASH_LOOP)]);
    let art = native(&w.contracts[0].code, SPEC);
    let registry = Registry::new();
    let want = w
        .run_both(&Variant::call(word(U256::from(30)), 1_000_000), &registry)
        .0
        .exact();
    let stop = AtomicBool::new(false);
    let (native_runs, interpreted_runs) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                // Paced so that transactions see both states.
                registry.register(SPEC, art.clone()).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(300));
                registry.remove(art.code_hash(), SPEC);
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
        });
        let runners: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..60 {
                        let (_, got) =
                            w.run_both(&Variant::call(word(U256::from(30)), 1_000_000), &registry);
                        assert_eq!(got.exact(), want);
                        let c = if got.native_frames > 0 {
                            &native_runs
                        } else {
                            &interpreted_runs
                        };
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for r in runners {
            r.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    log(&format!(
        "registry churn: {} runs native, {} interpreted, all equal",
        native_runs.load(Ordering::Relaxed),
        interpreted_runs.load(Ordering::Relaxed)
    ));
}

/// A database that runs a hook when one address is first loaded: a way to
/// act at a precise point inside a running transaction.
struct HookDb {
    inner: CacheDB<EmptyDB>,
    trigger: Address,
    hook: Option<Box<dyn FnOnce()>>,
}

impl Database for HookDb {
    type Error = <CacheDB<EmptyDB> as Database>::Error;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        if address == self.trigger {
            if let Some(hook) = self.hook.take() {
                hook();
            }
        }
        self.inner.basic(address)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        self.inner.code_by_hash(code_hash)
    }

    fn storage(
        &mut self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        self.inner.storage(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        self.inner.block_hash(number)
    }
}

/// Calls itself with `d - 1` while `d = calldata[0..32] > 0`, then stores
/// the callee's answer in slot `d` and answers it plus one; at the bottom it
/// touches the trigger account and answers 42.
fn self_recursive(trigger: Address) -> Vec<u8> {
    let mut c = h("
        5f 35 80 15 60 00 57        // d; if d == 0 goto bottom (patched)
        60 01 81 03 5f 52           // mstore(0, d - 1)
        60 20 5f 60 20 5f 5f 30 5a f1 50  // call(gas, self, 0, 0, 32, 0, 32)
        5f 51 81 55                 // sstore(d, mload(0))
        5f 51 60 01 01 5f 52        // mstore(0, mload(0) + 1)
        60 20 5f f3                 // return mload(0)
    ");
    let bottom = c.len() as u8;
    c[5] = bottom;
    c.extend_from_slice(&h("5b 73"));
    c.extend_from_slice(trigger.as_slice());
    c.extend_from_slice(&h("31 50 60 2a 5f 52 60 20 5f f3")); // balance(trigger); return 42
    c
}

const DEPTH: u64 = 200;
const TRIGGER: Address = Address::repeat_byte(0x77);

/// A database holding [`self_recursive`] at `address(0)`, running `hook`
/// when the recursion bottoms out.
fn hooked_db(code: &[u8], hook: Option<Box<dyn FnOnce()>>) -> HookDb {
    let mut db = CacheDB::<EmptyDB>::default();
    let bc = Bytecode::new_raw(Bytes::copy_from_slice(code));
    db.insert_account_info(
        address(0),
        AccountInfo {
            code_hash: bc.hash_slow(),
            code: Some(bc),
            nonce: 1,
            ..Default::default()
        },
    );
    HookDb {
        inner: db,
        trigger: TRIGGER,
        hook,
    }
}

fn recursion_tx() -> TxEnv {
    TxEnv::builder()
        .caller(Address::repeat_byte(0x11))
        .kind(TxKind::Call(address(0)))
        .data(Bytes::from(word(U256::from(DEPTH))))
        .gas_limit(10_000_000)
        .build()
        .unwrap()
}

/// Result and every touched account's post-state.
fn describe(r: &revm::context_interface::result::ResultAndState) -> String {
    format!("{:?}\n{}", r.result, evmc_tests::state_summary(&r.state))
}

fn interpreted(code: &[u8]) -> String {
    let ctx = Context::mainnet()
        .with_cfg(CfgEnv::new_with_spec(SPEC))
        .with_db(hooked_db(code, None));
    describe(&ctx.build_mainnet().transact(recursion_tx()).unwrap())
}

type HookedEvm = NativeEvm<revm::handler::MainnetContext<HookDb>>;

fn native_evm(code: &[u8], registry: &Arc<Registry>, hook: Box<dyn FnOnce()>) -> HookedEvm {
    let ctx = Context::mainnet()
        .with_cfg(CfgEnv::new_with_spec(SPEC))
        .with_db(hooked_db(code, Some(hook)));
    NativeEvm::new(ctx.build_mainnet(), registry.clone())
}

#[test]
fn removing_an_artifact_while_its_frames_run_is_safe() {
    let code = self_recursive(TRIGGER);
    let dir = tempfile::tempdir().unwrap();
    // Not through the harness's cache, which would keep the artifact alive.
    let art = evmc_runtime::compile_and_load(&code, SPEC, 2, dir.path()).unwrap();
    let hash = art.code_hash();
    let weak: Weak<LoadedArtifact> = Arc::downgrade(&art);
    let registry = Registry::new();
    registry.register(SPEC, art).unwrap();

    // At the bottom of the recursion, with DEPTH compiled frames suspended
    // in their CALL, the artifact leaves the registry and every other
    // reference to it is dropped.
    let seen: Arc<Mutex<Option<(bool, bool)>>> = Default::default();
    let hook = {
        let (registry, weak, seen) = (registry.clone(), weak.clone(), seen.clone());
        Box::new(move || {
            registry.remove(hash, SPEC);
            *seen.lock().unwrap() = Some((registry.is_empty(), weak.upgrade().is_some()));
        })
    };
    let mut evm = native_evm(&code, &registry, hook);
    let native = describe(&evm.transact(recursion_tx()).unwrap());
    assert_eq!(
        native,
        interpreted(&code),
        "native differs from the interpreter"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        Some((true, true)),
        "removed from the registry, still alive for the running transaction"
    );
    // Every frame ran natively, the DEPTH frames resumed after the removal too.
    assert_eq!(evm.native_frames, 2 * DEPTH + 1);
    assert!(weak.upgrade().is_some(), "the EVM's snapshot holds it");

    // The next transaction sees the registry without it.
    let frames = evm.native_frames;
    let again = describe(&evm.transact(recursion_tx()).unwrap());
    assert_eq!(evm.native_frames, frames, "runs interpreted now");
    assert!(again.contains("Success"), "{again}");
    assert!(weak.upgrade().is_none(), "unloaded once nothing holds it");
}

#[test]
fn registering_during_a_transaction_takes_effect_at_the_next() {
    let code = self_recursive(TRIGGER);
    let art = native(&code, SPEC);
    let registry = Registry::new();
    let hook = {
        let registry = registry.clone();
        Box::new(move || registry.register(SPEC, art).unwrap())
    };
    let mut evm = native_evm(&code, &registry, hook);
    let first = describe(&evm.transact(recursion_tx()).unwrap());
    assert_eq!(first, interpreted(&code));
    assert_eq!(
        evm.native_frames, 0,
        "the running transaction keeps its snapshot"
    );
    assert_eq!(registry.len(), 1);
    let second = describe(&evm.transact(recursion_tx()).unwrap());
    assert!(second.contains("Success"), "{second}");
    assert_eq!(
        evm.native_frames,
        2 * DEPTH + 1,
        "the next one runs natively"
    );
}

// ---------------------------------------------------------------------------
// Deep recursion through compiled code only
// ---------------------------------------------------------------------------

/// Calls `next` with calldata `d - 1` through `call_op` while `d > 0`
/// (recording `d` in storage unless static); returns the callee's 32-byte
/// answer, or 42 at the bottom.
fn chain(next: Address, call_op: u8, salt: u8) -> Vec<u8> {
    use revm::bytecode::opcode as op;
    let mut c = h("5f 35 80 15 60 00 57"); // d; if d == 0 goto bottom (patched)
    if call_op != op::STATICCALL {
        c.extend_from_slice(&h("60 01 81 55")); // sstore(d, 1)
    }
    c.extend_from_slice(&h("60 01 90 03 5f 52 60 20 5f 60 20 5f")); // mstore(0, d - 1); ret/args
    if call_op == op::CALL || call_op == op::CALLCODE {
        c.push(op::PUSH0); // value
    }
    c.push(op::PUSH20);
    c.extend_from_slice(next.as_slice());
    c.extend_from_slice(&[op::GAS, call_op, op::POP]);
    c.extend_from_slice(&h("60 20 5f f3")); // return mload(0)
    let bottom = c.len() as u8;
    c[5] = bottom;
    c.extend_from_slice(&h("5b 60 2a 5f 52 60 20 5f f3"));
    c.push(salt);
    c
}

/// Runs on a thread with a 256 KiB stack.
fn small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .expect("no stack overflow, no panic")
}

#[test]
fn call_chains_past_the_depth_limit_through_compiled_frames_only() {
    use revm::bytecode::opcode as op;
    for (name, call_op, two) in [
        ("CALL A<->B", op::CALL, true),
        ("CALL A->A", op::CALL, false),
        ("DELEGATECALL A<->B", op::DELEGATECALL, true),
        ("STATICCALL A<->B", op::STATICCALL, true),
        ("CALLCODE A->A", op::CALLCODE, false),
    ] {
        let contracts = if two {
            vec![
                chain(address(1), call_op, 0xa),
                chain(address(0), call_op, 0xb),
            ]
        } else {
            vec![chain(address(0), call_op, 0xa)]
        };
        let w = world(contracts);
        let registry = w.compile();
        let (frames, out) = small_stack(move || {
            let v = Variant::call(word(U256::from(1100)), 40_000_000_000_000);
            let (want, got) = w.run_both(&v, &registry);
            assert_eq!(want.exact(), got.exact(), "{name}: native differs");
            let r = got.result.expect("executes");
            assert!(r.is_success(), "{name}: {r:?}");
            (got.native_frames, U256::from_be_slice(r.output().unwrap()))
        });
        // The frame at depth 1024 (d = 1100 - 1024) cannot call: it answers d - 1.
        assert_eq!(out, U256::from(75), "{name}: reached the depth limit");
        // 1025 frames, each run before and after its CALL.
        assert_eq!(frames, 2 * 1025, "{name}: every frame ran natively");
        log(&format!(
            "{name}: 1025 compiled frames deep, equal to the interpreter"
        ));
    }
}

#[test]
fn threads_run_deep_compiled_chains_through_the_same_artifacts_at_once() {
    use revm::bytecode::opcode as op;
    let w = world(vec![
        chain(address(1), op::CALL, 0xa),
        chain(address(0), op::CALL, 0xb),
    ]);
    let registry = w.compile();
    let w = Arc::new(w);
    let threads: Vec<_> = (0..6u64)
        .map(|t| {
            let (w, registry) = (w.clone(), registry.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    // Different depths, so the threads' frames interleave
                    // differently; all 1025 deep at most.
                    let d = 900 + 50 * t;
                    let v = Variant::call(word(U256::from(d)), 40_000_000_000_000);
                    let (want, got) = w.run_both(&v, &registry);
                    assert_eq!(want.exact(), got.exact(), "thread {t}");
                    got.native_frames
                })
                .unwrap()
        })
        .collect();
    for (t, h) in threads.into_iter().enumerate() {
        let frames = h.join().expect("no stack overflow, no panic");
        let d = 900 + 50 * t as u64;
        let depth = d.min(1024);
        // Every frame but the bottom one runs before and after its CALL.
        let expected = if d >= 1024 { 2 * 1025 } else { 2 * depth + 1 };
        assert_eq!(frames, expected, "thread {t}");
    }
}

#[test]
fn create2_chain_to_the_depth_limit_runs_compiled_init_code() {
    // Copies itself and CREATE2s it: the init frames are this code again
    // (CREATE2 knows the init code hash, so they run compiled).
    let code = h("
        38 5f 5f 39                 // codecopy(0, 0, codesize)
        5f 38 5f 5f f5 50           // create2(0, 0, codesize, salt 0)
        5f 5f f3                    // deploy empty code
    ");
    let w = world(vec![code]);
    let registry = w.compile();
    let (frames, result) = small_stack(move || {
        let v = Variant::call(vec![], 40_000_000_000_000);
        let (want, got) = w.run_both(&v, &registry);
        assert_eq!(want.exact(), got.exact(), "native differs");
        (got.native_frames, format!("{:?}", got.result))
    });
    assert!(result.contains("Success"), "{result}");
    assert_eq!(
        frames,
        2 * 1025,
        "every frame, init frames included, ran natively"
    );
}

// ---------------------------------------------------------------------------
// Memory expansion up to the gas limit
// ---------------------------------------------------------------------------

/// `op(word0, word1)` shaped programs: word0 is an offset, word1 a length.
fn memory_programs() -> Vec<(&'static str, Vec<u8>)> {
    let tail = h("59 5f 52 60 20 5f f3"); // return msize
    let with_tail = |s: &str| [h(s), tail.clone()].concat();
    vec![
        // mstore8(word0 + word1, 1): expands to word0 + word1 + 1
        ("MSTORE8", with_tail("60 01 60 20 35 5f 35 01 53")),
        ("CALLDATACOPY", with_tail("60 20 35 5f 5f 35 37")),
        ("MCOPY", with_tail("60 20 35 5f 5f 35 5e")),
        ("KECCAK256", with_tail("60 20 35 5f 35 20 50")),
        ("LOG0", with_tail("60 20 35 5f 35 a0")),
        ("RETURN", h("60 20 35 5f 35 f3")),
        ("CODECOPY", with_tail("60 20 35 5f 5f 35 39")),
    ]
}

/// Largest `end` for which `run(end)` succeeds, by bisection.
fn largest_ok(mut lo: u64, mut hi: u64, ok: impl Fn(u64) -> bool) -> u64 {
    assert!(ok(lo) && !ok(hi));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) {
            lo = mid
        } else {
            hi = mid
        }
    }
    lo
}

#[test]
fn memory_expands_to_exactly_what_the_gas_limit_allows() {
    let programs = memory_programs();
    let w = world(programs.iter().map(|(_, c)| c.clone()).collect());
    let registry = w.compile();
    let mut checked = 0;
    for (i, (name, _)) in programs.iter().enumerate() {
        let single = World {
            spec: SPEC,
            opt_level: 2,
            contracts: vec![w.contracts[i].clone()],
            seed: 0,
        };
        let v = |off: U256, len: U256, gas: u64| Variant::call(words(&[off, len]), gas);
        for gas in [100_000u64, 3_000_000, 30_000_000, 1_000_000_000] {
            if *name == "RETURN" && gas > 3_000_000 {
                continue; // megabytes of output, compared as text
            }
            if gas > 30_000_000 && !matches!(*name, "MSTORE8" | "CALLDATACOPY") {
                continue; // tens of megabytes per run: two programs suffice
            }
            let success = |len: u64| {
                let (want, _) =
                    single.run_both(&v(U256::ZERO, U256::from(len), gas), &Registry::new());
                want.result.as_ref().is_ok_and(|r| r.is_success())
            };
            let max = largest_ok(0, 1 << 40, success);
            for (off, len) in [
                (0, max),
                (0, max + 1),
                (0, max + 32),
                (max / 2, max - max / 2),
                (max / 2, max - max / 2 + 1),
                (max, 0),
                (u64::MAX, 0),
            ] {
                let out = must_agree(
                    &single,
                    &v(U256::from(off), U256::from(len), gas),
                    &registry,
                );
                if len == max + 1 {
                    assert!(
                        !out.result.unwrap().is_success(),
                        "{name}: one byte more fails"
                    );
                }
                checked += 1;
            }
            log(&format!(
                "{name}: largest affordable expansion with gas {gas}: {max} bytes"
            ));
        }
        for (off, len) in [
            (U256::MAX, U256::ZERO),
            (U256::ZERO, U256::MAX),
            (U256::MAX, U256::from(1)),
            (U256::from(u64::MAX), U256::from(1)),
            (U256::from(1) << 64, U256::ZERO),
            (U256::from(u32::MAX), U256::from(u32::MAX)),
        ] {
            must_agree(&single, &v(off, len, 1_000_000), &registry);
            checked += 1;
        }
    }
    assert!(checked > 100);
}

// ---------------------------------------------------------------------------
// RETURNDATACOPY out of bounds
// ---------------------------------------------------------------------------

#[test]
fn returndatacopy_out_of_bounds_halts_exactly_as_interpreted() {
    // With word2 != 0, first calls contract 1 (which returns 32 bytes);
    // then returndatacopy(0, word0, word1) and return 64 bytes.
    let mut caller = h("60 40 35 15 60 00 57 60 20 5f 5f 5f 5f 73");
    caller.extend_from_slice(address(1).as_slice());
    caller.extend_from_slice(&h("5a f1 50"));
    let skip = caller.len() as u8;
    caller[5] = skip;
    caller.extend_from_slice(&h("5b 60 20 35 5f 35 5f 3e 60 40 5f f3"));
    let callee = h("60 2a 5f 52 60 20 5f f3");
    let w = world(vec![caller, callee]);
    let registry = w.compile();
    let u = U256::from;
    let mut outcomes = Vec::new();
    for called in [false, true] {
        for (off, len) in [
            (u(0), u(0)),
            (u(0), u(1)),
            (u(0), u(32)),
            (u(0), u(33)),
            (u(1), u(31)),
            (u(1), u(32)),
            (u(32), u(0)),
            (u(33), u(0)),
            (u(31), u(2)),
            (U256::from(u64::MAX), u(0)),
            (U256::from(u64::MAX), u(2)),
            (U256::MAX, u(0)),
            (u(0), U256::MAX),
            (U256::MAX, U256::MAX),
            (u(16), U256::from(u64::MAX)),
        ] {
            let data = words(&[off, len, u(called as u64)]);
            for gas in [100_000, 30_000] {
                let out = must_agree(&w, &Variant::call(data.clone(), gas), &registry);
                outcomes.push(format!("{:?}", out.result.unwrap()));
            }
        }
    }
    let halts = outcomes
        .iter()
        .filter(|o| o.contains("OutOfOffset"))
        .count();
    assert!(
        halts >= 10 && halts < outcomes.len(),
        "both in and out of bounds: {halts}"
    );
}

// ---------------------------------------------------------------------------
// Compile time of hostile shapes: linear in the size, bounded per KB
// ---------------------------------------------------------------------------

/// Compiles every shape of [`evmc_tests::shapes`] at 6, 12 and 24 KiB with
/// the default options (the level the opt budget picks), prints the time
/// per KB, and requires at most 1 s per KB at 24 KiB and time at 24 KiB
/// under 8x that at 6 KiB (4x the size; small times are floored at 50 ms,
/// where noise dominates). Both bounds are far above what an idle machine
/// needs, so that a loaded 2-core CI machine passes; a superlinear pass
/// exceeds them by orders of magnitude. A round that misses them is
/// measured again, up to three rounds, each size's best time counting:
/// other tests run beside this one, and a compile they stall for a few
/// hundred milliseconds (jumpdests at 24 KiB once took 452 ms, of which
/// 45 ms in LLVM, against 79 ms in the run before) is not a slow pass. The
/// 24 KiB build of each shape then runs against the interpreter.
#[test]
fn compile_time_of_every_shape_grows_linearly_and_runs_as_interpreted() {
    const KIB: usize = 1024;
    const SIZES: [usize; 3] = [6 * KIB, 12 * KIB, 24 * KIB];
    let dir = tempfile::tempdir().unwrap();
    for &(name, shape) in evmc_tests::shapes::SHAPES {
        let codes = SIZES.map(shape);
        for (code, size) in codes.iter().zip(SIZES) {
            assert!(code.len() <= size && code.len() + 80 >= size, "{name}");
        }
        let mut best = [f64::INFINITY; SIZES.len()];
        let mut last = None;
        let (mut per_kb, mut growth) = (f64::INFINITY, f64::INFINITY);
        for _round in 0..3 {
            for (k, (code, &size)) in codes.iter().zip(&SIZES).enumerate() {
                let opts = CompileOptions::new(SPEC);
                let path = dir.path().join(format!("{name}_{size}.so"));
                let start = std::time::Instant::now();
                let artifact = evmc_compiler::compile_to_file(code, &opts, &path)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                let secs = start.elapsed().as_secs_f64();
                let t = artifact.timings;
                log(&format!(
                    "shape {name:<20} {:>6} B: {:>7.1} ms, {:>6.2} ms/KB (opt {:.0}, codegen {:.0} ms), {} IR instructions at -O{}",
                    code.len(),
                    secs * 1e3,
                    secs * 1e3 / (code.len() as f64 / 1024.0),
                    t.optimize.as_secs_f64() * 1e3,
                    t.codegen.as_secs_f64() * 1e3,
                    t.ir_instructions,
                    t.opt_level,
                ));
                best[k] = best[k].min(secs);
                last = Some(artifact);
            }
            let size = codes[SIZES.len() - 1].len();
            per_kb = best[SIZES.len() - 1] / (size as f64 / 1024.0);
            growth = best[SIZES.len() - 1] / best[0].max(0.05);
            if per_kb < 1.0 && growth < 8.0 {
                break;
            }
        }
        assert!(per_kb < 1.0, "{name}: {per_kb:.2} s per KB at 24 KiB");
        assert!(growth < 8.0, "{name}: {growth:.1}x from 6 to 24 KiB");

        // The last compile was of the largest size.
        let (code, artifact) = (codes[SIZES.len() - 1].clone(), last.unwrap());
        let art = evmc_runtime::Loader::new(Expect {
            code_hash: artifact.code_hash,
            spec: evmc_compiler::spec_name(SPEC).to_string(),
        })
        .load(&artifact.path)
        .unwrap();
        let registry = Registry::new();
        registry.register(SPEC, Arc::new(art)).unwrap();
        let w = world(vec![code]);
        for data in [vec![], word(U256::from(1)), word(U256::MAX)] {
            must_agree(&w, &Variant::call(data, 3_000_000), &registry);
        }
    }
}

/// Writes the 24 KiB build of every shape as `NAME.bin-runtime` (run with
/// empty calldata) into the folder `EVMC_SHAPES_DIR` names, for timing them
/// natively against the interpreter with `evmc-native bench DIR` (how
/// `benches/README.md` measured them). Run by hand:
/// `EVMC_SHAPES_DIR=/tmp/shapes cargo test --release -p evmc-tests --test all -- --ignored shapes_as_bench_programs`.
#[test]
#[ignore = "writes files for a benchmark; run by hand"]
fn shapes_as_bench_programs() {
    let dir = std::env::var_os("EVMC_SHAPES_DIR").expect("set EVMC_SHAPES_DIR to a folder");
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    for &(name, shape) in evmc_tests::shapes::SHAPES {
        let code = shape(24 * 1024);
        std::fs::write(
            dir.join(format!("{name}.bin-runtime")),
            hex::encode(code) + "\n",
        )
        .unwrap();
    }
}
