//! A grouped bar chart as SVG, written by hand (no plotting dependency):
//! bars at the median of the runs, whiskers at their min and max, and a
//! dashed line at a group's target.

use std::fmt::Write as _;

use super::units::thousands;

/// One bar: the min, median and max of a figure over the runs.
pub struct Bar {
    pub lo: f64,
    pub mid: f64,
    pub hi: f64,
}

/// Bars side by side under one label (one per series; `None` where a
/// series has no value), with the group's target if it has one.
pub struct Group {
    pub label: String,
    pub bars: Vec<Option<Bar>>,
    pub target: Option<f64>,
}

const COLOURS: [&str; 6] = [
    "#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#59a14f", "#8cd17d",
];

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 96.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nice_step(range: f64) -> f64 {
    let raw = range / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if raw <= m * magnitude {
            return m * magnitude;
        }
    }
    10.0 * magnitude
}

/// The vertical axis: linear from 0, or logarithmic over whole powers of
/// ten, covering every value of the chart.
struct Scale {
    log: bool,
    lo: f64,
    hi: f64,
}

impl Scale {
    fn new(groups: &[Group], log: bool) -> Self {
        let values: Vec<f64> = groups
            .iter()
            .flat_map(|g| {
                g.bars
                    .iter()
                    .flatten()
                    .flat_map(|b| [b.lo, b.mid, b.hi])
                    .chain(g.target)
            })
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .collect();
        let max = values.iter().copied().fold(0.0, f64::max).max(1e-9);
        let min_positive = values.iter().copied().fold(f64::INFINITY, f64::min);
        let (lo, hi) = if log {
            let lo = min_positive.log10().floor().min(0.0);
            (lo, max.log10().ceil().max(lo + 1.0))
        } else {
            let step = nice_step(max * 1.1);
            (0.0, (max * 1.1 / step).ceil() * step)
        };
        Self { log, lo, hi }
    }

    /// The pixel row of a value.
    fn y(&self, v: f64) -> f64 {
        let t = if self.log {
            (v.max(10f64.powf(self.lo)).log10() - self.lo) / (self.hi - self.lo)
        } else {
            v / self.hi
        };
        TOP + PLOT_H * (1.0 - t.clamp(0.0, 1.0))
    }

    /// Where bars start: 0, or the lowest power of ten on a log scale.
    fn floor(&self) -> f64 {
        if self.log {
            10f64.powf(self.lo)
        } else {
            0.0
        }
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (a, b) = (self.lo as i32, self.hi as i32);
            (a..=b).map(|e| 10f64.powi(e)).collect()
        } else {
            let step = nice_step(self.hi);
            (0..=((self.hi / step).round() as i32))
                .map(|i| f64::from(i) * step)
                .collect()
        }
    }
}

/// The chart: `groups` of bars, one per entry of `series`, on a linear or
/// `log` scale.
pub fn chart(
    title: &str,
    axis: &str,
    series: &[String],
    groups: &[Group],
    log: bool,
    note: &str,
) -> String {
    let scale = Scale::new(groups, log);
    let mut svg = String::new();
    heading(&mut svg, title, note);
    grid(&mut svg, &scale, axis);
    let group_w = PLOT_W / groups.len().max(1) as f64;
    let per = series.len().max(1) as f64;
    let bar_w = (group_w * 0.72 / per).min(60.0);
    for (gi, group) in groups.iter().enumerate() {
        let gx = LEFT + group_w * gi as f64;
        let start = gx + (group_w - bar_w * per) / 2.0;
        for (si, bar) in group.bars.iter().enumerate() {
            let x = start + bar_w * si as f64;
            let Some(bar) = bar else { continue };
            draw_bar(&mut svg, &scale, bar, (x, bar_w), si, &series[si]);
        }
        if let Some(target) = group.target {
            target_line(&mut svg, &scale, target, (gx, group_w));
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            gx + group_w / 2.0,
            TOP + PLOT_H + 18.0,
            escape(&group.label)
        );
    }
    legend(&mut svg, series);
    svg.push_str("</svg>\n");
    svg
}

fn heading(svg: &mut String, title: &str, note: &str) {
    let (width, height) = (WIDTH, HEIGHT);
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" font-size="16" font-weight="bold" text-anchor="middle">{}</text>"#,
        width / 2.0,
        escape(title)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="42" font-size="11" fill="#555" text-anchor="middle">{}</text>"##,
        width / 2.0,
        escape(note)
    );
}

