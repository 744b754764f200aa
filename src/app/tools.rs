//! The subcommands' wiring: read the files, run the pure tool, print or write its output, and
//! show progress on stderr (only when stderr is a terminal).

use crate::{
    config::{RecordArgs, ReplayArgs},
    github::{
        client::{Clock, GithubClient},
        record,
    },
    ops::github_metrics::GithubMetrics,
    replay::{self, World, plot, trace},
};
use anyhow::Context;
use chrono::{TimeDelta, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prometheus_client::registry::Registry;
use std::io::Write;
use std::sync::Arc;

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
    let mut sizes = Vec::new();
    for path in &args.trace {
        let meta =
            std::fs::metadata(path).with_context(|| format!("--trace {}", path.display()))?;
        sizes.push(meta.len());
    }
    let bar = progress_bar(sizes.iter().sum(), "reading");
    let mut deliveries = Vec::new();
    let mut done = 0;
    for (path, size) in args.trace.iter().zip(sizes) {
        deliveries.extend(trace::read(path, |n| bar.set_position(done + n)).context("--trace")?);
        done += size;
    }
    // Each file is in arrival order; together they are put in order again (stable: ties
    // keep the order of the files).
    deliveries.sort_by_key(|d| d.at);
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
            "{} deliveries, --warm-runners {}, --min-replicas {}",
            deliveries.len(),
            if settings.warm { "forecast" } else { "off" },
            args.min_replicas
                .map_or("as seeded".to_owned(), |n| n.to_string())
        );
        std::fs::write(path, plot::svg(&title, &report.samples))
            .with_context(|| format!("--plot {}", path.display()))?;
    }
    Ok(())
}

/// `batch-scaler record-deliveries`: each `--github-hook` in turn, into `--out`.
pub async fn record_deliveries(args: &RecordArgs) -> anyhow::Result<()> {
    let config = args
        .github
        .config()?
        .context("record-deliveries needs GitHub credentials: --github-token-file, or the App's --github-app-* flags")?;
    if config.hooks.is_empty() {
        anyhow::bail!("record-deliveries needs at least one --github-hook");
    }
    let clock: Clock = Arc::new(Utc::now);
    let metrics = GithubMetrics::register(&mut Registry::default());
    let client = GithubClient::new(
        &config.api_url,
        config.credentials.clone(),
        config.requests_per_hour,
        config.request_timeout,
        metrics,
        clock,
    );
    let since = Utc::now() - TimeDelta::from_std(*args.since).unwrap_or(TimeDelta::days(3));
    let mut out: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        let file = std::fs::File::create(&args.out)
            .with_context(|| format!("--out {}", args.out.display()))?;
        Box::new(std::io::BufWriter::new(file))
    };
    for hook in &config.hooks {
        let bar = progress_bar(0, "listing");
        let recorded = record::record(&client, hook, since, &mut out, &mut |done, total| {
            if done == 0 {
                bar.set_length(total);
            } else {
                bar.set_message("fetching");
                bar.set_position(done);
            }
        })
        .await
        .with_context(|| format!("--github-hook {hook}"))?;
        bar.finish_and_clear();
        eprintln!(
            "{hook}: {} deliveries written, {} skipped (other events, redeliveries), {} gone",
            recorded.deliveries, recorded.skipped, recorded.gone
        );
    }
    Ok(())
}
