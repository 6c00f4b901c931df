//! The comparison as an SVG picture (plotters' SVG backend, no font files: the viewer renders
//! the text). Left: file size (x) against KL divergence from the base (y, log scale), one
//! circle per model whose area grows with its generation speed, the Pareto front joined by a
//! line, a label per model. Right: three bar panels, prompt speed, generation speed and peak
//! memory per model. The base has KLD 0, which a log axis cannot show: it sits on the floor
//! of the axis and its label says so.

use std::path::Path;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use slm_engine::bench::compare::{CompareReport, CompareRow};

const FRONT: RGBColor = RGBColor(31, 119, 180);
const OFF_FRONT: RGBColor = RGBColor(214, 39, 40);
const FONT: &str = "sans-serif";
const GREY_TEXT: RGBColor = RGBColor(90, 90, 90);
const MIB: f64 = 1024.0 * 1024.0;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// What a bar panel shows of a model.
type Metric = fn(&CompareRow) -> Option<f64>;

fn color(r: &CompareRow) -> RGBColor {
    if r.pareto {
        FRONT
    } else {
        OFF_FRONT
    }
}

/// Draw `report` (scored on `text`) into the SVG file `out`.
pub fn draw(report: &CompareReport, text: &Path, out: &Path) -> Result<()> {
    let root = SVGBackend::new(out, (1280, 660)).into_drawing_area();
    root.fill(&WHITE)?;
    let text_name = text.file_name().map_or_else(
        || text.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let title = format!(
        "slm compare: base {}, {} x {} tokens of {}, {} threads",
        report.rows.first().map_or("?", |r| r.name.as_str()),
        report.n_chunks,
        report.n_ctx,
        text_name,
        report.threads
    );
    let root = root.titled(&title, (FONT, 22))?;
    let (left, right) = root.split_horizontally(780);
    scatter(&left, report)?;
    let panels = right.split_evenly((3, 1));
    let label_pp = format!("prompt speed, pp{} (tokens/s)", report.n_prompt);
    let label_tg = format!("generation speed, tg{} (tokens/s)", report.n_gen);
    let specs: [(&str, Metric); 3] = [
        (&label_pp, |r| r.pp_ts),
        (&label_tg, |r| r.tg_ts),
        ("peak resident memory (MiB)", |r| {
            r.peak_rss_bytes.map(|b| b as f64 / MIB)
        }),
    ];
    for (area, (caption, value)) in panels.iter().zip(specs) {
        bars(area, report, caption, value)?;
    }
    root.present()?;
    Ok(())
}

/// Size against KLD, speed as circle area, the Pareto front, labels.
fn scatter(area: &Area<'_>, report: &CompareReport) -> Result<()> {
    let rows = &report.rows;
    let max_mib = rows
        .iter()
        .map(|r| r.facts.file_bytes as f64 / MIB)
        .fold(1.0, f64::max);
    let positive: Vec<f64> = rows
        .iter()
        .map(CompareRow::kld)
        .filter(|&k| k > 0.0)
        .collect();
    let min_kld = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let max_kld = positive.iter().copied().fold(0.0, f64::max);
    let (min_kld, max_kld) = if positive.is_empty() {
        (1e-4, 1e-2)
    } else {
        (min_kld, max_kld.max(min_kld * 10.0))
    };
    // Where a KLD of 0 (the base) is drawn.
    let floor = min_kld / 4.0;
    let y_of = |r: &CompareRow| if r.kld() > 0.0 { r.kld() } else { floor };
    let max_tg = rows.iter().filter_map(|r| r.tg_ts).fold(0.0, f64::max);
    let radius = |r: &CompareRow| -> i32 {
        match r.tg_ts {
            Some(v) if max_tg > 0.0 => (5.0 + 13.0 * (v / max_tg).sqrt()).round() as i32,
            _ => 8,
        }
    };

    let mut chart = ChartBuilder::on(area)
        .caption(
            "size against quality loss (circle area grows with generation speed)",
            (FONT, 16),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            0f64..max_mib * 1.15,
            (floor / 2.0..max_kld * 3.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("file size (MiB)")
        .y_desc("KL divergence from the base (mean, log scale)")
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 12))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;

    let mut front: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.pareto)
        .map(|r| (r.facts.file_bytes as f64 / MIB, y_of(r)))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(front, FRONT.mix(0.6).stroke_width(2)))?
        .label("Pareto front (no model is both smaller and closer to the base)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], FRONT.stroke_width(2)));
    chart
        .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
        .label("off the front")
        .legend(|(x, y)| Circle::new((x + 12, y), 5, OFF_FRONT.filled()));

    let at_of = |r: &CompareRow| (r.facts.file_bytes as f64 / MIB, y_of(r));
    for r in rows {
        let (at, rad, c) = (at_of(r), radius(r), color(r));
        chart.draw_series(std::iter::once(Circle::new(at, rad, c.mix(0.55).filled())))?;
        chart.draw_series(std::iter::once(Circle::new(at, rad, c.stroke_width(2))))?;
    }
    // Pixel boxes of every circle, then of every label placed so far.
    let mut taken: Vec<PixelBox> = rows
        .iter()
        .map(|r| {
            let (x, y) = chart.backend_coord(&at_of(r));
            let rad = radius(r);
            [x - rad, y - rad, x + rad, y + rad]
        })
        .collect();
    let n_circles = taken.len();
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let bounds: PixelBox = [xs.start, ys.start, xs.end, ys.end];
    // Label the top of the chart first: that is where the crowded low-bit variants sit.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| y_of(&rows[b]).total_cmp(&y_of(&rows[a])));
    for i in order {
        let r = &rows[i];
        let name = if r.is_base {
            format!("{} (base, KLD 0)", r.name)
        } else {
            r.name.clone()
        };
        let mut detail = format!("{} · {:.2} bpw", r.facts.file_type, r.facts.bits_per_weight);
        if let Some(tg) = r.tg_ts {
            detail.push_str(&format!(" · tg {tg:.1} t/s"));
        }
        if let Some(q) = &r.quality {
            detail.push_str(&format!(" · top-1 {:.1}%", 100.0 * q.same_top));
        }
        let at = at_of(r);
        let centre = chart.backend_coord(&at);
        let width = label_width(&name, &detail);
        let (dx, dy, h) = place_label(centre, radius(r), width, bounds, &taken, i, n_circles);
        taken.push(label_box(centre, dx, dy, h, width));
        let big = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(h, VPos::Bottom));
        let small = TextStyle::from((FONT, 11).into_font())
            .color(&GREY_TEXT)
            .pos(Pos::new(h, VPos::Top));
        chart.draw_series(std::iter::once(
            EmptyElement::at(at)
                + Text::new(name, (dx, dy - 1), big)
                + Text::new(detail, (dx, dy + 2), small),
        ))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 12))
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.9))
        .draw()?;
    Ok(())
}