/// The grid lines with their labels, the axis and its name.
fn grid(svg: &mut String, scale: &Scale, axis: &str) {
    let (left, top) = (LEFT, TOP);
    for tick in scale.ticks() {
        let ty = scale.y(tick);
        let label = if tick == 0.0 {
            "0".to_owned()
        } else if tick >= 1000.0 {
            thousands(tick)
        } else if tick >= 1.0 {
            format!("{tick}")
        } else {
            format!("{tick:.3}").trim_end_matches('0').to_owned()
        };
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{ty:.1}" y2="{ty:.1}" stroke="#ddd"/>"##,
            WIDTH - RIGHT
        );
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#333">{label}</text>"##,
            left - 6.0,
            ty + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle" fill="#333">{}</text>"##,
        top + PLOT_H / 2.0,
        escape(axis)
    );
    let _ = writeln!(
        svg,
        r##"<line x1="{left}" x2="{left}" y1="{top}" y2="{}" stroke="#333"/>"##,
        top + PLOT_H
    );
}

/// One bar of series `si` at `x`, `bar_w` wide, with its whiskers and its
/// median written above.
fn draw_bar(
    svg: &mut String,
    scale: &Scale,
    bar: &Bar,
    (x, bar_w): (f64, f64),
    si: usize,
    name: &str,
) {
    let colour = COLOURS[si % COLOURS.len()];
    let (yt, yb) = (scale.y(bar.mid), scale.y(scale.floor()));
    let _ = writeln!(
        svg,
        r#"<rect x="{:.1}" y="{yt:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}: median {:.3}, min {:.3}, max {:.3}</title></rect>"#,
        x + 1.0,
        bar_w - 2.0,
        (yb - yt).max(0.0),
        escape(name),
        bar.mid,
        bar.lo,
        bar.hi
    );
    let cx = x + bar_w / 2.0;
    let _ = writeln!(
        svg,
        r##"<line x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="#222"/>"##,
        scale.y(bar.lo),
        scale.y(bar.hi)
    );
    for v in [bar.lo, bar.hi] {
        let _ = writeln!(
            svg,
            r##"<line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#222"/>"##,
            cx - 4.0,
            cx + 4.0,
            scale.y(v),
            scale.y(v)
        );
    }
    let label = if bar.mid >= 100.0 {
        thousands(bar.mid)
    } else {
        format!("{:.2}", bar.mid)
    };
    let _ = writeln!(
        svg,
        r#"<text x="{cx:.1}" y="{:.1}" font-size="10" text-anchor="middle">{label}</text>"#,
        scale.y(bar.hi) - 4.0
    );
}

/// The dashed target line across the group at `gx`, `group_w` wide.
fn target_line(svg: &mut String, scale: &Scale, target: f64, (gx, group_w): (f64, f64)) {
    let ty = scale.y(target);
    let _ = writeln!(
        svg,
        r##"<line x1="{:.1}" x2="{:.1}" y1="{ty:.1}" y2="{ty:.1}" stroke="#d62728" stroke-width="2" stroke-dasharray="6 3"/>"##,
        gx + 6.0,
        gx + group_w - 6.0
    );
    let label = if target >= 100.0 {
        thousands(target)
    } else {
        format!("{target}")
    };
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#d62728">target {label}</text>"##,
        gx + 8.0,
        ty - 4.0
    );
}

/// The colour of each series, the target's dashes, and how to read a bar.
fn legend(svg: &mut String, series: &[String]) {
    let left = LEFT;
    let mut lx = left;
    let ly = HEIGHT - 28.0;
    for (si, name) in series.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/>"#,
            ly - 10.0,
            COLOURS[si % COLOURS.len()]
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{ly:.1}">{}</text>"#,
            lx + 16.0,
            escape(name)
        );
        lx += 24.0 + 7.0 * name.len() as f64;
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{ly:.1}" fill="#d62728">- - target</text>"##,
        lx + 8.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="{left}" y="{:.1}" font-size="10" fill="#555">Bars: median of the runs; whiskers: min and max.</text>"##,
        HEIGHT - 8.0
    );
}
