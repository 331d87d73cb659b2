//! The optional NetworkPolicy: only the listed peers (default: the namespace's own pods) may
//! reach the server port, and the pods may connect only to what the server calls (unless
//! `egress.allowAll`).
//!
//! Egress, by default:
//! - DNS, port 53 over UDP and TCP, to any address (or `egress.dnsTo`). Not pinned to the
//!   cluster's DNS pods by default: NodeLocal DNSCache answers on a node-local address that no
//!   pod or namespace selector matches, and distributions label and place their resolver
//!   differently; pinning would silently break name resolution there. What it would buy is
//!   small: the cluster resolver recurses to the internet anyway, and HTTPS to the internet is
//!   open for the providers.
//! - The built-in providers at their default endpoints: TCP 443 to public addresses only (every
//!   address but the private, shared, loopback and link-local ranges), so the rule that reaches
//!   the internet does not reach the cluster's own services on 443.
//! - Every other URL the server calls (a provider's baseUrl, custom providers, the OIDC issuer
//!   and JWKS, the OAuth2 token and userinfo endpoints, the OTLP endpoint, Redis): its port, to
//!   any address, since these may well be in the cluster. NetworkPolicy cannot name hosts, so a
//!   port is the narrowest rule the operator can derive.
//! - `egress.extraRules`, as given.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::env::CONTAINER_PORT;
use super::{child_meta, labels};
use crate::crd::{AuthStrategy, ConverseServerSpec, NetworkPolicyEgress};
use crate::validate::ValidatedServer;

/// DNS.
pub const DNS_PORT: u16 = 53;

/// Addresses that are not on the internet: private (RFC 1918), shared (RFC 6598, also used for
/// pod networks), loopback, link-local (cloud metadata services), "this network"; IPv6 unique
/// local and link-local. Cluster networks live in these.
const NOT_PUBLIC_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
];
const NOT_PUBLIC_V6: &[&str] = &["fc00::/7", "fe80::/10"];

pub fn network_policy(
    v: &ValidatedServer,
    object_labels: &BTreeMap<String, String>,
) -> Option<NetworkPolicy> {
    let np = v.spec.network_policy.as_ref().filter(|np| np.enabled)?;
    let from = if np.ingress_from.is_empty() {
        // An empty pod selector without a namespace selector: every pod of this namespace.
        vec![NetworkPolicyPeer {
            pod_selector: Some(LabelSelector::default()),
            ..NetworkPolicyPeer::default()
        }]
    } else {
        np.ingress_from.clone()
    };
    let egress = np.egress.clone().unwrap_or_default();
    let egress_rules = (egress.allow_all != Some(true)).then(|| egress_rules(v, &egress));
    let mut policy_types = vec!["Ingress".to_owned()];
    if egress_rules.is_some() {
        policy_types.push("Egress".to_owned());
    }
    Some(NetworkPolicy {
        metadata: child_meta(v, v.name.clone(), object_labels, BTreeMap::new()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels::selector(&v.name)),
                match_expressions: None,
            }),
            policy_types: Some(policy_types),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from),
                // The number, not the name: some CNI plugins ignore named ports.
                ports: Some(vec![tcp(CONTAINER_PORT)]),
            }]),
            egress: egress_rules,
        }),
    })
}

/// The egress rules: DNS, the public providers, the other destinations, the user's.
fn egress_rules(v: &ValidatedServer, egress: &NetworkPolicyEgress) -> Vec<NetworkPolicyEgressRule> {
    let mut rules = vec![NetworkPolicyEgressRule {
        to: (!egress.dns_to.is_empty()).then(|| egress.dns_to.clone()),
        ports: Some(vec![port(DNS_PORT, "UDP"), port(DNS_PORT, "TCP")]),
    }];
    let Destinations { public, anywhere } = destinations(&v.spec, v.redis_port);
    // A port open to any address needs no public-only rule besides.
    let public: BTreeSet<u16> = public.difference(&anywhere).copied().collect();
    if !public.is_empty() {
        rules.push(NetworkPolicyEgressRule {
            to: Some(vec![public_addresses(false), public_addresses(true)]),
            ports: Some(public.into_iter().map(tcp).collect()),
        });
    }
    if !anywhere.is_empty() {
        rules.push(NetworkPolicyEgressRule {
            to: None,
            ports: Some(anywhere.into_iter().map(tcp).collect()),
        });
    }
    rules.extend(egress.extra_rules.iter().cloned());
    rules
}

