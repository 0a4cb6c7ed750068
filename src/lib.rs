//! crackscope: fine-tune SqueezeNet v1.1 on folder-per-class images and explain each decision with
//! Grad-CAM, from the terminal.
//!
//! Data flows one way: images ([`data`]) -> batches -> model ([`model`]) -> events ([`events`]) ->
//! whoever listens (headless printer, metrics log, dashboard).

pub mod classify;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod data;
pub mod device;
pub mod evaluation;
pub mod events;
pub mod explain;
pub mod fsutil;
pub mod gallery;
pub mod headless;
pub mod imaging;
pub mod model;
pub mod oneclass;
pub mod run;
pub mod runlog;
pub mod runstate;
pub mod scan;
pub mod scan_output;
pub mod stats;
pub mod termio;
pub mod testdata;
pub mod train;
pub mod tui;
