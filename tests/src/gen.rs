//! Generated EVM worlds for differential fuzzing.
//!
//! A [`World`] is a spec and a handful of contracts at fixed addresses:
//! structured programs (valid jumps, loops, memory traffic, storage, calls
//! into each other, creates, reverts, logs), a string of random bytes and a
//! deployer. It is decoded from plain bytes through `arbitrary`, so the
//! proptest smoke test and the cargo-fuzz target share one generator and a
//! failing input is just bytes.
//!
//! Compiling costs far more than executing, so a world is compiled once and
//! then run under many [`Variant`]s: calldata, entry contract, call value,
//! storage and balances, and a sweep of gas limits. The generated code reads
//! its behaviour from the calldata (which sub-program, branch, loop count,
//! callee, offsets), and passes the calldata minus its first word on to the
//! contracts it calls, so one world covers many paths and call graphs.

use crate::evmc_runtime::{LoadedArtifact, Registry};
use arbitrary::Unstructured;
use evmc_compiler::SpecId;
use evmc_harness::fixture::{run_fixture, AccountInfo, Fixture, FixtureEnv, FixtureTx};
use evmc_harness::statetest::Outcome;
use rayon::prelude::*;
use revm::bytecode::opcode as op;
use revm::primitives::{Address, Bytes, U256};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod program;
mod report;

pub use program::deployer;
use program::structured;

pub const SENDER: Address =
    revm::primitives::address!("0x5e0de50000000000000000000000000000000001");

/// Contract `i` lives at `0xc0de00 + i`, so code can compute callees.
pub const ADDRESS_BASE: u32 = 0xc0_de_00;

pub fn address(i: usize) -> Address {
    let mut a = [0u8; 20];
    a[16..].copy_from_slice(&(ADDRESS_BASE + i as u32).to_be_bytes());
    Address::from(a)
}

/// Specs a world may be generated for; the newest is the one that matters
/// most, so it is drawn more often.
pub const SPECS: &[SpecId] = &[
    SpecId::OSAKA,
    SpecId::OSAKA,
    SpecId::OSAKA,
    SpecId::OSAKA,
    SpecId::PRAGUE,
    SpecId::CANCUN,
    SpecId::SHANGHAI,
    SpecId::LONDON,
    SpecId::BERLIN,
    SpecId::ISTANBUL,
    SpecId::PETERSBURG,
    SpecId::BYZANTIUM,
    SpecId::SPURIOUS_DRAGON,
    SpecId::HOMESTEAD,
    SpecId::FRONTIER,
];

/// Compiles and loads `(code, spec, opt level)`.
pub type CompileFn<'a> = dyn Fn(&[u8], SpecId, u8) -> Arc<LoadedArtifact> + Sync + 'a;

/// Optimisation levels a world may be compiled at (the default most often).
pub const OPT_LEVELS: &[u8] = &[2, 2, 2, 2, 0, 1, 3];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Structured,
    Random,
    /// Init code that deploys a copy of contract `CALLVALUE % n`.
    Deployer,
}

#[derive(Clone, Debug)]
pub struct Contract {
    pub code: Vec<u8>,
    pub kind: Kind,
    /// Registered for native execution (otherwise interpreted).
    pub compiled: bool,
}

#[derive(Clone, Debug)]
pub struct World {
    pub spec: SpecId,
    /// LLVM optimisation level of the compiled contracts.
    pub opt_level: u8,
    pub contracts: Vec<Contract>,
    /// Seeds the variants.
    pub seed: u64,
}

/// One transaction against a world.
#[derive(Clone, Debug, Default)]
pub struct Variant {
    pub target: usize,
    pub calldata: Vec<u8>,
    pub value: U256,
    pub balances: Vec<U256>,
    /// (contract, key, value) of the pre-state.
    pub storage: Vec<(usize, U256, U256)>,
    pub gas_limit: u64,
}

impl Variant {
    /// A plain call of contract 0.
    pub fn call(calldata: Vec<u8>, gas_limit: u64) -> Variant {
        Variant {
            calldata,
            gas_limit,
            ..Default::default()
        }
    }
}

