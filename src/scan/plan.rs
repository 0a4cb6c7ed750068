//! What a scan covers, decided before any photo is read: the whole photo list, each photo's output
//! name, the list's digest (so a continued or merged scan can tell it is the same list) and which
//! photos one shard of an array job takes. Everything here is a pure function of the list, so
//! every shard of a campaign, a single-process scan and a merge agree on it without talking.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::photo::file_stem;

/// One shard of a scan split over an array job: shard `index` (1-based) of `count`. It takes the
/// photos whose place in the whole list is `index - 1` modulo `count` (every `count`-th photo, so
/// each shard gets a like share of every folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Shard> {
        if count == 0 || index == 0 || index > count {
            bail!("shard {index}/{count} does not exist: K/N needs 1 <= K <= N");
        }
        Ok(Shard { index, count })
    }

    /// True when the photo at `place` (0-based, in the whole list) is this shard's.
    pub fn takes(&self, place: usize) -> bool {
        place % self.count == self.index - 1
    }

    /// The shard's own folder inside a scan's `--out` (shards of one campaign never share files).
    pub fn folder_name(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    /// The shard an array job's environment names, when it names one: Slurm's
    /// `SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_COUNT` (or `_MIN`, `_MAX` and `_STEP`), or
    /// Kubernetes' `JOB_COMPLETION_INDEX` (0-based) with `count` (Kubernetes does not tell a pod
    /// how many completions there are). `var` looks a variable up.
    pub fn from_environment(
        var: impl Fn(&str) -> Option<String>,
        count: Option<usize>,
    ) -> Result<Option<Shard>> {
        let number = |name: &str| -> Result<Option<usize>> {
            match var(name) {
                None => Ok(None),
                Some(text) => text
                    .trim()
                    .parse()
                    .map(Some)
                    .with_context(|| format!("{name}={text:?} is not a whole number")),
            }
        };
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let Some(total) = count
                .or(number("SLURM_ARRAY_TASK_COUNT")?)
                .or(number("SLURM_ARRAY_TASK_MAX")?.map(|max| max.saturating_sub(min) / step + 1))
            else {
                bail!(
                    "SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor \
                     SLURM_ARRAY_TASK_MAX: give --shard-count N or --shard K/N"
                )
            };
            if id < min || (id - min) % step != 0 {
                bail!("SLURM_ARRAY_TASK_ID={id} is not on the array's range (from {min}, step {step})");
            }
            return Shard::new((id - min) / step + 1, total)
                .context("the Slurm array's task does not fit its count")
                .map(Some);
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let Some(total) = count else {
                bail!(
                    "JOB_COMPLETION_INDEX={index} is set (a Kubernetes indexed job): give \
                     --shard-count with the job's completions"
                )
            };
            return Shard::new(index + 1, total)
                .context("the Kubernetes completion index does not fit --shard-count")
                .map(Some);
        }
        Ok(None)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let parsed = text.split_once('/').and_then(|(k, n)| {
            Some((
                k.trim().parse::<usize>().ok()?,
                n.trim().parse::<usize>().ok()?,
            ))
        });
        let Some((index, count)) = parsed else {
            return Err(format!("{text:?} is not K/N (e.g. 2/8)"));
        };
        Shard::new(index, count).map_err(|e| e.to_string())
    }
}

/// The name each photo's outputs are written under (`NAME-overlay.png`, `NAME-mask.png`,
/// `NAME-map.png`), unique over the list: the file stem where no other photo shares it, else
/// the file name (`x.jpg`, `x.png`), else the file name and its rank among equals (`p.jpg`,
/// `p.jpg~2` for `p.jpg` in two folders). Names are compared without case, so they stay apart
/// on file systems that ignore it.
pub fn output_names(photos: &[PathBuf]) -> Vec<String> {
    let file_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "photo".into())
    };
    let mut stems: HashMap<String, usize> = HashMap::new();
    let mut files: HashMap<String, usize> = HashMap::new();
    for photo in photos {
        *stems.entry(file_stem(photo).to_lowercase()).or_default() += 1;
        *files.entry(file_name(photo).to_lowercase()).or_default() += 1;
    }
    let mut used: HashSet<String> = HashSet::new();
    photos
        .iter()
        .map(|photo| {
            let stem = file_stem(photo);
            let base = if stems[&stem.to_lowercase()] == 1 {
                stem
            } else {
                file_name(photo)
            };
            let mut name = base.clone();
            let mut rank = 2;
            while !used.insert(name.to_lowercase()) {
                name = format!("{base}~{rank}");
                rank += 1;
            }
            name
        })
        .collect()
}

/// A digest of the whole photo list (its absolute paths, in order): equal digests, same list.
pub fn digest(photos: &[PathBuf]) -> String {
    let mut hasher = Sha256::new();
    for photo in photos {
        hasher.update(photo.as_os_str().as_encoded_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_are_unique_and_plain_where_they_can_be() {
        let photos: Vec<PathBuf> = [
            "/a/wall.jpg",
            "/a/x.jpg",
            "/a/x.png",
            "/a/p.jpg",
            "/b/p.jpg",
            "/b/X.JPG",
            "/c/x.jpg.png",
        ]
        .map(PathBuf::from)
        .to_vec();
        let names = output_names(&photos);
        assert_eq!(
            names,
            ["wall", "x.jpg", "x.png", "p.jpg", "p.jpg~2", "X.JPG~2", "x.jpg~3"]
        );
        let unique: HashSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn shards_split_the_list_between_them() {
        let shards: Vec<Shard> = (1..=3).map(|k| Shard::new(k, 3).unwrap()).collect();
        for place in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.takes(place)).count(), 1);
        }
        assert!(shards[1].takes(4));
        assert_eq!("2/3".parse::<Shard>().unwrap(), shards[1]);
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
        assert!("two".parse::<Shard>().is_err());
    }

    #[test]
    fn array_jobs_name_their_shard_in_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let shard = |pairs, count| Shard::from_environment(env(pairs), count);
        assert_eq!(shard(&[], None).unwrap(), None);
        let slurm = &[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ];
        assert_eq!(shard(slurm, None).unwrap(), Some(Shard::new(6, 8).unwrap()));
        let range = &[
            ("SLURM_ARRAY_TASK_ID", "12"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_MAX", "13"),
        ];
        assert_eq!(shard(range, None).unwrap(), Some(Shard::new(3, 4).unwrap()));
        assert!(shard(&[("SLURM_ARRAY_TASK_ID", "1")], None).is_err());
        let kubernetes = &[("JOB_COMPLETION_INDEX", "0")];
        assert_eq!(
            shard(kubernetes, Some(4)).unwrap(),
            Some(Shard::new(1, 4).unwrap())
        );
        let message = format!("{:#}", shard(kubernetes, None).unwrap_err());
        assert!(message.contains("--shard-count"), "{message}");
        assert!(shard(&[("JOB_COMPLETION_INDEX", "4")], Some(4)).is_err());
    }

    #[test]
    fn the_digest_tells_lists_apart() {
        let a = [PathBuf::from("/p/1.jpg"), PathBuf::from("/p/2.jpg")];
        let b = [PathBuf::from("/p/2.jpg"), PathBuf::from("/p/1.jpg")];
        assert_eq!(digest(&a), digest(&a.clone()));
        assert_ne!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&a[..1]));
    }
}
