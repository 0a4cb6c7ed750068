//! Picks the candle device a run computes on, and says which in words.

use anyhow::{bail, Context, Result};
use candle_core::Device;

use crate::config::DeviceChoice;

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
                "device::tests::the_thread_count_follows_the_affinity_mask",
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
