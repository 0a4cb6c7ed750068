//! Memory in use by this process (the training runs in it when the dashboard is live).

/// Resident set size in bytes, from `/proc/self/status`; `None` where there is no such file.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// The same of process `pid` (the training `watch` follows); `None` where it cannot be read.
pub fn resident_bytes_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_resident_size_line() {
        let status = "Name:\tcrackscope\nVmPeak:\t  900 kB\nVmRSS:\t  524288 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(512 * 1024 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        if cfg!(target_os = "linux") {
            assert!(
                resident_bytes().unwrap() > 1024 * 1024,
                "a test process uses more than 1 MiB"
            );
            // Another process's, as `watch` reads the training's: this one's by its id.
            let own = resident_bytes_of(std::process::id()).unwrap();
            assert!(own > 1024 * 1024, "{own}");
        }
    }
}
