//! The shared store tier against a real S3-compatible server (s3s-fs,
//! installed by `scripts/s3-server.sh`) and a `file://` directory: a node
//! with an empty cache fetches what another published; refused objects
//! (tampered, truncated, unsigned, untrusted, foreign) end in a reason and
//! a local compile; an unreachable or silent store never hangs a lookup.
//! Each `ArtifactCache` over its own directory stands for one node.

use crate::support::*;
use evmc_runtime::cache::remote::bundle;
use evmc_runtime::cache::remote::signing::{self, Seal};
use evmc_runtime::cache::remote::{SigningKey, StoreClient, StoreConfig};
use evmc_runtime::cache::{CacheKey, Manifest, Source};
use evmc_runtime::ArtifactCache;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BUCKET: &str = "evmc";

struct Server {
    endpoint: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

/// One s3s-fs process for the whole test binary; it dies with it.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/s3-server.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("install")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "installing the S3 server failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(BUCKET)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // A watchdog shell stops the server when this test process ends
        // (the server outlives the thread that started it, so no
        // parent-death signal).
        let child = Command::new("sh")
            .arg("-c")
            .arg(
                "\"$0\" --host 127.0.0.1 --port \"$1\" --access-key evmc --secret-key evmc-secret \"$2\" & s=$!; \
                 while kill -0 \"$3\" 2>/dev/null && kill -0 $s 2>/dev/null; do sleep 0.5; done; kill $s",
            )
            .arg(bin)
            .arg(port.to_string())
            .arg(dir.path())
            .arg(std::process::id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "S3 server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The same for every test (and set before any store is opened).
        std::env::set_var("AWS_ACCESS_KEY_ID", "evmc");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "evmc-secret");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ALLOW_HTTP", "true");
        Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            _child: child,
            _dir: dir,
        }
    })
}

/// A store URL on the test server, private to `name`.
fn s3_url(name: &str) -> String {
    format!("s3://{BUCKET}/{name}?endpoint={}", server().endpoint)
}

fn publisher_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn node(
    url: &str,
    sign: Option<SigningKey>,
    trusted: &[SigningKey],
) -> (tempfile::TempDir, ArtifactCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = ArtifactCache::open(dir.path())
        .unwrap()
        .with_store(StoreConfig {
            url: url.to_string(),
            sign_key: sign,
            trusted: trusted.iter().map(|k| k.verifying_key()).collect(),
        })
        .unwrap();
    (dir, cache)
}

fn key() -> CacheKey {
    CacheKey::for_compile(code_hash(), &opts())
}

/// The honest entry: manifest and artefact bytes, compiled once.
fn honest() -> &'static (Manifest, Vec<u8>) {
    static HONEST: OnceLock<(Manifest, Vec<u8>)> = OnceLock::new();
    HONEST.get_or_init(|| {
        let (_d, cache) = cache_with_contract();
        let dir = entry_dir(&cache);
        let m = std::fs::read(dir.join("manifest.json")).unwrap();
        let m: Manifest = serde_json::from_slice(&m).unwrap();
        (m, std::fs::read(dir.join("artifact.so")).unwrap())
    })
}

fn seal(k: &SigningKey, m: &Manifest) -> Seal {
    signing::seal(k, &m.key.digest_hex(), &m.artifact_blake3, m.artifact_size)
}

/// Publishes from node A, fetches on node B (empty cache): B loads the
/// artefact without compiling and runs it natively.
fn round_trip(url: &str) {
    let (_a, a) = node(url, Some(publisher_key()), &[]);
    let (_, src) = a.lookup_or_compile(&contract(), &opts()).unwrap();
    assert!(matches!(src, Source::Compiled(_)), "{src:?}");
    let (_b, b) = node(url, None, &[publisher_key()]);
    let (_, src) = b.lookup_or_compile(&contract(), &opts()).unwrap();
    assert!(matches!(src, Source::Fetched), "{src:?}");
    assert!(b.take_rejections().is_empty());
    assert!(run_through_cache(&b) > 0, "nothing ran natively");
    let listed = b.store_ls().unwrap();
    assert_eq!(listed.len(), 1);
    let verified = b.store_verify().unwrap();
    assert!(verified[0].problem.is_none(), "{verified:?}");
    assert_eq!(
        verified[0].signed_by.as_deref(),
        Some(hex::encode(publisher_key().verifying_key().as_bytes()).as_str())
    );
}

