//! Which machine a measurement was taken on. Ratios move a lot between
//! CPUs (a Xeon of family 6 model 207 showed about half the speedups of
//! another server), so every table and JSON document names its CPU.

use serde::Serialize;

/// The CPU and what of it matters to generated code.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    /// `model name` of `/proc/cpuinfo`, e.g. "Intel(R) Xeon(R) Platinum 8488C".
    pub cpu: String,
    /// `vendor_id`, e.g. "GenuineIntel".
    pub vendor: String,
    /// CPU family, model and stepping numbers.
    pub family: u32,
    /// See [`Machine::family`].
    pub model: u32,
    /// See [`Machine::family`].
    pub stepping: u32,
    /// Logical CPUs this process may use.
    pub threads: usize,
    /// The instruction-set extensions code generation may use, of those
    /// the CPU has (x86-64-v2/v3/v4 levels and a few more).
    pub flags: Vec<String>,
    /// The copies of the runtime's CPU-dependent builtins this process
    /// runs (`evmc_runtime::cpu_builtins`); empty when read from a text.
    pub builtins: Vec<String>,
    /// Independent additions the core retired per cycle when measured
    /// ([`independent_adds_per_cycle`]); `None` when read from a text or
    /// not measurable here.
    pub adds_per_cycle: Option<f64>,
    /// The same at the end of the run ([`Machine::finish`]): a host whose
    /// other thread got busy while the run went on shows here, not at the
    /// start. `None` until measured.
    pub adds_per_cycle_end: Option<f64>,
}

/// Extensions worth naming next to a speed figure.
const FLAGS: &[&str] = &[
    "sse4_2",
    "popcnt",
    "avx",
    "avx2",
    "bmi1",
    "bmi2",
    "adx",
    "lzcnt",
    "movbe",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512dq",
    "avx512ifma",
    "sha_ni",
    "vaes",
];

impl Machine {
    /// This machine, from `/proc/cpuinfo` (empty fields where it cannot be
    /// read).
    pub fn this() -> Self {
        let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Self {
            builtins: evmc_runtime::cpu_builtins(),
            adds_per_cycle: independent_adds_per_cycle(),
            ..Self::from_cpuinfo(&text)
        }
    }

