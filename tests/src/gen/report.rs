//! Reporting a divergence: the world and transaction as Rust source, and
//! the post-state of every touched account, both ways.

use super::{address, Variant, World, SENDER};
use crate::evmc_runtime::{NativeEvm, Registry};
use evmc_harness::statetest::Outcome;
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::database::State;
use revm::handler::{ExecuteEvm, MainBuilder, MainContext};
use revm::primitives::{Address, Bytes, TxKind, B256};
use std::collections::BTreeMap;
use std::sync::Arc;

impl World {
    /// Rust source of this world and transaction, for `fuzz_regressions.rs`.
    pub fn repro(&self, v: &Variant) -> String {
        let contracts: Vec<String> = self
            .contracts
            .iter()
            .map(|c| {
                format!(
                    "        Contract {{ code: hex::decode(\"{}\").unwrap(), kind: Kind::{:?}, compiled: {} }},",
                    hex::encode(&c.code),
                    c.kind,
                    c.compiled
                )
            })
            .collect();
        let storage: Vec<String> = v
            .storage
            .iter()
            .map(|(c, k, v)| {
                format!("({c}, U256::from({k}), U256::from_str_radix(\"{v:x}\", 16).unwrap())")
            })
            .collect();
        let balances: Vec<String> = v
            .balances
            .iter()
            .map(|b| format!("U256::from({b})"))
            .collect();
        format!(
            "let world = World {{\n    spec: SpecId::{:?},\n    opt_level: {},\n    contracts: vec![\n{}\n    ],\n    seed: 0,\n}};\n\
             let variant = Variant {{\n    target: {},\n    calldata: hex::decode(\"{}\").unwrap(),\n    value: U256::from({}),\n    \
             balances: vec![{}],\n    storage: vec![{}],\n    gas_limit: {},\n}};",
            self.spec,
            self.opt_level,
            contracts.join("\n"),
            v.target,
            hex::encode(&v.calldata),
            v.value,
            balances.join(", "),
            storage.join(", "),
            v.gas_limit
        )
    }

    /// Everything about a divergence: the reproducer, both results, and
    /// the accounts whose post-state differs.
    pub fn report(
        &self,
        v: &Variant,
        want: &Outcome,
        got: &Outcome,
        registry: &Arc<Registry>,
    ) -> String {
        let i = self.state_dump(v, None);
        let n = self.state_dump(v, Some(registry));
        let mut diff = String::new();
        for (addr, a) in &i {
            let b = n.get(addr).map(String::as_str).unwrap_or("(absent)");
            if a != b {
                diff += &format!("  {addr}\n    interpreter: {a}\n    native:      {b}\n");
            }
        }
        for (addr, b) in &n {
            if !i.contains_key(addr) {
                diff += &format!("  {addr}\n    interpreter: (absent)\n    native:      {b}\n");
            }
        }
        format!(
            "native differs from the interpreter ({:?}, {} native frames)\n interpreter: {}\n native:      {}\n state diff:\n{}\n reproducer:\n{}",
            self.spec,
            got.native_frames,
            want.exact(),
            got.exact(),
            if diff.is_empty() { "  (none)\n".into() } else { diff },
            self.repro(v)
        )
    }

    /// Post-state of every touched account, by address (reporting only; the
    /// verdict comes from [`run_fixture`]).
    pub fn state_dump(
        &self,
        v: &Variant,
        registry: Option<&Arc<Registry>>,
    ) -> BTreeMap<Address, String> {
        let f = self.fixture(v);
        let mut state = State::builder()
            .with_cached_prestate(f.pre_state())
            .with_bundle_update()
            .build();
        let mut cfg = CfgEnv::new_with_spec(self.spec);
        cfg.tx_gas_limit_cap = Some(u64::MAX);
        let block = BlockEnv {
            number: f.env.current_number,
            beneficiary: f.env.current_coinbase,
            timestamp: f.env.current_timestamp,
            gas_limit: u64::MAX,
            difficulty: f.env.current_difficulty.unwrap_or_default(),
            prevrandao: Some(B256::ZERO),
            ..Default::default()
        };
        let tx = TxEnv {
            caller: SENDER,
            gas_limit: v.gas_limit,
            kind: TxKind::Call(address(v.target)),
            data: Bytes::from(v.calldata.clone()),
            value: v.value,
            chain_id: Some(cfg.chain_id),
            ..Default::default()
        };
        let ctx = Context::mainnet()
            .with_block(block)
            .with_cfg(cfg)
            .with_db(&mut state);
        let registry = registry.cloned().unwrap_or_else(Registry::new);
        let mut evm = NativeEvm::new(ctx.build_mainnet(), registry);
        match evm.transact(tx) {
            Ok(r) => r
                .state
                .iter()
                .map(|(a, acc)| {
                    let mut st: Vec<_> = acc
                        .storage
                        .iter()
                        .filter(|(_, s)| s.is_changed())
                        .map(|(k, s)| format!("{k:#x}={:#x}", s.present_value))
                        .collect();
                    st.sort();
                    (
                        *a,
                        format!(
                            "nonce {} balance {} code {} status {:?} storage [{}]",
                            acc.info.nonce,
                            acc.info.balance,
                            acc.info.code_hash,
                            acc.status,
                            st.join(" ")
                        ),
                    )
                })
                .collect(),
            Err(e) => BTreeMap::from([(Address::ZERO, format!("error: {e:?}"))]),
        }
    }
}