#[test]
fn file_store_round_trip() {
    let store = tempfile::tempdir().unwrap();
    round_trip(&format!("file://{}", store.path().display()));
}

#[test]
fn s3_store_round_trip() {
    round_trip(&s3_url("round-trip"));
}

/// A node that trusts no publisher never uses a downloaded artefact: it
/// compiles, and its publish finds the same bytes in the store.
#[test]
fn node_without_trusted_keys_compiles_and_confirms_the_stored_bytes() {
    let url = s3_url("untrusting");
    let (_a, a) = node(&url, None, &[]);
    a.get_or_compile(&contract(), &opts()).unwrap();
    let (_b, b) = node(&url, None, &[]);
    let (_, src) = b.lookup_or_compile(&contract(), &opts()).unwrap();
    assert!(matches!(src, Source::Compiled(_)), "{src:?}");
    let r = b.take_rejections();
    assert!(r.is_empty(), "reproducible bytes conflict: {r:?}");
}

#[test]
fn concurrent_publishers_of_one_key_leave_one_valid_object() {
    let url = s3_url("race");
    let nodes: Vec<_> = (0..3)
        .map(|_| node(&url, Some(publisher_key()), &[publisher_key()]))
        .collect();
    // Each node compiles (their caches are separate) and publishes.
    std::thread::scope(|s| {
        for (_, n) in &nodes {
            s.spawn(move || {
                let mut o = opts();
                o.threads = 1;
                n.get_or_compile(&contract(), &o).unwrap();
            });
        }
    });
    for (_, n) in &nodes {
        assert!(n.take_rejections().is_empty());
    }
    let v = nodes[0].1.store_verify().unwrap();
    assert_eq!(v.len(), 1);
    assert!(v[0].problem.is_none(), "{v:?}");
}

/// Puts `object` under the contract's key in a fresh store prefix; a
/// trusting node with an empty cache then refuses it with `needle`,
/// compiles locally, keeps only its own bytes and runs natively.
fn assert_object_refused(name: &str, object: Vec<u8>, needle: &str) {
    let url = s3_url(name);
    StoreClient::open(&url)
        .unwrap()
        .put_if_absent(&key().digest_hex(), object)
        .unwrap();
    let (_b, b) = node(&url, None, &[publisher_key()]);
    let start = Instant::now();
    let (_, src) = b.lookup_or_compile(&contract(), &opts()).unwrap();
    assert!(matches!(src, Source::Compiled(_)), "{name}: {src:?}");
    assert!(start.elapsed() < Duration::from_secs(60));
    let r = b.take_rejections();
    assert!(!r.is_empty(), "{name}: nothing refused");
    assert!(
        r[0].reason.contains(needle),
        "{name}: `{}` does not mention `{needle}`",
        r[0].reason
    );
    assert!(r[0].entry.to_string_lossy().starts_with("s3://"));
    let local = std::fs::read(entry_dir(&b).join("artifact.so")).unwrap();
    assert_eq!(local, honest().1, "{name}: a refused object was kept");
    assert!(run_through_cache(&b) > 0);
}

#[test]
fn tampered_truncated_unsigned_untrusted_and_foreign_objects_are_refused() {
    let (m, so) = honest();
    let good = |m: &Manifest, so: &[u8]| bundle::encode(m, Some(&seal(&publisher_key(), m)), so);

    let mut bad = so.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0xff;
    assert_object_refused(
        "tampered",
        bundle::encode(m, Some(&seal(&publisher_key(), m)), &bad),
        "BLAKE3",
    );

    // The forger recomputes the manifest's hash; the signature is the old one.
    let mut forged = m.clone();
    forged.artifact_blake3 = evmc_runtime::cache::manifest::blake3_hex(&bad);
    forged.artifact_xxh3 = evmc_runtime::cache::manifest::content_hash_hex(&bad);
    assert_object_refused(
        "rehashed",
        bundle::encode(&forged, Some(&seal(&publisher_key(), m)), &bad),
        "does not match",
    );

    assert_object_refused("unsigned", bundle::encode(m, None, so), "unsigned");
    let stranger = SigningKey::from_bytes(&[9; 32]);
    assert_object_refused(
        "untrusted",
        bundle::encode(m, Some(&seal(&stranger, m)), so),
        "not a trusted publisher",
    );

    let whole = good(m, so);
    assert_object_refused(
        "truncated",
        whole[..whole.len() - 1000].to_vec(),
        "truncated",
    );

    let mut other = m.clone();
    other.key.code_hash = evmc_compiler::B256::repeat_byte(0x42);
    assert_object_refused("other-contract", good(&other, so), "another contract");

    let mut old = m.clone();
    old.key.compiler_version = "0000000000000000".into();
    assert_object_refused("other-build", good(&old, so), "another compiler build");
}

