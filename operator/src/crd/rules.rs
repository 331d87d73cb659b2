//! The CEL rules (`x-kubernetes-validations`) of the CRD: every cross-field rule the API server
//! can check at `kubectl apply` time. Each constructor returns the rule(s) for the type named in
//! its doc; the transforms at the end attach them (`#[schemars(transform = rules::auth)]`), so a
//! type's rules are listed in one place.
//!
//! Lists of names (managed variables, built-in providers, selector labels, strategies) are
//! generated from the constants that own them, never typed here, so the rules cannot drift from
//! the server or the builders.
//!
//! Every list or string a rule walks is bounded in the schema (`maxItems`, `maxLength`), which
//! keeps the API server's cost estimate low.

use converse_config::BUILTIN_PROVIDERS;
use kube::core::{Message, Reason, Rule};
use schemars::Schema;
use serde_json::Value;

use super::auth::AuthStrategy;

/// `['A', 'B']` as a CEL list literal. Only used with our own constants (no quoting needed,
/// checked by a test).
fn cel_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// `self.enabled`, treating an absent field as its schema default (true): the API server applies
/// defaults before it validates, client-side evaluation in tests does not.
const INGRESS_ENABLED: &str = "(!has(self.ingress.enabled) || self.ingress.enabled)";

/// `ConverseServerSpec`: replicas and autoscaling are exclusive.
pub fn replicas_xor_autoscaling() -> Rule {
    Rule::new("!(has(self.replicas) && has(self.autoscaling))")
        .message(
            "spec.replicas and spec.autoscaling are mutually exclusive: set replicas for a fixed \
             size, or autoscaling to let a HorizontalPodAutoscaler own the replica count",
        )
        .reason(Reason::FieldValueForbidden)
}

/// `ConverseServerSpec`: one way in from outside the cluster. Both blocks would publish the same
/// paths twice, under hosts that both claim to be the public URL.
pub fn gateway_xor_ingress() -> Rule {
    Rule::new("!(has(self.gateway) && has(self.ingress))")
        .message(
            "spec.gateway and spec.ingress are mutually exclusive: expose the server through an \
             HTTPRoute (gateway) or an Ingress (ingress), not both",
        )
        .reason(Reason::FieldValueForbidden)
}

/// `ConverseServerSpec`: the OAuth2 callback URL is needed by the identity provider, so it must
/// be known: given, or derived from the ingress host.
pub fn oauth2_callback_known() -> Rule {
    Rule::new(format!(
        "!has(self.auth) || !has(self.auth.oauth2) || has(self.auth.oauth2.callbackUrl) || \
         (has(self.ingress) && {INGRESS_ENABLED} && has(self.ingress.host)) || \
         has(self.gateway)"
    ))
    .message(
        "auth.oauth2.callbackUrl is required unless spec.ingress is enabled with a host (then it \
         defaults to https://<ingress.host>/oauth/callback) or spec.gateway is set (then \
         https://<gateway.hostnames[0]>/oauth/callback)",
    )
    .reason(Reason::FieldValueRequired)
}

/// `ConverseServerSpec`: header-based session affinity is implemented by the ingress controller.
pub fn session_affinity_needs_ingress() -> Rule {
    Rule::new(format!(
        "!has(self.sessions) || !has(self.sessions.affinity) || \
         self.sessions.affinity != 'SessionHeader' || (has(self.ingress) && {INGRESS_ENABLED})"
    ))
    .message(
        "sessions.affinity SessionHeader is implemented by the ingress controller: enable \
         spec.ingress, or use affinity None (the stateless protocol mode needs no affinity)",
    )
}

/// `Auth`: for each strategy with a configuration block, the strategy requires its block and the
/// block requires its strategy.
pub fn auth_strategy_blocks() -> Vec<Rule> {
    let mut rules = Vec::new();
    for strategy in AuthStrategy::ALL {
        let Some(block) = strategy.block() else {
            continue;
        };
        let s = strategy.as_str();
        rules.push(
            Rule::new(format!(
                "!has(self.strategy) || self.strategy != '{s}' || has(self.{block})"
            ))
            .message(Message::Message(format!(
                "auth.strategy {s} requires auth.{block}"
            )))
            .reason(Reason::FieldValueRequired),
        );
        rules.push(
            Rule::new(format!(
                "!has(self.{block}) || (has(self.strategy) && self.strategy == '{s}')"
            ))
            .message(Message::Message(format!(
                "auth.{block} is only allowed with auth.strategy {s}; remove it or change the \
                 strategy"
            )))
            .reason(Reason::FieldValueForbidden),
        );
    }
    rules
}

