//! Charts drawn on the server as SVG: no script, no chart library, and the
//! same picture in every browser and in a screenshot.

use std::fmt::Write as _;

use crate::page::escape;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 28.0;

/// A step line of cumulative coverage (percent of ongoing emissions) over
/// `points` (milliseconds since the epoch, percent) across `year` (the
/// reporting year: January to December, UTC), with a dot at each
/// retirement and the pathway's threshold as a dashed line.
#[must_use]
pub fn coverage_line(points: &[(i64, f64)], threshold_pct: f64, year: i64) -> String {
    let top = points
        .iter()
        .map(|p| p.1)
        .fold(threshold_pct, f64::max)
        .max(1.0)
        * 1.15;
    let (first, last) = (year_start_ms(year), year_start_ms(year + 1));
    let x = |t: i64| {
        LEFT + (WIDTH - LEFT - 8.0) * (t.clamp(first, last) - first) as f64 / (last - first) as f64
    };
    let y = |pct: f64| (HEIGHT - BOTTOM) - (HEIGHT - BOTTOM - 8.0) * pct / top;
    let mut svg = format!(
        "<svg id=\"coverage-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         role=\"img\" aria-label=\"coverage over time\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
    );
    axes(&mut svg, top, "%");
    for (month, name) in ["Jan", "Apr", "Jul", "Oct"].iter().enumerate() {
        let at = x(first + (last - first) / 4 * month as i64);
        let _ = write!(
            svg,
            "<text x=\"{at:.1}\" y=\"{}\" font-size=\"10\">{name} {year}</text>",
            HEIGHT - BOTTOM + 14.0
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{t:.1}\" y2=\"{t:.1}\" stroke=\"#b3261e\" stroke-dasharray=\"5 4\"/>\
         <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" fill=\"#b3261e\" text-anchor=\"end\">threshold {threshold_pct}%</text>",
        WIDTH - 8.0,
        WIDTH - 10.0,
        y(threshold_pct) - 4.0,
        t = y(threshold_pct)
    );
    if points.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"middle\">nothing retired yet</text>",
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
    } else {
        let mut path = format!("M{:.1},{:.1}", x(first), y(0.0));
        let mut level = 0.0;
        let mut dots = String::new();
        for &(t, pct) in points {
            let _ = write!(
                path,
                " L{:.1},{:.1} L{:.1},{:.1}",
                x(t),
                y(level),
                x(t),
                y(pct)
            );
            let _ = write!(
                dots,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f4d36\"><title>{pct:.4}%</title></circle>",
                x(t),
                y(pct)
            );
            level = pct;
        }
        let end = points.last().map_or(first, |p| p.0);
        let _ = write!(path, " L{:.1},{:.1}", x(end), y(level));
        let _ = write!(
            svg,
            "<path d=\"{path}\" fill=\"none\" stroke=\"#1f4d36\" stroke-width=\"2\"/>{dots}"
        );
    }
    svg.push_str("</svg>");
    svg
}

/// 1 January of `year`, 00:00 UTC, in milliseconds since the epoch.
fn year_start_ms(year: i64) -> i64 {
    // Days from 1970-01-01 to 1 January of `year` (proleptic Gregorian).
    let y = year - 1;
    let days =
        365 * (y - 1969) + (y / 4 - 1969 / 4) - (y / 100 - 1969 / 100) + (y / 400 - 1969 / 400);
    days * 86_400_000
}

/// Horizontal grid and labels for a value axis from 0 to `top`.
fn axes(svg: &mut String, top: f64, unit: &str) {
    for step in 0..=4 {
        let value = top * f64::from(step) / 4.0;
        let y = (HEIGHT - BOTTOM) - (HEIGHT - BOTTOM - 8.0) * value / top;
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e9e5\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}{unit}</text>",
            WIDTH - 8.0,
            LEFT - 4.0,
            y + 3.0,
            short(value)
        );
    }
}

fn short(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// One group of bars per row (a scope or a Scope 3 category): inventory,
/// claimed, filled and retired tonnes side by side.
#[must_use]
pub fn scope_bars(rows: &[(String, [f64; 4])]) -> String {
    const SERIES: [(&str, &str); 4] = [
        ("inventory", "#9fb8a8"),
        ("claimed", "#e6c35c"),
        ("filled", "#4f8a6a"),
        ("retired", "#1f4d36"),
    ];
    let top = rows.iter().flat_map(|r| r.1).fold(1.0, f64::max) * 1.1;
    let height = HEIGHT + 20.0;
    let mut svg = format!(
        "<svg id=\"scope-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         role=\"img\" aria-label=\"tonnes per scope\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
    );
    axes(&mut svg, top, "");
    let band = (WIDTH - LEFT - 8.0) / rows.len().max(1) as f64;
    let bar = (band * 0.8 / 4.0).min(22.0);
    for (i, (label, values)) in rows.iter().enumerate() {
        let x0 = LEFT + band * i as f64 + band * 0.1;
        for (k, value) in values.iter().enumerate() {
            let h = (HEIGHT - BOTTOM - 8.0) * value / top;
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} {}: {value} t</title></rect>",
                x0 + bar * k as f64,
                HEIGHT - BOTTOM - h,
                SERIES[k].1,
                escape(label),
                SERIES[k].0
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            x0 + bar * 2.0,
            HEIGHT - BOTTOM + 14.0,
            escape(label)
        );
    }
    for (k, (name, colour)) in SERIES.iter().enumerate() {
        let x = LEFT + 110.0 * k as f64;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\">{name}</text>",
            height - 14.0,
            x + 14.0,
            height - 5.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_start_where_the_calendar_says() {
        assert_eq!(year_start_ms(1970), 0);
        assert_eq!(year_start_ms(2000), 946_684_800_000);
        assert_eq!(year_start_ms(2026), 1_767_225_600_000);
    }

    #[test]
    fn a_retirement_is_a_dot_on_the_line_and_the_threshold_is_drawn() {
        let svg = coverage_line(&[(1_780_000_000_000, 0.5)], 1.0, 2026);
        assert!(svg.contains("<circle") && svg.contains("threshold 1%"));
        assert!(coverage_line(&[], 1.0, 2026).contains("nothing retired yet"));
    }
}
