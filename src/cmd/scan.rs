//! `crackscope scan`: photos in, crack maps out (see [`crate::app::scan`]).

pub use crate::app::scan::scan;
