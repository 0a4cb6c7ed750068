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

/// The CPU with the threads the engine computes on: rayon's pool, which follows
/// `RAYON_NUM_THREADS` and else the CPUs this process may run on (its affinity mask, as
/// `taskset` sets it, and a container's CPU quota), not the machine's core count.
fn cpu() -> (Device, String) {
    let threads = rayon::current_num_threads();
    let unit = if threads == 1 { "thread" } else { "threads" };
    (Device::Cpu, format!("cpu ({threads} {unit})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under `taskset -c 0` the run says one thread, not the machine's cores. The test runs itself
    /// again in a child process pinned to CPU 0, where the child's half checks the line.
    #[test]
    fn the_thread_count_follows_the_affinity_mask() {
        const CHILD: &str = "CRACKSCOPE_AFFINITY_CHILD";
        if std::env::var_os(CHILD).is_some() {
            assert_eq!(resolve(DeviceChoice::Cpu).unwrap().1, "cpu (1 thread)");
            return;
        }
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "model::device::tests::the_thread_count_follows_the_affinity_mask",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env_remove("RAYON_NUM_THREADS");
        // SAFETY: between fork and exec only sched_setaffinity (async-signal-safe) runs.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut child, || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(0, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = child.output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "the child ran no test: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
