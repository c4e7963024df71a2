//! `bench/fleet.png`: the busiest second of each minute per API over each
//! scenario, per policy (the first seed), against the API's quota (log
//! scale: the quotas span 40 to 40,000).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use super::FleetResults;

const COLORS: [RGBColor; 9] = [
    RGBColor(0, 110, 200),
    RGBColor(0, 60, 120),
    RGBColor(220, 120, 0),
    RGBColor(0, 150, 70),
    RGBColor(90, 200, 120),
    RGBColor(140, 80, 160),
    RGBColor(200, 160, 0),
    RGBColor(150, 110, 40),
    RGBColor(200, 40, 40),
];

/// A series as `results.json` keeps it: one line of comma-separated counts.
fn points(line: &str) -> Vec<u32> {
    line.split(',').filter_map(|v| v.parse().ok()).collect()
}

/// Draw the chart into `path` (the font is registered by the caller).
pub fn draw(r: &FleetResults, path: &Path) -> Result<(), Box<dyn Error>> {
    let root = BitMapBackend::new(path, (1500, 1900)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((4, 2));
    for (sc, area) in r.scenarios.iter().zip(panels.iter()) {
        let hi = sc
            .rows
            .iter()
            .flat_map(|o| o.series.iter().flat_map(|(_, v)| points(v)))
            .chain(
                sc.rows
                    .iter()
                    .flat_map(|o| o.apis.iter().map(|a| a.1 as u32)),
            )
            .max()
            .unwrap_or(1) as f64
            * 2.0;
        let len = sc
            .rows
            .iter()
            .flat_map(|o| o.series.iter().map(|(_, v)| points(v).len()))
            .max()
            .unwrap_or(1) as f64;
        let title = sc.title.split(':').next().unwrap_or(&sc.title).to_owned();
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..len, (0.8f64..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("min")
            .y_desc("requests/s (log)")
            .draw()?;
        let mut quotas: Vec<(String, f64)> = Vec::new();
        for (o, color) in sc.rows.iter().zip(COLORS) {
            for (api, series) in &o.series {
                let batch = api.starts_with("Batch") || api.starts_with("Describe");
                let style = color.stroke_width(if batch { 1 } else { 2 });
                let points = points(series)
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i as f64, f64::from(v).max(0.8)));
                chart
                    .draw_series(LineSeries::new(points, style))?
                    .label(format!("{} {}", o.policy, api))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            }
            for a in &o.apis {
                if !quotas.iter().any(|(n, _)| *n == a.0) {
                    quotas.push((a.0.clone(), a.1));
                }
            }
        }
        for (api, quota) in quotas {
            chart.draw_series(LineSeries::new(
                vec![(0.0, quota), (len, quota)],
                BLACK.mix(0.6).stroke_width(1),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                format!("{api} quota {quota}/s"),
                (len * 0.55, quota * 1.15),
                ("sans-serif", 12),
            )))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 9))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
