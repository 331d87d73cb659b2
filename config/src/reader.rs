//! The environment as the section parsers see it: lookups where an empty value counts as unset,
//! typed getters that record an error instead of failing fast, and the error/warning sinks.

use std::collections::HashMap;
use std::fmt::Display;

use crate::error::ConfigError;
use crate::vars;

pub(crate) struct Reader {
    vars: HashMap<String, String>,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
}

impl Reader {
    pub(crate) fn new<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        Reader {
            vars,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The value exactly as given, or `None` when unset or blank (an empty value means "use the
    /// default", as in converse 1.3.2; Kubernetes renders an absent optional field that way).
    pub(crate) fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The value without surrounding whitespace (a Secret created from a file usually ends in a
    /// newline), or `None` when unset or blank.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).map(str::trim)
    }

    pub(crate) fn is_set(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// All variable names present, for the near-miss check.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    pub(crate) fn error(&mut self, var: &'static str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            var,
            message: message.into(),
        });
    }

    /// Whether an error was already recorded for `var`; cross-field rules use it to avoid
    /// reporting "missing" for a variable that was present but malformed.
    pub(crate) fn has_error(&self, var: &str) -> bool {
        self.errors.iter().any(|e| e.var == var)
    }

    /// Record that `value` of `var` broke `rule`. The value is quoted only for non-secret
    /// variables; `shown_as` lets per-custom-provider variables be named in the message.
    pub(crate) fn invalid_named(
        &mut self,
        var: &'static str,
        shown_as: &str,
        value: &str,
        rule: impl Display,
    ) {
        let prefix = if shown_as == var {
            String::new()
        } else {
            format!("{shown_as}: ")
        };
        let message = if vars::is_secret(shown_as) {
            format!("{prefix}invalid value (not shown: secret): {rule}")
        } else {
            format!("{prefix}invalid value {value:?}: {rule}")
        };
        self.error(var, message);
    }

    pub(crate) fn invalid(&mut self, var: &'static str, value: &str, rule: impl Display) {
        self.invalid_named(var, var, value, rule);
    }

    pub(crate) fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    /// Parse `var` with `f`; `None` when unset or invalid (the error is recorded).
    pub(crate) fn parse_opt<T, E: Display>(
        &mut self,
        var: &'static str,
        f: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let value = self.get(var)?.to_owned();
        match f(&value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.invalid(var, &value, e);
                None
            }
        }
    }

    /// Parse `var` with `f`, falling back to `default` when unset or invalid.
    pub(crate) fn parse_or<T, E: Display>(
        &mut self,
        var: &'static str,
        default: T,
        f: impl FnOnce(&str) -> Result<T, E>,
    ) -> T {
        self.parse_opt(var, f).unwrap_or(default)
    }

    /// A free-text variable with a default. Control characters (a stray line break) are
    /// rejected: these values end up in HTTP headers, token claims and log lines.
    pub(crate) fn string_or(&mut self, var: &'static str, default: &str) -> String {
        self.string(var).unwrap_or_else(|| default.to_owned())
    }

    /// An optional free-text variable, without control characters (see [`Reader::string_or`]).
    pub(crate) fn string(&mut self, var: &'static str) -> Option<String> {
        self.parse_opt(var, |s| {
            if s.chars().any(char::is_control) {
                Err("contains a control character such as a line break")
            } else {
                Ok(s.to_owned())
            }
        })
    }

    /// Read a variable that has an alias. The primary wins; when both are set to different
    /// values, `conflict_is_error` decides whether that is an error or a warning.
    /// Returns the name actually used and its value.
    pub(crate) fn aliased(
        &mut self,
        primary: &'static str,
        alias: &'static str,
        conflict_is_error: bool,
    ) -> Option<(&'static str, String)> {
        let p = self.get(primary).map(str::to_owned);
        let a = self.get(alias).map(str::to_owned);
        match (p, a) {
            (Some(p), Some(a)) if p != a => {
                if conflict_is_error {
                    self.error(
                        primary,
                        format!("{primary} and its alias {alias} are both set, to different values; set only one"),
                    );
                } else {
                    self.warn(format!("{primary} and its alias {alias} are both set, to different values; {primary} is used"));
                }
                Some((primary, p))
            }
            (Some(p), _) => Some((primary, p)),
            (None, Some(a)) => Some((alias, a)),
            (None, None) => None,
        }
    }

    pub(crate) fn finish(self) -> (Vec<ConfigError>, Vec<String>) {
        (self.errors, self.warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_unset_and_values_are_trimmed() {
        let r = Reader::new([("A", ""), ("B", "  \n"), ("C", " x \n")]);
        assert_eq!(r.get("A"), None);
        assert_eq!(r.get("B"), None);
        assert_eq!(r.get("C"), Some("x"));
        assert_eq!(r.raw("C"), Some(" x \n"));
        assert!(!r.is_set("D"));
    }

    #[test]
    fn invalid_hides_secret_values() {
        let mut r = Reader::new([("REDIS_URL", "hunter2"), ("HTTP_PORT", "abc")]);
        let _ = r.parse_opt("REDIS_URL", |_| Err::<(), _>("must be redis://"));
        let _ = r.parse_opt("HTTP_PORT", |_| Err::<(), _>("must be a port"));
        let (errors, _) = r.finish();
        assert_eq!(errors.len(), 2);
        assert!(!errors[0].message.contains("hunter2"));
        assert!(errors[0].message.contains("not shown"));
        assert!(errors[1].message.contains("\"abc\""));
    }
}
