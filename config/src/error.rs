//! Configuration errors: one per offending variable, all reported together so an operator fixes
//! a broken deployment in one round instead of one restart per mistake.

use std::fmt;

/// One invalid variable. `message` states the rule that was broken; it contains the offending
/// value only when the variable is not secret (see [`crate::vars::is_secret`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The variable to fix. Problems with a per-custom-provider variable
    /// (`CUSTOM_<N>_BASE_URL`, ...) are reported under [`crate::vars::CUSTOM_PROVIDERS`], and the
    /// message names the actual variable.
    pub var: &'static str,
    pub message: String,
}

/// Every error found while reading the configuration, in the order the sections are read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The variables named by the errors (with repetitions), handy in tests and for metrics.
    pub fn vars(&self) -> Vec<&'static str> {
        self.0.iter().map(|e| e.var).collect()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "invalid configuration ({n} error{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn are_std_errors() {
        fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
        assert_error::<ConfigError>();
        assert_error::<ConfigErrors>();
        assert_error::<crate::ParseError>();
    }

    #[test]
    fn display_lists_every_error() {
        let errs = ConfigErrors(vec![
            ConfigError {
                var: "A",
                message: "bad".into(),
            },
            ConfigError {
                var: "B",
                message: "worse".into(),
            },
        ]);
        assert_eq!(
            errs.to_string(),
            "invalid configuration (2 errors):\n  - A: bad\n  - B: worse"
        );
        let one = ConfigErrors(vec![ConfigError {
            var: "A",
            message: "bad".into(),
        }]);
        assert_eq!(
            one.to_string(),
            "invalid configuration (1 error):\n  - A: bad"
        );
        assert_eq!(errs.vars(), vec!["A", "B"]);
    }
}
