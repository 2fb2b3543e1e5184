//! Target machine set-up and object/assembly emission.

use crate::CompileError;
use inkwell::module::Module;
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{
    CodeModel, FileType, InitializationConfig, RelocMode, Target, TargetMachine,
};
use inkwell::OptimizationLevel;
use std::sync::Once;

pub use super::target_spec::TargetSpec;

impl TargetSpec {
    /// Baseline x86-64, loadable on any x86-64 machine.
    pub fn generic() -> Self {
        init();
        Self {
            triple: TargetMachine::get_default_triple()
                .as_str()
                .to_string_lossy()
                .into_owned(),
            cpu: "x86-64".into(),
            features: String::new(),
        }
    }
}

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        Target::initialize_x86(&InitializationConfig::default());
        set_llvm_options();
    });
}

/// Code-generator options, set once per process (LLVM keeps them global).
///
/// The greedy register allocator's region splitting grows with the number
/// of blocks a live range crosses times the number of ranges: on a large
/// contract (thousands of blocks all reachable from the dynamic-jump
/// dispatch) it took two thirds of code generation (snailtracer: 4.0 of
/// 6.2 s) for 2% smaller code. A zero budget makes it give up on region
/// growing at once and fall back to cheaper splits. With parts of 1,500
/// instructions LLVM's default budget costs 10% more compile time in sum
/// (0.79-1.37x per contract) and moves speed both ways (AMD family 25,
/// `benches/README.md`, "Code-generator options"): snailtracer's ratio
/// 5.1-5.3x → 6.0-6.3x, fibonacci's 24.6-33.9x → 20.2-20.3x (a limb of
/// its loop goes to memory instead of the gas), the geomean of native
/// times 0.99x.
///
/// X86's domain reassignment pass (on for CPUs with AVX-512) moves
/// integer work into mask registers; on the long carry chains of 256-bit
/// arithmetic it took 87% of code generation (`llc` on an 8 KiB chain of
/// MULs: 16.6 of 19 s).
///
/// `-unroll-count=2` makes the loop unroller of [`LOOP_PIPELINE`] unroll
/// twice every loop whose unrolled body stays under its size threshold
/// (the level-2 default; larger loops are left as they are): the loops of
/// EVM code have no trip count LLVM can compute (a 256-bit counter, and a
/// gas check that may leave each iteration), so its own heuristics never
/// unroll them. `-unroll-max-count=2` keeps it from unrolling any loop
/// further: a loop whose trip count LLVM computes is otherwise unrolled
/// by a divisor of it (hash_10k's loop 73 times: codegen 23 → 550 ms).
/// Both options are process-wide: they apply to level 3's `default<O3>`
/// too.
///
/// `-post-RA-scheduler=false` turns off the list scheduler that runs
/// after register allocation, which the Zen scheduling models (and
/// others) enable: it took 10% of `llc` on Seaport's IR on an AMD EPYC
/// family 26 (Zen 5), and the out-of-order cores the artefacts run on
/// gain nothing from it (`bench` A/B of two caches, two sets of
/// alternating runs: geomean of the speedups 1.003× and 1.006×, no case
/// beyond the runs' spread; compile time of the large benchdata
/// contracts −10–13%; benches/README.md, "A Zen 5, and compiling
/// faster").
///
/// `EVMC_LLVM_ARGS` adds options (space-separated, as for `llc`), for
/// experiments; one named there replaces the default above.
fn set_llvm_options() {
    let args = llvm_args(std::env::var("EVMC_LLVM_ARGS").ok().as_deref());
    let cstrings: Vec<std::ffi::CString> = args
        .iter()
        .filter_map(|a| std::ffi::CString::new(a.as_str()).ok())
        .collect();
    let ptrs: Vec<*const std::ffi::c_char> = cstrings.iter().map(|c| c.as_ptr()).collect();
    // SAFETY: `ptrs` points into `cstrings`, alive for the call; LLVM copies
    // what it keeps. Called once, before any compilation.
    unsafe {
        inkwell::llvm_sys::support::LLVMParseCommandLineOptions(
            ptrs.len() as i32,
            ptrs.as_ptr(),
            std::ptr::null(),
        );
    }
}

/// The arguments [`set_llvm_options`] parses: the defaults, where `extra`
/// (`EVMC_LLVM_ARGS`) names an option it replaces the default of that name
/// (LLVM refuses an option given twice), then `extra`.
fn llvm_args(extra: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = [
        "evmc-native",
        "-grow-region-complexity-budget=0",
        "-disable-x86-domain-reassignment",
        "-unroll-count=2",
        "-unroll-max-count=2",
        "-post-RA-scheduler=false",
    ]
    .map(str::to_string)
    .to_vec();
    let extra: Vec<String> = extra
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    // `-opt` and `--opt` are one option to LLVM.
    let name = |a: &str| {
        let a = a.trim_start_matches('-');
        a.split('=').next().unwrap_or(a).to_string()
    };
    args.retain(|a| !extra.iter().any(|e| name(e) == name(a)));
    args.extend(extra);
    args
}

