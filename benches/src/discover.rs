//! Finding benchmark programs on disk and turning each into [`Case`]s:
//! state tests (every vector, named by its `_info.labels` entry), contract
//! fixtures, evmone's `.bin-runtime` + `.inputs`, and revm's `.hex` programs.

use crate::exec::{
    call_transaction, fixture_transactions, is_state_test, state_test_transactions, Transaction,
};
use evmc_compiler::SpecId;
use evmc_harness::hexcode;
use std::path::{Path, PathBuf};

/// One benchmark program with one input.
pub struct Case {
    /// Unique within its group: `unit/label`, fixture name, or `program/input`.
    pub name: String,
    /// Where it comes from, e.g. `evm-benchmarks/main`, `evmone/micro`, `contracts`.
    pub group: String,
    pub source: PathBuf,
    pub work: Work,
}

pub enum Work {
    /// A whole transaction to verify and time.
    Run {
        tx: Box<Transaction>,
        /// What the program is known to return (evmone's `.inputs`).
        expected_output: Option<Vec<u8>>,
    },
    /// Only compiled: there is no transaction for it (revm's burntpix
    /// contracts, which run through `contracts/burntpix.json`).
    CompileOnly { code: Vec<u8>, spec: SpecId },
}

impl Case {
    /// `group/name`, what `--filter` matches.
    pub fn id(&self) -> String {
        format!("{}/{}", self.group, self.name)
    }

    pub fn spec(&self) -> SpecId {
        match &self.work {
            Work::Run { tx, .. } => tx.spec(),
            Work::CompileOnly { spec, .. } => *spec,
        }
    }

    /// The contracts to compile.
    pub fn codes(&self) -> Vec<Vec<u8>> {
        match &self.work {
            Work::Run { tx, .. } => tx.codes().into_iter().map(|c| c.to_vec()).collect(),
            Work::CompileOnly { code, .. } => vec![code.clone()],
        }
    }
}

/// How bare calls and fixtures are run (state tests carry their own fork).
#[derive(Clone, Copy, Debug)]
pub struct CallSettings {
    pub spec: SpecId,
    pub gas_limit: u64,
}

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            spec: SpecId::OSAKA,
            gas_limit: i64::MAX as u64,
        }
    }
}

/// revm's benchmark programs: a file name and the call its benchmark makes.
const REVM_CALLS: &[(&str, &str)] = &[
    ("snailtracer.hex", "30627b7c"),
    ("analysis.hex", "8035f0ce"),
];

/// Every case under `paths` (files or directories, searched recursively), in
/// path order. Unreadable or malformed files are errors naming the file.
pub fn discover(paths: &[PathBuf], settings: CallSettings) -> Result<Vec<Case>, String> {
    let mut files = Vec::new();
    for p in paths {
        collect_files(p, &mut files)?;
    }
    // By directory first, so that each group's cases come together.
    files.sort_by(|a, b| (a.parent(), a.file_name()).cmp(&(b.parent(), b.file_name())));
    files.dedup();
    let mut cases = Vec::new();
    for f in &files {
        cases.extend(cases_of(f, settings)?);
    }
    Ok(cases)
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let md = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if md.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let entries =
        std::fs::read_dir(path).map_err(|e| format!("{}: cannot list: {e}", path.display()))?;
    for entry in entries {
        let p = entry
            .map_err(|e| format!("{}: cannot list: {e}", path.display()))?
            .path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else if is_program(&p) {
            out.push(p);
        }
    }
    Ok(())
}

fn extension(p: &Path) -> &str {
    p.extension().and_then(|e| e.to_str()).unwrap_or("")
}

/// Files that hold a program; `.inputs` are read beside their program.
fn is_program(p: &Path) -> bool {
    matches!(extension(p), "json" | "bin-runtime" | "hex")
}

/// The group of a file: its directory below `benchdata/`, else the last
/// two directory names.
fn group_of(file: &Path) -> String {
    let dirs: Vec<String> = file
        .parent()
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let tail = match dirs.iter().rposition(|d| d == "benchdata") {
        Some(i) => &dirs[i + 1..],
        None => &dirs[dirs.len().saturating_sub(2)..],
    };
    tail.join("/")
}

fn stem(file: &Path) -> String {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.split('.').next().unwrap_or(&name).to_string()
}

fn read_text(file: &Path) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))
}

