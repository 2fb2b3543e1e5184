//! Linking an object file into a shared object with the system toolchain.

use crate::CompileError;
use std::path::Path;
use std::process::Command;

/// Links the objects `objs` (one per shard) into the shared object `out`.
///
/// `-nostdlib` keeps start files (and with them `_init`/`.init_array`) out of
/// the artifact: it must not run code when loaded. The few libc symbols LLVM
/// may call (memcpy, memset) resolve against the host process at load time.
pub fn link_shared_object(objs: &[&Path], out: &Path) -> Result<(), CompileError> {
    let linker = std::env::var("EVMC_NATIVE_LINKER").unwrap_or_else(|_| "cc".to_string());
    let output = Command::new(&linker)
        .args(["-shared", "-nostdlib", "-Wl,-z,now", "-Wl,-z,relro", "-Wl,--hash-style=gnu", "-Wl,--build-id=none", "-Wl,-s", "-o"])
        .arg(out)
        .args(objs)
        .output()
        .map_err(|e| CompileError::Link(format!("cannot run linker `{linker}`: {e} (install a C toolchain, e.g. `apt-get install build-essential`)")))?;
    if !output.status.success() {
        return Err(CompileError::Link(format!(
            "`{linker}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}
