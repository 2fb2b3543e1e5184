//! `evmc-native cache ls | verify | gc | path`.

use crate::Failure;
use anyhow::anyhow;
use evmc_runtime::cache::Rejection;
use evmc_runtime::{ArtifactCache, CompileLimits, WorkerCommand};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
    /// Cache directory (default: $EVMC_NATIVE_CACHE, else $XDG_CACHE_HOME/evmc-native, else ~/.cache/evmc-native).
    #[arg(long = "cache-dir", global = true)]
    cache_dir: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    /// With `--store`, `ls`, `verify` and `gc` act on the store's objects
    /// (gc removes those this node refuses or another compiler built).
    #[command(flatten)]
    store: crate::cmd_store::StoreArgs,
}

#[derive(clap::Subcommand)]
enum Action {
    /// List entries: key, contract, spec, opt level, compiler build id
    /// (marked when it is not this binary's), size, last use.
    Ls,
    /// Check every entry as a lookup would; move bad ones to quarantine/ (exit 1 if any;
    /// a read-only cache is only reported on).
    Verify,
    /// Remove stale temporary files, quarantined and unreadable entries
    /// (those of another cache layout included), with --other-builds the
    /// entries of other compiler builds, then the least recently used
    /// entries until the cache fits in --max-size.
    Gc {
        /// Size limit in bytes (suffixes K, M, G: powers of 1024) [default: none].
        #[arg(long = "max-size", value_parser = parse_size)]
        max_size: Option<u64>,
        /// Also remove every entry built by another compiler build or for
        /// another interface version than this binary's (`cache ls` marks
        /// them): after an upgrade, the old binary's entries, which this
        /// one never looks up. Leave it off while an older binary still
        /// uses the cache.
        #[arg(long = "other-builds")]
        other_builds: bool,
    },
    /// Print the cache directory.
    Path,
    /// Publish every local entry to the `--store`.
    Push,
    /// Copy every usable `--store` object into the local cache.
    Pull,
    /// Write a new signing key to FILE (mode 0600) and print its public key.
    Keygen { file: PathBuf },
}

/// `1048576`, `512K`, `100M`, `2G`.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("`{s}` is not a size (e.g. 1048576, 512K, 100M, 2G)"))
}

/// The cache the CLI uses, compiling in worker processes of this binary.
/// A read-only cache is said once, by the cache itself as it opens (a
/// `tracing` warning), not at every compile it refuses.
pub(crate) fn open_cache(
    dir: Option<PathBuf>,
    limits: CompileLimits,
) -> Result<ArtifactCache, Failure> {
    let dir = dir.unwrap_or_else(ArtifactCache::default_dir);
    let cache = ArtifactCache::open(&dir).map_err(|e| Failure::Failed(anyhow!(e)))?;
    Ok(match std::env::current_exe() {
        Ok(exe) => cache.with_worker(WorkerCommand::new(exe, ["__compile-worker"]), limits),
        Err(_) => cache.with_limits(limits),
    })
}

