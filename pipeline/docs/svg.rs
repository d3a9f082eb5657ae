//! The pictures of the site, as inline SVG: the model graph (laid out by
//! the `layout-rs` crate), the last run as a timeline, and A/B results as
//! intervals.

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::geometry::{Point, get_size_for_str};
use layout::core::style::StyleAttr;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::html::escape;
use crate::models::Dag;

/// The model graph, left to right, each node linking to its page under
/// `models/`.
pub fn graph(dag: &Dag) -> String {
    let mut vg = VisualGraph::new(Orientation::LeftToRight);
    let mut handles = std::collections::HashMap::new();
    for model in dag.ordered() {
        let fill = match model.layer.as_str() {
            "bronze" => 0xf3d9b1ff,
            "gold" => 0xf7e08aff,
            _ => 0xdfe3eaff,
        };
        let look = StyleAttr::new(Color::fast("black"), 1, Some(Color::new(fill)), 4, 13);
        let size = get_size_for_str(&model.name, 13).add(Point::new(16.0, 10.0));
        let element = Element::create(
            ShapeKind::new_box(&model.name),
            look,
            Orientation::LeftToRight,
            size,
        );
        handles.insert(model.name.clone(), vg.add_node(element));
    }
    for model in dag.ordered() {
        for dep in &model.deps {
            if let (Some(from), Some(to)) = (handles.get(dep), handles.get(&model.name)) {
                vg.add_edge(Arrow::simple(""), *from, *to);
            }
        }
    }
    let mut writer = SVGWriter::new();
    vg.do_it(false, false, false, &mut writer);
    let drawn = writer.finalize();
    // Inline in HTML: no XML declaration before the <svg> element.
    let mut svg = drawn[drawn.find("<svg").unwrap_or(0)..].to_string();
    // Each node's label becomes a link to the model's page.
    for model in dag.ordered() {
        let label = format!(">{}</tspan></text>", model.name);
        if let Some(end) = svg.find(&label)
            && let Some(start) = svg[..end].rfind("<text")
        {
            let link = format!("<a href=\"models/{}.html\">", model.name);
            svg.insert_str(end + label.len(), "</a>");
            svg.insert_str(start, &link);
        }
    }
    svg
}

/// One bar of the timeline.
pub struct Bar {
    pub name: String,
    pub start: f64,
    pub seconds: f64,
    pub status: String,
}

/// The last run as bars on a time axis, in start order, so the chain that
/// set the run's length shows as the bars ending last.
pub fn timeline(bars: &[Bar]) -> String {
    let end = bars
        .iter()
        .map(|b| b.start + b.seconds)
        .fold(0.0_f64, f64::max)
        .max(0.001);
    let (label_w, plot_w, row_h) = (300.0, 700.0, 18.0);
    let height = row_h * bars.len() as f64 + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-size=\"12\" font-family=\"sans-serif\">\n",
        label_w + plot_w + 20.0
    );
    for tick in 0..=5 {
        let t = end * f64::from(tick) / 5.0;
        let x = label_w + plot_w * f64::from(tick) / 5.0;
        svg.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"0\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ccc\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t:.1} s</text>\n",
            height - 20.0,
            height - 6.0
        ));
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = i as f64 * row_h;
        let x = label_w + plot_w * bar.start / end;
        let w = (plot_w * bar.seconds / end).max(1.0);
        let color = match bar.status.as_str() {
            "success" => "#4c8bf5",
            "error" => "#cf222e",
            _ => "#b8c0cc",
        };
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>{} {:.2} s ({})</title></rect>\n",
            label_w - 6.0,
            y + 13.0,
            escape(&bar.name),
            y + 3.0,
            row_h - 5.0,
            escape(&bar.name),
            bar.seconds,
            escape(&bar.status)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// One comparison: a variant's difference from control with its interval.
pub struct Interval {
    pub label: String,
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// Each row's estimate as a dot and its interval as a line, around a zero
/// line: an interval that does not cross zero is a difference.
pub fn intervals(rows: &[Interval]) -> String {
    let reach = rows
        .iter()
        .flat_map(|r| [r.low.abs(), r.high.abs(), r.estimate.abs()])
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let (label_w, plot_w, row_h) = (380.0, 500.0, 20.0);
    let height = row_h * rows.len() as f64 + 30.0;
    let x_of = |v: f64| label_w + plot_w * (0.5 + 0.5 * v / reach);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-size=\"12\" font-family=\"sans-serif\">\n\
         <line x1=\"{z:.1}\" y1=\"0\" x2=\"{z:.1}\" y2=\"{:.1}\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\">{:+.4}</text><text x=\"{z:.1}\" y=\"{:.1}\" text-anchor=\"middle\">0</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:+.4}</text>\n",
        label_w + plot_w + 20.0,
        height - 20.0,
        label_w,
        height - 6.0,
        -reach,
        height - 6.0,
        label_w + plot_w,
        height - 6.0,
        reach,
        z = x_of(0.0),
    );
    for (i, row) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 10.0;
        let differs = row.low > 0.0 || row.high < 0.0;
        let color = if differs { "#1a7f37" } else { "#57606a" };
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            y + 4.0,
            escape(&row.label)
        ));
        if row.low.is_finite() && row.high.is_finite() {
            svg.push_str(&format!(
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" stroke-width=\"2\"/>",
                x_of(row.low),
                x_of(row.high)
            ));
        }
        svg.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{color}\"><title>{}: {:+.4} [{:+.4}, {:+.4}]</title></circle>\n",
            x_of(row.estimate),
            escape(&row.label),
            row.estimate,
            row.low,
            row.high
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
