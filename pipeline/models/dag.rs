//! The model graph: validation (unknown tables, cycles), topological order and
//! selection with the graph operators `+model`, `model+`, `+model+`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::Model;
use crate::error::{Error, Result};
use crate::layer::Layer;

/// A validated DAG of models.
#[derive(Debug, Clone)]
pub struct Dag {
    models: Vec<Model>,
    index: HashMap<String, usize>,
    /// Model indices in dependency order (ties broken by layer, then name).
    order: Vec<usize>,
    downstream: Vec<Vec<usize>>,
}

impl Dag {
    /// Build the DAG; fails naming the model on an unknown table or a cycle.
    pub fn build(mut models: Vec<Model>) -> Result<Dag> {
        models.sort_by(|a, b| (a.layer, &a.name).cmp(&(b.layer, &b.name)));
        let mut index = HashMap::new();
        for (i, m) in models.iter().enumerate() {
            if index.insert(m.name.clone(), i).is_some() {
                return Err(Error::Dag(format!("two models are named `{}`", m.name)));
            }
        }
        let mut downstream = vec![Vec::new(); models.len()];
        let mut indegree = vec![0usize; models.len()];
        for (i, m) in models.iter().enumerate() {
            for dep in &m.deps {
                let Some(&d) = index.get(dep) else {
                    return Err(Error::Dag(format!(
                        "model `{}` ({}) reads table `{dep}`, which is neither a source nor a model{}",
                        m.name,
                        m.origin(),
                        suggestion(dep, index.keys())
                    )));
                };
                if d == i {
                    return Err(Error::Dag(format!("model `{}` reads itself", m.name)));
                }
                downstream[d].push(i);
                indegree[i] += 1;
            }
        }
        // Kahn's algorithm with a sorted ready set for a stable order.
        let mut ready: BTreeSet<usize> = (0..models.len()).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(models.len());
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &j in &downstream[i] {
                indegree[j] -= 1;
                if indegree[j] == 0 {
                    ready.insert(j);
                }
            }
        }
        if order.len() != models.len() {
            let stuck: Vec<&str> = (0..models.len())
                .filter(|&i| indegree[i] > 0)
                .map(|i| models[i].name.as_str())
                .collect();
            return Err(Error::Dag(format!(
                "the models form a cycle; involved: {}",
                stuck.join(", ")
            )));
        }
        Ok(Dag {
            models,
            index,
            order,
            downstream,
        })
    }

    /// Models in dependency order.
    pub fn ordered(&self) -> impl Iterator<Item = &Model> {
        self.order.iter().map(|&i| &self.models[i])
    }

    /// Each model's critical path: its own cost plus the costliest chain of
    /// models downstream of it (the "upward rank" of list scheduling).
    /// Starting the ready model with the longest critical path first keeps
    /// the longest chain (bronze_events → silver_events → gold engagement)
    /// from waiting behind short models, on a machine that is busy anyway.
    pub fn critical_paths(&self, cost: impl Fn(&Model) -> f64) -> HashMap<String, f64> {
        let mut rank = vec![0.0_f64; self.models.len()];
        for &i in self.order.iter().rev() {
            let downstream = self.downstream[i]
                .iter()
                .map(|&j| rank[j])
                .fold(0.0, f64::max);
            rank[i] = cost(&self.models[i]) + downstream;
        }
        self.models
            .iter()
            .zip(rank)
            .map(|(m, r)| (m.name.clone(), r))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&Model> {
        self.index.get(name).map(|&i| &self.models[i])
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Names of the models that read `name` directly.
    pub fn dependants(&self, name: &str) -> Vec<&str> {
        self.index
            .get(name)
            .map(|&i| {
                self.downstream[i]
                    .iter()
                    .map(|&j| self.models[j].name.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn closure(&self, start: usize, up: bool, into: &mut BTreeSet<usize>) {
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if !into.insert(i) {
                continue;
            }
            if up {
                stack.extend(
                    self.models[i]
                        .deps
                        .iter()
                        .filter_map(|d| self.index.get(d).copied()),
                );
            } else {
                stack.extend(self.downstream[i].iter().copied());
            }
        }
    }

    /// The models a run builds: all of them by default, else those matched by
    /// `select` (graph operators allowed), then restricted to `layer`.
    pub fn select(&self, select: &[String], layer: Option<Layer>) -> Result<BTreeSet<String>> {
        let mut chosen = BTreeSet::new();
        if !select.is_empty()
            && select
                .iter()
                .all(|s| s.split([',', ' ']).all(str::is_empty))
        {
            // An unset `$MODELS` in a scheduler's template: never "run nothing".
            return Err(Error::Config(
                "--select names no model (an empty value); leave --select out to run every model"
                    .into(),
            ));
        }
        if select.is_empty() {
            chosen.extend(0..self.models.len());
        }
        for raw in select
            .iter()
            .flat_map(|s| s.split([',', ' ']))
            .filter(|s| !s.is_empty())
        {
            let up = raw.starts_with('+');
            let down = raw.ends_with('+') && raw.len() > 1;
            let name = raw.trim_matches('+');
            let &i = self.index.get(name).ok_or_else(|| {
                Error::Config(format!(
                    "--select `{raw}`: no model named `{name}`{}",
                    suggestion(name, self.index.keys())
                ))
            })?;
            // Each closure includes `i` itself; walk both before marking it chosen.
            let mut reached = BTreeSet::new();
            if up {
                self.closure(i, true, &mut reached);
            }
            if down {
                reached.remove(&i);
                self.closure(i, false, &mut reached);
            }
            reached.insert(i);
            chosen.extend(reached);
        }
        Ok(chosen
            .into_iter()
            .filter(|&i| layer.is_none_or(|l| self.models[i].layer == l))
            .map(|i| self.models[i].name.clone())
            .collect())
    }

    /// Layer → model names, for listings.
    pub fn by_layer(&self) -> BTreeMap<Layer, Vec<&str>> {
        let mut map: BTreeMap<Layer, Vec<&str>> = BTreeMap::new();
        for m in self.ordered() {
            map.entry(m.layer).or_default().push(&m.name);
        }
        map
    }
}

/// ", did you mean `x`?" for the closest known name, if any is close.
fn suggestion<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> String {
    let best = known
        .map(|k| (edit_distance(name, k), k))
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)));
    match best {
        Some((d, k)) if d <= 3 || k.ends_with(name) => format!("; did you mean `{k}`?"),
        _ => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::model::test_model as model;

    fn sample() -> Dag {
        Dag::build(vec![
            model("gold_a", Layer::Gold, &["silver_x", "silver_y"]),
            model("silver_y", Layer::Silver, &["bronze_y"]),
            model("silver_x", Layer::Silver, &["bronze_x"]),
            model("bronze_x", Layer::Bronze, &[]),
            model("bronze_y", Layer::Bronze, &[]),
            model("gold_b", Layer::Gold, &["gold_a"]),
        ])
        .unwrap()
    }

    #[test]
    fn critical_path_adds_the_costliest_downstream_chain() {
        let dag = sample();
        let cost = |m: &Model| match m.name.as_str() {
            "bronze_x" => 1.0,
            "bronze_y" => 5.0,
            "silver_x" => 2.0,
            "silver_y" => 1.0,
            "gold_a" => 3.0,
            _ => 0.5,
        };
        let ranks = dag.critical_paths(cost);
        assert_eq!(ranks["gold_b"], 0.5);
        assert_eq!(ranks["gold_a"], 3.5);
        assert_eq!(ranks["silver_x"], 5.5);
        assert_eq!(ranks["silver_y"], 4.5);
        assert_eq!(ranks["bronze_x"], 6.5);
        // The big source goes first although its own silver model is cheap.
        assert_eq!(ranks["bronze_y"], 9.5);
    }

    #[test]
    fn order_respects_dependencies() {
        let dag = sample();
        let names: Vec<&str> = dag.ordered().map(|m| m.name.as_str()).collect();
        let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(pos("bronze_x") < pos("silver_x"));
        assert!(pos("silver_y") < pos("gold_a"));
        assert!(pos("gold_a") < pos("gold_b"));
    }

    #[test]
    fn unknown_tables_and_cycles_name_the_model() {
        let err = Dag::build(vec![
            model("gold_a", Layer::Gold, &["silver_orderz"]),
            model("silver_orders", Layer::Silver, &[]),
        ])
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("gold_a")
                && msg.contains("silver_orderz")
                && msg.contains("did you mean `silver_orders`"),
            "{msg}"
        );
        let err = Dag::build(vec![
            model("a", Layer::Gold, &["b"]),
            model("b", Layer::Gold, &["a"]),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
    }

    #[test]
    fn selection_operators() {
        let dag = sample();
        let s = |sel: &[&str], layer| {
            dag.select(
                &sel.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                layer,
            )
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>()
        };
        assert_eq!(s(&["gold_a"], None), vec!["gold_a"]);
        assert_eq!(
            s(&["+gold_a"], None),
            vec!["bronze_x", "bronze_y", "gold_a", "silver_x", "silver_y"]
        );
        assert_eq!(
            s(&["silver_x+"], None),
            vec!["gold_a", "gold_b", "silver_x"]
        );
        assert_eq!(
            s(&["+silver_x+"], None),
            vec!["bronze_x", "gold_a", "gold_b", "silver_x"]
        );
        assert_eq!(s(&[], Some(Layer::Silver)), vec!["silver_x", "silver_y"]);
        assert!(dag.select(&["nope".into()], None).is_err());
        let empty = dag.select(&["".into()], None).unwrap_err().to_string();
        assert!(empty.contains("names no model"), "{empty}");
        assert!(dag.select(&[" , ".into()], None).is_err());
    }
}
