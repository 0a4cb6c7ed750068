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
        eprintln!(
            "skipping: {} not found (set {TEST_DATA_ENV} to the shared data folder)",
            path.display()
        );
        None
    }
}
