//! How much memory decoded images may take, and whether a set is kept decoded in memory or decoded
//! on the fly ([`Residency`]).
//!
//! At 227x227 one decoded image is 155 KB, so 40,000 training images take 6.2 GB: more than many
//! machines can spare. The recipe's `data.memory_budget` (or `--memory-budget`) caps what decoded
//! images may use; a set that would not fit is streamed instead, with the same batches.

use std::path::PathBuf;

use anyhow::{bail, Result};

use super::loader::{load, DecodedSet, Residency};

/// The recipe's default: a share of the memory the system says is available.
pub const AUTO: &str = "auto";

/// Share of `MemAvailable` that `auto` grants decoded images: the rest is left to the model, its
/// gradients, the batches in flight and the other programs of the machine.
pub const AUTO_SHARE: f64 = 0.5;

/// A cap, in bytes, on the decoded images kept in memory, with where it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryBudget {
    /// `None`: no cap known (`auto` where the available memory cannot be read).
    pub bytes: Option<u64>,
    pub origin: String,
}

impl MemoryBudget {
    /// Resolves a setting: `auto` ([`AUTO_SHARE`] of `MemAvailable` from /proc/meminfo; no cap where
    /// that cannot be read), or a size such as `4GB`, `512MiB`, `1.5G` or `0` (always stream).
    pub fn resolve(setting: &str) -> Result<MemoryBudget> {
        if setting.trim().eq_ignore_ascii_case(AUTO) {
            return Ok(match available_memory() {
                Some(available) => MemoryBudget {
                    bytes: Some((available as f64 * AUTO_SHARE) as u64),
                    origin: format!(
                        "{:.0}% of the {} available",
                        AUTO_SHARE * 100.0,
                        human_bytes(available)
                    ),
                },
                None => MemoryBudget {
                    bytes: None,
                    origin: "no limit (available memory unknown)".into(),
                },
            });
        }
        let bytes = parse_size(setting)?;
        Ok(MemoryBudget {
            bytes: Some(bytes),
            origin: format!("memory budget {}", setting.trim()),
        })
    }

    /// Residency of each set, given each set's decoded size in bytes, in order of priority: the
    /// first sets are kept in memory as long as what is kept stays within the budget.
    pub fn plan(&self, decoded_bytes: &[u64]) -> Vec<Residency> {
        let mut left = self.bytes.unwrap_or(u64::MAX);
        decoded_bytes
            .iter()
            .map(|&need| {
                if need <= left {
                    left -= need;
                    Residency::InMemory
                } else {
                    Residency::Streamed
                }
            })
            .collect()
    }
}

/// A training's sets, decoded within `budget`: validation first (evaluated whole and often), then
/// training; a set that does not fit in what is left is streamed. The note says which were
/// streamed and why, for the user.
pub fn load_for_training(
    train: &[(PathBuf, usize)],
    val: &[(PathBuf, usize)],
    size: u32,
    budget: &MemoryBudget,
) -> (DecodedSet, DecodedSet, Option<String>) {
    let needs = [
        decoded_bytes(val.len(), size),
        decoded_bytes(train.len(), size),
    ];
    let plan = budget.plan(&needs);
    let val_set = load(val, size, plan[0]);
    let train_set = load(train, size, plan[1]);
    let streamed: Vec<String> = [
        ("validation", plan[0], needs[0]),
        ("training", plan[1], needs[1]),
    ]
    .into_iter()
    .filter(|(_, residency, _)| *residency == Residency::Streamed)
    .map(|(name, _, need)| format!("{name} ({} decoded)", human_bytes(need)))
    .collect();
    let note = (!streamed.is_empty()).then(|| {
        format!(
            "decoding {} images on the fly: keeping them would exceed the {} for decoded images \
             ({}); set data.memory_budget or --memory-budget to change it",
            streamed.join(" and "),
            budget.bytes.map(human_bytes).unwrap_or_default(),
            budget.origin
        )
    });
    (train_set, val_set, note)
}

/// Memory `images` decoded RGB images of `size` x `size` take.
pub fn decoded_bytes(images: usize, size: u32) -> u64 {
    images as u64 * 3 * u64::from(size) * u64::from(size)
}

/// Parses `0`, `123456`, `512KB`, `4GB`, `1.5GiB`, `800M` (units: K/M/G/T, with or without `B`,
/// decimal; `KiB`/`MiB`/`GiB`/`TiB` binary; case-insensitive).
pub fn parse_size(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        other => bail!(
            "unknown unit \"{other}\" in \"{trimmed}\": expected \"auto\" or a size such as 4GB, \
             512MiB or 0"
        ),
    };
    let value: f64 = number.parse().map_err(|_| {
        anyhow::anyhow!(
            "\"{trimmed}\" is not a size: expected \"auto\" or a size such as 4GB, 512MiB or 0"
        )
    })?;
    Ok((value * scale).round() as u64)
}

/// Checks a setting without reading the system's memory (for recipe validation).
pub fn check_setting(setting: &str) -> Result<()> {
    if setting.trim().eq_ignore_ascii_case(AUTO) {
        return Ok(());
    }
    parse_size(setting).map(|_| ())
}

/// `MemAvailable` of /proc/meminfo in bytes; `None` elsewhere than Linux or when unreadable.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    mem_available(&text)
}

fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `6.2 GB`, `155 KB`: decimal units, as `df -H` and the README's figures.
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} KB", b / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_decimal_and_binary_units() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("123456").unwrap(), 123456);
        assert_eq!(parse_size("4GB").unwrap(), 4_000_000_000);
        assert_eq!(parse_size(" 1.5 g ").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("512MiB").unwrap(), 512 * 1024 * 1024);
        assert_eq!(parse_size("800m").unwrap(), 800_000_000);
        for bad in ["", "lots", "4 parsecs", "GB", "1.2.3G"] {
            let message = format!("{:#}", parse_size(bad).unwrap_err());
            assert!(message.contains("4GB"), "{bad}: {message}");
        }
        assert!(check_setting("AUTO").is_ok());
    }

    #[test]
    fn mem_available_is_read_from_meminfo() {
        let meminfo =
            "MemTotal:       16000000 kB\nMemFree:         1000 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(mem_available(meminfo), Some(8_000_000 * 1024));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn sets_stay_in_memory_while_they_fit_in_priority_order() {
        let budget = MemoryBudget {
            bytes: Some(100),
            origin: "test".into(),
        };
        use Residency::*;
        assert_eq!(budget.plan(&[30, 60]), [InMemory, InMemory]);
        assert_eq!(budget.plan(&[30, 80]), [InMemory, Streamed]);
        assert_eq!(budget.plan(&[120, 80]), [Streamed, InMemory]);
        let zero = MemoryBudget {
            bytes: Some(0),
            origin: "test".into(),
        };
        assert_eq!(zero.plan(&[1, 0]), [Streamed, InMemory]);
        let unknown = MemoryBudget {
            bytes: None,
            origin: "test".into(),
        };
        assert_eq!(unknown.plan(&[u64::MAX / 2]), [InMemory]);
        assert_eq!(decoded_bytes(40_000, 227), 6_183_480_000);
    }
}
