//! torchvision's ImageNet weights for SqueezeNet v1.1, fetched once from their published address,
//! checked and cached, then reused offline.
//!
//! The check follows torchvision's (`torch.hub`'s `check_hash`): the file name carries the first
//! hex digits of the file's SHA-256 (`squeezenet1_1-b8a52dc0.pth`), and the downloaded bytes must
//! hash to a value starting with them. When a full SHA-256 is known for a name
//! ([`KNOWN_SHA256`]) the whole hash must match instead. A file that fails is never kept.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};

use crate::core::warn::warn;

/// torchvision's published address of `squeezenet1_1(weights="IMAGENET1K_V1")`.
pub const IMAGENET_URL: &str = "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth";
/// Replaces [`IMAGENET_URL`] (a mirror, or a local server in tests). The file name at the end of
/// the address must still carry the hash prefix.
pub const URL_ENV: &str = "CRACKSCOPE_WEIGHTS_URL";
/// Full SHA-256 digests known for file names, checked instead of the prefix. None recorded yet:
/// torchvision publishes only the prefix in the name.
const KNOWN_SHA256: &[(&str, &str)] = &[];
/// Hex digits of the hash a file name must carry at least.
const MIN_PREFIX: usize = 8;

/// The address weights are fetched from: [`URL_ENV`] when set, else torchvision's.
pub fn imagenet_url() -> String {
    std::env::var(URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| IMAGENET_URL.to_string())
}

/// `$XDG_CACHE_HOME/crackscope`, else `~/.cache/crackscope`.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("crackscope"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither XDG_CACHE_HOME nor HOME is set: no place to cache weights")?;
    Ok(PathBuf::from(home).join(".cache").join("crackscope"))
}

/// The last path segment of `url`, which names the cached file and carries the hash prefix.
pub fn file_name(url: &str) -> Result<String> {
    let name = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .with_context(|| format!("{url} does not end in a file name"))?;
    ensure!(
        !name.starts_with('.') && !name.contains(['\\', ':']),
        "{url}: {name:?} cannot name a cached file"
    );
    Ok(name.to_string())
}

/// The hex digits after the last '-' of the name, before its extension (torch.hub's rule).
fn hash_prefix(name: &str) -> Result<String> {
    let stem = name.split('.').next().unwrap_or(name);
    let prefix = stem.rsplit('-').next().unwrap_or("");
    ensure!(
        prefix.len() >= MIN_PREFIX && prefix.chars().all(|c| c.is_ascii_hexdigit()),
        "{name} does not carry a SHA-256 prefix (name-<{MIN_PREFIX} or more hex digits>.pth, as \
         torchvision names its files): it cannot be checked"
    );
    Ok(prefix.to_ascii_lowercase())
}

/// SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `path` against what its `name` promises: the full known digest, else the prefix.
pub fn verify(path: &Path, name: &str) -> Result<()> {
    let actual = sha256_file(path)?;
    if let Some((_, full)) = KNOWN_SHA256.iter().find(|(n, _)| *n == name) {
        ensure!(
            actual == *full,
            "{}: SHA-256 is {actual}, expected {full}",
            path.display()
        );
        return Ok(());
    }
    let prefix = hash_prefix(name)?;
    ensure!(
        actual.starts_with(&prefix),
        "{}: SHA-256 is {actual}, but the name {name} promises one starting with {prefix} \
         (a corrupt or substituted download)",
        path.display()
    );
    Ok(())
}

