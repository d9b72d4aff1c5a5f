//! The plots of docs/benchmarks.md, as SVG through plotters.

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("plot: {e:?}")
}

/// Empirical cumulative distributions on a logarithmic x axis: one line per series (values in µs).
pub fn ecdf(path: &Path, title: &str, x_desc: &str, series: &[(String, Vec<f64>)]) -> Result<(), String> {
    let all: Vec<f64> = series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|x| x.is_finite()).collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
    let hi = all.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let (lo, hi) = (10f64.powf(lo.log10().floor()), 10f64.powf(hi.log10().ceil()));
    let root = SVGBackend::new(path, (860, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .margin_right(36)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..1f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("fraction ≤ x")
        .x_label_formatter(&|v| {
            if *v >= 1000.0 { format!("{} ms", v / 1000.0) } else { format!("{v} µs") }
        })
        .draw()
        .map_err(err)?;
    for (i, (name, values)) in series.iter().enumerate() {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).map(|x| x.max(lo)).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = v.len() as f64;
        let mut points = Vec::with_capacity(v.len() * 2);
        for (j, x) in v.iter().enumerate() {
            points.push((*x, j as f64 / n));
            points.push((*x, (j + 1) as f64 / n));
        }
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// One horizontal bar per row (`value`), with an optional whisker to `upper` (e.g. the p99), an
/// optional vertical reference line, and the value written beside the bar.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub upper: Option<f64>,
    pub highlight: bool,
}

pub fn bars(
    path: &Path,
    title: &str,
    x_desc: &str,
    rows: &[Bar],
    reference: Option<(f64, &str)>,
    show: &dyn Fn(f64) -> String,
) -> Result<(), String> {
    let n = rows.len() as i32;
    let max = rows
        .iter()
        .map(|r| r.upper.unwrap_or(r.value).max(r.value))
        .chain(reference.map(|r| r.0))
        .fold(0.0, f64::max)
        * 1.45;
    let height = 90 + 42 * rows.len() as u32;
    let root = SVGBackend::new(path, (860, height.max(260))).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let x_desc = match reference {
        Some((_, name)) => format!("{x_desc}    (red line: {name}; blue: baton)"),
        None => format!("{x_desc}    (blue: baton)"),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(250)
        .build_cartesian_2d(0f64..max.max(1e-9), (0..n - 1).into_segmented())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(x_desc.as_str())
        .y_labels(rows.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                // Row 0 at the top.
                labels.get((n - 1 - *i) as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .draw()
        .map_err(err)?;
    for (k, r) in rows.iter().enumerate() {
        let i = n - 1 - k as i32;
        let color = if r.highlight { COLORS[0] } else { COLORS[7] };
        let mut rect = Rectangle::new([(0.0, SegmentValue::Exact(i)), (r.value, SegmentValue::Exact(i + 1))], color.filled());
        rect.set_margin(8, 8, 0, 0);
        chart.draw_series(std::iter::once(rect)).map_err(err)?;
        if let Some(up) = r.upper {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(r.value, SegmentValue::CenterOf(i)), (up, SegmentValue::CenterOf(i))],
                    BLACK.stroke_width(1),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Circle::new((up, SegmentValue::CenterOf(i)), 3, BLACK.filled())))
                .map_err(err)?;
        }
        let at = r.upper.unwrap_or(r.value).max(r.value);
        let text = match r.upper {
            Some(up) => format!("{}  (p99 {})", show(r.value), show(up)),
            None => show(r.value),
        };
        chart
            .draw_series(std::iter::once(Text::new(
                text,
                (at + max * 0.012, SegmentValue::CenterOf(i)),
                ("sans-serif", 13).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
            )))
            .map_err(err)?;
    }
    if let Some((x, _)) = reference {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, SegmentValue::Exact(0)), (x, SegmentValue::Last)],
                COLORS[3].stroke_width(2),
            )))
            .map_err(err)?;
    }
    root.present().map_err(err)
}
