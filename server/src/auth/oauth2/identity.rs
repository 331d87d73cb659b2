//! Who logged in, from the identity provider's user info, and whether `MCP_OAUTH_ALLOWED_USERS`
//! lets them in.
//!
//! An e-mail address counts only when the provider says it is verified: anyone can type an
//! address into a GitHub or Google profile, so an unverified one must never match an allow-list
//! entry nor become the principal. OIDC providers say so with `email_verified`; GitHub's `/user`
//! does not, and lists verified addresses at `/user/emails` instead ([`Identity::add_listed_emails`]).

use converse_config::AllowedUser;
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `sub` (OIDC) or `id` (GitHub).
    pub subject: Option<String>,
    /// `login` (GitHub) or `preferred_username` (OIDC).
    pub login: Option<String>,
    pub verified_emails: Vec<String>,
    pub name: Option<String>,
}

fn text(user: &Value, key: &str) -> Option<String> {
    match user.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        // GitHub's numeric `id`.
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `true`, or the string "true" some providers send.
fn is_true(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true))) || matches!(v, Some(Value::String(s)) if s == "true")
}

impl Identity {
    pub fn from_userinfo(user: &Value) -> Self {
        let verified_emails = text(user, "email")
            .filter(|_| is_true(user.get("email_verified")))
            .into_iter()
            .collect();
        Self {
            subject: text(user, "sub").or_else(|| text(user, "id")),
            login: text(user, "login").or_else(|| text(user, "preferred_username")),
            verified_emails,
            name: text(user, "name"),
        }
    }

    /// Whether the user info says nothing about verification, so a provider's list of
    /// addresses (GitHub's `/user/emails`) is worth asking for.
    pub fn needs_email_list(user: &Value) -> bool {
        user.get("email_verified").is_none()
    }

    /// Adds the verified addresses of a GitHub-style list: `[{"email", "verified"}, …]`.
    pub fn add_listed_emails(&mut self, list: &Value) {
        let Some(entries) = list.as_array() else {
            return;
        };
        for entry in entries {
            if is_true(entry.get("verified"))
                && let Some(email) = text(entry, "email")
                && !self.verified_emails.contains(&email)
            {
                self.verified_emails.push(email);
            }
        }
    }

    /// The id the server's token names: the subject, else the login, else a verified e-mail.
    pub fn principal(&self) -> Option<&str> {
        self.subject
            .as_deref()
            .or(self.login.as_deref())
            .or(self.verified_emails.first().map(String::as_str))
    }

    /// Whether an entry of the allow-list names this identity.
    pub fn is_allowed(&self, allowed: &[AllowedUser]) -> bool {
        allowed.iter().any(|entry| match entry {
            AllowedUser::Anyone => true,
            AllowedUser::Identity(id) => {
                self.subject.as_deref() == Some(id.as_str())
                    || self
                        .login
                        .as_ref()
                        .is_some_and(|l| l.eq_ignore_ascii_case(id))
                    || self
                        .verified_emails
                        .iter()
                        .any(|e| e.eq_ignore_ascii_case(id))
            }
            AllowedUser::Domain(domain) => self.verified_emails.iter().any(|e| {
                e.rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn allowed(entries: &[&str]) -> Vec<AllowedUser> {
        entries
            .iter()
            .map(|e| AllowedUser::parse(e).unwrap())
            .collect()
    }

    #[test]
    fn oidc_userinfo_with_a_verified_email() {
        let id = Identity::from_userinfo(&json!({
            "sub": "248289761001", "preferred_username": "Jane",
            "email": "jane@Example.com", "email_verified": true,
        }));
        assert_eq!(id.principal(), Some("248289761001"));
        assert!(id.is_allowed(&allowed(&["248289761001"])));
        assert!(id.is_allowed(&allowed(&["jane"])));
        assert!(id.is_allowed(&allowed(&["JANE@example.com"])));
        assert!(id.is_allowed(&allowed(&["@example.com"])));
        assert!(!id.is_allowed(&allowed(&["@example.org", "2482897610"])));
        assert!(!Identity::needs_email_list(
            &json!({"email_verified": false})
        ));
    }

    #[test]
    fn an_unverified_email_matches_nothing_and_names_nobody() {
        for user in [
            json!({"email": "ceo@example.com"}),
            json!({"email": "ceo@example.com", "email_verified": false}),
            json!({"email": "ceo@example.com", "email_verified": "false"}),
        ] {
            let id = Identity::from_userinfo(&user);
            assert!(!id.is_allowed(&allowed(&["ceo@example.com"])), "{user}");
            assert!(!id.is_allowed(&allowed(&["@example.com"])), "{user}");
            assert_eq!(id.principal(), None, "{user}");
        }
    }

    #[test]
    fn github_user_and_its_email_list() {
        let user = json!({"id": 583231, "login": "octocat", "email": "octo@github.com"});
        assert!(Identity::needs_email_list(&user));
        let mut id = Identity::from_userinfo(&user);
        assert_eq!(id.principal(), Some("583231"));
        assert!(
            id.verified_emails.is_empty(),
            "the profile address is not known verified"
        );
        id.add_listed_emails(&json!([
            {"email": "octo@github.com", "verified": true, "primary": true},
            {"email": "octo@evil.example", "verified": false},
        ]));
        assert!(id.is_allowed(&allowed(&["@github.com"])));
        assert!(!id.is_allowed(&allowed(&["@evil.example"])));
        assert!(id.is_allowed(&allowed(&["OctoCat"])));
        assert!(id.is_allowed(&allowed(&["*"])));
        id.add_listed_emails(&json!({"message": "Not Found"}));
        assert_eq!(id.verified_emails, ["octo@github.com"]);
    }
}
