//! `popek bench`: one guest under each engine, timed in-process, several runs
//! interleaved, medians in a table — and two sweeps that show where the time goes.
//!
//! ```text
//!   for run in 1..=runs:                 (interleaved: drift hits every engine alike)
//!     for engine in engines:
//!       Machine::boot   (not timed: RAM mapping, loader, code-cache allocation)
//!       machine.run     (timed: wall time, retired instructions, JIT translation time)
//!   → median per engine → table (+ SVG bar chart with --plot)
//!
//!   --sweep KEY    the guest's command-line number KEY (iters, scale, n…) at 1, 2, 4, 8:
//!                  least-squares line time = fixed + per-unit × value, per engine
//!   --sweep cache  the translator's code-cache size from 64K up: evictions and their cost
//! ```
//!
//! Every run of a point must print the same guest output and retire the same number of
//! instructions under every engine; a benchmark of engines that disagree is refused.
//! This module is part of the CLI: errors are `anyhow`, and every one of them ends the
//! process with status 2.

use anyhow::{Context, Result, bail, ensure};
use popek::cli::{BenchArgs, BenchEngine};
use popek::devices::sink::SharedBuffer;
use popek::machine::{Engine as MachineEngine, Machine, MachineConfig, RunConfig, StopReason};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The measurements of one timed run.
#[derive(Clone, Debug)]
struct Sample {
    wall: Duration,
    retired: u64,
    translate: Duration,
    translated: u64,
    evicted: u64,
    stop: StopReason,
    output: String,
}

/// The medians of one engine at one point.
#[derive(Clone, Debug)]
struct Summary {
    engine: BenchEngine,
    wall: Duration,
    retired: u64,
    translate: Duration,
    translated: u64,
    evicted: u64,
}

impl Summary {
    fn mips(&self) -> f64 {
        self.retired as f64 / self.wall.as_secs_f64().max(1e-9) / 1e6
    }

    fn translate_share(&self) -> Option<f64> {
        (self.engine == BenchEngine::Jit).then(|| self.translate.as_secs_f64() / self.wall.as_secs_f64().max(1e-9))
    }
}

/// What is being measured: the kernel image and how to boot it.
struct Target<'a> {
    name: &'a str,
    image: &'a [u8],
}

/// Runs `popek bench` and prints its report on stdout.
pub fn bench(args: &BenchArgs, image: &[u8], default_cmdline: &str) -> Result<String> {
    let engines = dedup(&args.engines);
    ensure!(!engines.is_empty(), "--engines: name at least one engine (jit, interp)");
    let code_cache = cache_size(&args.code_cache, "--code-cache")?;
    let cmdline = args.cmdline.clone().unwrap_or_else(|| default_cmdline.to_string());
    // Fail before minutes of measuring, not after: the plot file must be writable.
    if let Some(p) = &args.plot {
        crate::files::create_output("--plot file", p)?;
    }
    let target = Target { name: &args.guest, image };
    let (report, chart) = match args.sweep.as_deref() {
        None => {
            ensure!(args.points.is_empty(), "--points needs --sweep");
            one_point(&target, &cmdline, &engines, args.runs, code_cache)?
        }
        Some("cache") => {
            ensure!(engines.contains(&BenchEngine::Jit), "--sweep cache measures the JIT: add jit to --engines");
            let points = if args.points.is_empty() {
                vec![64 << 10, 128 << 10, 256 << 10, 1 << 20, 16 << 20]
            } else {
                args.points.iter().map(|p| cache_size(p, "--points")).collect::<Result<Vec<_>>>()?
            };
            cache_sweep(&target, &cmdline, &points, args.runs)?
        }
        Some(key) => {
            ensure!(
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "--sweep `{key}`: expected `cache` or the name of a numeric command-line argument such as iters"
            );
            let points = if args.points.is_empty() {
                vec![1, 2, 4, 8]
            } else {
                let parse = |p: &String| {
                    p.trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|&v| v > 0)
                        .with_context(|| format!("--points: `{p}` is not a positive whole number"))
                };
                args.points.iter().map(parse).collect::<Result<Vec<_>>>()?
            };
            ensure!(points.len() >= 2, "--sweep {key}: give at least two --points to fit a line through");
            key_sweep(&target, &cmdline, key, &points, &engines, args.runs, code_cache)?
        }
    };
    if let Some(p) = &args.plot {
        let svg = chart.to_svg().context("drawing the chart")?;
        std::io::Write::write_all(&mut crate::files::create_output("--plot file", p)?, svg.as_bytes())
            .with_context(|| format!("--plot: cannot write {}", p.display()))?;
    }
    Ok(report)
}

