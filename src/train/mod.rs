//! The training worker and what it needs: the optimizer, evaluation passes and the
//! control flags through which the user steers a running training; [`session`] prepares a
//! training and runs it to its end.

pub mod control;
pub mod evaluate;
pub mod optimizer;
pub mod session;
pub mod worker;
