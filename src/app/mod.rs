//! The application: jobs and work that the commands start and print.

pub mod bench;
pub mod evaluate;
pub mod gallery;
pub mod heatmaps;
pub mod scan;
pub mod session;
