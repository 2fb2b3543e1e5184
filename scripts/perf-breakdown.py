#!/usr/bin/env python3
"""Where real-block execution spends its time, from a perf profile.

Record a replay whose timed runs are repeated, so that they dominate the
profile, with DWARF call graphs (frame pointers lose the inlined frames):

    perf record -F 1000 --call-graph dwarf,16384 -o native.data \
        target/release/evmc-native replay --mode native --repeat 20 --min-gas 200000 \
        --cache-dir CACHE ../shared/realblocks/mainnet
    perf script -i native.data | scripts/perf-breakdown.py 'run_txs<evmc_runtime'

ROOT selects the samples of one mode's block execution (the harness's
`realblocks::execute::run_txs`, monomorphised per EVM factory):
`run_txs<evmc_runtime` (transactions executed by NativeEvmFactory's EVM) or
`run_txs<alloy_evm::eth::` (the interpreter; record
`--mode interp --repeat 20` for it). Each sample is put in the first
category that matches a frame, walking from the leaf to the root. Compiled
code has no unwind tables, so its samples (and those of the builtins and
host calls it makes) stop at the artefact; they are counted as compiled
code when ROOT is the native one.

Usage: perf script -i DATA | perf-breakdown.py ROOT"""
import sys, collections
root = sys.argv[1]
# Categories, checked from the leaf up: the first frame matching a rule decides.
rules = [
    ("receipts + logs bloom (alloy receipt builder)", ["build_receipt"]),
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
    if not any(root in f for f in stack):
        # Compiled code has no unwind tables: its samples stop at the
        # artefact. Only native runs execute artefacts.
        if root.startswith(("EthBlockExecutor<evmc", "run_txs<evmc")) and any("artifact.so" in f for f in stack):
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
    sys.exit(f"no sample has a frame matching {root!r}: check ROOT and that perf recorded --call-graph dwarf")
for name, c in counts.most_common():
    print(f"{100*c/total:5.1f}%  {name}")
print(f"{total} samples")
