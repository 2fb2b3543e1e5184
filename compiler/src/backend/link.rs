//! Linking an object file into a shared object with the system toolchain.

use crate::CompileError;
use std::path::Path;
use std::process::{Command, Output};

/// The linker's flags. `-nostdlib` (implied when `ld` runs without a
/// compiler driver) keeps start files (and with them `_init`/`.init_array`)
/// out of the artifact: it must not run code when loaded. The few libc
/// symbols LLVM may call (memcpy, memset) resolve against the host process
/// at load time. `-s` leaves the symbol table out.
const LD_FLAGS: [&str; 8] = [
    "-shared",
    "-z",
    "now",
    "-z",
    "relro",
    "--hash-style=gnu",
    "--build-id=none",
    "-s",
];

/// Links the objects `objs` (one per shard) into the shared object `out`.
///
/// `ld` runs directly: through `cc` a link started the compiler driver and
/// `collect2` before `ld`, 6.6 ms against 3.3 ms for a small contract (a
/// sixth of its whole compile in a worker that had started already), for
/// the same bytes (`benches/README.md`, "A Zen 5, and compiling
/// faster"). `$EVMC_NATIVE_LINKER` names a compiler driver to use instead
/// (it gets `-shared -nostdlib` and the flags as `-Wl,`); without `ld` on
/// the `PATH`, `cc` is that driver.
pub fn link_shared_object(objs: &[&Path], out: &Path) -> Result<(), CompileError> {
    if let Ok(driver) = std::env::var("EVMC_NATIVE_LINKER") {
        return link_with_driver(&driver, objs, out);
    }
    match link_direct(objs, out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => link_with_driver("cc", objs, out),
        r => checked("ld", r),
    }
}

/// Runs `ld` itself.
fn link_direct(objs: &[&Path], out: &Path) -> std::io::Result<Output> {
    Command::new("ld")
        .args(LD_FLAGS)
        .arg("-o")
        .arg(out)
        .args(objs)
        .output()
}

/// Links through a compiler driver (`cc`).
fn link_with_driver(driver: &str, objs: &[&Path], out: &Path) -> Result<(), CompileError> {
    // The driver takes `-shared` itself (LD_FLAGS[0]); `-z now` and the
    // others go to the linker as one `-Wl,` argument each.
    let mut flags = vec!["-shared".to_string(), "-nostdlib".to_string()];
    let mut rest = LD_FLAGS[1..].iter();
    while let Some(flag) = rest.next() {
        match *flag {
            "-z" => flags.push(format!("-Wl,-z,{}", rest.next().expect("-z takes a value"))),
            other => flags.push(format!("-Wl,{other}")),
        }
    }
    let output = Command::new(driver)
        .args(&flags)
        .arg("-o")
        .arg(out)
        .args(objs)
        .output();
    checked(driver, output)
}

fn checked(linker: &str, output: std::io::Result<Output>) -> Result<(), CompileError> {
    let output = output.map_err(|e| {
        CompileError::Link(format!(
            "cannot run linker `{linker}`: {e} (install binutils and a C toolchain, e.g. `apt-get install build-essential`)"
        ))
    })?;
    if !output.status.success() {
        return Err(CompileError::Link(format!(
            "`{linker}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ld` run directly and `cc` as the driver build the same bytes.
    #[test]
    fn ld_and_the_driver_link_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let code = [0x60, 0x01, 0x60, 0x02, 0x01, 0x00];
        let obj = crate::compile_object(&code, &crate::CompileOptions::new(crate::SpecId::OSAKA))
            .unwrap();
        let paths: Vec<_> = obj
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let p = dir.path().join(format!("{i}.o"));
                std::fs::write(&p, o).unwrap();
                p
            })
            .collect();
        let objs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let (direct, driven) = (dir.path().join("ld.so"), dir.path().join("cc.so"));
        checked("ld", link_direct(&objs, &direct)).unwrap();
        link_with_driver("cc", &objs, &driven).unwrap();
        assert_eq!(
            std::fs::read(direct).unwrap(),
            std::fs::read(driven).unwrap()
        );
    }
}
