//! `crackscope figures`: a run's report figures, or a scan folder's threshold sweep, as PNG files
//! (see [`crate::app::figures`] and [`crate::app::scan_figures`]).

use anyhow::Result;

use crate::cli::FiguresArgs;

pub fn figures(args: &FiguresArgs) -> Result<()> {
    let written = if crate::scan::output::is_scan_folder(&args.run) {
        crate::app::scan_figures::scan_figures(&args.run, args.out.as_deref())?
    } else {
        crate::app::figures::run_figures(&args.run, args.out.as_deref())?
    };
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}
