//! Whoever shows a job's events: the headless printer, and the dashboard (`tui`).

pub mod headless;
