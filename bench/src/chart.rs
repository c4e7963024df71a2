//! `bench/chart.png`: hit latency percentiles per connection count (sidekey
//! and the floor), and what one secret read costs a function per way of
//! reading it, with the baselines.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::results::Results;
use crate::suite::CONNS;

const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Register a TrueType font as "sans-serif" (plotters renders text with
/// ab_glyph, from font bytes; no system font lookup).
pub fn load_font() -> Result<(), String> {
    let path = std::env::var("SIDEKEY_BENCH_FONT")
        .ok()
        .into_iter()
        .chain(FONTS.iter().map(|s| s.to_string()))
        .find(|p| Path::new(p).is_file())
        .ok_or("no DejaVuSans.ttf (install fonts-dejavu-core, or set SIDEKEY_BENCH_FONT)")?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    // Registered fonts live for the whole process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{path}: not a usable font"))
}

const PERCENTILES: [&str; 3] = ["p50", "p90", "p99"];

/// Draw the chart into `path`.
pub fn draw(r: &Results, path: &Path) -> Result<(), Box<dyn Error>> {
    let root = BitMapBackend::new(path, (1500, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(700);
    latency(r, &left)?;
    reads(r, &right)?;
    root.present()?;
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn latency(r: &Results, area: &Area) -> Result<(), Box<dyn Error>> {
    let values = |p: &crate::results::LoadPoint| [p.p50_us, p.p90_us, p.p99_us];
    let all: Vec<f64> = r
        .load
        .iter()
        .flat_map(values)
        .filter(|v| *v > 0.0)
        .collect();
    let lo = all.iter().copied().fold(f64::MAX, f64::min).max(1.0) / 1.5;
    let hi = all.iter().copied().fold(1.0, f64::max) * 1.5;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Cache-hit latency: sidekey (thick) vs floor (thin)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.2f64..2.2f64, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(4)
        .x_label_formatter(&|x| {
            let i = x.round();
            match (i - x).abs() < 0.01 && (0.0..3.0).contains(&i) {
                true => PERCENTILES[i as usize].to_owned(),
                false => String::new(),
            }
        })
        .y_desc("latency, µs (log)")
        .draw()?;
    let colors = [BLUE, RGBColor(0, 140, 60), RED];
    for (conns, color) in CONNS.iter().zip(colors) {
        for server in ["sidekey", "floor"] {
            let Some(p) = r.point(server, *conns) else {
                continue;
            };
            let style = match server {
                "sidekey" => color.stroke_width(3),
                _ => color.mix(0.6).stroke_width(1),
            };
            let points: Vec<(f64, f64)> = values(p)
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64, v.max(lo)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), style))?
                .label(match (server, r.rps_ratio(*conns)) {
                    ("sidekey", Some(x)) => format!(
                        "sidekey, {conns} conn{}: {x:.2}x the floor's req/s",
                        if *conns == 1 { "" } else { "s" }
                    ),
                    _ => format!(
                        "{server}, {conns} conn{}",
                        if *conns == 1 { "" } else { "s" }
                    ),
                })
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart.draw_series(points.iter().map(|&c| Circle::new(c, 3, style.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

fn reads(r: &Results, area: &Area) -> Result<(), Box<dyn Error>> {
    if r.reads.is_empty() {
        return Ok(());
    }
    let n = r.reads.len();
    let base = r
        .reads
        .iter()
        .find(|c| c.path.contains("ExtensionClient"))
        .map(|c| c.p50_us);
    let lo = r
        .reads
        .iter()
        .map(|c| c.p50_us)
        .fold(f64::MAX, f64::min)
        .max(0.01)
        / 4.0;
    let hi = r.reads.iter().map(|c| c.p50_us).fold(0.0, f64::max) * 3.0;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "One secret read from a function, p50 (red: no cache)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(5)
        .build_cartesian_2d((lo..hi).log_scale(), -0.6f64..(n as f64 - 0.4))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("µs (log)")
        .draw()?;
    for (i, c) in r.reads.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let color = match c.cached {
            true => RGBColor(0, 120, 200),
            false => RGBColor(210, 50, 40),
        };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(lo, y - 0.28), (c.p50_us.max(lo), y + 0.12)],
            color.filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            match base {
                Some(b) => format!(
                    "{}: {} ({:.3}x sidekey)",
                    c.path,
                    human(c.p50_us),
                    c.p50_us / b
                ),
                None => format!("{}: {}", c.path, human(c.p50_us)),
            },
            (lo * 1.1, y + 0.42),
            ("sans-serif", 14),
        )))?;
    }
    Ok(())
}

fn human(us: f64) -> String {
    match us {
        v if v < 1.0 => format!("{:.0} ns", v * 1e3),
        v if v < 1_000.0 => format!("{v:.1} µs"),
        v => format!("{:.2} ms", v / 1e3),
    }
}
