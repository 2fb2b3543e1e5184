//! Load of every distinct contract's artefact file: read and validate it,
//! `dlopen` it through its descriptor, look up the entry symbol (the bench
//! CLI also times the whole cache hit, manifest and content hash included).

use criterion::{criterion_main, Criterion};
mod common;
use common::{cases, compiler, criterion};
use evmc_runtime::{Expect, Loader};
use std::collections::HashSet;

fn load_artifacts(c: &mut Criterion) {
    let mut compiler = compiler();
    let mut seen = HashSet::new();
    for case in cases() {
        let (contracts, _) = compiler.prepare(&case);
        for contract in contracts {
            let Ok(compiled) = &contract.outcome else {
                continue;
            };
            if !seen.insert(contract.code_hash) {
                continue;
            }
            let loader = Loader::new(Expect {
                code_hash: contract.code_hash,
                spec: evmc_compiler::spec_name(contract.spec).to_string(),
            });
            let id = format!(
                "load/{}/{:.10}",
                case.id(),
                format!("{:x}", contract.code_hash)
            );
            c.bench_function(&id, |b| {
                b.iter_with_large_drop(|| {
                    loader
                        .load(&compiled.path)
                        .unwrap_or_else(|e| panic!("{id}: {e}"))
                })
            });
        }
    }
}

fn benches() {
    let mut c = criterion();
    load_artifacts(&mut c);
}

criterion_main!(benches);
