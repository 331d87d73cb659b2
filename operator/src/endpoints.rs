//! Where the server is reached: its public URL (status.url, the oidc resource and default
//! audience), the host names it accepts, the default OAuth2 callback. Pure functions of the
//! spec and the ConverseServer's name and namespace.

use crate::crd::ConverseServerSpec;

/// Service port when `spec.service.port` is not set.
pub const DEFAULT_SERVICE_PORT: i32 = 80;

/// Cluster DNS domain when the operator is not told otherwise.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// Path of the MCP endpoint.
pub const MCP_PATH: &str = "/mcp";

/// Host names a port-forward or a local client uses.
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// The enabled ingress's host, if any.
pub fn ingress_host(spec: &ConverseServerSpec) -> Option<&str> {
    spec.ingress
        .as_ref()
        .filter(|i| i.enabled)
        .and_then(|i| i.host.as_deref())
}

/// The public host name: the enabled ingress's host, else the first of spec.gateway's
/// hostnames (the two are exclusive).
pub fn public_host(spec: &ConverseServerSpec) -> Option<&str> {
    ingress_host(spec).or_else(|| {
        spec.gateway
            .as_ref()
            .and_then(|g| g.hostnames.first())
            .map(String::as_str)
    })
}

/// Every host name the server is reached under from outside: the ingress host, or all of
/// spec.gateway's hostnames.
pub fn external_hosts(spec: &ConverseServerSpec) -> Vec<&str> {
    let mut hosts: Vec<&str> = ingress_host(spec).into_iter().collect();
    if let Some(gateway) = &spec.gateway {
        hosts.extend(gateway.hostnames.iter().map(String::as_str));
    }
    hosts
}

/// The Service port.
pub fn service_port(spec: &ConverseServerSpec) -> i32 {
    spec.service
        .as_ref()
        .and_then(|s| s.port)
        .unwrap_or(DEFAULT_SERVICE_PORT)
}

/// `https://<public host>/mcp` (the ingress host or the gateway's first hostname), or
/// `http://<name>.<namespace>.svc[:<port>]/mcp` without either (port omitted when 80, as URL
/// parsers normalise it away).
pub fn public_url(spec: &ConverseServerSpec, name: &str, namespace: &str) -> String {
    match public_host(spec) {
        Some(host) => format!("https://{host}{MCP_PATH}"),
        None => {
            let port = service_port(spec);
            let port = if port == 80 {
                String::new()
            } else {
                format!(":{port}")
            };
            format!("http://{name}.{namespace}.svc{port}{MCP_PATH}")
        }
    }
}

/// `https://<public host>/oauth/callback`, when there is a public host.
pub fn default_callback_url(spec: &ConverseServerSpec) -> Option<String> {
    public_host(spec).map(|host| format!("https://{host}/oauth/callback"))
}

/// `HTTP_ALLOWED_HOSTS`: `network.allowedHosts` when set; else the ingress host or the
/// gateway's hostnames, the Service's
/// DNS names and the loopback names. A DNS-rebinding attack carries the attacker's host name, so
/// admitting loopback names (for `kubectl port-forward`) does not weaken the check.
pub fn allowed_hosts(
    spec: &ConverseServerSpec,
    name: &str,
    namespace: &str,
    cluster_domain: &str,
) -> Vec<String> {
    if let Some(hosts) = spec.network.as_ref().and_then(|n| n.allowed_hosts.clone()) {
        return hosts;
    }
    let mut hosts = Vec::new();
    hosts.extend(external_hosts(spec).into_iter().map(str::to_owned));
    hosts.push(name.to_owned());
    hosts.push(format!("{name}.{namespace}"));
    hosts.push(format!("{name}.{namespace}.svc"));
    hosts.push(format!("{name}.{namespace}.svc.{cluster_domain}"));
    hosts.extend(LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()));
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Gateway, GatewayParentRef, Ingress, ServiceSpec};

    #[test]
    fn url_with_and_without_ingress() {
        let mut spec = ConverseServerSpec::default();
        assert_eq!(public_url(&spec, "a", "ns"), "http://a.ns.svc/mcp");
        spec.service = Some(ServiceSpec {
            port: Some(8080),
            ..ServiceSpec::default()
        });
        assert_eq!(public_url(&spec, "a", "ns"), "http://a.ns.svc:8080/mcp");
        spec.ingress = Some(Ingress {
            host: Some("mcp.example.com".into()),
            ..Ingress::default()
        });
        assert_eq!(public_url(&spec, "a", "ns"), "https://mcp.example.com/mcp");
        assert_eq!(
            default_callback_url(&spec).as_deref(),
            Some("https://mcp.example.com/oauth/callback")
        );
        if let Some(i) = spec.ingress.as_mut() {
            i.enabled = false;
        }
        assert_eq!(public_url(&spec, "a", "ns"), "http://a.ns.svc:8080/mcp");
        assert_eq!(default_callback_url(&spec), None);
    }

    #[test]
    fn gateway_hostnames_are_public() {
        let spec = ConverseServerSpec {
            gateway: Some(Gateway {
                parent_refs: vec![GatewayParentRef {
                    name: "public".into(),
                    ..GatewayParentRef::default()
                }],
                hostnames: vec!["mcp.example.com".into(), "mcp.example.org".into()],
            }),
            ..ConverseServerSpec::default()
        };
        assert_eq!(public_url(&spec, "a", "ns"), "https://mcp.example.com/mcp");
        assert_eq!(
            default_callback_url(&spec).as_deref(),
            Some("https://mcp.example.com/oauth/callback")
        );
        assert_eq!(
            allowed_hosts(&spec, "a", "ns", "cluster.local")[..3],
            ["mcp.example.com", "mcp.example.org", "a"]
        );
    }

    #[test]
    fn default_hosts_cover_ingress_service_and_port_forward() {
        let spec = ConverseServerSpec {
            ingress: Some(Ingress {
                host: Some("mcp.example.com".into()),
                ..Ingress::default()
            }),
            ..ConverseServerSpec::default()
        };
        assert_eq!(
            allowed_hosts(&spec, "team-a", "ai", "cluster.local"),
            [
                "mcp.example.com",
                "team-a",
                "team-a.ai",
                "team-a.ai.svc",
                "team-a.ai.svc.cluster.local",
                "localhost",
                "127.0.0.1",
                "::1"
            ]
        );
    }
}
