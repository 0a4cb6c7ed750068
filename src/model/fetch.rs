//! torchvision's ImageNet weights for SqueezeNet v1.1, fetched once from their published address,
//! checked and cached, then reused offline.
//!
//! The check follows torchvision's (`torch.hub`'s `check_hash`): the file name carries the first
//! hex digits of the file's SHA-256 (`squeezenet1_1-b8a52dc0.pth`), and the downloaded bytes must
//! hash to a value starting with them. When a full SHA-256 is known for a name
//! ([`KNOWN_SHA256`]) the whole hash must match instead. A file that fails is never kept.
//!
//! A download is bounded by size (the file's known size, else a bound no SqueezeNet file comes
//! near: an endless or absurdly announced body is refused), not by time: only a server silent for
//! [`STALL_TIMEOUT`] fails it, so slow links finish. What arrived before a break is kept and
//! continued with an HTTP range request where the server honours them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
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
/// downloaded into it (see [`fetch_with`] for how). `progress` draws a progress bar on stderr.
pub fn fetch(url: &str, dir: &Path, progress: bool) -> Result<PathBuf> {
    let transfer = Transfer::for_name(&file_name(url)?);
    fetch_with(url, dir, progress, &transfer)
}

/// [`fetch`] with explicit limits (tests make them small). The download goes to a hidden partial
/// file in `dir` that is renamed into place only once the file checks out; a file that fails the
/// check is removed. A download that breaks off is kept when the server honours HTTP ranges, and
/// picked up where it stopped: within this call while each try brings new bytes, or by the next
/// call. One fetch per cache folder at a time: a second process waits, then finds the file.
pub(crate) fn fetch_with(
    url: &str,
    dir: &Path,
    progress: bool,
    transfer: &Transfer,
) -> Result<PathBuf> {
    let name = file_name(url)?;
    hash_prefix(&name).or_else(|e| {
        if KNOWN_SHA256.iter().any(|(n, _)| *n == name) {
            Ok(String::new())
        } else {
            Err(e)
        }
    })?;
    let path = dir.join(&name);
    if let Some(path) = sound_cached(&path, &name)? {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
    let _lock = CacheLock::take(dir)?;
    // Another process may have fetched it while this one waited for the lock.
    if let Some(path) = sound_cached(&path, &name)? {
        return Ok(path);
    }
    let partial = dir.join(format!(".{name}.partial"));
    let resumed = file_len(&partial) > 0;
    let result = download(url, &partial, progress, transfer).and_then(|()| {
        match checked(&partial, &name) {
            // The bytes an earlier fetch left may have been of another version of the file:
            // fetch it whole once before giving up.
            Err(_) if resumed => {
                download(url, &partial, progress, transfer).and_then(|()| checked(&partial, &name))
            }
            other => other,
        }
    });
    if let Err(e) = result {
        let kept = file_len(&partial);
        let note = if kept > 0 {
            format!(
                "{kept} bytes are kept in {} and the next fetch continues from them",
                partial.display()
            )
        } else {
            let _ = std::fs::remove_file(&partial);
            "nothing was kept".to_string()
        };
        return Err(e.context(format!(
            "cannot fetch {url}; {note}. Without a network, download {name} on another machine \
             and give it with --weights FILE (or copy it to {})",
            path.display()
        )));
    }
    std::fs::rename(&partial, &path).with_context(|| {
        let _ = std::fs::remove_file(&partial);
        format!("cannot move the download to {}", path.display())
    })?;
    if let Ok(folder) = std::fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(path)
}

/// [`verify`]; a download that fails its check is removed.
fn checked(partial: &Path, name: &str) -> Result<()> {
    verify(partial, name).inspect_err(|_| {
        let _ = std::fs::remove_file(partial);
    })
}

/// `path` when it is there and passes its check; a cached file that fails is removed (and
/// fetched again by the caller).
fn sound_cached(path: &Path, name: &str) -> Result<Option<PathBuf>> {
    if !path.is_file() {
        return Ok(None);
    }
    match verify(path, name) {
        Ok(()) => Ok(Some(path.to_path_buf())),
        Err(e) => {
            warn(format!(
                "cached weights fail their check, fetching again: {e:#}"
            ));
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            Ok(None)
        }
    }
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

/// Seconds the server may send nothing before a download counts as stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Seconds to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Connections one fetch may use to finish a download that keeps breaking off.
const ATTEMPTS: usize = 5;
/// The most bytes a weights file of unknown size may have. SqueezeNet v1.1 holds 1,235,496
/// parameters: 4.9 MB as float32, 9.9 MB as float64; anything far larger is not those weights.
const MAX_UNKNOWN_BYTES: u64 = 64 << 20;
/// Sizes known for file names: torchvision's ImageNet file holds the network's 1,235,496
/// float32 parameters (4,941,984 bytes) in a PyTorch container of a few KiB; 1 MiB of room.
const KNOWN_MAX_BYTES: &[(&str, u64)] = &[("squeezenet1_1-b8a52dc0.pth", 4_941_984 + (1 << 20))];

/// How one fetch may go: how long to wait for a connection and for the next bytes, how large the
/// file may be, how many connections it may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transfer {
    pub connect_timeout: Duration,
    /// The longest the server may send nothing. There is no deadline on the whole download: a
    /// slow but moving one always finishes.
    pub stall_timeout: Duration,
    /// A download announced or grown beyond this many bytes is refused.
    pub max_bytes: u64,
    /// Connections per fetch: a download that breaks off is continued (an HTTP range from where it
    /// stopped) while each connection brings new bytes, at most this many in all.
    pub attempts: usize,
}

impl Transfer {
    /// The limits for a file of this name: its known size, else [`MAX_UNKNOWN_BYTES`].
    pub fn for_name(name: &str) -> Transfer {
        let max_bytes = KNOWN_MAX_BYTES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(MAX_UNKNOWN_BYTES, |(_, bytes)| *bytes);
        Transfer {
            connect_timeout: CONNECT_TIMEOUT,
            stall_timeout: STALL_TIMEOUT,
            max_bytes,
            attempts: ATTEMPTS,
        }
    }
}

/// Bytes of `path`, 0 when it does not exist.
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Exclusive hold on a cache folder (an `flock` on the folder itself), so two processes never
/// write one partial file; released when dropped or when the process ends.
struct CacheLock {
    _folder: std::fs::File,
}

impl CacheLock {
    fn take(dir: &Path) -> Result<CacheLock> {
        use std::os::fd::AsRawFd;
        let folder = std::fs::File::open(dir)
            .with_context(|| format!("cannot open the cache folder {}", dir.display()))?;
        // SAFETY: flock on a descriptor this function owns; waits for another fetch to finish.
        if unsafe { libc::flock(folder.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot lock the cache folder {}", dir.display()));
        }
        Ok(CacheLock { _folder: folder })
    }
}

/// Why one connection did not bring the whole file.
enum Failure {
    /// It broke off or stalled; what arrived is kept, and a server that honours ranges continues it.
    Broken(anyhow::Error),
    /// Refused (too large, an HTTP error): the partial file is removed and nothing is retried.
    Refused(anyhow::Error),
}

/// Downloads `url` into `partial`, continuing what is already there when the server honours
/// ranges. On error the partial file holds what may be continued later (or nothing).
fn download(url: &str, partial: &Path, progress: bool, transfer: &Transfer) -> Result<()> {
    let agent = ureq::Agent::config_builder()
        .timeout_connect(Some(transfer.connect_timeout))
        .timeout_recv_response(Some(transfer.stall_timeout))
        .timeout_per_read(Some(transfer.stall_timeout))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(0);
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
    let mut ranges = false;
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        let before = file_len(partial);
        match connect_once(&agent, url, partial, transfer, &bar, &mut ranges) {
            Ok(()) => break Ok(()),
            Err(Failure::Refused(e)) => {
                let _ = std::fs::remove_file(partial);
                break Err(e);
            }
            Err(Failure::Broken(e)) => {
                if !ranges {
                    // Without ranges the bytes cannot be continued: a new try starts over.
                    let _ = std::fs::remove_file(partial);
                    break Err(e);
                }
                if attempt >= transfer.attempts || file_len(partial) <= before {
                    break Err(e);
                }
            }
        }
    };
    bar.finish_and_clear();
    result
}

/// One connection: asks for the bytes after those already in `partial` and appends them.
/// `ranges` becomes true once the server shows that it honours ranges.
fn connect_once(
    agent: &ureq::Agent,
    url: &str,
    partial: &Path,
    transfer: &Transfer,
    bar: &indicatif::ProgressBar,
    ranges: &mut bool,
) -> std::result::Result<(), Failure> {
    let broken = |e: anyhow::Error| Failure::Broken(e);
    let refused = |e: anyhow::Error| Failure::Refused(e);
    let have = file_len(partial);
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let mut response = request
        .call()
        .map_err(|e| broken(anyhow::Error::new(e).context(format!("cannot download {url}"))))?;
    let headers = response.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if header("accept-ranges").is_some_and(|v| v.trim().eq_ignore_ascii_case("bytes")) {
        *ranges = true;
    }
    let content_range = header("content-range").and_then(|v| parse_content_range(&v));
    let length = response.body().content_length();
    let status = response.status().as_u16();
    let (start, total) = match status {
        200 => (0, length),
        206 => {
            *ranges = true;
            match content_range {
                Some(ContentRange {
                    start: Some(start),
                    total,
                }) => (start, total.or(length.map(|l| start + l))),
                _ => {
                    return Err(refused(anyhow::anyhow!(
                        "{url}: the server sent part of the file without saying which part"
                    )))
                }
            }
        }
        416 if have > 0 => {
            // Nothing after `have` bytes: whole already, or not the server's file any more.
            if content_range.and_then(|r| r.total) == Some(have) {
                return Ok(());
            }
            std::fs::remove_file(partial).map_err(|e| {
                refused(anyhow::Error::new(e).context("cannot restart the download"))
            })?;
            return connect_once(agent, url, partial, transfer, bar, ranges);
        }
        _ => {
            return Err(refused(anyhow::anyhow!(
                "cannot download {url}: the server answered {status}"
            )))
        }
    };
    if let Some(total) = total {
        if total > transfer.max_bytes {
            return Err(refused(anyhow::anyhow!(
                "{url} is announced as {total} bytes, more than the {} a weights file of this \
                 name may have; refused before writing anything",
                transfer.max_bytes
            )));
        }
    }
    if start != 0 && start != have {
        if have == 0 {
            return Err(refused(anyhow::anyhow!(
                "{url}: the server sent the file from byte {start} when the whole was asked for"
            )));
        }
        // A part other than the one asked for: start over.
        let _ = std::fs::remove_file(partial);
        return connect_once(agent, url, partial, transfer, bar, ranges);
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(partial)
        .and_then(|f| f.set_len(start).map(|()| f))
        .map_err(|e| {
            refused(anyhow::Error::new(e).context(format!("cannot write {}", partial.display())))
        })?;
    bar.set_length(total.unwrap_or(0));
    bar.set_position(start);
    let mut reader = response.body_mut().as_reader();
    let mut buffer = vec![0u8; 1 << 16];
    let mut received = start;
    let mut last_data = std::time::Instant::now();
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(n) => n,
            Err(e) => {
                let stalled = last_data.elapsed() >= transfer.stall_timeout;
                let why = if stalled {
                    format!(
                        "no data for {} s after {received} bytes",
                        transfer.stall_timeout.as_secs_f32()
                    )
                } else {
                    format!("it broke off after {received} bytes")
                };
                return Err(broken(
                    anyhow::Error::new(e).context(format!("download of {url} stopped: {why}")),
                ));
            }
        };
        if n == 0 {
            break;
        }
        last_data = std::time::Instant::now();
        if received + n as u64 > transfer.max_bytes {
            return Err(refused(anyhow::anyhow!(
                "{url} sends more than {} bytes, the most a weights file of this name may have; \
                 refused",
                transfer.max_bytes
            )));
        }
        file.write_all(&buffer[..n]).map_err(|e| {
            refused(anyhow::Error::new(e).context(format!("cannot write {}", partial.display())))
        })?;
        received += n as u64;
        bar.set_position(received);
    }
    file.sync_all().map_err(|e| {
        refused(anyhow::Error::new(e).context(format!("cannot write {}", partial.display())))
    })?;
    match total {
        Some(total) if received != total => Err(broken(anyhow::anyhow!(
            "download of {url} broke off: {received} of {total} bytes"
        ))),
        _ => Ok(()),
    }
}

