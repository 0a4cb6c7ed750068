//! The ground floor: small helpers every other floor may use, with no dependencies inside the
//! crate: statistics, atomic files, window geometry, and where tests find the shared data.

pub mod fsutil;
pub mod stats;
pub mod testdata;
pub mod windows;
