//! The training worker and what it needs: the optimizer and the evaluation passes; [`fit`] fits a
//! one-class model. Both only emit events.

pub(crate) mod familiarity;
pub(crate) mod fit;
pub mod optimizer;
pub(crate) mod worker;