impl World {
    /// Decodes a world; any input gives one (short inputs give small ones).
    pub fn decode(data: &[u8]) -> World {
        let mut u = Unstructured::new(data);
        let spec = SPECS[u.choose_index(SPECS.len()).unwrap_or(0)];
        let opt_level = OPT_LEVELS[u.choose_index(OPT_LEVELS.len()).unwrap_or(0)];
        let n_structured = u.int_in_range(1..=3usize).unwrap_or(1);
        let random = u.ratio(2, 3).unwrap_or(false);
        // structured.., [random], deployer, then one empty account.
        let n_contracts = n_structured + random as usize + 1;
        let n_accounts = n_contracts + 1;
        let mut contracts = Vec::new();
        for _ in 0..n_structured {
            let compiled = u.ratio(7, 8).unwrap_or(true);
            let code = structured(&mut u, spec, n_accounts);
            contracts.push(Contract {
                code,
                kind: Kind::Structured,
                compiled,
            });
        }
        if random {
            let len = u.int_in_range(0..=400usize).unwrap_or(0);
            let mut code = u.bytes(len.min(u.len())).unwrap_or_default().to_vec();
            // Sprinkle JUMPDESTs so that random jumps sometimes land.
            for i in (0..code.len()).step_by(7) {
                if code[i] < 52 {
                    code[i] = op::JUMPDEST;
                }
            }
            contracts.push(Contract {
                code,
                kind: Kind::Random,
                compiled: true,
            });
        }
        contracts.push(Contract {
            code: deployer(n_contracts),
            kind: Kind::Deployer,
            compiled: u.ratio(1, 2).unwrap_or(true),
        });
        if !contracts[0].compiled {
            contracts[0].compiled = true;
        }
        let seed = u.arbitrary().unwrap_or(0);
        World {
            spec,
            opt_level,
            contracts,
            seed,
        }
    }

    /// A world of random byte strings only.
    pub fn decode_random(data: &[u8]) -> World {
        let mut u = Unstructured::new(data);
        let spec = SPECS[u.choose_index(SPECS.len()).unwrap_or(0)];
        let opt_level = OPT_LEVELS[u.choose_index(OPT_LEVELS.len()).unwrap_or(0)];
        let n = u.int_in_range(1..=3usize).unwrap_or(1);
        let mut contracts = Vec::new();
        for _ in 0..n {
            let len = u.int_in_range(1..=300usize).unwrap_or(1);
            let code = u.bytes(len.min(u.len())).unwrap_or_default().to_vec();
            contracts.push(Contract {
                code,
                kind: Kind::Random,
                compiled: true,
            });
        }
        let seed = u.arbitrary().unwrap_or(0);
        World {
            spec,
            opt_level,
            contracts,
            seed,
        }
    }

    /// Compiles the contracts marked `compiled` (in parallel) and registers them.
    pub fn registry(&self, compile: &CompileFn<'_>) -> Arc<Registry> {
        let registry = Registry::new();
        let arts: Vec<_> = self
            .contracts
            .par_iter()
            .filter(|c| c.compiled)
            .map(|c| compile(&c.code, self.spec, self.opt_level))
            .collect();
        for a in arts {
            registry.register(self.spec, a).unwrap();
        }
        registry
    }

    /// [`World::registry`] through the harness's compile cache.
    pub fn compile(&self) -> Arc<Registry> {
        self.registry(&crate::native_opt)
    }

