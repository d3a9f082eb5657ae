//! The HTML around every page of the site: escaping, the shared style
//! (inline, so the site works offline and from disk) and the navigation.

/// Text made safe inside HTML elements and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 0; color: #1d2433; }
header { background: #1d2433; color: #fff; padding: 0.6em 1.5em; }
header a { color: #cfe0ff; margin-right: 1.2em; text-decoration: none; }
main { padding: 1em 1.5em 3em; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #d5dae3; padding: 0.25em 0.6em; text-align: left; }
th { background: #f1f4f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.pass { color: #1a7f37; } .fail { color: #cf222e; font-weight: bold; } .warn { color: #9a6700; }
.graph { overflow-x: auto; border: 1px solid #d5dae3; padding: 0.5em; }
.graph.fit svg { width: 100%; height: auto; }
.layer { display: inline-block; padding: 0 0.4em; border-radius: 3px; font-size: 0.8em; }
.bronze { background: #f3d9b1; } .silver { background: #dfe3ea; } .gold { background: #f7e08a; }
";

/// A whole page: `depth` is how many folders below the site root it is.
pub fn page(title: &str, depth: usize, body: &str) -> String {
    let up = "../".repeat(depth);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · medallion</title><style>{STYLE}</style></head>\n<body>\
         <header><a href=\"{up}index.html\">Models</a><a href=\"{up}run.html\">Last run</a>\
         <a href=\"{up}experiments.html\">Experiments</a></header>\n<main>\n{body}\n</main></body></html>\n",
        title = escape(title)
    )
}

/// The badge of a layer.
pub fn layer_badge(layer: &str) -> String {
    format!("<span class=\"layer {layer}\">{layer}</span>")
}
