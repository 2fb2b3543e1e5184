//! Uniswap V2: swaps on the USDC/WETH pair, both ways, against real
//! reserves. Each swap is two transactions, as when a contract wallet does
//! it without the router: the input token is transferred to the pair, then
//! `swap` sends out what the constant-product formula allows.

use super::{
    calldata, fixture_code, install_code, mapping_slot, usdc, weth, word, Contract, Generator,
    Rand, Users, WorkloadConfig, ETHER,
};
use evmc_runtime::block::{address, Address, Genesis, TxRequest, U256};
use rand::Rng;

/// Mainnet addresses of the USDC/WETH pair and of the V2 factory.
pub const PAIR: Address = address!("0xB4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc");
const FACTORY: Address = address!("0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f");

// UniswapV2ERC20: totalSupply (0), balanceOf (1), allowance (2),
// DOMAIN_SEPARATOR (3), nonces (4); UniswapV2Pair: factory (5), token0 (6),
// token1 (7), reserve0 | reserve1 << 112 | blockTimestampLast << 224 (8),
// price0/1CumulativeLast (9, 10), kLast (11), unlocked (12).
const TOTAL_SUPPLY: U256 = U256::from_limbs([0, 0, 0, 0]);
const LP_BALANCES: U256 = U256::from_limbs([1, 0, 0, 0]);
const FACTORY_SLOT: U256 = U256::from_limbs([5, 0, 0, 0]);
const TOKEN0: U256 = U256::from_limbs([6, 0, 0, 0]);
const TOKEN1: U256 = U256::from_limbs([7, 0, 0, 0]);
const RESERVES: U256 = U256::from_limbs([8, 0, 0, 0]);
const UNLOCKED: U256 = U256::from_limbs([12, 0, 0, 0]);

const SWAP: [u8; 4] = [0x02, 0x2c, 0x0d, 0x9f];
const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];

const LIQUIDITY_PROVIDER: Address = address!("0x00000000000000000000000000000000000001b0");
const GAS: u64 = 300_000;

/// Installs WETH, USDC and the pair with `reserve_usdc` / `reserve_weth`
/// of liquidity (once).
pub fn install(
    genesis: &mut Genesis,
    contracts: &mut Vec<Contract>,
    cfg: &WorkloadConfig,
    reserves: (U256, U256),
) -> Result<(), String> {
    weth::install(genesis, contracts, cfg)?;
    usdc::install(genesis, contracts, cfg)?;
    if genesis.get(&PAIR).is_some_and(|a| !a.code.is_empty()) {
        return Ok(());
    }
    let code = fixture_code(cfg.contracts_dir.as_deref(), "uniswap_v2_pair.json")?;
    install_code(genesis, contracts, "UniswapV2Pair", PAIR, code);
    // USDC's address is the lower one, so it is token0.
    let (r0, r1) = reserves;
    usdc::credit(genesis, PAIR, r0);
    weth::credit(genesis, PAIR, r1);
    let liquidity = (r0 * r1).root(2);
    let s = &mut genesis.entry(PAIR).or_default().storage;
    s.insert(TOTAL_SUPPLY, liquidity);
    s.insert(
        mapping_slot(LIQUIDITY_PROVIDER, LP_BALANCES),
        liquidity - U256::from(1000),
    );
    s.insert(mapping_slot(Address::ZERO, LP_BALANCES), U256::from(1000));
    s.insert(FACTORY_SLOT, word(FACTORY));
    s.insert(TOKEN0, word(usdc::USDC));
    s.insert(TOKEN1, word(weth::WETH));
    s.insert(
        RESERVES,
        r0 | (r1 << 112) | (U256::from(GENESIS_TIME) << 224),
    );
    s.insert(UNLOCKED, U256::from(1));
    Ok(())
}

const GENESIS_TIME: u32 = 1_700_000_000;

/// UniswapV2Library.getAmountOut: 0.3% fee, constant product.
pub fn amount_out(amount_in: U256, reserve_in: U256, reserve_out: U256) -> U256 {
    let with_fee = amount_in * U256::from(997);
    with_fee * reserve_out / (reserve_in * U256::from(1000) + with_fee)
}

pub struct UniswapGen {
    users: Users,
    /// The pair's reserves (USDC, WETH) after every swap generated so far.
    reserves: (U256, U256),
    second_leg: Option<TxRequest>,
}

impl UniswapGen {
    pub fn install(
        genesis: &mut Genesis,
        contracts: &mut Vec<Contract>,
        cfg: &WorkloadConfig,
    ) -> Result<Self, String> {
        let reserves = (
            U256::from(20_000_000 * usdc::UNIT),
            U256::from(10_000 * ETHER),
        );
        install(genesis, contracts, cfg, reserves)?;
        let users = Users::new(0x75, cfg.accounts, genesis, U256::ZERO);
        for a in &users.addresses {
            usdc::credit(genesis, *a, U256::from(10_000_000 * usdc::UNIT));
            weth::credit(genesis, *a, U256::from(5_000 * ETHER));
        }
        Ok(Self {
            users,
            reserves,
            second_leg: None,
        })
    }
}

impl Generator for UniswapGen {
    fn next_tx(&mut self, rng: &mut Rand) -> TxRequest {
        if let Some(tx) = self.second_leg.take() {
            return tx;
        }
        let user = rng.random_range(0..self.users.len());
        let me = word(self.users.addresses[user]);
        let (r0, r1) = self.reserves;
        let (token_in, amount_in, out0, out1) = if rng.random_bool(0.5) {
            let amount_in = U256::from(rng.random_range(10..5_000) * usdc::UNIT);
            let out = amount_out(amount_in, r0, r1);
            self.reserves = (r0 + amount_in, r1 - out);
            (usdc::USDC, amount_in, U256::ZERO, out)
        } else {
            let amount_in = U256::from(rng.random_range(5..2_500u128) * ETHER / 1000);
            let out = amount_out(amount_in, r1, r0);
            self.reserves = (r0 - out, r1 + amount_in);
            (weth::WETH, amount_in, out, U256::ZERO)
        };
        let pay = self.users.tx(
            user,
            token_in,
            U256::ZERO,
            calldata(TRANSFER, &[word(PAIR), amount_in]),
            GAS,
        );
        // swap(amount0Out, amount1Out, to, data = ""): offset 0x80, length 0.
        let swap = calldata(SWAP, &[out0, out1, me, U256::from(0x80), U256::ZERO]);
        self.second_leg = Some(self.users.tx(user, PAIR, U256::ZERO, swap, GAS));
        pay
    }
}