    /// The first processor of a `/proc/cpuinfo` text.
    pub fn from_cpuinfo(text: &str) -> Self {
        let first = text.split("\n\n").next().unwrap_or("");
        let field = |name: &str| {
            first.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        let number = |name: &str| field(name).and_then(|v| v.parse().ok()).unwrap_or(0);
        let present: Vec<String> = field("flags")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        Self {
            cpu: field("model name").unwrap_or_default(),
            vendor: field("vendor_id").unwrap_or_default(),
            family: number("cpu family"),
            model: number("model"),
            stepping: number("stepping"),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            flags: FLAGS
                .iter()
                .filter(|f| present.iter().any(|p| p == *f))
                .map(|f| f.to_string())
                .collect(),
            builtins: Vec::new(),
            adds_per_cycle: None,
            adds_per_cycle_end: None,
        }
    }

    /// Measures the core's width again at the end of a run (where it was
    /// measured at the start).
    pub fn finish(&mut self) {
        if self.adds_per_cycle.is_some() {
            self.adds_per_cycle_end = independent_adds_per_cycle();
        }
    }

    /// The line for the end of a table: the core's width at the end and at
    /// the start, when both were measured.
    pub fn end_line(&self) -> Option<String> {
        let (start, end) = (self.adds_per_cycle?, self.adds_per_cycle_end?);
        Some(format!(
            "machine at the end: {end:.1} independent adds a cycle ({start:.1} at the start)"
        ))
    }

    /// One line for the head of a table.
    pub fn line(&self) -> String {
        let builtins = if self.builtins.is_empty() {
            String::new()
        } else {
            format!("; builtins {}", self.builtins.join(" "))
        };
        let adds = match self.adds_per_cycle {
            Some(a) => format!("; {a:.1} independent adds a cycle at the start"),
            None => String::new(),
        };
        format!(
            "machine: {} ({} family {} model {} stepping {}), {} threads; {}{}{}",
            if self.cpu.is_empty() {
                "unknown CPU"
            } else {
                &self.cpu
            },
            self.vendor,
            self.family,
            self.model,
            self.stepping,
            self.threads,
            self.flags.join(" "),
            builtins,
            adds
        )
    }
}

/// How many independent 64-bit additions the core retires per cycle, now:
/// eight independent chains of additions timed against one dependent chain
/// (one addition a cycle on every x86-64 core), the median of three
/// tries, about 30 ms in all. The AMD EPYC's core alone retires about 3.5
/// of them (nine instructions a loop on four adders); when its other
/// hardware thread is busy, 2.3–2.7. Virtual machines can
/// hide that sharing: on the AMD EPYC of `benches/README.md` the two vCPUs
/// are one core's two threads (`lscpu` says one thread per core), and a
/// busy loop on one took the other from 3.5 to 2.3. Compiled code, which
/// runs many independent operations, loses more to a busy sibling than the
/// interpreter, whose dispatch is a chain, so a table's ratios depend on it.
pub fn independent_adds_per_cycle() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        const N: u64 = 4_000_000;
        // Seconds per addition of `run`: `adds` additions an iteration, `N`
        // iterations.
        let per_add = |adds: u64, run: &dyn Fn()| {
            let t = std::time::Instant::now();
            run();
            t.elapsed().as_secs_f64() / (adds * N) as f64
        };
        // SAFETY (both): register arithmetic only.
        let dependent = || {
            per_add(4, &|| unsafe {
                std::arch::asm!(
                    "2:",
                    "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                    "dec {n}",
                    "jnz 2b",
                    x = inout(reg) 0u64 => _,
                    n = inout(reg) N => _,
                    options(nomem, nostack),
                );
            })
        };
        let independent = || {
            per_add(8, &|| unsafe {
                std::arch::asm!(
                    "2:",
                    "add {a}, 1", "add {b}, 1", "add {c}, 1", "add {d}, 1",
                    "add {e}, 1", "add {f}, 1", "add {g}, 1", "add {h}, 1",
                    "dec {n}",
                    "jnz 2b",
                    a = inout(reg) 0u64 => _, b = inout(reg) 0u64 => _,
                    c = inout(reg) 0u64 => _, d = inout(reg) 0u64 => _,
                    e = inout(reg) 0u64 => _, f = inout(reg) 0u64 => _,
                    g = inout(reg) 0u64 => _, h = inout(reg) 0u64 => _,
                    n = inout(reg) N => _,
                    options(nomem, nostack),
                );
            })
        };
        let mut tries: Vec<f64> = (0..3).map(|_| dependent() / independent()).collect();
        tries.sort_by(f64::total_cmp);
        let adds = tries[1];
        adds.is_finite().then_some(adds)
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_processor() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\n\
                    model name\t: Intel(R) Xeon(R) Platinum 8581C\nstepping\t: 2\n\
                    flags\t\t: fpu sse4_2 avx2 bmi2 adx avx512f\n\nprocessor\t: 1\n";
        let m = Machine::from_cpuinfo(text);
        assert_eq!(m.cpu, "Intel(R) Xeon(R) Platinum 8581C");
        assert_eq!((m.family, m.model, m.stepping), (6, 207, 2));
        assert_eq!(m.flags, ["sse4_2", "avx2", "bmi2", "adx", "avx512f"]);
        assert!(m.line().contains("family 6 model 207"));
        assert!(!m.line().contains("builtins"));
    }

    #[test]
    fn this_machine_names_its_builtin_copies() {
        let m = Machine::this();
        let names: Vec<&str> = m
            .builtins
            .iter()
            .filter_map(|b| b.split_once('='))
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["keccak256", "mulmod"]);
        assert!(m.line().contains("; builtins keccak256="), "{}", m.line());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_add_probe_reads_a_plausible_width() {
        // One core retires between one and (with macro-fusion and a wide
        // core) about six independent additions a cycle; the bounds are
        // wide because the tests run beside each other on a loaded host,
        // which may preempt a try.
        let adds = independent_adds_per_cycle().unwrap();
        assert!((0.2..16.0).contains(&adds), "{adds}");
    }

    #[test]
    fn the_end_of_a_run_reads_the_width_again() {
        // Not measured at the start (read from a text): no end reading.
        let mut m = Machine::from_cpuinfo("");
        m.finish();
        assert_eq!((m.adds_per_cycle_end, m.end_line()), (None, None));
        let m = Machine {
            adds_per_cycle: Some(3.46),
            adds_per_cycle_end: Some(2.34),
            ..Machine::default()
        };
        assert_eq!(
            m.end_line().as_deref(),
            Some("machine at the end: 2.3 independent adds a cycle (3.5 at the start)")
        );
        #[cfg(target_arch = "x86_64")]
        {
            let mut m = Machine::this();
            m.finish();
            assert!(m
                .adds_per_cycle_end
                .is_some_and(|a| (0.2..16.0).contains(&a)));
        }
    }
}
