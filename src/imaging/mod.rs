//! Pictures for people: labelled image tiles and printing images inline in a terminal.

pub mod grid;
pub mod sixel;
pub mod terminal;
pub mod text;
