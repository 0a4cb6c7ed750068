//! Picks the candle device a run computes on, and says which in words.

use std::fmt;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::core::warn::warn;

/// Where the network runs. `Auto` takes a CUDA GPU when the build has one and one is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda(usize),
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| format!("expected auto, cpu, cuda or cuda:N, found \"{s}\"")),
        }
    }
}

impl Serialize for DeviceChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The device and a line for the user ("cpu (2 threads)", "cuda:0", ...).
pub fn resolve(choice: DeviceChoice) -> Result<(Device, String)> {
    match choice {
        DeviceChoice::Cpu => Ok(cpu()),
        DeviceChoice::Auto => {
            if cfg!(feature = "cuda") {
                match Device::new_cuda(0) {
                    Ok(device) => return Ok((device, "cuda:0".into())),
                    Err(e) => warn(format!("no usable CUDA GPU ({e}); training on the CPU")),
                }
            }
            Ok(cpu())
        }
        DeviceChoice::Cuda(n) => {
            if !cfg!(feature = "cuda") {
                bail!(
                    "--device cuda:{n}: this build of crackscope has no CUDA support; rebuild with \
                     `cargo build --release --features cuda` (see README, \"GPU\")"
                );
            }
            let device =
                Device::new_cuda(n).with_context(|| format!("cannot open CUDA device {n}"))?;
            Ok((device, format!("cuda:{n}")))
        }
    }
}

fn cpu() -> (Device, String) {
    (
        Device::Cpu,
        format!("cpu ({} threads)", candle_core::utils::get_num_threads()),
    )
}
