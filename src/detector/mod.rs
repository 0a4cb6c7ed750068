//! One type over every kind of model: the classifier and the one-class model.

pub mod classifier;
pub mod oneclass;
