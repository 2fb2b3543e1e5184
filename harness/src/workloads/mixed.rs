//! A mix of the token workloads with a share of compute-heavy calls.

use super::compute::ComputeGen;
use super::uniswap::UniswapGen;
use super::usdc::UsdcGen;
use super::weth::WethGen;
use super::{Contract, Generator, Rand, WorkloadConfig};
use evmc_runtime::block::{Genesis, TxRequest};
use rand::Rng;

/// Transactions from each generator per 100,000: WETH, USDC, Uniswap
/// (both legs of a swap count), compute (one in 5,000).
const SHARES: [u32; 4] = [35_000, 30_000, 34_980, 20];

pub struct MixedGen {
    weth: WethGen,
    usdc: UsdcGen,
    uniswap: UniswapGen,
    compute: ComputeGen,
}

impl MixedGen {
    pub fn install(
        genesis: &mut Genesis,
        contracts: &mut Vec<Contract>,
        cfg: &WorkloadConfig,
    ) -> Result<Self, String> {
        Ok(Self {
            weth: WethGen::install(genesis, contracts, cfg)?,
            usdc: UsdcGen::install(genesis, contracts, cfg)?,
            uniswap: UniswapGen::install(genesis, contracts, cfg)?,
            compute: ComputeGen::install(genesis, contracts, cfg)?,
        })
    }
}

impl Generator for MixedGen {
    fn next_tx(&mut self, rng: &mut Rand) -> TxRequest {
        let mut pick = rng.random_range(0..SHARES.iter().sum::<u32>());
        let mut which = 0;
        while pick >= SHARES[which] {
            pick -= SHARES[which];
            which += 1;
        }
        match which {
            0 => self.weth.next_tx(rng),
            1 => self.usdc.next_tx(rng),
            2 => self.uniswap.next_tx(rng),
            _ => self.compute.next_tx(rng),
        }
    }
}
