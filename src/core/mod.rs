//! The ground floor: small helpers every other floor may use, with no dependencies inside the
//! crate: statistics, atomic files, window geometry, and where tests find the shared data.

pub(crate) mod classes;
pub(crate) mod fsutil;
pub(crate) mod mask;
pub(crate) mod math;
pub(crate) mod stable_safetensors;
pub(crate) mod stats;
pub mod testdata;
pub mod warn;
pub(crate) mod windows;
