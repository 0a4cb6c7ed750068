//! Data sources: which `--data` folder each image came from, under a name the user reads in the
//! report. A merged run can hide a new domain behind a good overall figure (all the mistakes
//! drone photos, the accuracy still high), so the split can give each source its own fractions
//! and the report gives each source its own results.
//!
//! A source is named by the user (`--data drone=PATH`) or by its folder's name; two folders of
//! the same name are told apart by their parent folders (`site-a/photos`, `site-b/photos`).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};

use super::dataset::Dataset;
use super::split::{split_by_source, Fractions, Manifest, Split};

/// Splits a `--data` value into a source name and a folder: `NAME=PATH` names it, anything else
/// is a folder. An existing path is always a folder (a folder may have `=` in its name), and a
/// name is letters, digits, `-`, `_` and `.` only, so `a/b=c` stays a path.
pub fn parse_named(spec: &Path) -> (Option<String>, PathBuf) {
    let text = spec.to_string_lossy();
    if spec.exists() {
        return (None, spec.to_path_buf());
    }
    match text.split_once('=') {
        Some((name, path)) if is_name(name) && !path.is_empty() => {
            (Some(name.to_string()), PathBuf::from(path))
        }
        _ => (None, spec.to_path_buf()),
    }
}

/// Whether `name` may name a source given by the user.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// One name per folder, in order: the given name, else the folder's own name (of its canonical
/// path where it has one, so `.` is named too). Folder names that clash get parent folders in
/// front until they differ; a given name used twice, or equal to another folder's name, is an
/// error (a name must say which folder it means).
pub fn names(paths: &[PathBuf], given: &[Option<String>]) -> Result<Vec<String>> {
    let canonical: Vec<PathBuf> = paths
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let parts = |path: &Path| -> Vec<String> {
        path.components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect()
    };
    let mut out: Vec<Option<String>> = given.to_vec();
    out.resize(paths.len(), None);
    for (i, name) in out.iter().enumerate() {
        if let Some(name) = name {
            if out[..i].iter().flatten().any(|n| n == name) {
                bail!("the data source name '{name}' is given twice; each --data NAME=DIR needs its own name");
            }
        }
    }
    // Derived names: the last `depth` components, deepened for the folders whose names clash.
    let unnamed: Vec<usize> = (0..paths.len()).filter(|&i| out[i].is_none()).collect();
    let mut depth = vec![1usize; paths.len()];
    let derive = |i: usize, depth: usize| -> String {
        let parts = parts(&canonical[i]);
        if parts.is_empty() {
            return "data".to_string();
        }
        parts[parts.len().saturating_sub(depth)..].join("/")
    };
    loop {
        let current: Vec<(usize, String)> =
            unnamed.iter().map(|&i| (i, derive(i, depth[i]))).collect();
        let mut deepened = false;
        for (i, name) in &current {
            let clashes = current.iter().any(|(j, other)| j != i && other == name)
                || out.iter().flatten().any(|given| given == name);
            if clashes && depth[*i] < parts(&canonical[*i]).len() {
                depth[*i] += 1;
                deepened = true;
            }
        }
        if !deepened {
            let mut taken: Vec<String> = out.iter().flatten().cloned().collect();
            for (i, name) in current {
                // Only an identical whole path is left to clash: number it (`data~2`).
                let mut unique = name.clone();
                let mut n = 2;
                while taken.contains(&unique) {
                    unique = format!("{name}~{n}");
                    n += 1;
                }
                taken.push(unique.clone());
                out[i] = Some(unique);
            }
            return Ok(out
                .into_iter()
                .map(|n| n.expect("every name set"))
                .collect());
        }
    }
}

/// Each source's split fractions: `default`, or the override named after it. An override that
/// names no source is an error naming the sources there are.
pub fn fractions(
    sources: &[String],
    default: Fractions,
    overrides: &BTreeMap<String, [f64; 3]>,
) -> Result<Vec<Fractions>> {
    for name in overrides.keys() {
        if !sources.contains(name) {
            bail!(
                "--split-for (data.split_for) names the data source '{name}', but the sources are: \
                 {} (name one with --data NAME=DIR)",
                sources.join(", ")
            );
        }
    }
    sources
        .iter()
        .map(|name| {
            let fractions = match overrides.get(name) {
                Some(&[train, val, test]) => Fractions { train, val, test },
                None => default,
            };
            fractions
                .validate()
                .map_err(|e| anyhow::anyhow!("split of data source '{name}': {e:#}"))?;
            Ok(fractions)
        })
        .collect()
}

/// How a run splits its data: the fractions of every source, those of the sources named in
/// `per_source`, and the seed.
#[derive(Debug, Clone, Copy)]
pub struct SplitSettings<'a> {
    pub fractions: Fractions,
    pub per_source: &'a BTreeMap<String, [f64; 3]>,
    pub seed: u64,
}

