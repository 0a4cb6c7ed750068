//! The training worker (only the control flags on this branch).

pub mod control;