/// A code-cache size, checked against the translator's limits before anything runs.
fn cache_size(s: &str, flag: &str) -> Result<u64> {
    let bytes = popek::cli::parse_code_cache(s).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    Ok(bytes as u64)
}

fn dedup(engines: &[BenchEngine]) -> Vec<BenchEngine> {
    let mut out: Vec<BenchEngine> = Vec::new();
    for &e in engines {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// Boots `target` and times one run to its end.
fn measure(target: &Target<'_>, cmdline: &str, engine: BenchEngine, code_cache: u64) -> Result<Sample> {
    let out = SharedBuffer::new();
    let config = MachineConfig {
        cmdline: cmdline.to_string(),
        serial: Box::new(out.clone()),
        engine: engine.kind(),
        code_cache: usize::try_from(code_cache).context("--code-cache does not fit this host")?,
        ..MachineConfig::default()
    };
    let mut machine = Machine::boot(config, target.image).with_context(|| format!("`{}`", target.name))?;
    let run_config = RunConfig { timeout: Some(Duration::from_secs(600)), ..RunConfig::default() };
    let started = Instant::now();
    let stop = machine.run(&run_config);
    let wall = started.elapsed();
    machine.flush_output();
    match &stop {
        StopReason::Timeout => bail!("`{}` ran for more than 10 minutes under the {}", target.name, engine.name()),
        StopReason::Unsupported(u) => bail!("`{}` under the {}: {u}", target.name, engine.name()),
        StopReason::TripleFault(_) => bail!("`{}` triple-faulted under the {}", target.name, engine.name()),
        _ => {}
    }
    let (translate, translated, evicted) = match &machine.engine {
        MachineEngine::Jit(j) => (Duration::from_nanos(j.stats.translate_ns), j.stats.translated, j.stats.evicted),
        MachineEngine::Interp(_) | MachineEngine::Trap(_) => (Duration::ZERO, 0, 0),
    };
    Ok(Sample { wall, retired: machine.stats.retired, translate, translated, evicted, stop, output: out.text() })
}

/// `runs` interleaved runs of every engine at one command line; checks that every run
/// agrees with the first, and returns the medians in `engines` order.
fn measure_point(
    target: &Target<'_>,
    cmdline: &str,
    engines: &[BenchEngine],
    runs: u32,
    code_cache: u64,
) -> Result<(Vec<Summary>, Sample)> {
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); engines.len()];
    let mut reference: Option<Sample> = None;
    for _ in 0..runs {
        for (i, &engine) in engines.iter().enumerate() {
            let s = measure(target, cmdline, engine, code_cache)?;
            if let Some(r) = &reference {
                ensure!(
                    s.output == r.output && s.stop == r.stop && s.retired == r.retired,
                    "`{}` ({cmdline}): the {} run differs from the first one ({} vs {} instructions, \
                     stop {:?} vs {:?}); fix that before timing it (`popek run --engine lockstep`)",
                    target.name,
                    engine.name(),
                    s.retired,
                    r.retired,
                    s.stop,
                    r.stop
                );
            } else {
                reference = Some(s.clone());
            }
            samples[i].push(s);
        }
    }
    let summaries = engines
        .iter()
        .zip(&samples)
        .map(|(&engine, s)| Summary {
            engine,
            wall: median(s.iter().map(|x| x.wall)),
            retired: s[0].retired,
            translate: median(s.iter().map(|x| x.translate)),
            translated: s[0].translated,
            evicted: s[0].evicted,
        })
        .collect();
    Ok((summaries, reference.context("no runs")?))
}

