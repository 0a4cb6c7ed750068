//! Where tests find the shared real data (photos, pretrained weights) that is never committed:
//! `$CRACKSCOPE_TEST_DATA`, else `../shared/data` beside the checkout. Public because the
//! end-to-end tests in `tests/` use it too; the binary never calls it.

use std::path::{Path, PathBuf};

/// Environment variable naming the shared data folder.
pub const TEST_DATA_ENV: &str = "CRACKSCOPE_TEST_DATA";

/// The shared data folder, whether or not it exists.
pub fn root() -> PathBuf {
    std::env::var_os(TEST_DATA_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

/// `what` inside the shared data folder ("" for the folder itself), or `None` after saying on
/// stderr that it is missing, so the test can skip.
pub fn shared_data(what: &str) -> Option<PathBuf> {
    let path = root().join(what);
    if path.exists() {
        Some(path)
    } else {
        say_skipped(&format!(
            "{} not found (set {TEST_DATA_ENV} to the shared data folder)",
            path.display()
        ));
        None
    }
}

/// Says that the running test skips, and why, where the user sees it: straight to the process's
/// stderr, which the test harness does not capture (a passing test's `eprintln!` is never
/// shown, so a skipped test would otherwise pass for a test that ran).
pub fn say_skipped(reason: &str) {
    use std::io::Write;
    let line = skip_line(std::thread::current().name(), reason);
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The line [`say_skipped`] writes: the test's name (the harness names each test's thread
/// after it) and the reason.
fn skip_line(test: Option<&str>, reason: &str) -> String {
    format!("SKIPPED {}: {reason}\n", test.unwrap_or("(test)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_names_the_test_and_the_reason() {
        assert_eq!(
            skip_line(Some("scan::real_photos"), "no data"),
            "SKIPPED scan::real_photos: no data\n"
        );
        assert_eq!(skip_line(None, "no data"), "SKIPPED (test): no data\n");
    }
}