/// (left, top, right, bottom) in pixels.
type PixelBox = [i32; 4];

/// A rough width in pixels of a two-line label (SVG viewers render the text; plotters only
/// estimates it): about 0.55 em per character at the rendered sizes.
fn label_width(name: &str, detail: &str) -> i32 {
    let w = (name.chars().count() as f64 * 6.4).max(detail.chars().count() as f64 * 5.0);
    w.round() as i32
}

/// The box of a label whose anchor is `(dx, dy)` from `centre`, growing away from the point.
fn label_box(centre: (i32, i32), dx: i32, dy: i32, h: HPos, width: i32) -> PixelBox {
    let x = centre.0 + dx;
    let (l, r) = match h {
        HPos::Right => (x - width, x),
        _ => (x, x + width),
    };
    [l, centre.1 + dy - 15, r, centre.1 + dy + 14]
}

fn overlaps(a: &PixelBox, b: &PixelBox) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

/// The first spot around the point (right, left, then a line lower or higher) whose label box
/// stays inside `bounds` and covers no circle but its own (`own`, of the first `n_circles`
/// boxes) and no label placed before; the right-hand spot when none is free.
fn place_label(
    centre: (i32, i32),
    rad: i32,
    width: i32,
    bounds: PixelBox,
    taken: &[PixelBox],
    own: usize,
    n_circles: usize,
) -> (i32, i32, HPos) {
    let off = rad + 6;
    let spots = [
        (off, 0, HPos::Left),
        (-off, 0, HPos::Right),
        (off, 20, HPos::Left),
        (-off, 20, HPos::Right),
        (off, -20, HPos::Left),
        (-off, -20, HPos::Right),
        (off, 38, HPos::Left),
        (-off, 38, HPos::Right),
    ];
    let inside = |b: &PixelBox| {
        b[0] >= bounds[0] && b[2] <= bounds[2] && b[1] >= bounds[1] && b[3] <= bounds[3]
    };
    let free = |b: &PixelBox| {
        taken
            .iter()
            .enumerate()
            .all(|(j, t)| (j == own && j < n_circles) || !overlaps(b, t))
    };
    spots
        .iter()
        .find(|&&(dx, dy, h)| {
            let b = label_box(centre, dx, dy, h, width);
            inside(&b) && free(&b)
        })
        .or_else(|| {
            spots
                .iter()
                .find(|&&(dx, dy, h)| inside(&label_box(centre, dx, dy, h, width)))
        })
        .copied()
        .unwrap_or((off, 0, HPos::Left))
}

/// One horizontal bar per model (the base on top), its value written after the bar.
fn bars(area: &Area<'_>, report: &CompareReport, caption: &str, value: Metric) -> Result<()> {
    let rows = &report.rows;
    let n = rows.len().max(1) as f64;
    let max = rows.iter().filter_map(value).fold(0.0, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 14))
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(6)
        .build_cartesian_2d(0f64..max * 1.75, -0.6f64..n - 0.4)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_labels(5)
        .label_style((FONT, 10))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    for (i, r) in rows.iter().enumerate() {
        let y = n - 1.0 - i as f64;
        let label = match value(r) {
            Some(v) => {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y - 0.32), (v, y + 0.32)],
                    color(r).mix(0.75).filled(),
                )))?;
                format!("{}  {v:.1}", r.name)
            }
            None => format!("{}  (not measured)", r.name),
        };
        let style = TextStyle::from((FONT, 11).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series(std::iter::once(
            EmptyElement::at((value(r).unwrap_or(0.0), y)) + Text::new(label, (4, 0), style),
        ))?;
    }
    Ok(())
}
