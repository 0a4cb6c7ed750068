//! Picks the candle device a run computes on, and says which in words.

use anyhow::{bail, Context, Result};
use candle_core::Device;

use crate::run::recipe::DeviceChoice;

/// The device and a line for the user ("cpu (2 threads)", "cuda:0", ...).
pub fn resolve(choice: DeviceChoice) -> Result<(Device, String)> {
    match choice {
        DeviceChoice::Cpu => Ok(cpu()),
        DeviceChoice::Auto => {
            if cfg!(feature = "cuda") {
                match Device::new_cuda(0) {
                    Ok(device) => return Ok((device, "cuda:0".into())),
                    Err(e) => eprintln!("warning: no usable CUDA GPU ({e}); training on the CPU"),
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