/// Runs a compile through a node whose store is `url`; it must end, with
/// a locally compiled artefact, well before `limit`.
fn compiles_despite_store(url: &str, limit: Duration) {
    let (_d, n) = node(url, Some(publisher_key()), &[publisher_key()]);
    let start = Instant::now();
    let (_, src) = n.lookup_or_compile(&contract(), &opts()).unwrap();
    assert!(matches!(src, Source::Compiled(_)), "{src:?}");
    assert!(start.elapsed() < limit, "took {:?}", start.elapsed());
    assert!(run_through_cache(&n) > 0);
    // The breaker is open now: a second key's lookup does not wait.
    let start = Instant::now();
    let mut o = opts();
    o.opt_level = 1;
    n.lookup_or_compile(&contract(), &o).unwrap();
    assert!(
        start.elapsed() < limit,
        "second compile took {:?}",
        start.elapsed()
    );
}

#[test]
fn a_store_that_is_down_degrades_to_local_compiles() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    server(); // credentials in the environment
    compiles_despite_store(
        &format!("s3://{BUCKET}/down?endpoint=http://127.0.0.1:{port}"),
        Duration::from_secs(30),
    );
}

#[test]
fn a_store_that_never_answers_does_not_hang_lookups() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts connections and holds them open without a byte of answer.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().take(64) {
            held.push(c);
        }
    });
    server();
    compiles_despite_store(
        &format!("s3://{BUCKET}/silent?endpoint=http://127.0.0.1:{port}"),
        Duration::from_secs(30),
    );
}

/// A standby's warm-up: `pull` copies every object it may use, each
/// checked, into an empty cache; a second pull finds them present; a node
/// trusting no key takes nothing; an object stored under another key's
/// name is refused with the reason, never kept.
#[test]
fn pull_copies_trusted_objects_and_refuses_the_rest() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let (_a, a) = node(&url, Some(publisher_key()), &[]);
    a.lookup_or_compile(&contract(), &opts()).unwrap();
    // The honest object again, under a name that is not its key's.
    let (m, _) = honest();
    let object = StoreClient::open(&url)
        .unwrap()
        .get(&m.key.digest_hex(), 1 << 30)
        .unwrap()
        .expect("published");
    let wrong_name = "ab".repeat(32);
    StoreClient::open(&url)
        .unwrap()
        .put_if_absent(&wrong_name, object)
        .unwrap();

    let (_b, b) = node(&url, None, &[publisher_key()]);
    let r = b.pull().unwrap();
    assert_eq!((r.copied, r.present), (1, 0), "{r:?}");
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert_eq!(r.failed[0].0, wrong_name);
    assert!(r.failed[0].1.contains("another key"), "{r:?}");
    assert!(!b.take_rejections().is_empty());
    assert!(run_through_cache(&b) > 0, "the pulled artefact did not run");
    let again = b.pull().unwrap();
    assert_eq!((again.copied, again.present), (0, 1), "{again:?}");

    let (_c, c) = node(&url, None, &[]);
    let r = c.pull().unwrap();
    assert_eq!(r.copied, 0, "{r:?}");
    assert!(
        r.failed.iter().all(|(_, why)| why.contains("no trusted")),
        "{r:?}"
    );
}

/// `cache gc --store` after an upgrade: objects another compiler build
/// published (signed by a trusted publisher, whole) are removed, this
/// build's are kept.
#[test]
fn store_gc_removes_objects_of_other_compiler_builds() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let (_a, a) = node(&url, Some(publisher_key()), &[publisher_key()]);
    a.get_or_compile(&contract(), &opts()).unwrap();
    let (m, so) = honest();
    let mut old = m.clone();
    old.key.compiler_version = "evmc-0000000000000000".into();
    let old_digest = old.key.digest_hex();
    let sealed = bundle::encode(&old, Some(&seal(&publisher_key(), &old)), so);
    assert!(StoreClient::open(&url)
        .unwrap()
        .put_if_absent(&old_digest, sealed)
        .unwrap());
    assert_eq!(a.store_ls().unwrap().len(), 2);

    let removed = a.store_gc().unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0].digest, old_digest);
    let left = a.store_ls().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].digest, key().digest_hex());
}
