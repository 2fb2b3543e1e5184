//! Reading bytecode given on the command line: `0x…` strings, files of hex
//! (evmone's `(NxHH)` run-length notation included), or directories of them.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One piece of bytecode and where it came from.
pub struct CodeInput {
    pub name: String,
    pub code: Vec<u8>,
}

/// Extensions treated as bytecode files when scanning a directory.
const CODE_EXTENSIONS: &[&str] = &["hex", "bin", "bin-runtime", "evm"];

pub fn read_inputs(args: &[String]) -> Result<Vec<CodeInput>> {
    let mut out = Vec::new();
    for arg in args {
        if arg.starts_with("0x") || arg.starts_with("0X") {
            let code = parse_hex(arg).with_context(|| format!("argument `{}`", shorten(arg)))?;
            out.push(CodeInput {
                name: shorten(arg),
                code,
            });
            continue;
        }
        let path = Path::new(arg);
        let md = std::fs::metadata(path).with_context(|| format!("{arg}: cannot read"))?;
        if md.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{arg}: cannot list directory"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .and_then(|e| e.to_str())
                            .is_some_and(|e| CODE_EXTENSIONS.contains(&e))
                })
                .collect();
            files.sort();
            if files.is_empty() {
                bail!(
                    "{arg}: no bytecode files (*.{}) in directory",
                    CODE_EXTENSIONS.join(", *.")
                );
            }
            for f in files {
                out.push(read_file(&f)?);
            }
        } else {
            out.push(read_file(path)?);
        }
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<CodeInput> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read as text", path.display()))?;
    let code = parse_hex(&text).with_context(|| format!("{}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Ok(CodeInput { name, code })
}

fn shorten(s: &str) -> String {
    if s.len() > 18 {
        format!("{}…", &s[..18])
    } else {
        s.to_string()
    }
}

/// Parses hex with optional `0x`, whitespace, and `(NxHH)` runs.
pub fn parse_hex(text: &str) -> Result<Vec<u8>> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let mut digits = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(open) = rest.find('(') {
        digits.push_str(&rest[..open]);
        let close = rest[open..]
            .find(')')
            .map(|c| open + c)
            .context("unclosed `(` in run-length notation")?;
        let inner = &rest[open + 1..close];
        let (n, byte) = inner
            .split_once('x')
            .context("run-length must look like (NxHH)")?;
        let n: usize = n
            .trim()
            .parse()
            .with_context(|| format!("bad repeat count in `({inner})`"))?;
        if byte.trim().len() != 2 || n > 1 << 24 {
            bail!("bad run-length `({inner})`");
        }
        digits.push_str(&byte.trim().repeat(n));
        rest = &rest[close + 1..];
    }
    digits.push_str(rest);
    digits.retain(|c| !c.is_whitespace());
    if digits.is_empty() {
        bail!("empty bytecode");
    }
    if let Some((i, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        bail!("invalid hex character {c:?} at position {i}");
    }
    if !digits.len().is_multiple_of(2) {
        bail!("odd number of hex digits ({})", digits.len());
    }
    Ok(hex::decode(&digits)?)
}

#[cfg(test)]
mod tests {
    use super::parse_hex;

    #[test]
    fn parses_plain_and_runs() {
        assert_eq!(parse_hex("0x6001").unwrap(), vec![0x60, 1]);
        assert_eq!(
            parse_hex("60(3x5b)00\n").unwrap(),
            vec![0x60, 0x5b, 0x5b, 0x5b, 0]
        );
        assert!(parse_hex("0x").is_err());
        assert!(parse_hex("0x6g").is_err());
        assert!(parse_hex("600").is_err());
    }
}