/// `Auth`: `required: true` without a strategy would look secure and not be.
pub fn auth_required_needs_strategy() -> Rule {
    Rule::new(
        "!(has(self.required) && self.required) || (has(self.strategy) && self.strategy != 'none')",
    )
    .message("auth.required true needs an auth.strategy other than none")
    .reason(Reason::FieldValueForbidden)
}

/// `BearerAuth`: exactly one key source, and the one the algorithm verifies with.
pub fn bearer_key_source() -> Vec<Rule> {
    vec![
        Rule::new("has(self.secretRef) != has(self.publicKeySecretRef)").message(
            "set exactly one of secretRef (HS256/HS384/HS512: the shared secret) and \
                 publicKeySecretRef (RS*, ES*, PS*, EdDSA: a PEM public key)",
        ),
        Rule::new(
            "(has(self.algorithm) && !self.algorithm.startsWith('HS')) ? \
             !has(self.secretRef) : !has(self.publicKeySecretRef)",
        )
        .message(Message::Expression(
            "'algorithm ' + (has(self.algorithm) ? self.algorithm : 'HS256') + \
             ((has(self.algorithm) && !self.algorithm.startsWith('HS')) ? \
             ' verifies with a public key: use publicKeySecretRef, not secretRef' : \
             ' verifies with a shared secret: use secretRef, not publicKeySecretRef')"
                .to_owned(),
        )),
    ]
}

/// `OAuth2Auth`: the accounts that may log in are named (anyone can make an account at GitHub
/// or Google, so "whoever logs in" is never the default), and `*` (every account) stands alone:
/// next to it any other entry would look like a restriction and be none.
pub fn oauth2_allowed_users() -> Vec<Rule> {
    vec![
        Rule::new("has(self.allowedUsers) && size(self.allowedUsers) > 0")
            .message(
                "auth.oauth2.allowedUsers is required: anyone can make an account at the \
                 identity provider, so name who may log in (subject ids, logins, verified \
                 e-mails, @domain), or ['*'] to let every account in",
            )
            .reason(Reason::FieldValueRequired),
        Rule::new(
            "!has(self.allowedUsers) || !('*' in self.allowedUsers) || \
             size(self.allowedUsers) == 1",
        )
        .message(
            "auth.oauth2.allowedUsers: '*' (every account) must be the only entry; remove it to \
             allow only the listed accounts",
        ),
    ]
}

/// `Providers`: at least one provider. The field names come from the provider table.
pub fn at_least_one_provider() -> Rule {
    let fields: Vec<&str> = BUILTIN_PROVIDERS.iter().map(|p| p.crd_field).collect();
    let builtin: Vec<String> = fields.iter().map(|f| format!("has(self.{f})")).collect();
    Rule::new(format!(
        "{} || (has(self.custom) && size(self.custom) > 0)",
        builtin.join(" || ")
    ))
    .message(Message::Message(format!(
        "configure at least one provider: {} or custom",
        fields.join(", ")
    )))
    .reason(Reason::FieldValueRequired)
}

/// `CustomProvider`: a custom provider may not take a built-in name (the server refuses it).
pub fn custom_provider_name_not_builtin() -> Rule {
    Rule::new(format!(
        "!(self.name in {})",
        cel_list(converse_config::builtin_providers::reserved_names())
    ))
    .message("a custom provider may not use the name of a built-in provider")
}

/// `Ingress`: the host is what the public URL, the allowed hosts and TLS are built from.
pub fn ingress_host() -> Vec<Rule> {
    vec![
        Rule::new("!has(self.tls) || has(self.host)")
            .message("ingress.tls needs ingress.host (the certificate is for that host)")
            .reason(Reason::FieldValueRequired),
        Rule::new("(has(self.enabled) && !self.enabled) || has(self.host)")
            .message(
                "ingress.host is required when the ingress is enabled: it is the public host \
                 name (status.url, allowed hosts, OAuth callback)",
            )
            .reason(Reason::FieldValueRequired),
    ]
}

