//! crackscope: fine-tune SqueezeNet v1.1 on folder-per-class images and explain each decision with
//! Grad-CAM, from the terminal.
//!
//! Data flows one way: images ([`data`]) -> batches -> model ([`model`]) -> events
//! ([`run::event`]) -> whoever listens (headless printer, metrics log, dashboard).

pub mod app;
pub mod cli;
pub mod cmd;
pub mod core;
pub mod data;
pub mod detector;
pub mod explain;
pub mod export;
pub(crate) mod imaging;
pub mod model;
pub mod run;
pub mod scan;
pub(crate) mod termio;
pub mod train;
pub(crate) mod tui;
pub(crate) mod ui;
