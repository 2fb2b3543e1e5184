//! Derives the compiler's build id from its own sources: every file under
//! `compiler/src` and `interface/src`, and both manifests. Any change to
//! code generation or to the ABI gives a new id, so artefacts and cache
//! entries built by another compiler are told apart without a hand-bumped
//! version string.
//!
//! The LLVM the compiler is built against is part of the id too: the
//! workspace manifest's `inkwell` line names its version (`llvm19-1`), and
//! the same sources built against another LLVM generate other code. It is
//! read from the manifest rather than from `llvm-config`, so that a
//! loader-only build on a machine without LLVM derives the same id as the
//! compiler whose artefacts it loads.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let roots = [
        manifest.join("src"),
        manifest.join("Cargo.toml"),
        manifest.join("../interface/src"),
        manifest.join("../interface/Cargo.toml"),
    ];
    let mut hasher = Sha256::new();
    for root in &roots {
        println!("cargo:rerun-if-changed={}", root.display());
        let mut files = Vec::new();
        collect(root, &mut files);
        // Sorted by path relative to the crate, so the id does not depend
        // on directory order or on where the checkout lives.
        files.sort();
        for file in files {
            let rel = file.strip_prefix(&manifest).unwrap_or(&file);
            let bytes = std::fs::read(&file)
                .unwrap_or_else(|e| panic!("build id: cannot read {}: {e}", file.display()));
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
    }
    let workspace = manifest.join("../Cargo.toml");
    println!("cargo:rerun-if-changed={}", workspace.display());
    let text = std::fs::read_to_string(&workspace)
        .unwrap_or_else(|e| panic!("build id: cannot read {}: {e}", workspace.display()));
    let llvm = text
        .lines()
        .find(|l| l.trim_start().starts_with("inkwell ="))
        .unwrap_or_else(|| panic!("build id: no inkwell line in {}", workspace.display()));
    hasher.update(b"llvm:");
    hasher.update(llvm.trim().as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=EVMC_COMPILER_BUILD_ID=evmc-{hex}");
}

/// Every regular file at or below `path`.
fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    let Ok(md) = std::fs::metadata(path) else {
        panic!("build id: {} is missing", path.display());
    };
    if md.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    let entries = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("build id: cannot list {}: {e}", path.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("build id: listing {}: {e}", path.display()));
        collect(&entry.path(), out);
    }
}
