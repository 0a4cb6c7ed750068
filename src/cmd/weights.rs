//! `crackscope weights`: fetch torchvision's ImageNet weights into the cache, or list the cache.

use anyhow::{Context, Result};

use crate::cli::WeightsCommand;
use crate::model::fetch;

pub fn weights(command: &WeightsCommand) -> Result<()> {
    let dir = fetch::cache_dir()?;
    match command {
        WeightsCommand::Fetch => {
            let path = fetch::fetch(&fetch::imagenet_url(), &dir, true)?;
            println!("{}", path.display());
        }
        WeightsCommand::List => {
            let mut names: Vec<String> = match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
            };
            names.sort();
            if names.is_empty() {
                println!(
                    "no weights cached in {} (crackscope weights fetch)",
                    dir.display()
                );
            }
            for name in names {
                let path = dir.join(&name);
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                let state = match fetch::verify(&path, &name) {
                    Ok(()) => "checked".to_string(),
                    Err(e) => format!("FAILS ITS CHECK: {e:#}"),
                };
                println!("{}  {size} bytes  {state}", path.display());
            }
        }
    }
    Ok(())
}