impl SplitSettings<'_> {
    /// Refuses fractions for a source that `sources` does not name (before any work is done).
    pub fn check(&self, sources: &[String]) -> Result<()> {
        fractions(sources, self.fractions, self.per_source).map(drop)
    }

    /// The split of `dataset`, each source by its fractions, and the manifest that records it.
    pub fn split(&self, dataset: &Dataset) -> Result<(Split, Manifest)> {
        let per_source = fractions(&dataset.sources, self.fractions, self.per_source)?;
        let split = split_by_source(dataset, &per_source, self.seed)?;
        let mut manifest = Manifest::from_split(dataset, &self.fractions, self.seed, &split);
        manifest.source_fractions = dataset
            .sources
            .iter()
            .zip(&per_source)
            .filter(|(name, _)| self.per_source.contains_key(*name))
            .map(|(name, f)| (name.clone(), *f))
            .collect();
        Ok((split, manifest))
    }
}

/// Parses `--split-for NAME=TRAIN,VAL,TEST`.
pub fn parse_split_for(s: &str) -> Result<(String, [f64; 3]), String> {
    let Some((name, fractions)) = s.split_once('=') else {
        return Err(format!(
            "expected NAME=TRAIN,VAL,TEST (for example drone=0.7,0.15,0.15), got '{s}'"
        ));
    };
    if name.is_empty() {
        return Err(format!("no source name before '=' in '{s}'"));
    }
    let values: Vec<f64> = fractions
        .trim_matches(|c| c == '[' || c == ']')
        .split([',', ' '])
        .filter(|v| !v.is_empty())
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad fraction in '{s}': {e}"))?;
    let [train, val, test] = values[..] else {
        return Err(format!(
            "expected three fractions TRAIN,VAL,TEST after '{name}=', got '{fractions}'"
        ));
    };
    Ok((name.to_string(), [train, val, test]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_given_with_name_equals_folder() {
        assert_eq!(
            parse_named(Path::new("drone=photos/uav")),
            (Some("drone".into()), PathBuf::from("photos/uav"))
        );
        assert_eq!(
            parse_named(Path::new("photos/a=b")),
            (None, PathBuf::from("photos/a=b"))
        );
        assert_eq!(parse_named(Path::new("plain")), (None, "plain".into()));
        // An existing folder whose name holds '=' is that folder.
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("x=y");
        std::fs::create_dir(&odd).unwrap();
        assert_eq!(parse_named(&odd), (None, odd.clone()));
    }

    #[test]
    fn names_come_from_folders_and_clashes_get_their_parents() {
        let paths: Vec<PathBuf> = ["/d/site-a/photos", "/d/site-b/photos", "/d/concrete"]
            .map(PathBuf::from)
            .to_vec();
        assert_eq!(
            names(&paths, &[]).unwrap(),
            ["site-a/photos", "site-b/photos", "concrete"]
        );
        let given = [None, Some("drone".to_string()), None];
        assert_eq!(
            names(&paths, &given).unwrap(),
            ["photos", "drone", "concrete"]
        );
        // A folder named like a given name gets its parent in front.
        let given = [None, None, Some("photos".to_string())];
        assert_eq!(
            names(&paths, &given).unwrap(),
            ["site-a/photos", "site-b/photos", "photos"]
        );
        let twice = [Some("a".to_string()), Some("a".to_string())];
        let message = format!("{:#}", names(&paths[..2], &twice).unwrap_err());
        assert!(message.contains("'a' is given twice"), "{message}");
        // The same path twice (refused later by the dataset scan) still gets two names.
        let same = vec![PathBuf::from("/x/data"), PathBuf::from("/x/data")];
        assert_eq!(names(&same, &[]).unwrap(), ["x/data", "x/data~2"]);
    }

    #[test]
    fn overrides_must_name_a_source() {
        let sources = vec!["concrete".to_string(), "drone".to_string()];
        let default = Fractions {
            train: 0.1,
            val: 0.1,
            test: 0.1,
        };
        let mut overrides = BTreeMap::new();
        overrides.insert("drone".to_string(), [0.7, 0.15, 0.15]);
        let got = fractions(&sources, default, &overrides).unwrap();
        assert_eq!(got[0], default);
        assert_eq!(got[1].train, 0.7);
        overrides.insert("dron".to_string(), [0.5, 0.2, 0.2]);
        let message = format!(
            "{:#}",
            fractions(&sources, default, &overrides).unwrap_err()
        );
        assert!(
            message.contains("'dron'") && message.contains("concrete, drone"),
            "{message}"
        );
        assert_eq!(
            parse_split_for("drone=0.7,0.15,0.15").unwrap(),
            ("drone".to_string(), [0.7, 0.15, 0.15])
        );
        assert!(parse_split_for("0.7,0.15,0.15").is_err());
    }
}
