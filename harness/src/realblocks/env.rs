//! The EVM environment of a mainnet block: spec from mainnet's fork
//! schedule (alloy-hardforks, through alloy-evm), block values from the
//! header, blob parameters of the fork in force.

use alloy_consensus::{Header, TxType};
use alloy_eips::eip7840::BlobParams;
use alloy_evm::eth::spec::EthSpec;
use alloy_evm::EvmEnv;
use alloy_hardforks::{EthereumHardfork, EthereumHardforks};
use revm::primitives::hardfork::SpecId;

/// From this block on, receipts carry a status instead of an intermediate
/// state root, so the receipts root of the header can be recomputed.
pub const BYZANTIUM_BLOCK: u64 = 4_370_000;

/// Mainnet's chain id.
pub(super) const MAINNET_CHAIN_ID: u64 = 1;

/// The environment alloy-evm derives from `header` on mainnet: spec by
/// block number before the merge and by timestamp after, number,
/// timestamp, beneficiary, gas limit, base fee, difficulty or prevrandao,
/// blob excess gas and price, Osaka's transaction gas cap.
pub fn block_env(header: &Header) -> EvmEnv<SpecId> {
    let spec = EthSpec::mainnet();
    let blob = blob_params(&spec, header.timestamp);
    EvmEnv::for_eth_block(header, &spec, MAINNET_CHAIN_ID, blob)
}

/// Blob gas parameters of the fork in force at `timestamp`, none before
/// Cancun.
fn blob_params(spec: &EthSpec, timestamp: u64) -> Option<BlobParams> {
    let active = |fork| spec.is_ethereum_fork_active_at_timestamp(fork, timestamp);
    if active(EthereumHardfork::Bpo2) {
        Some(BlobParams::bpo2())
    } else if active(EthereumHardfork::Bpo1) {
        Some(BlobParams::bpo1())
    } else if active(EthereumHardfork::Osaka) {
        Some(BlobParams::osaka())
    } else if active(EthereumHardfork::Prague) {
        Some(BlobParams::prague())
    } else if active(EthereumHardfork::Cancun) {
        Some(BlobParams::cancun())
    } else {
        None
    }
}

/// The fork's name as the project prints specs (`CANCUN`, `MERGE`, ...).
pub fn fork_name(spec: SpecId) -> &'static str {
    evmc_compiler::spec_name(spec)
}

/// The first spec that accepts transactions of type `ty`.
pub(crate) fn first_spec_allowing(ty: TxType) -> SpecId {
    match ty {
        TxType::Legacy => SpecId::FRONTIER,
        TxType::Eip2930 => SpecId::BERLIN,
        TxType::Eip1559 => SpecId::LONDON,
        TxType::Eip4844 => SpecId::CANCUN,
        TxType::Eip7702 => SpecId::PRAGUE,
    }
}
