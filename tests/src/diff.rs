//! Differential driver shared by the test files: compile a program once,
//! run cases both ways, record every mismatch, report them together.

use crate::{native, run_frame_with};
use evmc_compiler::SpecId;
use evmc_runtime::LoadedArtifact;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const BIG_GAS: u64 = 10_000_000;

/// Opcodes that only compute on their operands. CLZ (Osaka) comes last, so
/// `&PURE_OPS[..PURE_OPS.len() - 1]` is the set every spec since
/// Constantinople knows.
pub const PURE_OPS: &[u8] = &[
    revm::bytecode::opcode::ADD,
    revm::bytecode::opcode::MUL,
    revm::bytecode::opcode::SUB,
    revm::bytecode::opcode::DIV,
    revm::bytecode::opcode::SDIV,
    revm::bytecode::opcode::MOD,
    revm::bytecode::opcode::SMOD,
    revm::bytecode::opcode::ADDMOD,
    revm::bytecode::opcode::MULMOD,
    revm::bytecode::opcode::EXP,
    revm::bytecode::opcode::SIGNEXTEND,
    revm::bytecode::opcode::LT,
    revm::bytecode::opcode::GT,
    revm::bytecode::opcode::SLT,
    revm::bytecode::opcode::SGT,
    revm::bytecode::opcode::EQ,
    revm::bytecode::opcode::ISZERO,
    revm::bytecode::opcode::AND,
    revm::bytecode::opcode::OR,
    revm::bytecode::opcode::XOR,
    revm::bytecode::opcode::NOT,
    revm::bytecode::opcode::BYTE,
    revm::bytecode::opcode::SHL,
    revm::bytecode::opcode::SHR,
    revm::bytecode::opcode::SAR,
    revm::bytecode::opcode::CLZ,
];

/// Hex with spaces, newlines and `//` comments.
pub fn h(s: &str) -> Vec<u8> {
    let s: String = s
        .lines()
        .map(|l| l.split("//").next().unwrap())
        .flat_map(|l| l.split_whitespace())
        .collect();
    hex::decode(s).unwrap()
}

/// A program and its artifact, compiled through the real path once (the
/// harness caches per code and spec).
pub struct Prog {
    pub code: Vec<u8>,
    pub spec: SpecId,
    pub art: Arc<LoadedArtifact>,
}

pub fn prog(code: Vec<u8>, spec: SpecId) -> Prog {
    let t = std::time::Instant::now();
    let art = native(&code, spec);
    if t.elapsed().as_secs() >= 3 {
        eprintln!(
            "slow compile: {:?} for {} bytes ({spec:?})",
            t.elapsed(),
            code.len()
        );
    }
    Prog { code, spec, art }
}

/// Runs cases both ways; a mismatch is recorded (not panicked on) so that
/// one test reports every divergent case it saw.
pub struct Checker {
    label: String,
    cases: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Checker {
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            cases: AtomicUsize::new(0),
            failures: Default::default(),
        }
    }

    /// Compares one run; returns the gas the interpreter used.
    pub fn check(&self, what: &str, p: &Prog, input: &[u8], gas: u64) -> u64 {
        // EVMC_TEST_TRACE=1 prints every case before it runs (to find one
        // that hangs or crashes the process).
        if std::env::var_os("EVMC_TEST_TRACE").is_some() {
            eprintln!(
                "[{what}] {:?} gas {gas} len {} code {}",
                p.spec,
                p.code.len(),
                hex::encode(&p.code[p.code.len().saturating_sub(8)..])
            );
        }
        let want = run_frame_with(&p.code, input, gas, p.spec, None);
        let got = run_frame_with(&p.code, input, gas, p.spec, Some(&p.art));
        self.cases.fetch_add(1, Ordering::Relaxed);
        if want != got {
            let mut f = self.failures.lock().unwrap();
            if f.len() < 20 {
                let code = if p.code.len() > 300 {
                    format!("({} bytes) {}...", p.code.len(), hex::encode(&p.code[..64]))
                } else {
                    hex::encode(&p.code)
                };
                f.push(format!(
                    "[{what}] spec {:?} gas {gas}\n code: {code}\n input: {}\n interpreter: {want:?}\n native:      {got:?}",
                    p.spec,
                    hex::encode(input)
                ));
            } else {
                f.push(String::new());
            }
        }
        gas - want.gas_remaining.min(gas)
    }

    /// Runs with a generous limit, then at the exact amount used and one
    /// below it, plus `extra` limits; returns the amount used.
    pub fn check_gases(&self, what: &str, p: &Prog, input: &[u8], extra: &[u64]) -> u64 {
        let used = self.check(what, p, input, BIG_GAS);
        let mut gases = vec![used, used.saturating_sub(1)];
        gases.extend_from_slice(extra);
        gases.sort();
        gases.dedup();
        for g in gases {
            if g != BIG_GAS {
                self.check(what, p, input, g);
            }
        }
        used
    }

    /// Panics with the first mismatches, or if fewer than `min_cases` ran.
    pub fn finish(&self, min_cases: usize) {
        let n = self.cases.load(Ordering::Relaxed);
        eprintln!("{}: {n} differential cases", self.label);
        let f = self.failures.lock().unwrap();
        if !f.is_empty() {
            let shown: Vec<&str> = f
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.as_str())
                .collect();
            panic!(
                "{}: {} of {n} cases differ; first ones:\n{}",
                self.label,
                f.len(),
                shown.join("\n\n")
            );
        }
        assert!(n >= min_cases, "{}: only {n} cases ran", self.label);
    }
}
