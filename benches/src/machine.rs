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
        }
    }

    /// One line for the head of a table.
    pub fn line(&self) -> String {
        let builtins = if self.builtins.is_empty() {
            String::new()
        } else {
            format!("; builtins {}", self.builtins.join(" "))
        };
        format!(
            "machine: {} ({} family {} model {} stepping {}), {} threads; {}{}",
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
            builtins
        )
    }
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
}
