//! The shared artefact store on the command line: `--store URL` with its
//! keys for `compile`, `sequencer` and `cache`, the store's side of
//! `cache ls | verify | gc`, `cache push | pull | keygen`, and the warm-up
//! of a hot sequencer.

use crate::Failure;
use anyhow::anyhow;
use evmc_runtime::cache::remote::{signing, PrefetchReport, StoreConfig, SyncReport};
use evmc_runtime::ArtifactCache;
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args, Clone, Default)]
pub(crate) struct StoreArgs {
    /// Shared artefact store behind the local cache: s3://bucket/prefix
    /// (endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP) or file:///path.
    #[arg(long = "store", global = true, value_name = "URL")]
    pub url: Option<String>,
    /// Sign what this node publishes with this key file (default: $EVMC_SIGN_KEY).
    #[arg(long = "sign-key", global = true, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Use store artefacts signed by this publisher key (hex; repeatable;
    /// also $EVMC_TRUSTED_KEYS). Without one, artefacts are compiled here.
    #[arg(long = "trust-key", global = true, value_name = "HEX")]
    pub trust_keys: Vec<String>,
}

/// Adds the store of `args` (if any) to `cache`.
pub(crate) fn attach(cache: ArtifactCache, args: &StoreArgs) -> Result<ArtifactCache, Failure> {
    let Some(url) = &args.url else {
        return Ok(cache);
    };
    let bad = |e: String| Failure::BadInput(anyhow!(e));
    let mut config = StoreConfig::from_env(url).map_err(bad)?;
    if let Some(path) = &args.sign_key {
        config.sign_key = Some(signing::read_signing_key(path).map_err(bad)?);
    }
    for k in &args.trust_keys {
        config
            .trusted
            .push(signing::parse_public_key(k).map_err(bad)?);
    }
    cache.with_store(config).map_err(bad)
}

/// Warm-up of a node with a store: copies the store's artefacts for the
/// given contracts into the local cache before the first block.
pub(crate) fn warm_up(
    cache: &ArtifactCache,
    codes: &[&[u8]],
    spec: evmc_compiler::SpecId,
    opt_level: u8,
) -> Option<PrefetchReport> {
    cache.store()?;
    let keys: Vec<_> = codes
        .iter()
        .filter_map(|c| cache.host_key(evmc_compiler::code_hash(c), spec, opt_level))
        .collect();
    Some(cache.prefetch(&keys))
}

/// `cache push | pull` output.
pub(crate) fn print_sync(what: &str, r: &SyncReport, as_json: bool) -> Result<(), Failure> {
    if as_json {
        println!("{}", serde_json::to_string(r).expect("serialisable"));
    } else {
        println!(
            "{what}: {} copied, {} already there, {} failed",
            r.copied,
            r.present,
            r.failed.len()
        );
        for (digest, reason) in &r.failed {
            eprintln!("warning: {digest}: {reason}");
        }
    }
    if r.failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Failed(anyhow!(
            "{} entries not copied",
            r.failed.len()
        )))
    }
}

/// `cache ls | verify | gc --store`: the store's objects.
pub(crate) fn store_action(
    cache: &ArtifactCache,
    action: &str,
    as_json: bool,
) -> Result<(), Failure> {
    let failed = |e: evmc_runtime::CacheError| Failure::Failed(anyhow!(e));
    match action {
        "ls" => {
            let objects = cache.store_ls().map_err(failed)?;
            for o in &objects {
                if as_json {
                    println!("{}", serde_json::to_string(o).expect("serialisable"));
                } else {
                    println!("{}  {:>10} B", o.digest, o.size);
                }
            }
            if !as_json {
                println!("{} objects", objects.len());
            }
            Ok(())
        }
        "verify" => {
            let entries = cache.store_verify().map_err(failed)?;
            let bad = entries.iter().filter(|e| e.problem.is_some()).count();
            for e in &entries {
                if as_json {
                    println!("{}", serde_json::to_string(e).expect("serialisable"));
                } else if let Some(p) = &e.problem {
                    println!("{}  refused: {p}", e.digest);
                }
            }
            if !as_json {
                println!(
                    "{} objects checked: {} good, {bad} refused",
                    entries.len(),
                    entries.len() - bad
                );
            }
            if bad > 0 {
                return Err(Failure::Failed(anyhow!("{bad} bad store objects")));
            }
            Ok(())
        }
        _ => {
            let removed = cache.store_gc().map_err(failed)?;
            if as_json {
                println!("{}", json!({ "removed": removed }));
            } else {
                for e in &removed {
                    println!(
                        "removed {}: {}",
                        e.digest,
                        e.problem.as_deref().unwrap_or("")
                    );
                }
                println!("removed {} store objects", removed.len());
            }
            Ok(())
        }
    }
}

/// `cache keygen FILE`: a new signing key; prints its public key.
pub(crate) fn keygen(path: &std::path::Path, as_json: bool) -> Result<(), Failure> {
    let key = signing::generate_signing_key(path).map_err(|e| Failure::Failed(anyhow!(e)))?;
    let public = hex::encode(key.verifying_key().as_bytes());
    if as_json {
        println!("{}", json!({ "sign_key": path, "public_key": public }));
    } else {
        println!("{public}");
    }
    Ok(())
}
