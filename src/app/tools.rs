//! The subcommands' wiring: read the files, run the pure tool, print or write its output, and
//! show progress on stderr (only when stderr is a terminal).

use crate::{
    config::ReplayArgs,
    replay::{self, World, plot, trace},
};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;

/// A progress bar on stderr: drawn on a terminal, hidden otherwise (CI logs stay clean).
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg:>10} [{bar:40}] {percent:>3}% {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

/// `batch-scaler replay`: prints the table (or JSON) on stdout.
pub fn replay(args: &ReplayArgs) -> anyhow::Result<()> {
    let world = World::read(&args.seed).map_err(|e| anyhow::anyhow!("--seed: {e}"))?;
    let size = std::fs::metadata(&args.trace)
        .with_context(|| format!("--trace {}", args.trace.display()))?
        .len();
    let bar = progress_bar(size, "reading");
    let deliveries = trace::read(&args.trace, |n| bar.set_position(n)).context("--trace")?;
    bar.set_length(1000);
    bar.set_position(0);
    bar.set_message("replaying");
    let settings = args.settings();
    let report = replay::run(&world, &deliveries, &settings, &mut |done| {
        bar.set_position((done * 1000.0) as u64)
    });
    bar.finish_and_clear();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report.to_json())?;
        writeln!(out)?;
    } else {
        write!(out, "{}", report.table())?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "{} deliveries, warm runners {:?}, min replicas {}",
            deliveries.len(),
            args.warm_runners,
            args.min_replicas
                .map_or("as seeded".to_owned(), |n| n.to_string())
        );
        std::fs::write(path, plot::svg(&title, &report.samples))
            .with_context(|| format!("--plot {}", path.display()))?;
    }
    Ok(())
}

/// `batch-scaler record-deliveries`.
pub async fn record_deliveries(_args: &crate::config::RecordArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
