//! The revm side of the benchmark harness (see [`crate`]): turning
//! state tests, contract fixtures and bare calls into transactions, checking
//! them once with full post-state roots, and timing them on an EVM that is
//! built once and reused, so that a timed run is only `transact`.

use evmc_compiler::{SpecId, B256};
use evmc_harness::fixture::{self, load_fixtures};
use evmc_harness::statetest::{self, load_suite, transact, vectors, Outcome, Vector};
use evmc_runtime::{MemoScope, NativeEvm, Registry};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::context_interface::cfg::gas::calculate_initial_tx_gas_for_tx;
use revm::context_interface::result::ExecutionResult;
use revm::database::{CacheState, EmptyDB, State};
use revm::handler::{ExecuteEvm, MainBuilder, MainContext, MainnetContext, MainnetEvm};
use revm::primitives::{Address, Bytes, TxKind, U256};
use revm::state::{AccountInfo, Bytecode};
use revm_statetest_types::TestSuite;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the bare calls of evmone's and revm's benchmarks are sent from and to.
pub const CALL_TARGET: Address = evmc_harness::single_call::CALL_TARGET;
pub const CALL_SENDER: Address = evmc_harness::single_call::CALL_SENDER;

/// One transaction on its pre-state, ready to be verified and timed.
#[derive(Clone)]
pub struct Transaction {
    pre: CacheState,
    cfg: CfgEnv,
    block: BlockEnv,
    tx: TxEnv,
    /// The state-test vector it came from, whose expectations it is checked
    /// against.
    vector: Option<VectorRef>,
}

#[derive(Clone)]
struct VectorRef {
    suite: Arc<TestSuite>,
    unit: String,
    /// Position of the fork in `post`.
    fork: usize,
    index: usize,
}

impl VectorRef {
    fn get(&self) -> Option<Vector<'_>> {
        let (name, unit) = self.suite.0.get_key_value(&self.unit)?;
        let (fork, tests) = unit.post.iter().nth(self.fork)?;
        let test = tests.get(self.index)?;
        Some(Vector {
            name,
            unit,
            fork,
            spec: fork.to_spec_id(),
            index: self.index,
            test,
        })
    }
}

/// A transaction and a short label naming it within its file.
pub struct Labelled {
    /// `unit/label` for state tests (the `_info.labels` entry of the data
    /// index, else `d0g0v0`), the fixture's name for contract fixtures.
    pub label: String,
    pub tx: Transaction,
}

/// Every vector of a state-test file.
pub fn state_test_transactions(path: &Path) -> Result<Vec<Labelled>, String> {
    let suite = Arc::new(load_suite(path)?);
    let (run, _skipped) = vectors(&suite);
    let mut out = Vec::new();
    for v in &run {
        let (cfg, block, tx) = statetest::environment(v)
            .map_err(|e| format!("{}: {}: {e}", path.display(), v.label()))?;
        let ix = &v.test.indexes;
        let data_label = v
            .unit
            .info
            .as_ref()
            .and_then(|i| i.get("labels"))
            .and_then(|l| l.get(ix.data.to_string()))
            .and_then(|l| l.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| format!("d{}", ix.data));
        let label = if ix.gas == 0 && ix.value == 0 {
            format!("{}/{data_label}", v.name)
        } else {
            format!("{}/{data_label}-g{}v{}", v.name, ix.gas, ix.value)
        };
        out.push(Labelled {
            label,
            tx: Transaction {
                pre: statetest::pre_state(v.unit),
                cfg,
                block,
                tx,
                vector: Some(VectorRef {
                    suite: suite.clone(),
                    unit: v.name.to_string(),
                    fork: v
                        .unit
                        .post
                        .keys()
                        .position(|f| f == v.fork)
                        .unwrap_or(usize::MAX),
                    index: v.index,
                }),
            },
        });
    }
    Ok(out)
}

/// The transactions of a contract-fixture file, under `spec`.
pub fn fixture_transactions(path: &Path, spec: SpecId) -> Result<Vec<Labelled>, String> {
    Ok(load_fixtures(path)?
        .into_iter()
        .map(|f| {
            let (cfg, block, tx) = fixture::environment(&f, spec);
            Labelled {
                label: f.name.clone(),
                tx: Transaction {
                    pre: f.pre_state(),
                    cfg,
                    block,
                    tx,
                    vector: None,
                },
            }
        })
        .collect())
}

