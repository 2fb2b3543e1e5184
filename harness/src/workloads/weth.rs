//! WETH9: deposits, transfers and withdrawals among many accounts.

use super::{
    calldata, fixture_code, install_code, mapping_slot, two_distinct, word, Contract, Generator,
    Rand, Users, WorkloadConfig, ETHER,
};
use evmc_runtime::block::{address, Address, Genesis, TxRequest, U256};
use rand::Rng;

/// Mainnet address of WETH9.
pub const WETH: Address = address!("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2");
/// `mapping(address => uint) balanceOf` is WETH9's fourth state variable.
const BALANCE_OF: U256 = U256::from_limbs([3, 0, 0, 0]);

const DEPOSIT: [u8; 4] = [0xd0, 0xe3, 0x0d, 0xb0];
const WITHDRAW: [u8; 4] = [0x2e, 0x1a, 0x7d, 0x4d];
pub const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];

const GAS: u64 = 200_000;

/// Installs WETH9 (once).
pub fn install(
    genesis: &mut Genesis,
    contracts: &mut Vec<Contract>,
    cfg: &WorkloadConfig,
) -> Result<(), String> {
    let code = fixture_code(cfg.contracts_dir.as_deref(), "weth.json")?;
    install_code(genesis, contracts, "WETH9", WETH, code);
    Ok(())
}

/// Gives `holder` `amount` WETH, backed by as much ether held by WETH9.
pub fn credit(genesis: &mut Genesis, holder: Address, amount: U256) {
    let weth = genesis.entry(WETH).or_default();
    weth.balance += amount;
    *weth
        .storage
        .entry(mapping_slot(holder, BALANCE_OF))
        .or_default() += amount;
}

pub struct WethGen {
    users: Users,
}

impl WethGen {
    pub fn install(
        genesis: &mut Genesis,
        contracts: &mut Vec<Contract>,
        cfg: &WorkloadConfig,
    ) -> Result<Self, String> {
        install(genesis, contracts, cfg)?;
        let users = Users::new(0x57, cfg.accounts, genesis, U256::from(1000 * ETHER));
        for a in &users.addresses {
            credit(genesis, *a, U256::from(100 * ETHER));
        }
        Ok(Self { users })
    }
}

impl Generator for WethGen {
    fn next_tx(&mut self, rng: &mut Rand) -> TxRequest {
        let (from, to) = two_distinct(rng, self.users.len());
        // Amounts stay far below the balances, so every transaction succeeds
        // whatever the order.
        let amount = U256::from(rng.random_range(1u64..1_000_000) * 1_000_000_000);
        match rng.random_range(0..100) {
            0..25 => self
                .users
                .tx(from, WETH, amount, calldata(DEPOSIT, &[]), GAS),
            25..85 => {
                let to = word(self.users.addresses[to]);
                self.users.tx(
                    from,
                    WETH,
                    U256::ZERO,
                    calldata(TRANSFER, &[to, amount]),
                    GAS,
                )
            }
            _ => self
                .users
                .tx(from, WETH, U256::ZERO, calldata(WITHDRAW, &[amount]), GAS),
        }
    }
}
