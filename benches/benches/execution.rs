//! Whole transactions of every benchmark program, interpreted and native,
//! after checking that both produce the same outcome; prints the ratio.

use criterion::{criterion_main, Criterion};
mod common;
use common::{cases, compiler, criterion, median_per_iter};
use evmc_benches::{divergence, verify_natively, Runner, Work};
use std::time::Duration;

fn time_runs(runner: &mut Runner, iters: u64, log: &mut Vec<(u64, Duration)>) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        total += runner.run().unwrap_or_else(|e| panic!("{e}")).elapsed;
    }
    log.push((iters, total));
    total
}

fn execution(c: &mut Criterion) {
    let mut compiler = compiler();
    for case in cases() {
        let Work::Run { tx, .. } = &case.work else {
            continue;
        };
        let (_, registry) = compiler.prepare(&case);
        // Every compiled frame native, whatever the safety net would pick.
        if let Some(d) = divergence(&tx.verify(None), &verify_natively(tx, &registry)) {
            eprintln!("DIVERGENCE {}: not timed\n    {d}", case.id());
            continue;
        }
        let mut group = c.benchmark_group(case.id());
        let (mut interp_log, mut native_log) = (Vec::new(), Vec::new());
        let mut interp = tx.runner(None);
        group.bench_function("interp", |b| {
            b.iter_custom(|iters| time_runs(&mut interp, iters, &mut interp_log))
        });
        let mut native = tx.runner(Some(registry));
        group.bench_function("native", |b| {
            b.iter_custom(|iters| time_runs(&mut native, iters, &mut native_log))
        });
        group.finish();
        let (i, n) = (median_per_iter(&interp_log), median_per_iter(&native_log));
        println!(
            "{}: interp {i:?}, native {n:?}, speedup {:.2}x",
            case.id(),
            i.as_secs_f64() / n.as_secs_f64().max(1e-12)
        );
    }
}

fn benches() {
    let mut c = criterion();
    execution(&mut c);
}

criterion_main!(benches);
