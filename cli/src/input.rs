//! Reading bytecode given on the command line: `0x…` strings, files of hex
//! (evmone's `(NxHH)` run-length notation included), state JSON (the
//! `pre` of state tests and contract fixtures, a genesis file's `alloc`),
//! or directories of them.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest state JSON read as a code input or contract fixture (genesis,
/// state tests' or fixtures' `pre`): 64 MiB. Real ones are a few MB.
pub(crate) const MAX_STATE_JSON: u64 = 64 << 20;
/// Largest file of hex bytecode: twice [`MAX_STATE_JSON`], room for any
/// whitespace and formatting around code that decodes to at most
/// [`evmc_harness::hexcode::MAX_DECODED_BYTES`].
pub(crate) const MAX_HEX_FILE: u64 = 2 * MAX_STATE_JSON;
/// Largest state-test file: 256 MiB. The biggest of the shared test data
/// is 2.8 MB; execution-spec-tests' largest fixtures are tens of MB.
pub(crate) const MAX_STATE_TEST_FILE: u64 = 256 << 20;
/// Largest list file (skip lists, `--hot` lists): 16 MiB, some 200,000
/// code hashes.
pub(crate) const MAX_LIST_FILE: u64 = 16 << 20;

/// What a path is when it is not a regular file, for error messages.
fn kind(md: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = md.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Fails unless `path` is a regular file (after symlinks): FIFOs would
/// block the reader forever and devices such as `/dev/zero` never end.
pub(crate) fn check_regular(path: &Path) -> Result<std::fs::Metadata> {
    let md = std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if !md.is_file() {
        bail!(
            "{}: is {}, expected a regular file",
            path.display(),
            kind(&md)
        );
    }
    Ok(md)
}

/// Reads a whole regular file of at most `limit` bytes. Larger files are
/// refused before anything is read, and at most `limit + 1` bytes are ever
/// read, so a file growing meanwhile is still bounded.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let too_large = |len: u64| {
        anyhow::anyhow!(
            "{}: {len} bytes, above the limit of {limit} bytes for this input",
            path.display()
        )
    };
    let md = check_regular(path)?;
    if md.len() > limit {
        return Err(too_large(md.len()));
    }
    // Non-blocking: had the path been replaced by a FIFO since the check,
    // opening it would otherwise wait for a writer. The handle is checked
    // again below.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let md = file
        .metadata()
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if !md.is_file() {
        bail!(
            "{}: is {}, expected a regular file",
            path.display(),
            kind(&md)
        );
    }
    let mut bytes = Vec::with_capacity(md.len().min(limit) as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_bounded`], as UTF-8 text.
pub(crate) fn read_text_bounded(path: &Path, limit: u64) -> Result<String> {
    String::from_utf8(read_bounded(path, limit)?)
        .map_err(|_| anyhow::anyhow!("{}: cannot read as text (not UTF-8)", path.display()))
}

/// One piece of bytecode and where it came from.
pub(crate) struct CodeInput {
    pub name: String,
    pub code: Vec<u8>,
    /// Accounts holding this code (`0x…`, lower case), for state inputs.
    pub addresses: Vec<String>,
}

/// Extensions treated as bytecode files when scanning a directory.
const CODE_EXTENSIONS: &[&str] = &["hex", "bin", "bin-runtime", "evm", "json"];

pub(crate) fn read_inputs(args: &[String]) -> Result<Vec<CodeInput>> {
    let mut out = Vec::new();
    for arg in args {
        if arg.starts_with("0x") || arg.starts_with("0X") {
            let code = parse_hex(arg).with_context(|| format!("argument `{}`", shorten(arg)))?;
            out.push(CodeInput {
                name: shorten(arg),
                code,
                addresses: Vec::new(),
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
                read_file(&f, &mut out)?;
            }
        } else {
            read_file(path, &mut out)?;
        }
    }
    Ok(dedup(out))
}

/// One input per distinct bytecode; the accounts sharing it are merged.
fn dedup(inputs: Vec<CodeInput>) -> Vec<CodeInput> {
    let mut seen: std::collections::HashMap<Vec<u8>, usize> = Default::default();
    let mut out: Vec<CodeInput> = Vec::new();
    for input in inputs {
        match seen.get(&input.code) {
            Some(&i) => out[i].addresses.extend(input.addresses),
            None => {
                seen.insert(input.code.clone(), out.len());
                out.push(input);
            }
        }
    }
    out
}

fn read_file(path: &Path, out: &mut Vec<CodeInput>) -> Result<()> {
    let text = read_text_bounded(path, MAX_HEX_FILE)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    if text.trim_start().starts_with('{') {
        if text.len() as u64 > MAX_STATE_JSON {
            bail!(
                "{}: {} bytes, above the limit of {MAX_STATE_JSON} bytes for state JSON",
                path.display(),
                text.len()
            );
        }
        let found = state_contracts(&text).with_context(|| format!("{}", path.display()))?;
        let before = out.len();
        for (address, code) in found {
            out.push(CodeInput {
                name: format!("{name}:{}", &address[..10]),
                code,
                addresses: vec![address],
            });
        }
        if out.len() == before {
            bail!("{}: no account with code in this state", path.display());
        }
        return Ok(());
    }
    let code = parse_hex(&text).with_context(|| format!("{}", path.display()))?;
    out.push(CodeInput {
        name,
        code,
        addresses: Vec::new(),
    });
    Ok(())
}

/// The accounts with code of a state file: a genesis (`alloc`), or a map of
/// state tests / contract fixtures (each with a `pre`). EIP-7702 delegation
/// designators are not contract code and are left out.
fn state_contracts(text: &str) -> Result<Vec<(String, Vec<u8>)>> {
    use serde_json::Value;
    let json: Value = serde_json::from_str(text).context("not valid JSON")?;
    let top = json.as_object().context("expected a JSON object")?;
    let accounts: Vec<(&String, &Value)> = if let Some(alloc) = top.get("alloc") {
        alloc
            .as_object()
            .context("`alloc` is not an object")?
            .iter()
            .collect()
    } else {
        let mut v = Vec::new();
        for (test, body) in top {
            let pre = body
                .get("pre")
                .and_then(Value::as_object)
                .with_context(|| {
                    format!(
                        "`{test}` has no `pre` object: expected a genesis file (with `alloc`) \
                     or state tests / contract fixtures (each with a `pre`)"
                    )
                })?;
            v.extend(pre.iter());
        }
        v
    };
    let mut out = Vec::new();
    for (address, account) in accounts {
        let hex_addr = address
            .strip_prefix("0x")
            .or_else(|| address.strip_prefix("0X"))
            .unwrap_or(address)
            .to_ascii_lowercase();
        if hex_addr.len() != 40 || !hex_addr.chars().all(|c| c.is_ascii_hexdigit()) {
            bail!("`{address}` is not an address");
        }
        let Some(code) = account.get("code") else {
            continue;
        };
        let code = code
            .as_str()
            .with_context(|| format!("account {address}: `code` is not a string"))?;
        let t = code.trim();
        if t.is_empty() || t == "0x" || t == "0X" {
            continue;
        }
        let code = parse_hex(t).with_context(|| format!("account {address}: code"))?;
        if code.len() == 23 && code.starts_with(&[0xef, 0x01, 0x00]) {
            continue;
        }
        out.push((format!("0x{hex_addr}"), code));
    }
    Ok(out)
}

/// A `--hot` list: code hashes and/or addresses, one per line (`#` comments).
#[derive(Default)]
pub(crate) struct HotList {
    pub code_hashes: std::collections::HashSet<[u8; 32]>,
    pub addresses: std::collections::HashSet<String>,
}

pub(crate) fn read_hot_list(path: &Path) -> Result<HotList> {
    let text = read_text_bounded(path, MAX_LIST_FILE)?;
    let mut hot = HotList::default();
    for (i, line) in text.lines().enumerate() {
        let item = line.split('#').next().unwrap_or("").trim();
        if item.is_empty() {
            continue;
        }
        let h = item
            .strip_prefix("0x")
            .or_else(|| item.strip_prefix("0X"))
            .unwrap_or(item)
            .to_ascii_lowercase();
        let bad = || {
            anyhow::anyhow!(
                "{}:{}: `{item}` is neither a code hash (32 bytes hex) nor an address (20 bytes hex)",
                path.display(),
                i + 1
            )
        };
        if !h.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        match h.len() {
            64 => {
                let mut b = [0u8; 32];
                hex::decode_to_slice(&h, &mut b).map_err(|_| bad())?;
                hot.code_hashes.insert(b);
            }
            40 => {
                hot.addresses.insert(format!("0x{h}"));
            }
            _ => return Err(bad()),
        }
    }
    Ok(hot)
}

fn shorten(s: &str) -> String {
    if s.len() > 18 {
        format!("{}…", &s[..18])
    } else {
        s.to_string()
    }
}

/// Parses hex with optional `0x`, whitespace, and `(NxHEX)` runs.
pub(crate) fn parse_hex(text: &str) -> Result<Vec<u8>> {
    let code = evmc_harness::hexcode::parse(text).map_err(anyhow::Error::msg)?;
    if code.is_empty() {
        bail!("empty bytecode");
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::{parse_hex, read_bounded, state_contracts};
    use std::path::Path;

    #[test]
    fn reads_are_bounded_and_only_of_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("code.hex");
        std::fs::write(&f, b"600100").unwrap();
        assert_eq!(read_bounded(&f, 6).unwrap(), b"600100");
        let err = read_bounded(&f, 5).unwrap_err().to_string();
        assert!(err.contains("6 bytes, above the limit of 5"), "{err}");

        let fifo = dir.path().join("fifo.hex");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_bounded(&fifo, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("is a FIFO"), "{err}");

        let err = read_bounded(Path::new("/dev/zero"), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a character device"), "{err}");
        let err = read_bounded(dir.path(), 1 << 20).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
    }

    #[test]
    fn finds_contracts_in_genesis_and_fixtures() {
        let genesis = r#"{"config": {}, "alloc": {
            "00000000000000000000000000000000000000aa": {"balance": "0x1", "code": "0x6001"},
            "0x00000000000000000000000000000000000000bb": {"balance": "0x1"},
            "0x00000000000000000000000000000000000000cc": {"code": "0xef01001111111111111111111111111111111111111111"}}}"#;
        let got = state_contracts(genesis).unwrap();
        assert_eq!(
            got,
            vec![(
                "0x00000000000000000000000000000000000000aa".to_string(),
                vec![0x60, 1]
            )]
        );
        let fixture = r#"{"t": {"env": {}, "pre": {"0x00000000000000000000000000000000000000aa": {"code": "0x00"}}}}"#;
        assert_eq!(state_contracts(fixture).unwrap().len(), 1);
        assert!(state_contracts(r#"{"t": {"post": {}}}"#)
            .unwrap_err()
            .to_string()
            .contains("no `pre`"));
        assert!(state_contracts(r#"{"alloc": {"0x12": {"code": "0x00"}}}"#).is_err());
    }

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