/// What a `Content-Range` header says: `bytes START-END/TOTAL`, or `bytes */TOTAL` (no start).
#[derive(Debug, Clone, Copy, PartialEq)]
struct ContentRange {
    start: Option<u64>,
    total: Option<u64>,
}

fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let start = match range.trim() {
        "*" => None,
        r => Some(r.split_once('-')?.0.trim().parse().ok()?),
    };
    Some(ContentRange { start, total })
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    use super::*;

    type Requests = Arc<Mutex<Vec<String>>>;

    /// A loopback HTTP server for `connections` connections: `answer(k, request_head, stream)`
    /// answers the k-th. Returns the base address and the request heads it received.
    fn serve_with(
        connections: usize,
        answer: impl Fn(usize, &str, &mut TcpStream) + Send + 'static,
    ) -> (String, Requests) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let requests: Requests = Arc::default();
        let seen = requests.clone();
        std::thread::spawn(move || {
            for (k, stream) in listener.incoming().take(connections).enumerate() {
                let mut stream = stream.unwrap();
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    head.push_str(&line);
                    line.clear();
                }
                seen.lock().unwrap().push(head.clone());
                answer(k, &head, &mut stream);
            }
        });
        (address, requests)
    }

    /// Serves `body` to each connection, announcing `announced` bytes and closing the
    /// connection after `sent` of them. Returns the base address.
    fn serve(body: Vec<u8>, announced: usize, sent: usize, connections: usize) -> String {
        serve_with(connections, move |_, _, stream| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body[..sent]);
        })
        .0
    }

    /// The byte a `Range: bytes=N-` request asks to start from.
    fn range_start(head: &str) -> Option<usize> {
        head.lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("range: bytes=")
                    .map(str::to_string)
            })
            .and_then(|r| r.trim().trim_end_matches('-').parse().ok())
    }

    /// Answers like a server that honours ranges: the bytes from the requested start (206), or
    /// all of them (200), closing after `cut` bytes of the file when given.
    fn answer_ranges(body: &[u8], head: &str, stream: &mut TcpStream, cut: Option<usize>) {
        let start = range_start(head).unwrap_or(0);
        let end = cut.unwrap_or(body.len()).max(start);
        let status = if start > 0 {
            format!(
                "206 Partial Content\r\nContent-Range: bytes {start}-{}/{}",
                body.len() - 1,
                body.len()
            )
        } else {
            "200 OK".to_string()
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nAccept-Ranges: bytes\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len() - start
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body[start..end]);
    }

    /// A server that answers one connection with `head` and then bytes for as long as the
    /// client reads them.
    fn endless(head: &'static [u8]) -> String {
        serve_with(1, move |_, _, stream| {
            let _ = stream.write_all(head);
            let chunk = vec![7u8; 1 << 16];
            while stream.write_all(&chunk).is_ok() {}
        })
        .0
    }

    /// The error of a [`fetch`] of `url` into `dir`, failing the test if it takes longer than a
    /// minute (the fetches before the size cap never ended on an endless body).
    fn fetch_error(url: &str, dir: &Path) -> String {
        let (url, dir) = (url.to_string(), dir.to_path_buf());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(format!("{:#}", fetch(&url, &dir, false).unwrap_err()));
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the fetch did not end within a minute")
    }

    fn quick(max_bytes: u64) -> Transfer {
        Transfer {
            connect_timeout: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(1),
            max_bytes,
            attempts: ATTEMPTS,
        }
    }

    fn assert_nothing_kept(dir: &Path) {
        assert!(
            listing(dir).is_empty(),
            "left in the cache: {:?}",
            listing(dir)
        );
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
        assert_nothing_kept(cache.path());
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
        assert_nothing_kept(cache.path());
        // Nothing listens any more (as offline): still an error, still nothing kept, and the
        // message says how to go on without a network.
        let offline = format!("{:#}", fetch(&url, cache.path(), false).unwrap_err());
        assert!(offline.contains("--weights FILE"), "{offline}");
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

    #[test]
    fn an_endless_body_is_cut_at_the_size_cap_and_nothing_is_kept() {
        let address = endless(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let cache = tempfile::tempdir().unwrap();
        let text = fetch_error(
            &format!("{address}/squeezenet1_1-0123abcd.pth"),
            cache.path(),
        );
        assert!(
            text.contains(&format!("more than {MAX_UNKNOWN_BYTES} bytes"))
                && text.contains("nothing was kept"),
            "{text}"
        );
        assert_nothing_kept(cache.path());
    }

    #[test]
    fn a_huge_announced_length_is_refused_before_writing() {
        let address = endless(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\nConnection: close\r\n\r\n",
        );
        // The known ImageNet name: its own, much smaller cap applies.
        let cache = tempfile::tempdir().unwrap();
        let text = fetch_error(
            &format!("{address}/squeezenet1_1-b8a52dc0.pth"),
            cache.path(),
        );
        let cap = Transfer::for_name("squeezenet1_1-b8a52dc0.pth").max_bytes;
        assert!(cap < 6_000_000, "{cap}");
        assert!(
            text.contains("announced as 1000000000000 bytes")
                && text.contains(&cap.to_string())
                && text.contains("before writing"),
            "{text}"
        );
        assert_nothing_kept(cache.path());
    }

    #[test]
    fn a_slow_but_moving_download_finishes_and_a_stalled_one_fails_fast() {
        let (body, hash) = payload();
        let name = format!("squeezenet1_1-{}.pth", &hash[..8]);
        // 30 pieces, 120 ms apart: 3.6 s in all, far beyond a stall timeout of 1 s.
        let slow = body.clone();
        let (address, _) = serve_with(1, move |_, _, stream| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                slow.len()
            );
            let _ = stream.write_all(head.as_bytes());
            for piece in slow.chunks(slow.len().div_ceil(30)) {
                std::thread::sleep(Duration::from_millis(120));
                let _ = stream.write_all(piece);
            }
        });
        let cache = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let path = fetch_with(
            &format!("{address}/{name}"),
            cache.path(),
            false,
            &quick(1 << 20),
        )
        .unwrap();
        assert!(started.elapsed() > Duration::from_secs(3));
        assert_eq!(std::fs::read(path).unwrap(), body);

        // A server that goes silent mid-way fails after the stall timeout, not a deadline.
        let silent = body.clone();
        let (address, _) = serve_with(1, move |_, _, stream| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                silent.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&silent[..1000]);
            std::thread::sleep(Duration::from_secs(8));
        });
        let cache = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let text = format!(
            "{:#}",
            fetch_with(
                &format!("{address}/{name}"),
                cache.path(),
                false,
                &quick(1 << 20)
            )
            .unwrap_err()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(text.contains("no data for 1 s after 1000 bytes"), "{text}");
        assert_nothing_kept(cache.path());
    }

    #[test]
    fn a_broken_download_continues_where_it_stopped_when_the_server_honours_ranges() {
        let (body, hash) = payload();
        let name = format!("squeezenet1_1-{}.pth", &hash[..8]);
        let half = body.len() / 2;

        // Within one fetch: the first connection breaks off, the second continues it.
        let served = body.clone();
        let (address, requests) = serve_with(2, move |k, head, stream| {
            answer_ranges(&served, head, stream, (k == 0).then_some(half));
        });
        let cache = tempfile::tempdir().unwrap();
        let path = fetch_with(
            &format!("{address}/{name}"),
            cache.path(),
            false,
            &quick(1 << 20),
        )
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), body);
        let asked: Vec<Option<usize>> = requests
            .lock()
            .unwrap()
            .iter()
            .map(|h| range_start(h))
            .collect();
        assert_eq!(asked, [None, Some(half)]);
        assert_eq!(listing(cache.path()), vec![name.clone()]);

        // Across fetches: the one that broke off keeps its bytes, the next asks for the rest.
        let served = body.clone();
        let (address, _) = serve_with(1, move |_, head, stream| {
            answer_ranges(&served, head, stream, Some(half));
        });
        let cache = tempfile::tempdir().unwrap();
        let once = Transfer {
            attempts: 1,
            ..quick(1 << 20)
        };
        let text = format!(
            "{:#}",
            fetch_with(&format!("{address}/{name}"), cache.path(), false, &once).unwrap_err()
        );
        assert!(text.contains(&format!("{half} bytes are kept")), "{text}");
        let served = body.clone();
        let (address, requests) = serve_with(1, move |_, head, stream| {
            answer_ranges(&served, head, stream, None);
        });
        let path = fetch_with(&format!("{address}/{name}"), cache.path(), false, &once).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), body);
        assert_eq!(range_start(&requests.lock().unwrap()[0]), Some(half));
        assert_eq!(listing(cache.path()), vec![name.clone()]);

        // Kept bytes of another file (the check fails): fetched whole once more, and kept.
        let cache = tempfile::tempdir().unwrap();
        std::fs::write(
            cache.path().join(format!(".{name}.partial")),
            vec![0u8; half],
        )
        .unwrap();
        let served = body.clone();
        let (address, requests) = serve_with(2, move |_, head, stream| {
            answer_ranges(&served, head, stream, None);
        });
        let path = fetch_with(&format!("{address}/{name}"), cache.path(), false, &once).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), body);
        let asked: Vec<Option<usize>> = requests
            .lock()
            .unwrap()
            .iter()
            .map(|h| range_start(h))
            .collect();
        assert_eq!(asked, [Some(half), None]);
    }

    #[test]
    fn content_ranges_parse() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some(ContentRange {
                start: Some(100),
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range("bytes */1000"),
            Some(ContentRange {
                start: None,
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range("bytes 5-9/*"),
            Some(ContentRange {
                start: Some(5),
                total: None
            })
        );
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