/// Whether a JSON file holds state tests (`post` expectations) rather than
/// contract fixtures.
pub fn is_state_test(json: &serde_json::Value) -> bool {
    json.as_object()
        .and_then(|m| m.values().next())
        .is_some_and(|unit| unit.get("post").is_some())
}

/// A call of `input` into `code` at [`CALL_TARGET`] from a rich
/// [`CALL_SENDER`], without Osaka's per-transaction gas cap.
pub fn call_transaction(code: &[u8], input: &[u8], gas_limit: u64, spec: SpecId) -> Transaction {
    let mut pre = CacheState::new();
    pre.insert_account(
        CALL_SENDER,
        AccountInfo {
            balance: U256::from(10).pow(U256::from(30)),
            ..Default::default()
        },
    );
    let code = Bytecode::new_raw(Bytes::copy_from_slice(code));
    let code_hash = code.hash_slow();
    pre.contracts.insert(code_hash, code);
    pre.insert_account(
        CALL_TARGET,
        AccountInfo {
            code_hash,
            // Loaded through the code hash, as a node's state provider serves it.
            code: None,
            nonce: 1,
            ..Default::default()
        },
    );
    let mut cfg = CfgEnv::new_with_spec(spec);
    cfg.tx_gas_limit_cap = Some(u64::MAX);
    let block = BlockEnv {
        gas_limit: u64::MAX,
        ..Default::default()
    };
    let tx = TxEnv {
        caller: CALL_SENDER,
        kind: TxKind::Call(CALL_TARGET),
        data: Bytes::copy_from_slice(input),
        gas_limit,
        gas_price: 0,
        chain_id: Some(cfg.chain_id),
        ..Default::default()
    };
    Transaction {
        pre,
        cfg,
        block,
        tx,
        vector: None,
    }
}

/// What one checked run produced.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Status, gas, output and logs (see [`Outcome::observable`]).
    pub observable: String,
    pub state_root: B256,
    pub output: Vec<u8>,
    pub gas_used: u64,
    pub native_frames: u64,
    /// The transaction was not executed (invalid for its pre-state or block).
    pub rejected: bool,
    /// Against the state test's expectations, when it is one.
    pub expectation: Result<(), String>,
}

impl Transaction {
    pub fn spec(&self) -> SpecId {
        self.cfg.spec
    }

    pub fn input(&self) -> &[u8] {
        &self.tx.data
    }

    pub fn gas_limit(&self) -> u64 {
        self.tx.gas_limit
    }

    /// Intrinsic gas of the transaction and the floor its gas use is lifted
    /// to (EIP-7623), as revm computes them.
    pub fn intrinsic_gas(&self) -> (u64, u64) {
        let g = calculate_initial_tx_gas_for_tx(&self.tx, self.cfg.spec, None);
        (g.initial_regular_gas + g.initial_state_gas, g.floor_gas)
    }

    /// The same transaction with other calldata.
    pub fn with_input(&self, input: &[u8]) -> Transaction {
        let mut t = self.clone();
        t.tx.data = Bytes::copy_from_slice(input);
        t.vector = None;
        t
    }

    /// The same transaction with another gas limit.
    pub fn with_gas_limit(&self, gas_limit: u64) -> Transaction {
        let mut t = self.clone();
        t.tx.gas_limit = gas_limit;
        t.vector = None;
        t
    }

    /// The same transaction with the called account's code replaced by a
    /// single STOP: what revm spends around the contract (validation,
    /// intrinsic gas, journal, commit of the touched accounts), the same in
    /// both modes, hence a floor no compiled code goes under. `None` for a
    /// contract creation or a callee without code.
    pub fn with_callee_stopped(&self) -> Option<Transaction> {
        let TxKind::Call(to) = self.tx.kind else {
            return None;
        };
        let mut t = self.clone();
        let info = &mut t.pre.accounts.get_mut(&to)?.account.as_mut()?.info;
        if info.code_hash == revm::primitives::KECCAK_EMPTY {
            return None;
        }
        let stop = Bytecode::new_raw(Bytes::from_static(&[0x00]));
        info.code_hash = stop.hash_slow();
        info.code = Some(stop.clone());
        t.pre.contracts.insert(info.code_hash, stop);
        t.vector = None;
        Some(t)
    }