/// The machine this process runs on.
pub fn host_target() -> TargetSpec {
    init();
    TargetSpec {
        triple: TargetMachine::get_default_triple()
            .as_str()
            .to_string_lossy()
            .into_owned(),
        cpu: TargetMachine::get_host_cpu_name().to_string(),
        features: TargetMachine::get_host_cpu_features().to_string(),
    }
}

pub(crate) fn machine(spec: &TargetSpec, opt: u8) -> Result<TargetMachine, CompileError> {
    init();
    let triple = inkwell::targets::TargetTriple::create(&spec.triple);
    let target = Target::from_triple(&triple).map_err(|e| CompileError::Llvm(e.to_string()))?;
    // Level 1 keeps LLVM's fast instruction selector and register allocator:
    // the optimising ones cost 5-10x more time on a large contract and buy
    // ~20% in the inlined code, which pays only for small hot contracts.
    let level = match opt {
        0 | 1 => OptimizationLevel::None,
        2 => OptimizationLevel::Default,
        _ => OptimizationLevel::Aggressive,
    };
    target
        .create_target_machine(
            &triple,
            &spec.cpu,
            &spec.features,
            level,
            RelocMode::PIC,
            CodeModel::Default,
        )
        .ok_or_else(|| {
            CompileError::Llvm(format!(
                "cannot create a target machine for {} ({})",
                spec.triple, spec.cpu
            ))
        })
}

/// The passes of [`FAST_PIPELINE`], as a literal that [`LOOP_PIPELINE`]
/// extends.
macro_rules! fast_passes {
    () => {
        "function(lower-expect,sroa,early-cse<memssa>,\
instcombine<no-verify-fixpoint>,simplifycfg,dse,simplifycfg)"
    };
}

/// The IR passes of levels 1 and 2, chosen by measurement on the contracts
/// in `benchdata`: generated code keeps gas and stack length in locals and
/// passes stack words through memory between blocks, so promotion (SROA),
/// local forwarding of stack stores to loads (EarlyCSE with MemorySSA),
/// dead-store elimination and instruction combining do the work. GVN, loop
/// and vectoriser passes cost most of `default<O2>`'s time (GVN alone half
/// of it on Seaport) and changed the executed instruction count of
/// snailtracer by less than 0.1%.
pub const FAST_PIPELINE: &str = fast_passes!();

/// [`FAST_PIPELINE`], then small loops unrolled twice (see
/// `set_llvm_options`) and the copies combined: a loop whose words rotate
/// between registers each iteration (fibonacci's `a, b = b, a + b`) needs
/// no moves when unrolled; fibonacci's two iterations take the 33
/// instructions one took, with every limb in a register (before, one limb
/// lived in a stack slot). Without the final instcombine factorial ran
/// 9.3x instead of 11.2x. Measured in benches/README.md, "Loop unrolling".
pub const LOOP_PIPELINE: &str = concat!(
    fast_passes!(),
    ",function(loop-simplify,lcssa,loop-unroll<O2>,instcombine<no-verify-fixpoint>,simplifycfg)"
);

/// Runs the IR passes of level `opt`; `unroll` picks [`LOOP_PIPELINE`] at
/// levels 1 and 2.
pub(crate) fn optimize(
    module: &Module<'_>,
    tm: &TargetMachine,
    opt: u8,
    unroll: bool,
) -> Result<(), CompileError> {
    let passes = match opt {
        0 => return Ok(()),
        1 | 2 if unroll => LOOP_PIPELINE,
        1 | 2 => FAST_PIPELINE,
        _ => "default<O3>",
    };
    module
        .run_passes(passes, tm, PassBuilderOptions::create())
        .map_err(|e| CompileError::Llvm(e.to_string()))
}

pub(crate) fn emit(
    module: &Module<'_>,
    tm: &TargetMachine,
    kind: FileType,
) -> Result<Vec<u8>, CompileError> {
    let buf = tm
        .write_to_memory_buffer(module, kind)
        .map_err(|e| CompileError::Llvm(e.to_string()))?;
    Ok(buf.as_slice().to_vec())
}

#[cfg(test)]
mod tests {
    use super::llvm_args;

    #[test]
    fn extra_llvm_args_replace_defaults_of_the_same_name() {
        let plain = llvm_args(None);
        assert!(plain.contains(&"-grow-region-complexity-budget=0".to_string()));
        let args = llvm_args(Some(
            " --grow-region-complexity-budget=10000  -time-passes ",
        ));
        assert_eq!(
            args.iter()
                .filter(|a| a.contains("grow-region-complexity-budget"))
                .collect::<Vec<_>>(),
            ["--grow-region-complexity-budget=10000"]
        );
        assert!(args.contains(&"-time-passes".to_string()));
        assert!(args.contains(&"-unroll-count=2".to_string()));
        assert_eq!(args[0], "evmc-native");
    }
}
