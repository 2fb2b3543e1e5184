//! The contract files of `data/contracts/`, built into the binary so that
//! an installed tool runs its workloads without the source checkout.

/// Contents of the bundled contract file `name`, if it is one.
pub fn file(name: &str) -> Option<&'static [u8]> {
    Some(match name {
        "weth.json" => include_bytes!("../../../data/contracts/weth.json"),
        "usdc_proxy.json" => include_bytes!("../../../data/contracts/usdc_proxy.json"),
        "fiat_token.json" => include_bytes!("../../../data/contracts/fiat_token.json"),
        "uniswap_v2_pair.json" => include_bytes!("../../../data/contracts/uniswap_v2_pair.json"),
        "snailtracer.hex" => include_bytes!("../../../data/contracts/snailtracer.hex"),
        _ => return None,
    })
}