fn cases_of(file: &Path, settings: CallSettings) -> Result<Vec<Case>, String> {
    let group = group_of(file);
    let case = |name: String, work: Work| Case {
        name,
        group: group.clone(),
        source: file.to_path_buf(),
        work,
    };
    match extension(file) {
        "json" => {
            let text = read_text(file)?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
            let txs = if is_state_test(&json) {
                state_test_transactions(file)?
            } else {
                fixture_transactions(file, settings.spec)?
            };
            Ok(txs
                .into_iter()
                .map(|l| {
                    case(
                        l.label,
                        Work::Run {
                            tx: Box::new(l.tx),
                            expected_output: None,
                        },
                    )
                })
                .collect())
        }
        "bin-runtime" => {
            let code = hexcode::parse(&read_text(file)?)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let inputs_file = file.with_extension("inputs");
            let inputs = if inputs_file.exists() {
                parse_inputs(&inputs_file)?
            } else {
                vec![EvmoneInput {
                    name: "empty".into(),
                    input: Vec::new(),
                    expected: None,
                }]
            };
            let program = stem(file);
            Ok(inputs
                .into_iter()
                .map(|i| {
                    let tx = Box::new(call_transaction(
                        &code,
                        &i.input,
                        settings.gas_limit,
                        settings.spec,
                    ));
                    case(
                        format!("{program}/{}", i.name),
                        Work::Run {
                            tx,
                            expected_output: i.expected,
                        },
                    )
                })
                .collect())
        }
        "hex" => {
            let code = hexcode::parse(&read_text(file)?)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let file_name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let work = match REVM_CALLS.iter().find(|(f, _)| *f == file_name) {
                Some((_, input)) => Work::Run {
                    tx: Box::new(call_transaction(
                        &code,
                        &hex::decode(input).expect("constant calldata"),
                        settings.gas_limit,
                        settings.spec,
                    )),
                    expected_output: None,
                },
                None => Work::CompileOnly {
                    code,
                    spec: settings.spec,
                },
            };
            Ok(vec![case(stem(file), work)])
        }
        _ => Err(format!(
            "{}: not a benchmark program (expected .json, .bin-runtime or .hex)",
            file.display()
        )),
    }
}

struct EvmoneInput {
    name: String,
    input: Vec<u8>,
    expected: Option<Vec<u8>>,
}

/// evmone's `.inputs`: records separated by blank lines, each a name, then
/// optionally the calldata and the expected output, in hex.
fn parse_inputs(file: &Path) -> Result<Vec<EvmoneInput>, String> {
    let text = read_text(file)?;
    let text = text.replace("\r\n", "\n");
    let mut out = Vec::new();
    for record in text.split("\n\n").filter(|r| !r.trim().is_empty()) {
        let lines: Vec<&str> = record.trim().lines().collect();
        let hex_line = |i: usize, what: &str| -> Result<Option<Vec<u8>>, String> {
            lines
                .get(i)
                .map(|l| hexcode::parse(l))
                .transpose()
                .map_err(|e| format!("{}: input `{}`: {what}: {e}", file.display(), lines[0]))
        };
        if lines.len() > 3 {
            return Err(format!(
                "{}: input `{}` has {} lines, expected name, calldata, output",
                file.display(),
                lines[0],
                lines.len()
            ));
        }
        out.push(EvmoneInput {
            name: lines[0].trim().to_string(),
            input: hex_line(1, "calldata")?.unwrap_or_default(),
            expected: hex_line(2, "expected output")?,
        });
    }
    if out.is_empty() {
        return Err(format!("{}: no inputs", file.display()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_paths_below_benchdata() {
        assert_eq!(
            group_of(Path::new("/x/shared/benchdata/evmone/main/a.bin-runtime")),
            "evmone/main"
        );
        assert_eq!(group_of(Path::new("/x/benchdata/revm/a.hex")), "revm");
        assert_eq!(group_of(Path::new("/x/y/z/a.hex")), "y/z");
    }

    #[test]
    fn evmone_inputs_with_and_without_calldata() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.inputs");
        std::fs::write(&f, "\nempty\n\n\nbig\n00(3x01)\nff\n\nnogrow\n0a\n").unwrap();
        let inputs = parse_inputs(&f).unwrap();
        let got: Vec<_> = inputs
            .iter()
            .map(|i| (i.name.as_str(), i.input.clone(), i.expected.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("empty", vec![], None),
                ("big", vec![0, 1, 1, 1], Some(vec![0xff])),
                ("nogrow", vec![0x0a], None),
            ]
        );
        std::fs::write(&f, "a\nzz\n").unwrap();
        let e = parse_inputs(&f).err().unwrap();
        assert!(e.contains("p.inputs") && e.contains("calldata"), "{e}");
    }
}
