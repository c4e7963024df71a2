//! `bench/fleet.png`: requests per second per API over each scenario, per
//! policy, against the API's quota (log scale: the quotas span 40 to 10,000).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use super::FleetResults;

const COLORS: [RGBColor; 4] = [
    RGBColor(0, 110, 200),
    RGBColor(220, 120, 0),
    RGBColor(0, 150, 70),
    RGBColor(200, 40, 40),
];

/// Draw the chart into `path` (the font is registered by the caller).
pub fn draw(r: &FleetResults, path: &Path) -> Result<(), Box<dyn Error>> {
    let root = BitMapBackend::new(path, (1500, 1250)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 2));
    for (sc, area) in r.scenarios.iter().zip(panels.iter()) {
        let hi = sc
            .outcomes
            .iter()
            .flat_map(|o| o.per_second.iter().flat_map(|(_, v)| v.iter().copied()))
            .chain(
                sc.outcomes
                    .iter()
                    .flat_map(|o| o.apis.iter().map(|a| a.quota_rps as u32)),
            )
            .max()
            .unwrap_or(1) as f64
            * 2.0;
        let len = sc
            .outcomes
            .iter()
            .flat_map(|o| o.per_second.iter().map(|(_, v)| v.len()))
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
            .x_desc("s")
            .y_desc("requests/s (log)")
            .draw()?;
        let mut quotas: Vec<(String, f64)> = Vec::new();
        for (o, color) in sc.outcomes.iter().zip(COLORS) {
            for (api, series) in &o.per_second {
                let batch = api.starts_with("Batch");
                let style = color.stroke_width(if batch { 1 } else { 2 });
                let points = series
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as f64, f64::from(*v).max(0.8)));
                chart
                    .draw_series(LineSeries::new(points, style))?
                    .label(format!("{} {}", o.policy, api))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            }
            for a in &o.apis {
                if !quotas.iter().any(|(n, _)| *n == a.api) {
                    quotas.push((a.api.clone(), a.quota_rps));
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
            .label_font(("sans-serif", 11))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
