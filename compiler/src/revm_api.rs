//! Everything the compiler takes from revm: spec ids, static gas, opcode
//! stack effects and keccak. Kept in one module because revm's API moves with
//! every major version.

pub use revm::primitives::hardfork::SpecId;
pub use revm::primitives::{keccak256, B256, U256};

use revm::bytecode::opcode::OpCode;
use revm::interpreter::instructions::gas_table_spec;

/// Oldest and newest spec this compiler generates code for. Newer specs add
/// opcodes with immediates (EIP-8024) and state gas (EIP-8037) that the code
/// generator does not model; such contracts stay interpreted.
pub const MIN_SPEC: SpecId = SpecId::FRONTIER;
/// Newest spec compiled (see [`MIN_SPEC`]).
pub const MAX_SPEC: SpecId = SpecId::OSAKA;

/// Whether `spec` is within [`MIN_SPEC`]..=[`MAX_SPEC`].
pub fn is_supported_spec(spec: SpecId) -> bool {
    (spec as u8) >= (MIN_SPEC as u8) && (spec as u8) <= (MAX_SPEC as u8)
}

/// Parses a spec name in any common spelling (`CANCUN`, `Cancun`,
/// `SpuriousDragon`, `EIP158`, `Paris`, ...).
pub fn parse_spec(name: &str) -> Option<SpecId> {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_uppercase()
    };
    let wanted = norm(name);
    let wanted = match wanted.as_str() {
        "CONSTANTINOPLE" | "CONSTANTINOPLEFIX" => "PETERSBURG".to_string(),
        "SPURIOUSDRAGON" | "EIP158" => "SPURIOUS".to_string(),
        "TANGERINEWHISTLE" | "EIP150" => "TANGERINE".to_string(),
        "PARIS" => "MERGE".to_string(),
        "PRAGUEEOF" => "PRAGUE".to_string(),
        _ => wanted,
    };
    (0..=u8::MAX)
        .map_while(SpecId::try_from_u8)
        .find(|s| norm(spec_name(*s)) == wanted)
}

/// revm's name of `spec` (`Osaka`, `Merge`, ...): how manifests, keys and
/// artefact metadata name it.
pub fn spec_name(spec: SpecId) -> &'static str {
    spec.into()
}

/// Static gas charged by the interpreter before each opcode runs, for `spec`.
pub fn static_gas_table(spec: SpecId) -> [u16; 256] {
    gas_table_spec(spec)
}

/// Stack inputs and outputs of an opcode, `None` for undefined opcodes.
pub fn stack_io(op: u8) -> Option<(u8, u8)> {
    OpCode::new(op).map(|o| (o.inputs(), o.outputs()))
}

/// The mnemonic of `op` (`ADD`), or a placeholder for undefined opcodes.
pub fn opcode_name(op: u8) -> &'static str {
    match OpCode::new(op) {
        Some(o) => o.as_str(),
        None => "UNKNOWN",
    }
}
