//! `crackscope model`: the network summary the seed opens with MATLAB's `analyzeNetwork`.

use anyhow::Result;

use crate::cli::ModelArgs;
use crate::model::{self, summary};

pub fn model(args: &ModelArgs) -> Result<()> {
    let head = match &args.model {
        Some(path) => {
            let loaded = model::load_model(
                &crate::app::model_target(path)?.0,
                &candle_core::Device::Cpu,
            )?;
            loaded.model.has_head().then_some(loaded.classes.len())
        }
        None => Some(2),
    };
    let rows = summary(head, args.size)?;
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4);
    let kind_w = rows.iter().map(|r| r.kind.len()).max().unwrap_or(4);
    println!(
        "{:name_w$}  {:kind_w$}  {:>14}  {:>10}",
        "name", "type", "output", "learnables"
    );
    let mut total = 0;
    for r in &rows {
        let [c, h, w] = r.output;
        println!(
            "{:name_w$}  {:kind_w$}  {:>14}  {:>10}",
            r.name,
            r.kind,
            format!("{h}x{w}x{c}"),
            group(r.params)
        );
        total += r.params;
    }
    println!("total learnable parameters: {}", group(total));
    Ok(())
}

/// 1235496 -> "1,235,496".
fn group(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
