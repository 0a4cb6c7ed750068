//! (being written)

pub mod synth;