/// The weights at `url`, from the cache in `dir` when they are there and check out, else
/// downloaded into it (a temporary file renamed into place once checked; a file that fails the
/// check is removed). `progress` draws a progress bar on stderr.
pub fn fetch(url: &str, dir: &Path, progress: bool) -> Result<PathBuf> {
    let name = file_name(url)?;
    hash_prefix(&name).or_else(|e| {
        if KNOWN_SHA256.iter().any(|(n, _)| *n == name) {
            Ok(String::new())
        } else {
            Err(e)
        }
    })?;
    let path = dir.join(&name);
    if path.is_file() {
        match verify(&path, &name) {
            Ok(()) => return Ok(path),
            Err(e) => {
                warn(format!(
                    "cached weights fail their check, fetching again: {e:#}"
                ));
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
    let partial = dir.join(format!(".{name}.{}.partial", std::process::id()));
    let result = download(url, &partial, progress).and_then(|()| verify(&partial, &name));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e.context(format!("cannot fetch {url}; nothing was kept")));
    }
    std::fs::rename(&partial, &path).with_context(|| {
        let _ = std::fs::remove_file(&partial);
        format!("cannot move the download to {}", path.display())
    })?;
    Ok(path)
}

/// The cached file for `url` when present and sound, without touching the network.
pub fn cached(url: &str, dir: &Path) -> Result<Option<PathBuf>> {
    let name = file_name(url)?;
    let path = dir.join(&name);
    if !path.is_file() {
        return Ok(None);
    }
    verify(&path, &name)?;
    Ok(Some(path))
}

/// torchvision's ImageNet weights: cached, else fetched (see [`fetch`]).
pub fn imagenet_weights() -> Result<PathBuf> {
    fetch(&imagenet_url(), &cache_dir()?, true)
}

/// The `--weights` value (and `train.weights` recipe key) that stands for torchvision's ImageNet
/// weights, fetched or taken from the cache.
pub const IMAGENET: &str = "imagenet";

/// A weights argument as a file: [`IMAGENET`] becomes the cached (or freshly fetched) file.
pub fn resolve(weights: &Path) -> Result<PathBuf> {
    if weights == Path::new(IMAGENET) {
        imagenet_weights()
    } else {
        Ok(weights.to_path_buf())
    }
}

/// Streams `url` into `dest`; an early end (fewer bytes than announced) is an error.
fn download(url: &str, dest: &Path, progress: bool) -> Result<()> {
    let agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .new_agent();
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("cannot download {url}"))?;
    let announced = response.body().content_length();
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(announced.unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} ({bytes_per_sec})",
            )
            .expect("a valid template"),
        );
        bar.set_message(format!("fetching {url}"));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut file =
        std::fs::File::create(dest).with_context(|| format!("cannot write {}", dest.display()))?;
    let mut reader = response.body_mut().as_reader();
    let mut buffer = vec![0u8; 1 << 16];
    let mut received: u64 = 0;
    loop {
        let n = reader
            .read(&mut buffer)
            .with_context(|| format!("download of {url} broke off after {received} bytes"))?;
        if n == 0 {
            break;
        }
        file.write_all(&buffer[..n])
            .with_context(|| format!("cannot write {}", dest.display()))?;
        received += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if let Some(total) = announced {
        if received != total {
            bail!("download of {url} broke off: {received} of {total} bytes");
        }
    }
    file.sync_all()
        .with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::net::TcpListener;

    use super::*;

    /// Serves `body` to each connection on 127.0.0.1, announcing `announced` bytes and closing
    /// the connection after `sent` of them. Returns the base address.
    fn serve(body: Vec<u8>, announced: usize, sent: usize, connections: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(connections) {
                let mut stream = stream.unwrap();
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body[..sent]);
            }
        });
        address
    }

    fn payload() -> (Vec<u8>, String) {
        let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let hash = hex(&Sha256::digest(&body));
        (body, hash)
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn good_fetch_is_cached_and_reused_with_the_server_gone() {
        let (body, hash) = payload();
        let name = format!("squeezenet1_1-{}.pth", &hash[..8]);
        let url = format!(
            "{}/models/{name}",
            serve(body.clone(), body.len(), body.len(), 1)
        );
        let cache = tempfile::tempdir().unwrap();
        let path = fetch(&url, cache.path(), false).unwrap();
        assert_eq!(path, cache.path().join(&name));
        assert_eq!(std::fs::read(&path).unwrap(), body);
        assert_eq!(
            listing(cache.path()),
            vec![name.clone()],
            "no temporary file left"
        );
        // The server served one connection and is gone: the cache answers.
        assert_eq!(fetch(&url, cache.path(), false).unwrap(), path);
        assert_eq!(cached(&url, cache.path()).unwrap(), Some(path));
    }

    #[test]
    fn wrong_hash_is_an_error_and_nothing_is_kept() {
        let (body, hash) = payload();
        let wrong = if hash.starts_with("0") { "1" } else { "0" }.repeat(8);
        let url = format!(
            "{}/squeezenet1_1-{wrong}.pth",
            serve(body.clone(), body.len(), body.len(), 1)
        );
        let cache = tempfile::tempdir().unwrap();
        let text = format!("{:#}", fetch(&url, cache.path(), false).unwrap_err());
        assert!(
            text.contains(&hash) && text.contains(&wrong) && text.contains("nothing was kept"),
            "{text}"
        );
        assert!(
            listing(cache.path()).is_empty(),
            "{:?}",
            listing(cache.path())
        );
    }

    #[test]
    fn interrupted_download_is_an_error_and_nothing_is_kept() {
        let (body, hash) = payload();
        let url = format!(
            "{}/squeezenet1_1-{}.pth",
            serve(body.clone(), body.len(), body.len() / 3, 1),
            &hash[..8]
        );
        let cache = tempfile::tempdir().unwrap();
        let text = format!("{:#}", fetch(&url, cache.path(), false).unwrap_err());
        assert!(
            text.contains("broke off") || text.contains("cannot download"),
            "{text}"
        );
        assert!(
            listing(cache.path()).is_empty(),
            "{:?}",
            listing(cache.path())
        );
        // Nothing listens any more: still an error, still nothing kept.
        assert!(fetch(&url, cache.path(), false).is_err());
        assert!(listing(cache.path()).is_empty());
    }

    #[test]
    fn names_without_a_hash_prefix_cannot_be_checked() {
        let cache = tempfile::tempdir().unwrap();
        let text = format!(
            "{:#}",
            fetch("http://127.0.0.1:9/weights.pth", cache.path(), false).unwrap_err()
        );
        assert!(text.contains("does not carry a SHA-256 prefix"), "{text}");
        assert_eq!(
            file_name(IMAGENET_URL).unwrap(),
            "squeezenet1_1-b8a52dc0.pth"
        );
        assert_eq!(
            hash_prefix("squeezenet1_1-b8a52dc0.pth").unwrap(),
            "b8a52dc0"
        );
    }
}
