//! `crackscope bench`: the engine's speed on generated data (see [`crate::app::bench`]).

pub use crate::app::bench::bench;