/// Median of durations (the mean of the middle two for an even count).
fn median(values: impl Iterator<Item = Duration>) -> Duration {
    let mut v: Vec<Duration> = values.collect();
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

/// The default mode: one command line, every engine.
fn one_point(
    target: &Target<'_>,
    cmdline: &str,
    engines: &[BenchEngine],
    runs: u32,
    code_cache: u64,
) -> Result<(String, Chart)> {
    let (sums, first) = measure_point(target, cmdline, engines, runs, code_cache)?;
    let mut text = header(target, cmdline, &first, runs, engines.len());
    let interp = sums.iter().find(|s| s.engine == BenchEngine::Interp).map(|s| s.wall);
    let mut table = Table::new(&["engine", "run time", "instructions", "MIPS", "speed-up", "translation"]);
    for s in &sums {
        table.row(vec![
            s.engine.name().into(),
            ms(s.wall),
            group(s.retired),
            format!("{:.1}", s.mips()),
            speedup(interp, s.wall),
            translation(s),
        ]);
    }
    text.push_str(&table.render());
    text.push_str(NOTES);
    let chart = Chart {
        title: format!("popek bench {}: guest MIPS (median of {runs})", target.name),
        y_desc: "million guest instructions per second".into(),
        categories: vec![target.name.to_string()],
        series: sums.iter().map(|s| (s.engine.name().to_string(), vec![s.mips()])).collect(),
    };
    Ok((text, chart))
}

const NOTES: &str = "\nrun time: wall time of the run alone (boot excluded), median; speed-up: the interpreter's \
                     run time / this one's;\ntranslation: share of the run time the JIT spent translating blocks \
                     (translations evicted from the full code cache in brackets)\n";

fn header(target: &Target<'_>, cmdline: &str, first: &Sample, runs: u32, engines: usize) -> String {
    format!(
        "popek bench {} (command line \"{cmdline}\"): {}, runs per engine: {} (interleaved)\n\
         output and instruction count identical in all {} runs\n\n",
        target.name,
        crate::stop_text(&first.stop),
        runs,
        runs as usize * engines
    )
}

fn speedup(interp: Option<Duration>, wall: Duration) -> String {
    match interp {
        Some(i) => format!("{:.2}×", i.as_secs_f64() / wall.as_secs_f64().max(1e-9)),
        None => "–".into(),
    }
}

fn translation(s: &Summary) -> String {
    match s.translate_share() {
        Some(share) => format!("{:.1} % ({} evicted)", share * 100.0, s.evicted),
        None => "–".into(),
    }
}

/// `--sweep KEY`: the command-line value KEY at each point, every engine, and a line
/// through the run times.
fn key_sweep(
    target: &Target<'_>,
    cmdline: &str,
    key: &str,
    points: &[u32],
    engines: &[BenchEngine],
    runs: u32,
    code_cache: u64,
) -> Result<(String, Chart)> {
    let mut rows: Vec<(u32, Vec<Summary>)> = Vec::new();
    let mut text = String::new();
    for &p in points {
        let line = with_arg(cmdline, key, p);
        let (sums, first) = measure_point(target, &line, engines, runs, code_cache)?;
        if rows.is_empty() {
            text = format!(
                "popek bench {} --sweep {key}: command line \"{line}\" and so on, {}, runs per point and engine: {runs}\n\n",
                target.name,
                crate::stop_text(&first.stop)
            );
        }
        rows.push((p, sums));
    }
    let first_retired = rows[0].1[0].retired;
    ensure!(
        rows.iter().any(|(_, s)| s[0].retired != first_retired),
        "--sweep {key}: the guest retired {first_retired} instructions at every point: \
         `{key}=N` does not change its work (is it a command-line argument of `{}`?)",
        target.name
    );
    let mut table = Table::new(&[key, "engine", "run time", "instructions", "MIPS", "translation"]);
    for (p, sums) in &rows {
        for s in sums {
            table.row(vec![
                p.to_string(),
                s.engine.name().into(),
                ms(s.wall),
                group(s.retired),
                format!("{:.1}", s.mips()),
                translation(s),
            ]);
        }
    }
    text.push_str(&table.render());
    text.push_str(&format!("\nleast-squares fit, run time = fixed + per-{key} × {key}:\n\n"));
    let mut fit_table = Table::new(&["engine", "fixed", &format!("per {key}"), "instructions per unit", "r²"]);
    for (i, e) in engines.iter().enumerate() {
        let xs: Vec<f64> = rows.iter().map(|(p, _)| f64::from(*p)).collect();
        let times: Vec<f64> = rows.iter().map(|(_, s)| s[i].wall.as_secs_f64()).collect();
        let insns: Vec<f64> = rows.iter().map(|(_, s)| s[i].retired as f64).collect();
        let t = fit(&xs, &times);
        let n = fit(&xs, &insns);
        fit_table.row(vec![
            e.name().into(),
            seconds_text(t.intercept),
            seconds_text(t.slope),
            // A rounded, non-negative instruction count, far below 2^64.
            #[allow(clippy::cast_possible_truncation)]
            group(n.slope.round().max(0.0) as u64),
            format!("{:.4}", t.r2),
        ]);
    }
    text.push_str(&fit_table.render());
    text.push_str(
        "\nfixed: what does not grow with the work (translating the code once, the guest's own set-up);\n\
         per unit: the steady-state cost of one more unit of work\n",
    );
    let chart = Chart {
        title: format!("popek bench {} --sweep {key}: run time (median of {runs})", target.name),
        y_desc: "run time (ms)".into(),
        categories: rows.iter().map(|(p, _)| format!("{key}={p}")).collect(),
        series: engines
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name().to_string(), rows.iter().map(|(_, s)| s[i].wall.as_secs_f64() * 1e3).collect()))
            .collect(),
    };
    Ok((text, chart))
}

