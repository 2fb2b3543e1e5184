//! USDC: Circle's FiatToken behind its upgradeability proxy; transfers,
//! approvals and `transferFrom`, each a proxy frame delegating to the
//! implementation.

use super::{
    calldata, fixture_code, install_code, mapping2_slot, mapping_slot, two_distinct, word,
    Contract, Generator, Rand, Users, WorkloadConfig,
};
use evmc_runtime::block::{address, b256, Address, Genesis, TxRequest, U256};
use rand::Rng;

/// Mainnet addresses of the USDC proxy and of a FiatToken implementation.
pub const USDC: Address = address!("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
pub const FIAT_TOKEN: Address = address!("0x43506849D7C04F9138D1A2050bbF3A0c054402dd");
/// Owner, pauser, blacklister, master minter and proxy admin.
const ADMIN: Address = address!("0x00000000000000000000000000000000000ad000");

/// zeppelinos `AdminUpgradeabilityProxy` slots:
/// keccak256("org.zeppelinos.proxy.implementation") and ("….admin").
const IMPLEMENTATION_SLOT: U256 = U256::from_be_bytes(
    b256!("7050c9e0f4ca769c69bd3a8ef740bc37934f8e2c036e5a723fd8ee048ed3f8c3").0,
);
const ADMIN_SLOT: U256 = U256::from_be_bytes(
    b256!("10d6a54a4754c8869d6886b5f5d7fbfa5b4522237ea5c60d11bc4e7a1ff9390b").0,
);

// FiatToken's storage: Ownable.owner (0), Pausable.pauser + paused (1),
// Blacklistable.blacklister (2), name, symbol, decimals, currency (4-7),
// masterMinter + initialized (8), balances (9), allowed (10), totalSupply (11).
const OWNER: U256 = U256::from_limbs([0, 0, 0, 0]);
const PAUSER: U256 = U256::from_limbs([1, 0, 0, 0]);
const BLACKLISTER: U256 = U256::from_limbs([2, 0, 0, 0]);
const DECIMALS: U256 = U256::from_limbs([6, 0, 0, 0]);
const MASTER_MINTER: U256 = U256::from_limbs([8, 0, 0, 0]);
const BALANCES: U256 = U256::from_limbs([9, 0, 0, 0]);
const ALLOWED: U256 = U256::from_limbs([10, 0, 0, 0]);
const TOTAL_SUPPLY: U256 = U256::from_limbs([11, 0, 0, 0]);

const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
const TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];

const GAS: u64 = 300_000;
/// One USDC in token units (6 decimals).
pub const UNIT: u64 = 1_000_000;

/// Installs the proxy and the implementation (once).
pub fn install(
    genesis: &mut Genesis,
    contracts: &mut Vec<Contract>,
    cfg: &WorkloadConfig,
) -> Result<(), String> {
    if genesis.get(&USDC).is_some_and(|a| !a.code.is_empty()) {
        return Ok(());
    }
    let proxy = fixture_code(cfg.contracts_dir.as_deref(), "usdc_proxy.json")?;
    let token = fixture_code(cfg.contracts_dir.as_deref(), "fiat_token.json")?;
    install_code(genesis, contracts, "FiatTokenProxy", USDC, proxy);
    install_code(genesis, contracts, "FiatToken", FIAT_TOKEN, token);
    let s = &mut genesis.entry(USDC).or_default().storage;
    let admin = word(ADMIN);
    s.insert(IMPLEMENTATION_SLOT, word(FIAT_TOKEN));
    s.insert(ADMIN_SLOT, admin);
    s.insert(OWNER, admin);
    s.insert(PAUSER, admin);
    s.insert(BLACKLISTER, admin);
    s.insert(DECIMALS, U256::from(6));
    // masterMinter, with `initialized` packed in the byte after it.
    s.insert(MASTER_MINTER, admin | (U256::from(1) << 160));
    Ok(())
}

/// Mints `amount` USDC units to `holder`.
pub fn credit(genesis: &mut Genesis, holder: Address, amount: U256) {
    let s = &mut genesis.entry(USDC).or_default().storage;
    *s.entry(mapping_slot(holder, BALANCES)).or_default() += amount;
    *s.entry(TOTAL_SUPPLY).or_default() += amount;
}

pub struct UsdcGen {
    users: Users,
}

impl UsdcGen {
    pub fn install(
        genesis: &mut Genesis,
        contracts: &mut Vec<Contract>,
        cfg: &WorkloadConfig,
    ) -> Result<Self, String> {
        install(genesis, contracts, cfg)?;
        let users = Users::new(0x55, cfg.accounts, genesis, U256::ZERO);
        let n = users.len();
        for (i, a) in users.addresses.iter().enumerate() {
            credit(genesis, *a, U256::from(1_000_000 * UNIT));
            // Each user lets the next one spend for it.
            let spender = users.addresses[(i + 1) % n];
            genesis
                .entry(USDC)
                .or_default()
                .storage
                .insert(mapping2_slot(*a, spender, ALLOWED), U256::from(u128::MAX));
        }
        Ok(Self { users })
    }
}

impl Generator for UsdcGen {
    fn next_tx(&mut self, rng: &mut Rand) -> TxRequest {
        let n = self.users.len();
        let (from, to) = two_distinct(rng, n);
        let amount = U256::from(rng.random_range(1..1000 * UNIT));
        let to_word = word(self.users.addresses[to]);
        let roll = rng.random_range(0..100);
        // Approvals never target the next user: that allowance backs
        // `transferFrom`.
        let data = if roll >= 90 {
            // Spend for the previous user, who approved `from`.
            let owner = word(self.users.addresses[(from + n - 1) % n]);
            calldata(TRANSFER_FROM, &[owner, to_word, amount])
        } else if roll >= 80 && to != (from + 1) % n {
            calldata(APPROVE, &[to_word, amount])
        } else {
            calldata(TRANSFER, &[to_word, amount])
        };
        self.users.tx(from, USDC, U256::ZERO, data, GAS)
    }
}