    /// `n` transactions drawn from the world's seed.
    pub fn variants(&self, n: usize) -> Vec<Variant> {
        let mut r = SplitMix(self.seed);
        let structured: Vec<usize> = (0..self.contracts.len())
            .filter(|i| self.contracts[*i].kind != Kind::Deployer)
            .collect();
        (0..n)
            .map(|_| {
                // Mostly a structured contract; random bytes rarely get far.
                let target = match structured
                    .iter()
                    .position(|i| self.contracts[*i].kind == Kind::Random)
                {
                    Some(p) if r.below(8) == 0 => structured[p],
                    _ => {
                        let s: Vec<usize> = structured
                            .iter()
                            .copied()
                            .filter(|i| self.contracts[*i].kind == Kind::Structured)
                            .collect();
                        if s.is_empty() {
                            structured[r.below(structured.len() as u64) as usize]
                        } else {
                            s[r.below(s.len() as u64) as usize]
                        }
                    }
                };
                let words = 1 + r.below(5) as usize;
                let mut calldata = Vec::with_capacity(words * 32);
                for _ in 0..words {
                    for _ in 0..4 {
                        calldata.extend_from_slice(&r.next().to_be_bytes());
                    }
                }
                // Sometimes a ragged tail.
                if r.below(4) == 0 {
                    calldata.truncate(calldata.len() - r.below(32) as usize);
                }
                let value = match r.below(4) {
                    0 => U256::from(r.below(10_000)),
                    _ => U256::ZERO,
                };
                let balances = (0..self.contracts.len())
                    .map(|_| match r.below(3) {
                        0 => U256::ZERO,
                        _ => U256::from(r.below(1_000_000)),
                    })
                    .collect();
                let mut storage = Vec::new();
                for c in 0..self.contracts.len() {
                    for k in 0..8u64 {
                        if r.below(3) == 0 {
                            let v = match r.below(4) {
                                0 => U256::ZERO,
                                1 => U256::from(1),
                                2 => U256::from(r.next()),
                                _ => U256::MAX - U256::from(r.below(100)),
                            };
                            storage.push((c, U256::from(k), v));
                        }
                    }
                }
                let gas_limit = 100_000 + r.below(3_000_000);
                Variant {
                    target,
                    calldata,
                    value,
                    balances,
                    storage,
                    gas_limit,
                }
            })
            .collect()
    }

    /// The transaction as a single-transaction fixture (the runtime's
    /// whole-transaction path).
    pub fn fixture(&self, v: &Variant) -> Fixture {
        let mut pre = BTreeMap::new();
        pre.insert(
            SENDER,
            AccountInfo {
                balance: U256::from(1u64) << 160,
                code: Bytes::new(),
                nonce: 0,
                storage: Default::default(),
            },
        );
        for (i, c) in self.contracts.iter().enumerate() {
            let storage: HashMap<U256, U256> = v
                .storage
                .iter()
                .filter(|(ci, _, _)| *ci == i)
                .map(|(_, k, v)| (*k, *v))
                .collect();
            pre.insert(
                address(i),
                AccountInfo {
                    balance: v.balances.get(i).copied().unwrap_or_default(),
                    code: Bytes::from(c.code.clone()),
                    nonce: 1,
                    storage: storage.into_iter().collect(),
                },
            );
        }
        Fixture {
            name: "generated".into(),
            env: FixtureEnv {
                current_coinbase: address(0xff),
                current_gas_limit: U256::from(u64::MAX),
                current_number: U256::from(1000),
                current_timestamp: U256::from(1_700_000_000u64),
                current_base_fee: Some(U256::ZERO),
                current_difficulty: Some(U256::from(0x20000)),
            },
            pre,
            transaction: vec![FixtureTx {
                data: Bytes::from(v.calldata.clone()),
                gas_limit: U256::from(v.gas_limit),
                gas_price: U256::ZERO,
                nonce: U256::ZERO,
                sender: SENDER,
                to: Some(address(v.target)),
                value: v.value,
            }],
        }
    }

    /// One compiled contract at `address(0)`.
    pub fn single(spec: SpecId, code: Vec<u8>) -> World {
        World {
            spec,
            opt_level: 2,
            contracts: vec![Contract {
                code,
                kind: Kind::Structured,
                compiled: true,
            }],
            seed: 0,
        }
    }

    /// Runs `v` both ways; the interpreter's outcome, or the divergence report.
    pub fn check(&self, v: &Variant, registry: &Arc<Registry>) -> Result<Outcome, String> {
        let (want, got) = self.run_both(v, registry);
        if want.exact() != got.exact() {
            return Err(self.report(v, &want, &got, registry));
        }
        Ok(want)
    }

