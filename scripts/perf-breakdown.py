#!/usr/bin/env python3
"""Where real-block execution spends its time, from a perf profile.

Record a replay whose timed runs are repeated, so that they dominate the
profile, with DWARF call graphs (frame pointers lose the inlined frames):

    perf record -F 1000 --call-graph dwarf,16384 -o native.data \
        target/release/evmc-native replay --mode native --repeat 20 --min-gas 200000 \
        --cache-dir CACHE ../shared/realblocks/mainnet
    perf script -i native.data | scripts/perf-breakdown.py 'run_txs<evmc_runtime|NativeEthEvm<'

ROOT selects the samples of one mode's block execution (the harness's
`realblocks::execute::run_txs`, monomorphised per EVM factory, and the
EVM type in alloy-evm's frames; alternatives separated by '|'):
`run_txs<evmc_runtime|NativeEthEvm<` (transactions executed by
NativeEvmFactory's EVM) or `run_txs<alloy_evm::eth::|alloy_evm::eth::EthEvm<`
(the interpreter; record `--mode interp --repeat 20` for it). Each sample is put in the first
category that matches a frame, walking from the leaf to the root. Compiled
code has no unwind tables, so its samples (and those of the builtins and
host calls it makes) stop at the artefact; they are counted as compiled
code when ROOT is the native one.

Usage: perf script -i DATA | perf-breakdown.py ROOT"""
import sys, collections
# ROOT may name several frames, separated by '|': a sample belongs to the
# mode if any of its frames contains one of them. `run_txs` is often the
# plain symbol (no generics) with the mode only in inlined frames below it,
# so also give the EVM type, which alloy-evm's inlined frames carry (with
# `run_txs<evmc_runtime` alone, 1% of a native run's samples were missed).
if len(sys.argv) != 2:
    sys.exit(__doc__)
roots = sys.argv[1].split("|")
# Categories, checked from the leaf up: the first frame matching a rule decides.
rules = [
    # A native run's receipt builder is inlined into alloy-evm's
    # `commit_transaction`: its frames are the bloom memo's.
    ("receipts + logs bloom (alloy receipt builder)", ["build_receipt", "logs_bloom", "realblocks::receipts::"]),
    ("state commit (revm State)", ["DatabaseCommit>::commit", "State<DB> as revm_database_interface::DatabaseCommit"]),
    ("KECCAK256 (interpreter or builtin)", ["instructions::system::keccak256", "executor::keccak256"]),
    ("SLOAD/SSTORE (host)", ["instructions::host::sload", "instructions::host::sstore"]),
    ("other host ops (BALANCE, EXTCODE*, LOG, ...)", ["instructions::host::"]),
    ("precompiles", ["revm_precompile::", "secp256k1", "ark_ff", "ark_bn254", "ark_ec", "sha2::", "ripemd", "c_kzg", "blst", "modexp", "aurora_engine"]),
    ("frame setup (CALL/CREATE, account load, code analysis)", ["init_with_context", "make_call_frame", "make_create_frame", "analyze_legacy", "frame_init", "process_next_action", "frame_return_result", "insert_call_outcome", "return_result"]),
    ("compiled code (artifact.so) + builtins", ["artifact.so", "executor::exec_op", "executor::mem_expand", "revm_glue::arith", "run_native_with"]),
    ("interpreter loop (revm instructions)", ["run_plain", "revm_interpreter::instructions"]),
    ("tx validation, pre/post execution (fees, nonce, refunds)", ["pre_execution", "post_execution", "validation", "validate", "load_accounts", "deduct_caller", "reimburse", "reward_beneficiary", "initial_tx_gas"]),
]
counts = collections.Counter(); total = 0
stack = []
def flush():
    global total
    if not stack: return
    if not any(r in f for f in stack for r in roots):
        # Compiled code has no unwind tables: its samples stop at the
        # artefact. Only native runs execute artefacts.
        if any(r.startswith(("EthBlockExecutor<evmc", "run_txs<evmc", "NativeEthEvm")) for r in roots) and any("artifact.so" in f for f in stack):
            total += 1; counts["compiled code (artifact.so) + builtins"] += 1
        return
    total += 1
    for f in stack:  # leaf first
        for name, keys in rules:
            if any(k in f for k in keys):
                counts[name] += 1; return
    counts["other (journal, handler, block executor, allocation)"] += 1
for line in sys.stdin:
    if not line.strip():
        flush(); stack = []; continue
    if line.startswith((' ', '\t')):
        stack.append(line.strip())
flush()
if total == 0:
    # A wrong ROOT (the harness's functions were renamed once) or a profile
    # without call graphs: say so rather than print an empty breakdown.
    sys.exit(f"no sample has a frame matching {sys.argv[1]!r}: check ROOT and that perf recorded --call-graph dwarf")
for name, c in counts.most_common():
    print(f"{100*c/total:5.1f}%  {name}")
print(f"{total} samples")
