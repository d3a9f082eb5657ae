//! The three layers of the output, in data-flow order: every module that
//! names a layer (models, Parquet settings, publishing) takes it from here.

use std::fmt;

use crate::error::{Error, Result};

/// The medallion layers, in data-flow order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Bronze,
    Silver,
    Gold,
}

impl Layer {
    pub const ALL: [Layer; 3] = [Layer::Bronze, Layer::Silver, Layer::Gold];

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Bronze => "bronze",
            Layer::Silver => "silver",
            Layer::Gold => "gold",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Layer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Layer::ALL
            .into_iter()
            .find(|l| l.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown layer `{s}`: expected bronze, silver or gold"
                ))
            })
    }
}