    /// Runs `v` interpreted and natively.
    pub fn run_both(&self, v: &Variant, registry: &Arc<Registry>) -> (Outcome, Outcome) {
        let f = self.fixture(v);
        let pre = f.pre_state();
        let want = run_fixture(&f, &pre, self.spec, None);
        let got = run_fixture(&f, &pre, self.spec, Some(registry));
        (want, got)
    }
}

/// Counts over a run, for the log and to catch a generator that stopped
/// exercising anything.
#[derive(Default, Debug)]
pub struct Stats {
    pub cases: AtomicU64,
    pub native_frames: AtomicU64,
    pub success: AtomicU64,
    pub revert: AtomicU64,
    pub halt: AtomicU64,
    pub rejected: AtomicU64,
    /// How the interpreter ended each case, e.g. `Halt(OutOfGas(Basic))`.
    pub endings: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    fn add(&self, want: &Outcome, got: &Outcome) {
        use revm::context_interface::result::ExecutionResult as R;
        self.cases.fetch_add(1, Ordering::Relaxed);
        self.native_frames
            .fetch_add(got.native_frames, Ordering::Relaxed);
        let (c, ending) = match &want.result {
            Ok(R::Success { reason, .. }) => (&self.success, format!("{reason:?}")),
            Ok(R::Revert { .. }) => (&self.revert, "Revert".into()),
            Ok(R::Halt { reason, .. }) => (&self.halt, format!("{reason:?}")),
            Err(e) => (&self.rejected, e.chars().take(40).collect()),
        };
        c.fetch_add(1, Ordering::Relaxed);
        *self.endings.lock().unwrap().entry(ending).or_default() += 1;
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> String {
        format!(
            "{} cases ({} success, {} revert, {} halt, {} rejected), {} native frames",
            Self::get(&self.cases),
            Self::get(&self.success),
            Self::get(&self.revert),
            Self::get(&self.halt),
            Self::get(&self.rejected),
            Self::get(&self.native_frames)
        )
    }

    /// Interpreter endings by frequency.
    pub fn endings(&self) -> String {
        let e = self.endings.lock().unwrap();
        let mut v: Vec<_> = e.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1));
        v.iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs `n_variants` transactions against a compiled world, each at its own
/// gas limit, then at exactly the gas it spent, one unit less, and at
/// `gas_points` random limits below; returns the first divergence's report.
pub fn check_world(
    world: &World,
    registry: &Arc<Registry>,
    n_variants: usize,
    gas_points: usize,
    stats: &Stats,
) -> Result<(), String> {
    let variants = world.variants(n_variants);
    variants.par_iter().enumerate().try_for_each(|(i, v)| {
        let run = |v: &Variant| -> Result<Outcome, String> {
            if std::env::var_os("EVMC_FUZZ_TRACE").is_some() {
                // Unbuffered and past the test harness's capture: the last
                // line names the case when the process dies.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "variant {i} gas {}:\n{}",
                    v.gas_limit,
                    world.repro(v)
                );
            }
            let (want, got) = world.run_both(v, registry);
            stats.add(&want, &got);
            if want.exact() != got.exact() {
                return Err(world.report(v, &want, &got, registry));
            }
            Ok(want)
        };
        let want = run(v)?;
        // What the transaction needs: its gas, or the EIP-7623 floor.
        let spent = match &want.result {
            Ok(r) => r.gas().total_gas_spent().max(r.gas().floor_gas()),
            Err(_) => return Ok(()),
        };
        let mut r = SplitMix(world.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut limits = vec![spent, spent.saturating_sub(1)];
        for _ in 0..gas_points {
            // Above the intrinsic gas (at most 21000 + 68 per byte).
            let low = (spent / 2).max(21_000 + 68 * v.calldata.len() as u64);
            limits.push(low + r.below(spent.saturating_sub(low)));
        }
        limits.sort_unstable();
        limits.dedup();
        for gas_limit in limits {
            if gas_limit != v.gas_limit {
                run(&Variant {
                    gas_limit,
                    ..v.clone()
                })?;
            }
        }
        Ok(())
    })
}

/// splitmix64: the variants only need to be cheap and reproducible from the
/// world's seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