/// `--sweep cache`: the JIT at each code-cache size.
fn cache_sweep(target: &Target<'_>, cmdline: &str, points: &[u64], runs: u32) -> Result<(String, Chart)> {
    let mut rows: Vec<(u64, Summary)> = Vec::new();
    let mut text = String::new();
    for &size in points {
        let (mut sums, first) = measure_point(target, cmdline, &[BenchEngine::Jit], runs, size)?;
        if rows.is_empty() {
            text = format!(
                "popek bench {} --sweep cache (command line \"{cmdline}\"): {}, the JIT, runs per size: {runs}\n\n",
                target.name,
                crate::stop_text(&first.stop)
            );
        }
        rows.push((size, sums.remove(0)));
    }
    let mut table = Table::new(&["code cache", "run time", "MIPS", "blocks translated", "evicted", "translation"]);
    for (size, s) in &rows {
        table.row(vec![
            bytes_text(*size),
            ms(s.wall),
            format!("{:.1}", s.mips()),
            group(s.translated),
            group(s.evicted),
            format!("{:.1} %", s.translate_share().unwrap_or(0.0) * 100.0),
        ]);
    }
    text.push_str(&table.render());
    text.push_str(
        "\nevicted: translations dropped because the cache was full; it drops its oldest region (a\n\
         16th of it) at a time, so the blocks evicted while still in use are translated again\n",
    );
    let chart = Chart {
        title: format!("popek bench {} --sweep cache: JIT run time (median of {runs})", target.name),
        y_desc: "run time (ms)".into(),
        categories: rows.iter().map(|(size, _)| bytes_text(*size)).collect(),
        series: vec![("jit".into(), rows.iter().map(|(_, s)| s.wall.as_secs_f64() * 1e3).collect())],
    };
    Ok((text, chart))
}

