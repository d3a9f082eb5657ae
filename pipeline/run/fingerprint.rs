//! What a table version is built from, as one digest (its fingerprint):
//! the binary, the model's SQL after macros, its storage format, its data tests, the business
//! variables, the as-of date when the SQL reads it, and the fingerprint of
//! every table it reads. A model whose fingerprint equals the one in its
//! published marker would publish the same rows, so a run skips it
//! (`skipped: unchanged`). Sources are fingerprinted by their declaration
//! and input files (`changes.rs`).

use twox_hash::xxhash3_128::Hasher as Xxh3;

use super::context::Run;
use crate::models::Model;

/// Digest of labelled parts; the lengths are hashed too, so ("ab", "c")
/// and ("a", "bc") differ. The parts are small (SQL, names, digests), so
/// they are gathered and hashed at once.
pub struct Digest(Vec<u8>);

impl Digest {
    /// A digest of a `kind` of table, salted with the binary's version
    /// (a new release may parse or compute differently).
    pub fn new(kind: &str) -> Digest {
        let mut digest = Digest(Vec::new());
        digest.add(concat!("medallion ", env!("CARGO_PKG_VERSION")).as_bytes());
        digest.add(kind.as_bytes());
        digest
    }

    pub fn add(&mut self, bytes: &[u8]) -> &mut Digest {
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// 32 hex digits.
    pub fn finish(&self) -> String {
        format!("{:032x}", Xxh3::oneshot(&self.0))
    }
}

/// The fingerprint of a SQL model in this run; `None` when an input's
/// version is unknown (never published, or by a version without
/// fingerprints), which means: build it.
pub fn sql_model(run: &Run, model: &Model, sql: &str) -> Option<String> {
    if is_volatile(sql) {
        return None;
    }
    let mut digest = base_digest(run, model, sql);
    if sql.contains("as_of_date") || format!("{:?}", model.tests).contains("as_of_date") {
        digest.add(run.as_of.to_string().as_bytes());
    }
    // An incremental table publishes the dates up to the as-of date.
    if model.incremental.is_some() {
        digest.add(b"as of").add(run.as_of.to_string().as_bytes());
    }
    for dep in &model.deps {
        digest.add(dep.as_bytes()).add(run.version(dep)?.as_bytes());
    }
    Some(digest.finish())
}

/// What a SQL model is apart from its inputs and the as-of date: its
/// name, format, SQL after macros, tests, variables and incremental
/// declaration. An incremental table built with another base is rebuilt whole.
pub fn base(run: &Run, model: &Model, sql: &str) -> String {
    base_digest(run, model, sql).finish()
}

fn base_digest(run: &Run, model: &Model, sql: &str) -> Digest {
    let mut digest = Digest::new("sql");
    let tests = format!("{:?}", model.tests);
    // The storage format too: switching it must republish the table.
    let format = run.config.table_format.of(model.layer.as_str());
    digest
        .add(model.name.as_bytes())
        .add(format.as_str().as_bytes())
        .add(sql.as_bytes())
        .add(tests.as_bytes());
    let variables = format!(
        "{:?} {:?}",
        run.config.variables.as_map(),
        run.config.variables.text_map()
    );
    digest.add(variables.as_bytes());
    digest.add(format!("{:?}", model.incremental).as_bytes());
    digest
}

/// SQL whose result changes from run to run with the same inputs (the
/// clock, randomness): such a model is always built.
fn is_volatile(sql: &str) -> bool {
    let sql = sql.to_ascii_lowercase();
    [
        "now()",
        "current_date",
        "current_time",
        "random()",
        "uuid()",
    ]
    .iter()
    .any(|f| sql.contains(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_separate_their_parts() {
        let ab_c = Digest::new("t").add(b"ab").add(b"c").finish();
        let a_bc = Digest::new("t").add(b"a").add(b"bc").finish();
        assert_ne!(ab_c, a_bc);
        assert_eq!(ab_c, Digest::new("t").add(b"ab").add(b"c").finish());
        assert_ne!(ab_c, Digest::new("u").add(b"ab").add(b"c").finish());
        assert_eq!(ab_c.len(), 32);
    }

    #[test]
    fn the_clock_and_randomness_make_a_model_volatile() {
        assert!(is_volatile("select NOW() as t"));
        assert!(is_volatile("select * from t where d <= current_date"));
        assert!(!is_volatile(
            "select utc_date(ts) from t where d <= as_of_date()"
        ));
    }
}
