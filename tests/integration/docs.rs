//! `medallion docs` through the release binary on a published sample run:
//! every model has a page, every link of every page resolves to a file of
//! the site, the graph names every model, the run timeline has a bar per
//! model and the experiments page draws the A/B intervals. The site is
//! self-contained: no page loads anything from the network.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::*;

fn medallion(args: &[&str], out: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_medallion"))
        .current_dir(project_root())
        .args(args)
        .arg("--output")
        .arg(out)
        .env_remove("MEDALLION_LOG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The values of every `href="…"` and `src="…"` in a page.
fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attribute) {
            rest = &rest[at + attribute.len()..];
            let end = rest.find('"').unwrap();
            found.push(rest[..end].to_string());
        }
    }
    found
}

#[tokio::test]
async fn the_site_has_a_page_per_model_and_every_link_resolves() {
    let out = tempfile::tempdir().unwrap();
    medallion(&["run", "--quiet", "--as-of", "2026-10-31"], out.path());
    let site = out.path().join("_docs");
    let said = medallion(&["docs"], out.path());
    assert!(said.contains("index.html"), "{said}");

    let dag = medallion::models::load_dag(&medallion::config::Config {
        models: project_root().join("sql"),
        ..medallion::config::Config::default()
    })
    .unwrap();
    let names: BTreeSet<String> = dag.ordered().map(|m| m.name.clone()).collect();
    let pages: BTreeSet<String> = std::fs::read_dir(site.join("models"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".html")
                .to_string()
        })
        .collect();
    assert_eq!(pages, names, "one page per model");

    let mut checked = 0;
    for page in snapshot(&site) {
        let (relative, bytes) = page;
        let html = String::from_utf8(bytes).unwrap();
        assert!(
            html.starts_with("<!DOCTYPE html>"),
            "{}",
            relative.display()
        );
        assert!(html.ends_with("</html>\n"), "{}", relative.display());
        let dir = site.join(&relative).parent().unwrap().to_path_buf();
        for link in links(&html) {
            assert!(
                !link.contains("://"),
                "{}: {link} leaves the site (it must work offline)",
                relative.display()
            );
            if let Some(anchor) = link.strip_prefix('#') {
                assert!(
                    html.contains(&format!("id=\"{anchor}\"")),
                    "{}: {link} has no target",
                    relative.display()
                );
                continue;
            }
            let target = link.split('#').next().unwrap();
            assert!(
                dir.join(target).is_file(),
                "{}: {link} does not resolve",
                relative.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 3 * names.len(), "links were checked: {checked}");

    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    let graph = &index[index.find("<svg").unwrap()..index.find("</svg>").unwrap()];
    for name in &names {
        assert!(
            graph.contains(&format!(">{name}</tspan>")),
            "the graph names {name}"
        );
        assert!(
            graph.contains(&format!("href=\"models/{name}.html\"")),
            "the graph links {name}"
        );
    }
    let run = std::fs::read_to_string(site.join("run.html")).unwrap();
    assert_eq!(
        run.matches("<rect ").count(),
        names.len(),
        "a bar per model"
    );
    let experiments = std::fs::read_to_string(site.join("experiments.html")).unwrap();
    let rows = table_rows(out.path(), "gold", "gold_ab_onboarding_results", None)
        .await
        .len();
    assert!(
        experiments.matches("<circle ").count() >= rows,
        "a dot per comparison"
    );

    // A model page: description, columns from the published schema, tests with results, SQL.
    let page = std::fs::read_to_string(site.join("models/gold_sales_daily.html")).unwrap();
    for expected in [
        "One row per day",
        "daily_revenue",
        "Decimal128(18, 2)",
        "grain unique(sale_date)",
        "class=\"pass\"",
        "select * from final",
    ] {
        assert!(
            page.contains(expected),
            "gold_sales_daily page lacks {expected}"
        );
    }
}
