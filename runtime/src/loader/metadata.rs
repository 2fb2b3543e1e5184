//! Checks of an artefact's metadata record: against what the caller
//! expects (code hash, spec), what this process and machine are (interface
//! version, platform, CPU features), and what a cache manifest pins.

use super::{host, invalid, Expect, LoadError, Pinned};
use evmc_compiler::B256;
use evmc_interface::{ArtifactMetadata, INTERFACE_VERSION, METADATA_MAGIC};
use std::path::Path;

/// Checks metadata against what the caller wants and what this machine is.
pub(super) fn check_expected(
    path: &Path,
    meta: &ArtifactMetadata,
    expect: &Expect,
) -> Result<(), LoadError> {
    let mismatch = |what, found: String, expected: String| LoadError::Mismatch {
        path: path.to_path_buf(),
        what,
        found,
        expected,
    };
    if meta.magic != METADATA_MAGIC {
        return Err(invalid(
            path,
            "not an evmc-native artifact (bad metadata magic)",
        ));
    }
    if meta.interface_version != INTERFACE_VERSION {
        return Err(mismatch(
            "interface version",
            meta.interface_version.to_string(),
            INTERFACE_VERSION.to_string(),
        ));
    }
    if meta.code_hash != expect.code_hash.0 {
        return Err(mismatch(
            "code hash",
            B256::from(meta.code_hash).to_string(),
            expect.code_hash.to_string(),
        ));
    }
    let spec = ArtifactMetadata::str_field(&meta.spec);
    if !spec.eq_ignore_ascii_case(&expect.spec) {
        return Err(mismatch("spec", spec.to_string(), expect.spec.clone()));
    }
    let triple = ArtifactMetadata::str_field(&meta.target_triple);
    if !host::runs_triple(triple) {
        return Err(mismatch(
            "target",
            triple.to_string(),
            format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        ));
    }
    let features = ArtifactMetadata::str_field(&meta.cpu_features);
    let missing: Vec<&str> = features
        .split(',')
        .filter(|f| {
            !f.is_empty()
                && !f
                    .strip_prefix('+')
                    .is_some_and(|name| host::features().contains(name))
        })
        .collect();
    if !missing.is_empty() {
        return Err(mismatch(
            "CPU features",
            missing.join(","),
            "features of this CPU".into(),
        ));
    }
    Ok(())
}

pub(super) fn check_size(path: &Path, len: u64, pinned: &Pinned<'_>) -> Result<(), LoadError> {
    if len != pinned.size {
        return Err(invalid(
            path,
            format!(
                "is {len} bytes, its manifest says {} (truncated or replaced)",
                pinned.size
            ),
        ));
    }
    Ok(())
}

pub(super) fn check_hash(path: &Path, hash: u128, pinned: &Pinned<'_>) -> Result<(), LoadError> {
    if hash != pinned.content_hash {
        return Err(invalid(
            path,
            "content hash differs from its manifest (corrupted or replaced)",
        ));
    }
    Ok(())
}

/// Checks the metadata against the rest of `pinned`.
pub(super) fn check_pinned(
    path: &Path,
    m: &ArtifactMetadata,
    pinned: &Pinned<'_>,
) -> Result<(), LoadError> {
    let mismatch = |what, found: String, expected: &str| LoadError::Mismatch {
        path: path.to_path_buf(),
        what,
        found,
        expected: expected.to_string(),
    };
    if m.opt_level != pinned.opt_level as u32 {
        return Err(mismatch(
            "opt level",
            m.opt_level.to_string(),
            &pinned.opt_level.to_string(),
        ));
    }
    for (what, field, want) in [
        ("compiler", &m.compiler_version[..], pinned.compiler_version),
        ("target CPU", &m.target_cpu[..], pinned.target_cpu),
    ] {
        let found = ArtifactMetadata::str_field(field);
        if found != want {
            return Err(mismatch(what, found.to_string(), want));
        }
    }
    let found = ArtifactMetadata::str_field(&m.cpu_features);
    if feature_set(found) != feature_set(pinned.cpu_features) {
        return Err(mismatch(
            "CPU feature set",
            found.to_string(),
            pinned.cpu_features,
        ));
    }
    Ok(())
}

/// A comma-separated feature list as a set: sorted, without repeats or
/// empty names. Slices of the string rather than owned copies: it runs
/// twice at every cache hit, and LLVM lists some forty features.
fn feature_set(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.split(',').filter(|f| !f.is_empty()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(cpu_features: &str) -> Pinned<'_> {
        Pinned {
            content_hash: 0,
            size: 0,
            opt_level: 2,
            compiler_version: "evmc-test",
            target_cpu: "znver3",
            cpu_features,
        }
    }

    /// The manifest and the artefact name the same CPU features in any
    /// order; one more or one less is a mismatch.
    #[test]
    fn pinned_cpu_features_compare_as_sets() {
        let mut m = ArtifactMetadata::empty();
        m.opt_level = 2;
        assert!(ArtifactMetadata::set_str(
            &mut m.compiler_version,
            "evmc-test"
        ));
        assert!(ArtifactMetadata::set_str(&mut m.target_cpu, "znver3"));
        assert!(ArtifactMetadata::set_str(
            &mut m.cpu_features,
            "+avx2,+bmi2,,+adx"
        ));
        let path = Path::new("artifact.so");
        for same in [
            "+adx,+avx2,+bmi2",
            "+bmi2,+adx,+avx2,+adx",
            ",+avx2,+adx,+bmi2,",
        ] {
            assert!(check_pinned(path, &m, &pinned(same)).is_ok(), "{same}");
        }
        for other in [
            "+adx,+avx2",
            "+adx,+avx2,+bmi2,+sha",
            "+adx,+avx2,-bmi2",
            "",
        ] {
            let e = check_pinned(path, &m, &pinned(other))
                .unwrap_err()
                .to_string();
            assert!(e.contains("CPU feature set"), "{other}: {e}");
        }
    }
}