/// `PodDisruptionBudget`: Kubernetes allows only one of the two.
pub fn pdb_one_bound() -> Rule {
    Rule::new("has(self.minAvailable) != has(self.maxUnavailable)")
        .message("set exactly one of minAvailable and maxUnavailable")
}

/// `Files`: the files directory comes from one place.
pub fn files_one_source() -> Rule {
    Rule::new("has(self.configMap) != has(self.persistentVolumeClaim)")
        .message("set exactly one of files.configMap and files.persistentVolumeClaim")
}

/// `FilesItem`: the kubelet refuses a projected path that is absolute, has a `..` element or
/// starts with `..` (the volume's own `..data`); refused here, the Deployment never fails to
/// apply over it. The same rule as `FilesItem::path_is_valid`.
pub fn files_item_path() -> Rule {
    Rule::new(
        "!self.path.startsWith('/') && !self.path.startsWith('..') && \
         !self.path.contains('/../') && !self.path.endsWith('/..')",
    )
    .message(
        "files.configMap.items[].path must be relative, without a '..' element, and not start \
         with '..'",
    )
    .reason(Reason::FieldValueInvalid)
}

/// `Autoscaling`: a range that is not empty.
pub fn autoscaling_range() -> Rule {
    Rule::new("!has(self.minReplicas) || self.minReplicas <= self.maxReplicas")
        .message("autoscaling.minReplicas must not exceed autoscaling.maxReplicas")
}

/// `Conversations`: a Redis store needs to know where Redis is.
pub fn redis_store_needs_url() -> Rule {
    Rule::new("!has(self.store) || self.store != 'Redis' || has(self.redis)")
        .message("conversations.store Redis requires conversations.redis.urlSecretRef")
        .reason(Reason::FieldValueRequired)
}

/// `Cors`: browsers refuse credentials together with a wildcard (and the server refuses to
/// start with that combination).
pub fn cors_credentials_without_wildcard() -> Rule {
    Rule::new(
        "!has(self.credentials) || !self.credentials || \
         (has(self.origins) && !('*' in self.origins) && \
          (!has(self.methods) || !('*' in self.methods)) && \
          (!has(self.headers) || !('*' in self.headers)))",
    )
    .message(
        "cors.credentials true needs an explicit cors.origins list and no '*' in origins, \
         methods or headers",
    )
}

/// `NetworkPolicyEgress`: with egress left open, narrowing DNS or adding rules would do nothing,
/// and a reader would believe the pods restricted.
pub fn egress_allow_all_alone() -> Rule {
    Rule::new(
        "!(has(self.allowAll) && self.allowAll) || \
         ((!has(self.dnsTo) || size(self.dnsTo) == 0) && \
          (!has(self.extraRules) || size(self.extraRules) == 0))",
    )
    .message(
        "networkPolicy.egress.allowAll true leaves egress open, so dnsTo and extraRules would \
         have no effect: remove them, or allowAll",
    )
    .reason(Reason::FieldValueForbidden)
}

/// `PodOptions.labels`: the selector labels belong to the operator.
pub fn pod_labels_not_selector() -> Rule {
    let keys = crate::desired::labels::SELECTOR_KEYS;
    let checks: Vec<String> = keys.iter().map(|k| format!("!('{k}' in self)")).collect();
    Rule::new(checks.join(" && ")).message(Message::Message(format!(
        "pod.labels may not set {}: the operator uses them to select the pods",
        keys.join(", ")
    )))
}

/// The variables `env` may not set: every variable of the server's contract
/// (`converse_config::vars::VARIABLES`), plus every `CUSTOM_*` (custom providers are configured
/// under spec.providers.custom). Setting one through `env` would fight the spec field that
/// manages it, or configure something the operator's validation never saw.
pub fn managed_variable_names() -> Vec<&'static str> {
    converse_config::VARIABLES.iter().map(|v| v.name).collect()
}

/// Prefix of the per-custom-provider variables, all managed.
pub const MANAGED_PREFIX: &str = "CUSTOM_";

