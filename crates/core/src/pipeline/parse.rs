//! Reading a pipeline file: TOML into the typed structs, errors with line
//! and column, then validation.

use super::*;

/// A pipeline that could not be used: where, and why. Displays as one line.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    /// `line L, column C` for syntax and type errors, a field path otherwise.
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl std::error::Error for ConfigError {}

pub(super) fn err(location: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { location: location.into(), message: message.into() }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl Pipeline {
    /// Parses and validates a pipeline file's text.
    ///
    /// ```
    /// use nnqft_core::Pipeline;
    /// let p = Pipeline::from_toml(nnqft_core::pipeline::DEFAULT_PIPELINE_TOML).unwrap();
    /// assert_eq!(p.name, "quick");
    /// let e = Pipeline::from_toml("name = \"x\"\nseed = 1\nsedd = 2\n").unwrap_err();
    /// assert!(e.to_string().starts_with("line 3, column 1: unknown field `sedd`"), "{e}");
    /// ```
    pub fn from_toml(text: &str) -> Result<Pipeline, ConfigError> {
        let (p, analysis) = Pipeline::parse(text)?;
        match analysis {
            Some(e) => Err(e),
            None => Ok(p),
        }
    }

    /// Like [`Pipeline::from_toml`], but an error in the analysis tables
    /// (`[fit]`, `[rg]`) is returned beside the pipeline instead of failing:
    /// sampling and moments do not depend on them, so a mistake there must
    /// not stop a long run (the fit and rg stages refuse it).
    ///
    /// ```
    /// use nnqft_core::Pipeline;
    /// let text = nnqft_core::pipeline::DEFAULT_PIPELINE_TOML.replace("cutoff = 100.0", "cutoff = -1.0");
    /// assert!(Pipeline::from_toml(&text).is_err());
    /// let (p, analysis) = Pipeline::parse(&text).unwrap();
    /// assert_eq!(p.name, "quick");
    /// assert!(analysis.unwrap().to_string().starts_with("fit.run[0].cutoff"));
    /// ```
    pub fn parse(text: &str) -> Result<(Pipeline, Option<ConfigError>), ConfigError> {
        let p: Pipeline = toml::from_str(text).map_err(|e| {
            let location = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    format!("line {l}, column {c}")
                }
                None => "pipeline".to_string(),
            };
            err(location, e.message().trim().replace('\n', "; "))
        })?;
        p.validate_sampling()?;
        let analysis = p.validate_analysis().err();
        Ok((p, analysis))
    }
}
