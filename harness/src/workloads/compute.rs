//! Compute-heavy calls: the snailtracer ray tracer's `Benchmark()`, about
//! 161M gas of arithmetic and memory work per call, the same every call
//! (this build keeps its scene in memory; the `benchdata/contracts` build
//! appends it to storage, so each call there costs more than the last).

use super::{calldata, hex_code, install_code, Contract, Generator, Rand, Users, WorkloadConfig};
use evmc_runtime::block::{address, Address, Genesis, TxRequest, U256};
use rand::Rng;

pub const SNAILTRACER: Address = address!("0x00000000000000000000000000000000005a1170");

const BENCHMARK: [u8; 4] = [0x30, 0x62, 0x7b, 0x7c];
/// Above Osaka's per-transaction cap, which the sequencer lifts.
const GAS: u64 = 200_000_000;

pub struct ComputeGen {
    users: Users,
}

impl ComputeGen {
    pub fn install(
        genesis: &mut Genesis,
        contracts: &mut Vec<Contract>,
        cfg: &WorkloadConfig,
    ) -> Result<Self, String> {
        let code = hex_code(cfg.contracts_dir.as_deref(), "snailtracer.hex")?;
        install_code(genesis, contracts, "snailtracer", SNAILTRACER, code);
        let users = Users::new(0x5a, cfg.accounts.min(16), genesis, U256::ZERO);
        Ok(Self { users })
    }
}

impl Generator for ComputeGen {
    fn next_tx(&mut self, rng: &mut Rand) -> TxRequest {
        let user = rng.random_range(0..self.users.len());
        let data = calldata(BENCHMARK, &[]);
        self.users.tx(user, SNAILTRACER, U256::ZERO, data, GAS)
    }
}