/// `cmdline` with `key=value` replacing any `key=…` already there (or appended).
fn with_arg(cmdline: &str, key: &str, value: u32) -> String {
    let prefix = format!("{key}=");
    let mut words: Vec<String> =
        cmdline.split_whitespace().filter(|w| !w.starts_with(&prefix)).map(str::to_string).collect();
    words.push(format!("{key}={value}"));
    words.join(" ")
}

/// A least-squares line `y = intercept + slope · x`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Fit {
    intercept: f64,
    slope: f64,
    /// Coefficient of determination (1 = the points lie on the line).
    r2: f64,
}

fn fit(xs: &[f64], ys: &[f64]) -> Fit {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let intercept = my - slope * mx;
    let ss_tot: f64 = ys.iter().map(|y| (y - my) * (y - my)).sum();
    let ss_res: f64 = xs.iter().zip(ys).map(|(x, y)| (y - intercept - slope * x).powi(2)).sum();
    let r2 = if ss_tot > 0.0 { 1.0 - ss_res / ss_tot } else { 1.0 };
    Fit { intercept, slope, r2 }
}

fn bytes_text(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}G", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}K", n >> 10),
        n => n.to_string(),
    }
}

/// A time in seconds with a unit that suits it (it may be negative: a fitted intercept).
fn seconds_text(secs: f64) -> String {
    match secs.abs() {
        a if a >= 1.0 => format!("{secs:.2} s"),
        a if a >= 1e-3 => format!("{:.2} ms", secs * 1e3),
        a if a >= 1e-6 => format!("{:.2} µs", secs * 1e6),
        _ => format!("{:.1} ns", secs * 1e9),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// 12345678 → "12,345,678".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A Markdown table with aligned columns (so it reads in a terminal and pastes into a book).
struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(head: &[&str]) -> Self {
        Table { head: head.iter().map(|s| s.to_string()).collect(), rows: Vec::new() }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let width = |i: usize| {
            self.rows.iter().map(|r| r[i].chars().count()).chain([self.head[i].chars().count()]).max().unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.head.len()).map(width).collect();
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, c) in cells.iter().enumerate() {
                let pad = widths[i] - c.chars().count();
                // Text left, numbers right.
                if i == 0 || !c.starts_with(|ch: char| ch.is_ascii_digit()) {
                    let _ = write!(s, " {c}{} |", " ".repeat(pad));
                } else {
                    let _ = write!(s, " {}{c} |", " ".repeat(pad));
                }
            }
            s.push('\n');
            s
        };
        let mut out = line(&self.head);
        out.push('|');
        for w in &widths {
            let _ = write!(out, "{}|", "-".repeat(w + 2));
        }
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// A grouped bar chart: one group of bars per category, one bar per series.
struct Chart {
    title: String,
    y_desc: String,
    categories: Vec<String>,
    /// (name, one value per category)
    series: Vec<(String, Vec<f64>)>,
}

impl Chart {
    /// Draws the chart as an SVG document.
    fn to_svg(&self) -> Result<String> {
        use plotters::prelude::*;
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        const COLOURS: [RGBColor; 4] = [
            RGBColor(0x1f, 0x77, 0xb4),
            RGBColor(0xff, 0x7f, 0x0e),
            RGBColor(0x2c, 0xa0, 0x2c),
            RGBColor(0xd6, 0x27, 0x28),
        ];
        let draw_err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (800, 480)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| draw_err(&e))?;
            let top = self.series.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0f64, f64::max);
            let top = if top > 0.0 { top * 1.2 } else { 1.0 };
            let groups = self.categories.len() as f64;
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, ("sans-serif", 18))
                .margin(16)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(0.0..groups, 0.0..top)
                .map_err(|e| draw_err(&e))?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .y_desc(self.y_desc.as_str())
                .draw()
                .map_err(|e| draw_err(&e))?;
            let bars = self.series.len() as f64;
            let width = 0.8 / bars;
            for (si, (name, values)) in self.series.iter().enumerate() {
                let colour = COLOURS[si % COLOURS.len()];
                let rects = values.iter().enumerate().map(|(ci, &v)| {
                    let x0 = ci as f64 + 0.1 + si as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.92, v)], colour.filled())
                });
                chart
                    .draw_series(rects)
                    .map_err(|e| draw_err(&e))?
                    .label(name.as_str())
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
                let labels = values.iter().enumerate().map(|(ci, &v)| {
                    let x = ci as f64 + 0.1 + (si as f64 + 0.46) * width;
                    let style = ("sans-serif", 12).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
                    Text::new(format!("{v:.1}"), (x, v), style)
                });
                chart.draw_series(labels).map_err(|e| draw_err(&e))?;
            }
            let names = self.categories.iter().enumerate().map(|(ci, c)| {
                let style = ("sans-serif", 14).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
                Text::new(c.clone(), (ci as f64 + 0.5, 0.0), style)
            });
            chart.draw_series(names).map_err(|e| draw_err(&e))?;
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(|e| draw_err(&e))?;
            root.present().map_err(|e| draw_err(&e))?;
        }
        Ok(svg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = |v: &[u64]| median(v.iter().map(|&x| Duration::from_millis(x)));
        assert_eq!(ms(&[30, 10, 20]), Duration::from_millis(20));
        assert_eq!(ms(&[40, 10, 30, 20]), Duration::from_millis(25));
        assert_eq!(ms(&[]), Duration::ZERO);
    }

    #[test]
    fn fit_recovers_a_line() {
        let xs = [1.0, 2.0, 4.0, 8.0];
        let ys: Vec<f64> = xs.iter().map(|x| 3.0 + 0.5 * x).collect();
        let f = fit(&xs, &ys);
        assert!((f.intercept - 3.0).abs() < 1e-9 && (f.slope - 0.5).abs() < 1e-9, "{f:?}");
        assert!((f.r2 - 1.0).abs() < 1e-9);
        let noisy = fit(&xs, &[1.0, 5.0, 2.0, 6.0]);
        assert!(noisy.r2 < 0.9, "{noisy:?}");
    }

    #[test]
    fn sizes_and_arguments() {
        assert_eq!(bytes_text(64 << 10), "64K");
        assert_eq!(bytes_text(3 << 20), "3M");
        assert_eq!(bytes_text(1000), "1000");
        assert_eq!(with_arg("iters=1 only=sieve", "iters", 8), "only=sieve iters=8");
        assert_eq!(with_arg("", "n", 3), "n=3");
        assert_eq!(group(12_355_921), "12,355,921");
        assert_eq!(group(999), "999");
        assert_eq!(seconds_text(0.051), "51.00 ms");
        assert_eq!(seconds_text(1.2e-6), "1.20 µs");
        assert_eq!(seconds_text(-0.002), "-2.00 ms");
        assert_eq!(seconds_text(4e-8), "40.0 ns");
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["engine", "MIPS"]);
        t.row(vec!["jit".into(), "157.4".into()]);
        t.row(vec!["interp".into(), "62.6".into()]);
        let text = t.render();
        let widths: Vec<usize> = text.lines().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{text}");
        assert!(text.contains("|  62.6 |") && text.contains("| interp |"), "numbers right, text left: {text}");
    }

    #[test]
    fn chart_is_svg_with_one_bar_per_value() {
        let chart = Chart {
            title: "t".into(),
            y_desc: "y".into(),
            categories: vec!["a".into(), "b".into()],
            series: vec![("jit".into(), vec![1.0, 2.0]), ("interp".into(), vec![0.5, 0.25])],
        };
        let svg = chart.to_svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(100)]);
        // Background + plot area + 4 bars + legend box and its 2 swatches, at least.
        assert!(svg.matches("<rect").count() >= 6, "{svg}");
        assert!(svg.contains("\njit\n</text>") && svg.contains("\ninterp\n</text>"), "{svg}");
    }
}
