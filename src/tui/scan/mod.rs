//! The scan view: a finished scan's photos with their crack maps, masks and windows, panned and
//! zoomed by keyboard. It reads only the scan folder's files (`scan_output`), never the model.

mod dashboard;
mod draw;
pub(super) mod render;
#[cfg(test)]
pub(super) mod tests;
mod view;

pub use dashboard::run_blocking;
