//! `skipped.json`: the files a run left out (unreadable, labelling conflicts, looping links) and
//! why, with its one writer and one reader.

use std::path::Path;

use anyhow::{Context, Result};

use crate::data::dataset::Skipped;

/// Writes the list atomically (an empty list too, so that a run always says what it left out).
pub fn save(path: &Path, skipped: &[Skipped]) -> Result<()> {
    crate::core::fsutil::write_atomic(path, &serde_json::to_vec_pretty(skipped)?)
}

/// Reads a list written by [`save`] (a resumed run leaves those files out again).
pub fn load(path: &Path) -> Result<Vec<Skipped>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a list of skipped files", path.display()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_list_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skipped.json");
        let skipped = vec![
            Skipped {
                path: PathBuf::from("Negative/empty.jpg"),
                reason: "empty file".into(),
            },
            Skipped {
                path: PathBuf::from("Positive/ünïcode, \"quoted\".png"),
                reason: "labelling conflict: also Negative/x.png".into(),
            },
        ];
        save(&path, &skipped).unwrap();
        assert_eq!(load(&path).unwrap(), skipped);
        save(&path, &[]).unwrap();
        assert!(load(&path).unwrap().is_empty());
    }
}