/// `spec.env[*]`: an entry may not set a managed variable. Attached to each item (not the
/// list) so the API server's cost estimate stays small and the error points at the entry.
pub fn env_not_managed() -> Rule {
    let names = cel_list(managed_variable_names());
    Rule::new(format!(
        "!(self.name in {names}) && !self.name.startsWith('{MANAGED_PREFIX}')"
    ))
    .message(Message::Expression(
        "'env may not set ' + self.name + ': the operator manages it from the spec (see \
         kubectl explain converseserver.spec)'"
            .to_owned(),
    ))
    .reason(Reason::FieldValueForbidden)
}

// ---------------------------------------------------------------------------------------------
// Transforms: which rules each type carries.
// ---------------------------------------------------------------------------------------------

/// Append `rules` to the schema's `x-kubernetes-validations`.
fn attach(schema: &mut Schema, rules: impl IntoIterator<Item = Rule>) {
    let rules = rules
        .into_iter()
        .filter_map(|rule| serde_json::to_value(rule).ok());
    let object = schema.ensure_object();
    let entry = object
        .entry("x-kubernetes-validations")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = entry {
        list.extend(rules);
    }
}

/// Rules of `ConverseServerSpec`.
pub fn spec(schema: &mut Schema) {
    attach(
        schema,
        [
            replicas_xor_autoscaling(),
            gateway_xor_ingress(),
            oauth2_callback_known(),
            session_affinity_needs_ingress(),
        ],
    );
}

/// Rules of `Auth`.
pub fn auth(schema: &mut Schema) {
    attach(schema, [auth_required_needs_strategy()]);
    attach(schema, auth_strategy_blocks());
}

/// Rules of `OAuth2Auth`.
pub fn oauth2(schema: &mut Schema) {
    attach(schema, oauth2_allowed_users());
}

/// Rules of `BearerAuth`.
pub fn bearer(schema: &mut Schema) {
    attach(schema, bearer_key_source());
}

/// Rules of `Providers`.
pub fn providers(schema: &mut Schema) {
    attach(schema, [at_least_one_provider()]);
}

/// Rules of `CustomProvider`.
pub fn custom_provider(schema: &mut Schema) {
    attach(schema, [custom_provider_name_not_builtin()]);
}

/// Rules of `Ingress`.
pub fn ingress(schema: &mut Schema) {
    attach(schema, ingress_host());
}

/// Rules of `PodDisruptionBudgetSpec`.
pub fn pdb(schema: &mut Schema) {
    attach(schema, [pdb_one_bound()]);
}

/// Rules of `Files`.
pub fn files(schema: &mut Schema) {
    attach(schema, [files_one_source()]);
}

/// Rules of `FilesItem`.
pub fn files_item(schema: &mut Schema) {
    attach(schema, [files_item_path()]);
}

/// Rules of `Autoscaling`.
pub fn autoscaling(schema: &mut Schema) {
    attach(schema, [autoscaling_range()]);
}

/// Rules of `Conversations`.
pub fn conversations(schema: &mut Schema) {
    attach(schema, [redis_store_needs_url()]);
}

/// Rules of `Cors`.
pub fn cors(schema: &mut Schema) {
    attach(schema, [cors_credentials_without_wildcard()]);
}

/// Rules of `NetworkPolicyEgress`.
pub fn network_policy_egress(schema: &mut Schema) {
    attach(schema, [egress_allow_all_alone()]);
}

/// Rules of `PodOptions.labels`.
pub fn pod_labels(schema: &mut Schema) {
    attach(schema, [pod_labels_not_selector()]);
}

/// Rules of `spec.env` (on its items).
pub fn env(schema: &mut Schema) {
    let Some(items) = schema.get_mut("items") else {
        return;
    };
    if let Ok(mut item) = Schema::try_from(items.clone()) {
        attach(&mut item, [env_not_managed()]);
        *items = item.to_value();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_literals_need_no_escaping() {
        for name in managed_variable_names()
            .into_iter()
            .chain(converse_config::builtin_providers::reserved_names())
            .chain(crate::desired::labels::SELECTOR_KEYS.iter().copied())
        {
            assert!(
                !name.contains(['\'', '\\', '"']),
                "{name} would need escaping in CEL"
            );
        }
    }

    #[test]
    fn every_variable_is_managed() {
        let names = managed_variable_names();
        assert_eq!(names.len(), converse_config::VARIABLES.len());
        assert!(names.contains(&converse_config::vars::MCP_API_KEYS));
        assert!(env_not_managed().rule.contains("'HTTP_ALLOWED_HOSTS'"));
    }
}
