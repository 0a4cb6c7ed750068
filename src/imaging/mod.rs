
pub mod grid;
pub mod text;