/// The TCP ports the server connects to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Destinations {
    /// Of services on the internet (the built-in providers' default endpoints).
    pub public: BTreeSet<u16>,
    /// Of services anywhere, the cluster included (every URL the spec names, Redis).
    pub anywhere: BTreeSet<u16>,
}

/// Where the server of `spec` connects: every URL it calls, and Redis at `redis_port`.
pub fn destinations(spec: &ConverseServerSpec, redis_port: Option<u16>) -> Destinations {
    let mut public = BTreeSet::new();
    let mut urls: Vec<&str> = Vec::new();
    for (row, _, base_url) in spec.providers.builtin() {
        match base_url {
            Some(url) => urls.push(url),
            None => public.extend(url_port(row.default_base_url)),
        }
    }
    urls.extend(spec.providers.custom.iter().map(|c| c.base_url.as_str()));
    if let Some(auth) = &spec.auth {
        // Only the strategy in force calls out (CEL keeps the other blocks away anyway).
        match auth.strategy {
            AuthStrategy::Oidc => {
                if let Some(o) = &auth.oidc {
                    // Discovery is fetched from the issuer; the keys from jwksUrl, or from where
                    // discovery points (add that in extraRules if it is another port).
                    urls.push(&o.issuer);
                    urls.extend(o.jwks_url.as_deref());
                }
            }
            AuthStrategy::OAuth2 => {
                if let Some(o) = &auth.oauth2 {
                    // The authorization URL is the browser's to visit, not the server's.
                    urls.push(&o.token_url);
                    urls.push(&o.userinfo_url);
                }
            }
            AuthStrategy::None | AuthStrategy::ApiKey | AuthStrategy::Bearer => {}
        }
    }
    urls.extend(
        spec.telemetry
            .as_ref()
            .and_then(|t| t.otlp_endpoint.as_deref()),
    );
    let mut anywhere: BTreeSet<u16> = urls.into_iter().filter_map(url_port).collect();
    anywhere.extend(redis_port);
    Destinations { public, anywhere }
}

/// The port a URL connects to: the one it names, or its scheme's (http 80, https 443).
fn url_port(url: &str) -> Option<u16> {
    url::Url::parse(url.trim()).ok()?.port_or_known_default()
}

/// Every address of one family but those that are not public.
fn public_addresses(v6: bool) -> NetworkPolicyPeer {
    let (cidr, except) = if v6 {
        ("::/0", NOT_PUBLIC_V6)
    } else {
        ("0.0.0.0/0", NOT_PUBLIC_V4)
    };
    NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: cidr.to_owned(),
            except: Some(except.iter().map(|c| (*c).to_owned()).collect()),
        }),
        ..NetworkPolicyPeer::default()
    }
}

fn tcp(number: u16) -> NetworkPolicyPort {
    port(number, "TCP")
}

fn port(number: u16, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(number))),
        protocol: Some(protocol.to_owned()),
        end_port: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_ports_are_explicit_or_the_schemes() {
        assert_eq!(url_port("https://api.openai.com/v1"), Some(443));
        assert_eq!(url_port("http://vllm.inference:8000/v1"), Some(8000));
        assert_eq!(url_port("http://fake-llm.converse-demo.svc"), Some(80));
        assert_eq!(url_port("not a url"), None);
    }

    #[test]
    fn not_public_ranges_are_valid_cidrs() {
        for c in NOT_PUBLIC_V4.iter().chain(NOT_PUBLIC_V6) {
            assert!(converse_config::parse::ip_net(c).is_ok(), "{c}");
        }
    }
}
