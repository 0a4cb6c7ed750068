//! `crackscope figures`: a run's report figures as PNG files (see [`crate::app::figures`]).

use anyhow::Result;

use crate::cli::FiguresArgs;

pub fn figures(args: &FiguresArgs) -> Result<()> {
    for path in crate::app::figures::run_figures(&args.run, args.out.as_deref())? {
        println!("{}", path.display());
    }
    Ok(())
}
