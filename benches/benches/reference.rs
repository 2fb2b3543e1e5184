//! fibonacci and factorial: the compiled contract's whole transaction next
//! to the interpreter's and to the hand-written Rust version with the same
//! gas accounting (the physical limit).

use criterion::{criterion_main, Criterion};
mod common;
use common::{cases, compiler, criterion};
use evmc_benches::{divergence, reference, verify_natively, Work};
use std::hint::black_box;

fn reference_programs(c: &mut Criterion) {
    let mut compiler = compiler();
    for case in cases() {
        let (Some(program), Work::Run { tx, .. }) =
            (reference::for_program(&case.name), &case.work)
        else {
            continue;
        };
        let (_, registry) = compiler.prepare(&case);
        let native = verify_natively(tx, &registry);
        if let Some(d) = divergence(&tx.verify(None), &native) {
            panic!("DIVERGENCE {}: {d}", case.id());
        }
        let (intrinsic, _) = tx.intrinsic_gas();
        let gas = tx.gas_limit() - intrinsic;
        let input = tx.input().to_vec();
        let rust = program(&input, gas).expect("enough gas");
        assert_eq!(
            rust.output.as_slice(),
            native.output.as_slice(),
            "{}",
            case.id()
        );

        let mut group = c.benchmark_group(format!("reference/{}", case.name));
        group.bench_function("rust", |b| {
            b.iter(|| program(black_box(&input), black_box(gas)))
        });
        let mut n = tx.runner(Some(registry.clone()));
        group.bench_function("native_tx", |b| b.iter(|| n.run().expect("runs")));
        let mut n0 = tx.with_input(&[0; 32]).runner(Some(registry));
        group.bench_function("native_tx_n0", |b| b.iter(|| n0.run().expect("runs")));
        let mut i = tx.runner(None);
        group.bench_function("interp_tx", |b| b.iter(|| i.run().expect("runs")));
        group.finish();
    }
}

fn benches() {
    let mut c = criterion();
    reference_programs(&mut c);
}

criterion_main!(benches);
