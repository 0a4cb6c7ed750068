//! crackscope: fine-tune SqueezeNet v1.1 on folder-per-class images and explain each decision with
//! Grad-CAM, from the terminal.
//!
//! Data flows one way: images ([`data`]) -> batches -> model ([`model`]) -> events ([`events`]) ->
//! whoever listens (headless printer, metrics log, dashboard).

pub mod data;
pub mod explain;
pub mod fsutil;
pub mod imaging;
pub mod model;
