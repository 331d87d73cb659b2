//! The labels every child carries (the recommended `app.kubernetes.io/*` set). The selector
//! labels never change for a given ConverseServer, so Deployments and Services keep selecting
//! their pods across upgrades; `version` is on objects but never in a selector.

use std::collections::BTreeMap;

pub const NAME: &str = "app.kubernetes.io/name";
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const VERSION: &str = "app.kubernetes.io/version";

/// Value of [`NAME`].
pub const APP_NAME: &str = "converse-server";
/// Value of [`MANAGED_BY`].
pub const MANAGER: &str = "converse-operator";

/// The label keys used in selectors, which users may not override on pods.
pub const SELECTOR_KEYS: &[&str] = &[NAME, INSTANCE, MANAGED_BY];

/// Labels that select the pods of ConverseServer `instance`.
pub fn selector(instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_owned(), APP_NAME.to_owned()),
        (INSTANCE.to_owned(), instance.to_owned()),
        (MANAGED_BY.to_owned(), MANAGER.to_owned()),
    ])
}

/// Labels of every child and pod: the selector plus the server version.
pub fn labels(instance: &str, version: &str) -> BTreeMap<String, String> {
    let mut labels = selector(instance);
    labels.insert(VERSION.to_owned(), version.to_owned());
    labels
}

/// A label value from an image tag: at most 63 characters of `[A-Za-z0-9._-]`, starting and
/// ending with an alphanumeric character; `None` when nothing usable is left.
pub fn label_value(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}
