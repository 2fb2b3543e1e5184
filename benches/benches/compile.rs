//! Compile time of every distinct contract of the benchmark programs, with
//! its phases (analysis, IR, LLVM optimisation, codegen, link) and the size
//! of the shared object.

use criterion::{criterion_main, Criterion};
mod common;
use common::{cases, criterion};
use evmc_benches::median;
use evmc_compiler::{compile_to_file, CompileOptions, Timings};
use std::collections::HashSet;
use std::time::Duration;

fn compile(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("evmc-bench-compile-")
        .tempdir()
        .expect("temporary directory");
    let dir = dir.path();
    let mut seen = HashSet::new();
    for case in cases() {
        for code in case.codes() {
            let spec = case.spec();
            let hash = evmc_compiler::code_hash(&code);
            if !seen.insert((hash, spec)) || code.len() > evmc_compiler::DEFAULT_MAX_CODE_SIZE {
                continue;
            }
            let opts = CompileOptions::new(spec);
            let out = dir.join(format!("{hash:x}.so"));
            let mut runs: Vec<Timings> = Vec::new();
            let mut size = 0;
            let id = format!("compile/{}/{:.10}", case.id(), format!("{hash:x}"));
            c.bench_function(&id, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let a = compile_to_file(&code, &opts, &out)
                            .unwrap_or_else(|e| panic!("{id}: {e}"));
                        total += a.timings.total();
                        size = a.size;
                        runs.push(a.timings);
                    }
                    total
                })
            });
            let m = |f: fn(&Timings) -> Duration| median(&runs.iter().map(f).collect::<Vec<_>>());
            println!(
                "{id}: {} bytes -> {size} bytes .so at O{}; median analysis {:?}, IR {:?}, optimise {:?}, codegen {:?}, link {:?}",
                code.len(),
                runs.last().map_or(0, |t| t.opt_level),
                m(|t| t.analysis),
                m(|t| t.ir),
                m(|t| t.optimize),
                m(|t| t.codegen),
                m(|t| t.link),
            );
        }
    }
}

fn benches() {
    std::thread::Builder::new()
        .stack_size(evmc_compiler::LLVM_THREAD_STACK)
        .spawn(|| {
            let mut c = criterion();
            compile(&mut c);
        })
        .expect("bench thread")
        .join()
        .expect("compile bench panicked");
}

criterion_main!(benches);