/// Moved-aside entries are worth a warning wherever they turn up.
pub(crate) fn warn_rejections(rejections: &[Rejection]) {
    // Refused store objects were warned about when refused.
    for r in rejections
        .iter()
        .filter(|r| !r.entry.to_string_lossy().contains("://"))
    {
        match &r.moved_to {
            Some(to) => eprintln!(
                "warning: cache entry {} refused: {} (moved to {})",
                r.entry.display(),
                r.reason,
                to.display()
            ),
            None => eprintln!(
                "warning: cache entry {} refused: {} (left in place)",
                r.entry.display(),
                r.reason
            ),
        }
    }
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

pub(crate) fn run(args: Args) -> Result<(), Failure> {
    if let Action::Path = args.action {
        let dir = args.cache_dir.unwrap_or_else(ArtifactCache::default_dir);
        if args.json {
            println!("{}", json!({ "path": dir }));
        } else {
            println!("{}", dir.display());
        }
        return Ok(());
    }
    if let Action::Keygen { file } = &args.action {
        return crate::cmd_store::keygen(file, args.json);
    }
    let cache = open_cache(args.cache_dir, CompileLimits::default())?;
    let cache = crate::cmd_store::attach(cache, &args.store)?;
    let failed = |e: evmc_runtime::CacheError| Failure::Failed(anyhow!(e));
    if cache.store().is_some() {
        let as_json = args.json;
        match args.action {
            Action::Ls => return crate::cmd_store::store_action(&cache, "ls", as_json),
            Action::Verify => return crate::cmd_store::store_action(&cache, "verify", as_json),
            Action::Gc { .. } => return crate::cmd_store::store_action(&cache, "gc", as_json),
            _ => {}
        }
    } else if matches!(args.action, Action::Push | Action::Pull) {
        return Err(Failure::BadInput(anyhow!("push and pull need --store URL")));
    }
    match args.action {
        Action::Path | Action::Keygen { .. } => unreachable!("handled above"),
        Action::Push => {
            let r = cache.push().map_err(failed)?;
            crate::cmd_store::print_sync("push", &r, args.json)?;
        }
        Action::Pull => {
            let r = cache.pull().map_err(failed)?;
            warn_rejections(&cache.take_rejections());
            crate::cmd_store::print_sync("pull", &r, args.json)?;
        }
        Action::Ls => {
            let entries = cache.ls().map_err(failed)?;
            if args.json {
                for e in &entries {
                    println!("{}", serde_json::to_string(e).expect("serialisable"));
                }
                return Ok(());
            }
            println!(
                "{:<16} {:<18} {:<9} {:>2} {:<21} {:>10} {:>10}  last used",
                "key", "code hash", "spec", "O", "compiler", "code (B)", "artifact"
            );
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut total = 0;
            for e in &entries {
                total += e.size;
                let ago = now.saturating_sub(e.last_used_unix);
                let ago = match ago {
                    a if a < 120 => format!("{a} s ago"),
                    a if a < 7200 => format!("{} min ago", a / 60),
                    a if a < 172_800 => format!("{} h ago", a / 3600),
                    a => format!("{} days ago", a / 86_400),
                };
                match &e.manifest {
                    Some(m) => println!(
                        "{:<16} {:<18} {:<9} {:>2} {:<21} {:>10} {:>10}  {ago}{}",
                        &e.digest[..16.min(e.digest.len())],
                        &format!("{:#x}", m.key.code_hash)[..18],
                        m.key.spec,
                        m.key.opt_level,
                        m.key.compiler_version,
                        m.code_size,
                        human(e.size),
                        if e.other_build { "  (other build)" } else { "" },
                    ),
                    None => println!(
                        "{:<16} broken: {}",
                        &e.digest[..16.min(e.digest.len())],
                        e.problem.as_deref().unwrap_or("")
                    ),
                }
            }
            println!(
                "{} entries, {} in {}",
                entries.len(),
                human(total),
                cache.dir().display()
            );
            let others = entries.iter().filter(|e| e.other_build).count();
            println!(
                "this binary's compiler build id: {}{}",
                evmc_compiler::COMPILER_BUILD_ID,
                match others {
                    0 => String::new(),
                    n => format!(
                        "; {n} entries of other builds, never used by it (`cache gc --other-builds` removes them)"
                    ),
                }
            );
        }
        Action::Verify => {
            let report = cache.verify().map_err(failed)?;
            warn_rejections(&report.rejected);
            if args.json {
                println!("{}", serde_json::to_string(&report).expect("serialisable"));
            } else {
                println!(
                    "{} entries checked: {} good, {} {} ({} hashed)",
                    report.checked,
                    report.ok,
                    report.rejected.len(),
                    if report.read_only {
                        "bad, left in place (read-only cache)"
                    } else {
                        "moved to quarantine"
                    },
                    human(report.bytes_hashed)
                );
            }
            if !report.rejected.is_empty() {
                return Err(Failure::Failed(anyhow!(
                    "{} bad cache entries",
                    report.rejected.len()
                )));
            }
        }
        Action::Gc {
            max_size,
            other_builds,
        } => {
            let opts = evmc_runtime::cache::GcOptions {
                max_size,
                other_builds,
            };
            let r = cache.gc_with(opts).map_err(failed)?;
            if args.json {
                println!("{}", serde_json::to_string(&r).expect("serialisable"));
            } else {
                println!(
                    "removed {} entries ({} of other builds), {} quarantined, {} temporary ({} freed); kept {} entries ({})",
                    r.removed_entries,
                    r.removed_other_builds,
                    r.removed_quarantined,
                    r.removed_temporary,
                    human(r.freed_bytes),
                    r.kept_entries,
                    human(r.kept_bytes)
                );
            }
        }
    }
    Ok(())
}
