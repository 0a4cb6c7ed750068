//! The ground floor: small helpers every other floor may use, with no dependencies inside the
//! crate: statistics, atomic files, window geometry, and where tests find the shared data.

pub mod classes;
pub mod fsutil;
pub mod mask;
pub mod math;
pub mod stats;
pub mod testdata;
pub mod warn;
pub mod windows;