    /// Contracts of the pre-state, each once, skipping EIP-7702 delegation
    /// designators (never executed as code).
    pub fn codes(&self) -> Vec<Bytes> {
        let is_delegation = |c: &Bytes| c.len() == 23 && c.starts_with(&[0xef, 0x01, 0x00]);
        let mut codes: Vec<(B256, Bytes)> = self
            .pre
            .contracts
            .iter()
            .map(|(h, c)| (*h, c.original_bytes()))
            .filter(|(_, c)| !c.is_empty() && !is_delegation(c))
            .collect();
        codes.sort_by_key(|(h, _)| *h);
        codes.dedup_by_key(|(h, _)| *h);
        codes.into_iter().map(|(_, c)| c).collect()
    }

    /// Runs the transaction once and commits it on a copy of the pre-state,
    /// natively where `registry` has artifacts, and checks the state test's
    /// expectations.
    pub fn verify(&self, registry: Option<&Arc<Registry>>) -> Verified {
        let outcome: Outcome = transact(
            &self.pre,
            self.cfg.clone(),
            self.block.clone(),
            self.tx.clone(),
            registry,
            false,
        )
        .0;
        let expectation = match self.vector.as_ref().map(|v| v.get()) {
            Some(Some(v)) => statetest::check(&v, &outcome),
            Some(None) => Err("state-test vector vanished".into()),
            None => match &outcome.result {
                Ok(_) => Ok(()),
                Err(e) => Err(format!("transaction rejected: {e}")),
            },
        };
        let (output, gas_used) = match &outcome.result {
            Ok(r) => (
                r.output().map(|b| b.to_vec()).unwrap_or_default(),
                r.tx_gas_used(),
            ),
            Err(_) => (Vec::new(), 0),
        };
        Verified {
            observable: outcome.observable(),
            state_root: outcome.state_root,
            output,
            gas_used,
            native_frames: outcome.native_frames,
            rejected: outcome.result.is_err(),
            expectation,
        }
    }

    /// An EVM over its own copy of the pre-state, for timing repeated runs:
    /// revm's own interpreter without a registry, [`NativeEvm`] with one.
    pub fn runner(&self, registry: Option<Arc<Registry>>) -> Runner {
        let state = State::builder()
            .with_cached_prestate(self.pre.clone())
            .build();
        let ctx = Context::mainnet()
            .with_block(self.block.clone())
            .with_cfg(self.cfg.clone())
            .with_db(state);
        let engine = match registry {
            // One transaction timed again and again on one EVM: the
            // KECCAK256 memo must forget between repetitions, or they would
            // time hits the transaction never has on its own.
            Some(r) => Engine::Native(Box::new(
                NativeEvm::new(ctx.build_mainnet(), r).with_memo_scope(MemoScope::Transaction),
            )),
            None => Engine::Interp(Box::new(ctx.build_mainnet())),
        };
        Runner {
            engine,
            tx: self.tx.clone(),
        }
    }
}

type BenchCtx = MainnetContext<State<EmptyDB>>;

enum Engine {
    Interp(Box<MainnetEvm<BenchCtx>>),
    Native(Box<NativeEvm<BenchCtx>>),
}

/// Runs one transaction again and again without committing it, so every run
/// starts from the same state.
pub struct Runner {
    engine: Engine,
    tx: TxEnv,
}

/// One timed run.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub elapsed: Duration,
    pub gas_used: u64,
    pub success: bool,
    pub native_frames: u64,
}

impl Runner {
    /// Times one `transact` (execution and finalisation of the journal; the
    /// transaction's copy and dropping the result are outside the clock).
    pub fn run(&mut self) -> Result<Run, String> {
        let tx = self.tx.clone();
        let (result, elapsed, native_frames) = match &mut self.engine {
            Engine::Interp(evm) => {
                let start = Instant::now();
                let r = evm.transact(tx);
                (r, start.elapsed(), 0)
            }
            Engine::Native(evm) => {
                let before = evm.native_frames;
                let start = Instant::now();
                let r = evm.transact(tx);
                (r, start.elapsed(), evm.native_frames - before)
            }
        };
        let r = result.map_err(|e| format!("transaction rejected: {e}"))?;
        Ok(Run {
            elapsed,
            gas_used: r.result.tx_gas_used(),
            success: matches!(r.result, ExecutionResult::Success { .. }),
            native_frames,
        })
    }
}
