//! Phase 3 from fixtures: the objects one ConverseServer becomes.

mod common;

use std::collections::BTreeMap;

use converse_operator::desired::{BuildError, CONFIG_HASH_ANNOTATION, labels};
use converse_operator::{Dereferenced, build, validate};
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use common::*;

fn pod_spec(objects: &converse_operator::DesiredObjects) -> &PodSpec {
    objects.deployment.spec.template.spec.as_ref().unwrap()
}

fn env_value<'a>(objects: &'a converse_operator::DesiredObjects, name: &str) -> Option<&'a str> {
    container(objects)
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

#[test]
fn children_are_named_labelled_and_owned() {
    for (stem, server) in servers() {
        let name = server.metadata.name.clone().unwrap();
        let o = render(&server);
        let metas = [
            Some(&o.deployment.metadata),
            Some(&o.service.metadata),
            Some(&o.service_account.metadata),
            o.ingress.as_ref().map(|i| &i.metadata),
            o.pod_disruption_budget.as_ref().map(|p| &p.metadata),
            o.horizontal_pod_autoscaler.as_ref().map(|h| &h.metadata),
            o.network_policy.as_ref().map(|n| &n.metadata),
        ];
        for meta in metas.into_iter().flatten() {
            assert_eq!(meta.name.as_deref(), Some(name.as_str()), "{stem}");
            assert_eq!(meta.namespace, server.metadata.namespace, "{stem}");
            let l = meta.labels.as_ref().unwrap();
            assert_eq!(l[labels::NAME], "converse-server", "{stem}");
            assert_eq!(l[labels::INSTANCE], name, "{stem}");
            assert_eq!(l[labels::MANAGED_BY], "converse-operator", "{stem}");
            assert!(l.contains_key(labels::VERSION), "{stem}");
            let owner = &meta.owner_references.as_ref().unwrap()[0];
            assert_eq!(owner.kind, "ConverseServer");
            assert_eq!(owner.controller, Some(true));
            assert_eq!(Some(&owner.uid), server.metadata.uid.as_ref());
        }
        // The selector never carries the version (it would break on upgrade).
        let selector = o.deployment.spec.selector.match_labels.clone().unwrap();
        assert_eq!(selector, labels::selector(&name), "{stem}");
    }
}

#[test]
fn version_label_follows_the_image() {
    let o = render(&server_named("apikey-ingress"));
    assert_eq!(
        o.deployment.metadata.labels.as_ref().unwrap()[labels::VERSION],
        "1.4.0"
    );
    assert_eq!(
        container(&o).image.as_deref(),
        Some("ghcr.io/converse-on-kubernetes/converse-server:1.4.0")
    );
    // Default image from the operator; digest-only image falls back to the operator's version.
    let o = render(&server_named("none-minimal"));
    assert_eq!(
        container(&o).image.as_deref(),
        Some("ghcr.io/converse-on-kubernetes/converse-server:0.1.0")
    );
    let o = render(&server_named("everything"));
    assert_eq!(
        o.deployment.metadata.labels.as_ref().unwrap()[labels::VERSION],
        "0.1.0"
    );
}

#[test]
fn pods_are_restricted() {
    for (stem, server) in servers() {
        let o = render(&server);
        let pod = pod_spec(&o);
        assert_eq!(pod.automount_service_account_token, Some(false), "{stem}");
        assert_eq!(pod.enable_service_links, Some(false), "{stem}");
        assert_eq!(pod.service_account_name, server.metadata.name, "{stem}");
        let psc = pod.security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.run_as_user, Some(65532));
        assert_eq!(psc.run_as_group, Some(65532));
        assert_eq!(
            psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
            Some("RuntimeDefault")
        );
        let c = container(&o);
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{stem}");
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{stem}");
        assert_eq!(sc.run_as_non_root, Some(true), "{stem}");
        assert_eq!(
            sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
            Some(vec!["ALL".to_owned()])
        );
        // Scratch space on the read-only filesystem.
        let mount = &c.volume_mounts.as_ref().unwrap()[0];
        assert_eq!(mount.mount_path, "/tmp");
        let volume = &pod.volumes.as_ref().unwrap()[0];
        assert_eq!(volume.name, mount.name);
        assert!(volume.empty_dir.is_some());
        // Every other mount is read-only, and every volume a kind the restricted Pod Security
        // Standard allows.
        for m in &c.volume_mounts.as_ref().unwrap()[1..] {
            assert_eq!(m.read_only, Some(true), "{stem}: {m:?}");
            assert!(m.sub_path.is_none(), "{stem}: {m:?}");
        }
        for v in pod.volumes.as_ref().unwrap() {
            assert!(
                v.empty_dir.is_some()
                    || v.config_map.is_some()
                    || v.persistent_volume_claim.is_some(),
                "{stem}: {v:?}"
            );
            assert!(v.host_path.is_none(), "{stem}: {v:?}");
        }
        // Probes on the server's health endpoints, via the named port.
        let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
            p.as_ref()
                .and_then(|p| p.http_get.as_ref())
                .and_then(|h| h.path.clone())
        };
        assert_eq!(path(&c.liveness_probe).as_deref(), Some("/healthz"));
        assert_eq!(path(&c.readiness_probe).as_deref(), Some("/readyz"));
        let port = &c.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.container_port),
            (Some("http"), 3157)
        );
        assert_eq!(env_value(&o, "HTTP_HOST"), Some("0.0.0.0"));
        assert_eq!(env_value(&o, "HTTP_PORT"), Some("3157"));
        assert!(o.service_account.automount_service_account_token == Some(false));
    }
}

#[test]
fn resources_default_or_from_spec() {
    let o = render(&server_named("none-minimal"));
    let r = container(&o).resources.clone().unwrap();
    assert_eq!(r.requests.unwrap()["memory"].0, "64Mi");
    let limits = r.limits.unwrap();
    assert_eq!(limits["memory"].0, "256Mi");
    assert!(!limits.contains_key("cpu"));
    let o = render(&server_named("everything"));
    let r = container(&o).resources.clone().unwrap();
    assert_eq!(r.requests.unwrap()["cpu"].0, "100m");
}

#[test]
fn service_port_http_to_the_container() {
    let o = render(&server_named("none-minimal"));
    let spec = o.service.spec.as_ref().unwrap();
    let port = &spec.ports.as_ref().unwrap()[0];
    assert_eq!(port.name.as_deref(), Some("http"));
    assert_eq!(port.port, 80);
    assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.selector.clone().unwrap(), labels::selector("minimal"));
    assert_eq!(o.url, "http://minimal.dev.svc/mcp");

    let o = render(&server_named("everything"));
    let spec = o.service.spec.as_ref().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(spec.ports.as_ref().unwrap()[0].port, 443);
    assert!(
        o.service
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .contains_key("service.beta.kubernetes.io/aws-load-balancer-internal")
    );
}

#[test]
fn ingress_for_nginx_with_tls_and_session_affinity() {
    let o = render(&server_named("apikey-ingress"));
    let ingress = o.ingress.as_ref().unwrap();
    let spec = ingress.spec.as_ref().unwrap();
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    let rule = &spec.rules.as_ref().unwrap()[0];
    assert_eq!(rule.host.as_deref(), Some("mcp.example.com"));
    for path in &rule.http.as_ref().unwrap().paths {
        assert_eq!(path.path_type, "Prefix");
        let backend = path.backend.service.as_ref().unwrap();
        assert_eq!(backend.name, "team-a");
        assert_eq!(backend.port.as_ref().unwrap().name.as_deref(), Some("http"));
    }
    let tls = &spec.tls.as_ref().unwrap()[0];
    assert_eq!(tls.secret_name.as_deref(), Some("mcp-example-tls"));
    assert_eq!(tls.hosts.clone().unwrap(), ["mcp.example.com"]);
    let a = ingress.metadata.annotations.as_ref().unwrap();
    assert_eq!(
        a["nginx.ingress.kubernetes.io/upstream-hash-by"],
        "$http_mcp_session_id"
    );
    assert_eq!(a["nginx.ingress.kubernetes.io/proxy-buffering"], "off");
    // http.requestTimeout 10m; providers.timeout 10m and maxRetries 2 by default: two sequential
    // calls of 3 attempts with 30 s between them.
    assert_eq!(a["nginx.ingress.kubernetes.io/proxy-read-timeout"], "3720");
    assert_eq!(a["nginx.ingress.kubernetes.io/proxy-send-timeout"], "600");
    assert_eq!(
        a["nginx.ingress.kubernetes.io/proxy-body-size"],
        (20u64 << 20).to_string()
    );
    assert_eq!(o.url, "https://mcp.example.com/mcp");

    // Another class: no nginx annotations; the user's are kept.
    let mut server = server_named("oauth2-generated");
    server.spec.ingress.as_mut().unwrap().annotations.insert(
        "traefik.ingress.kubernetes.io/router.tls".into(),
        "true".into(),
    );
    let o = render(&server);
    let a = o
        .ingress
        .as_ref()
        .unwrap()
        .metadata
        .annotations
        .clone()
        .unwrap();
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        ["traefik.ingress.kubernetes.io/router.tls"]
    );
    assert!(render(&server_named("none-minimal")).ingress.is_none());
}

fn ingress_paths(server: &converse_operator::ConverseServer) -> Vec<String> {
    let o = render(server);
    let spec = o.ingress.as_ref().unwrap().spec.clone().unwrap();
    let rules = spec.rules.unwrap();
    assert_eq!(rules.len(), 1);
    let paths = rules[0].http.clone().unwrap().paths;
    assert!(paths.iter().all(|p| p.path_type == "Prefix"), "{paths:?}");
    paths.into_iter().map(|p| p.path.unwrap()).collect()
}

/// The Ingress publishes what MCP clients use and nothing else: not `/`, so the probes, /info
/// and /metrics (no credentials needed) stay in the cluster.
#[test]
fn ingress_routes_only_what_clients_need() {
    let mcp_and_metadata = ["/mcp", "/.well-known/oauth-protected-resource"];
    // apiKey, and bearer on the same fixture.
    let mut server = server_named("apikey-ingress");
    assert_eq!(ingress_paths(&server), mcp_and_metadata);
    server.spec.auth = None;
    assert_eq!(ingress_paths(&server), mcp_and_metadata, "strategy none");
    // oidc: the metadata documents (/.well-known/oauth-protected-resource/mcp and the one for
    // the public URL's path) are under the prefix.
    assert_eq!(
        ingress_paths(&server_named("oidc-ingress")),
        mcp_and_metadata
    );
    // oauth2: the login flow too.
    assert_eq!(
        ingress_paths(&server_named("oauth2-generated")),
        ["/mcp", "/.well-known/oauth-protected-resource", "/oauth"]
    );
}

/// nginx never gives up on a call before the server does: the read timeout covers the longest
/// tool call the provider settings allow, and never drops below http.requestTimeout.
#[test]
fn ingress_timeouts_follow_the_servers_longest_call() {
    let timeouts = |providers_timeout: &str, retries: i32, request_timeout: &str| {
        let mut server = server_named("apikey-ingress");
        server.spec.providers.timeout = Some(providers_timeout.to_owned());
        server.spec.providers.max_retries = Some(retries);
        server.spec.http.as_mut().unwrap().request_timeout = Some(request_timeout.to_owned());
        let a = render(&server)
            .ingress
            .unwrap()
            .metadata
            .annotations
            .unwrap();
        (
            a["nginx.ingress.kubernetes.io/proxy-read-timeout"].clone(),
            a["nginx.ingress.kubernetes.io/proxy-send-timeout"].clone(),
        )
    };
    // 2 sequential calls × (1 + 4) attempts × 60 s + 2 × 4 retry delays × 30 s.
    assert_eq!(timeouts("1m", 4, "5m"), ("840".into(), "300".into()));
    // No retries: two calls of 90 s.
    assert_eq!(timeouts("90s", 0, "1m"), ("180".into(), "60".into()));
    // A request timeout above that wins.
    assert_eq!(timeouts("30s", 0, "5m"), ("300".into(), "300".into()));
}

/// Annotations from the CR never replace the ones the operator sets (streaming, timeouts and
/// body size matching the server, session affinity); the others are kept, and each overridden
/// key becomes a warning.
#[test]
fn ingress_annotations_from_the_cr_do_not_override_the_operators() {
    let mut server = server_named("apikey-ingress");
    let nginx = "nginx.ingress.kubernetes.io/";
    let attempted = [
        ("proxy-buffering", "on"),
        ("proxy-read-timeout", "5"),
        ("proxy-body-size", "1m"),
        ("upstream-hash-by", "$remote_addr"),
        ("whitelist-source-range", "10.0.0.0/8"),
    ];
    for (k, v) in attempted {
        server
            .spec
            .ingress
            .as_mut()
            .unwrap()
            .annotations
            .insert(format!("{nginx}{k}"), v.into());
    }
    let o = render(&server);
    let a = o
        .ingress
        .as_ref()
        .unwrap()
        .metadata
        .annotations
        .clone()
        .unwrap();
    let plain = render(&server_named("apikey-ingress"));
    let ours = plain
        .ingress
        .as_ref()
        .unwrap()
        .metadata
        .annotations
        .clone()
        .unwrap();
    for (k, v) in &ours {
        assert_eq!(&a[k], v, "{k}");
    }
    assert_eq!(a[&format!("{nginx}proxy-buffering")], "off");
    assert_eq!(a[&format!("{nginx}whitelist-source-range")], "10.0.0.0/8");
    assert_eq!(a.len(), ours.len() + 1);

    let warnings = validated(&server).warnings;
    for (k, _) in &attempted[..4] {
        assert!(
            warnings.iter().any(|w| w.contains(&format!("{nginx}{k}"))),
            "{k}: {warnings:?}"
        );
    }
    assert!(
        !warnings
            .iter()
            .any(|w| w.contains("whitelist-source-range"))
    );
}

#[test]
fn optional_children() {
    let o = render(&server_named("apikey-ingress"));
    assert_eq!(o.deployment.spec.replicas, Some(2));
    assert!(o.horizontal_pod_autoscaler.is_none());
    let pdb = o
        .pod_disruption_budget
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap();
    assert_eq!(pdb.min_available, Some(IntOrString::Int(1)));
    assert_eq!(
        pdb.selector.as_ref().unwrap().match_labels.clone().unwrap(),
        labels::selector("team-a")
    );
    let np = o.network_policy.as_ref().unwrap().spec.as_ref().unwrap();
    let rule = &np.ingress.as_ref().unwrap()[0];
    assert!(rule.from.as_ref().unwrap()[0].namespace_selector.is_some());
    assert_eq!(
        rule.ports.as_ref().unwrap()[0].port,
        Some(IntOrString::Int(3157))
    );

    // Autoscaling owns the replica count: the Deployment leaves it out.
    let o = render(&server_named("everything"));
    assert_eq!(o.deployment.spec.replicas, None);
    let hpa = &o.horizontal_pod_autoscaler.as_ref().unwrap().spec;
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), 6));
    assert_eq!(hpa.scale_target_ref.kind, "Deployment");
    assert_eq!(hpa.scale_target_ref.name, "everything");
    let metric = &hpa.metrics.as_ref().unwrap()[0];
    assert_eq!(
        metric.resource.as_ref().unwrap().target.average_utilization,
        Some(60)
    );
    assert!(o.pod_disruption_budget.is_none());
    assert!(o.network_policy.is_none());

    let o = render(&server_named("none-minimal"));
    assert_eq!(o.deployment.spec.replicas, Some(1));
}

#[test]
fn pod_options_and_user_env() {
    let o = render(&server_named("everything"));
    let pod = pod_spec(&o);
    assert_eq!(pod.priority_class_name.as_deref(), Some("high"));
    assert_eq!(pod.tolerations.as_ref().unwrap().len(), 1);
    assert_eq!(
        pod.node_selector.clone().unwrap(),
        BTreeMap::from([("kubernetes.io/os".to_owned(), "linux".to_owned())])
    );
    assert_eq!(
        pod.image_pull_secrets.as_ref().unwrap()[0].name,
        "registry-creds"
    );
    let meta = o.deployment.spec.template.metadata.as_ref().unwrap();
    assert_eq!(meta.labels.as_ref().unwrap()["team"], "lab");
    let annotations = meta.annotations.as_ref().unwrap();
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations[CONFIG_HASH_ANNOTATION], o.config_hash);
    assert_eq!(env_value(&o, "RUST_BACKTRACE"), Some("1"));
    assert_eq!(
        container(&o).env_from.as_ref().unwrap()[0]
            .config_map_ref
            .as_ref()
            .unwrap()
            .name,
        "lab-extra"
    );
}

#[test]
fn generated_secret_is_stable_and_required() {
    let server = server_named("oauth2-generated");
    let o = render(&server);
    let secret = o.generated_secret.as_ref().unwrap();
    assert_eq!(secret.metadata.name.as_deref(), Some("login-generated"));
    assert_eq!(
        secret.data.as_ref().unwrap()["jwt-secret"].0,
        GENERATED_JWT.as_bytes()
    );
    // Same context, same objects: the build is deterministic.
    assert_eq!(render(&server), o);
    // Without the generated value the build refuses (the controller must generate it first).
    let mut ctx = context();
    ctx.generated_jwt_secret = None;
    assert!(matches!(
        build(&validated(&server), &ctx),
        Err(BuildError::GeneratedSecretMissing(name)) if name == "login-generated"
    ));
    // Not needed, not built.
    assert!(
        render(&server_named("oauth2-jwtref"))
            .generated_secret
            .is_none()
    );
}

#[test]
fn files_directory_is_mounted_read_only_and_is_the_files_root() {
    use converse_operator::desired::files::{FILES_MOUNT_PATH, FILES_VOLUME};

    let o = render(&server_named("files-configmap"));
    let pod = pod_spec(&o);
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == FILES_VOLUME)
        .expect("files volume");
    let cm = volume.config_map.as_ref().expect("a ConfigMap volume");
    assert_eq!(cm.name, "team-docs");
    let items: Vec<(&str, &str)> = cm
        .items
        .iter()
        .flatten()
        .map(|i| (i.key.as_str(), i.path.as_str()))
        .collect();
    assert_eq!(
        items,
        [
            ("design.md", "design/design.md"),
            ("logo.png", "images/logo.png")
        ]
    );
    let mount = container(&o)
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == FILES_VOLUME)
        .expect("files mount");
    assert_eq!(mount.mount_path, FILES_MOUNT_PATH);
    assert_eq!(mount.read_only, Some(true));
    // The whole volume: a subPath mount would never see ConfigMap edits.
    assert!(mount.sub_path.is_none() && mount.sub_path_expr.is_none());
    assert_eq!(env_value(&o, "CONVERSE_FILES_ROOT"), Some(FILES_MOUNT_PATH));

    let o = render(&server_named("everything"));
    let volume = pod_spec(&o)
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == FILES_VOLUME)
        .expect("files volume");
    let pvc = volume.persistent_volume_claim.as_ref().expect("a claim");
    assert_eq!(
        (pvc.claim_name.as_str(), pvc.read_only),
        ("lab-docs", Some(true))
    );
    assert_eq!(env_value(&o, "CONVERSE_FILES_ROOT"), Some(FILES_MOUNT_PATH));

    // Without spec.files: no volume, no mount, the variable written empty.
    let o = render(&server_named("none-minimal"));
    assert!(
        pod_spec(&o)
            .volumes
            .iter()
            .flatten()
            .all(|v| v.name != FILES_VOLUME)
    );
    assert!(
        container(&o)
            .volume_mounts
            .iter()
            .flatten()
            .all(|m| m.name != FILES_VOLUME)
    );
    let root = container(&o)
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "CONVERSE_FILES_ROOT")
        .expect("written, empty");
    assert!(root.value.is_none() && root.value_from.is_none());
}

#[test]
fn config_hash_follows_secret_data_and_spec() {
    let server = server_named("apikey-ingress");
    let base = render(&server).config_hash;
    assert_eq!(base.len(), 64);
    assert_eq!(render(&server).config_hash, base, "stable");

    // Rotating a referenced key rolls the pods.
    let rotated = dereferenced().with_secret(
        "mcp-keys",
        [("keys", "new-key-0123456789abcdef0123456789abcdef")],
    );
    let v = validate(&server, &rotated).unwrap();
    assert_ne!(build(&v, &context()).unwrap().config_hash, base);

    // Keys the spec does not reference do not.
    let unrelated: Dereferenced = dereferenced().with_secret(
        "mcp-keys",
        [
            ("keys", secret_data()["mcp-keys"]["keys"].as_str()),
            ("unused", "whatever"),
        ],
    );
    let v = validate(&server, &unrelated).unwrap();
    assert_eq!(build(&v, &context()).unwrap().config_hash, base);

    // Editing the files ConfigMap does not: the kubelet refreshes the volume in place.
    let files = server_named("files-configmap");
    let before = render(&files).config_hash;
    let edited = dereferenced().with_config_map("team-docs", ["design.md", "logo.png", "new.md"]);
    let v = validate(&files, &edited).unwrap();
    assert_eq!(build(&v, &context()).unwrap().config_hash, before);
    // Naming another ConfigMap does.
    let mut renamed = files.clone();
    if let Some(cm) = renamed
        .spec
        .files
        .as_mut()
        .and_then(|f| f.config_map.as_mut())
    {
        cm.name = "other-docs".to_owned();
    }
    let v = validate(
        &renamed,
        &edited.with_config_map("other-docs", ["design.md", "logo.png"]),
    )
    .unwrap();
    assert_ne!(build(&v, &context()).unwrap().config_hash, before);

    // What the environment reads from Secrets and ConfigMaps does (the kubelet resolves it only
    // when a container starts).
    let mut env = server.clone();
    env.spec.env_from = serde_json::from_value(serde_json::json!([
        {"secretRef": {"name": "bulk"}},
        {"configMapRef": {"name": "tuning", "optional": true}},
    ]))
    .unwrap();
    env.spec.env = serde_json::from_value(serde_json::json!([
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
    ]))
    .unwrap();
    let hash = |d: Dereferenced| {
        build(&validate(&env, &d).unwrap(), &context())
            .unwrap()
            .config_hash
    };
    let with = |bulk: &str, mode: &str, other: &str| {
        dereferenced()
            .with_secret("bulk", [("TOKEN", bulk)])
            .with_config_map_data("settings", [("mode", mode), ("other", other)])
    };
    let env_base = hash(with("one", "fast", "x"));
    assert_ne!(env_base, base);
    assert_eq!(hash(with("one", "fast", "x")), env_base, "stable");
    assert_ne!(
        hash(with("two", "fast", "x")),
        env_base,
        "envFrom Secret rotated"
    );
    assert_ne!(
        hash(with("one", "slow", "x")),
        env_base,
        "configMapKeyRef value"
    );
    assert_eq!(
        hash(with("one", "fast", "y")),
        env_base,
        "a key the environment does not read"
    );
    assert_ne!(
        hash(with("one", "fast", "x").with_config_map_data("tuning", [("A", "1")])),
        env_base,
        "an optional source appeared"
    );

    // A spec change that shapes the pods does.
    let mut changed = server.clone();
    changed.spec.log_level = Some(converse_config::LogLevel::Warn);
    assert_ne!(render(&changed).config_hash, base);

    // A regenerated JWT secret does.
    let server = server_named("oauth2-generated");
    let before = render(&server).config_hash;
    let mut ctx = context();
    ctx.generated_jwt_secret = Some("another-generated-secret-0123456789abcdef".into());
    assert_ne!(
        build(&validated(&server), &ctx).unwrap().config_hash,
        before
    );
}

/// The egress rules of a fixture with `networkPolicy` set to `np` (JSON), as
/// (peers: "any" / "public" / the peers' JSON, ports "53/UDP" …).
fn egress_of(stem: &str, np: serde_json::Value) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let mut server = server_named(stem);
    server.spec.network_policy = Some(serde_json::from_value(np).unwrap());
    let o = render(&server);
    let spec = o.network_policy.unwrap().spec.unwrap();
    let rules = spec
        .egress
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let to = match r.to {
                None => "any".to_owned(),
                Some(peers) if peers.iter().all(|p| p.ip_block.is_some()) => {
                    let blocks: Vec<_> =
                        peers.iter().map(|p| p.ip_block.clone().unwrap()).collect();
                    assert_eq!(blocks[0].cidr, "0.0.0.0/0");
                    assert_eq!(blocks[1].cidr, "::/0");
                    let except = blocks[0].except.clone().unwrap();
                    for private in [
                        "10.0.0.0/8",
                        "172.16.0.0/12",
                        "192.168.0.0/16",
                        "169.254.0.0/16",
                    ] {
                        assert!(except.iter().any(|e| e == private), "{except:?}");
                    }
                    "public".to_owned()
                }
                Some(peers) => serde_json::to_string(&peers).unwrap(),
            };
            let ports = r
                .ports
                .unwrap_or_default()
                .into_iter()
                .map(|p| {
                    let IntOrString::Int(n) = p.port.unwrap() else {
                        panic!("named port")
                    };
                    format!("{n}/{}", p.protocol.unwrap())
                })
                .collect();
            (to, ports)
        })
        .collect();
    (spec.policy_types.unwrap(), rules)
}

fn rule(to: &str, ports: &[&str]) -> (String, Vec<String>) {
    (
        to.to_owned(),
        ports.iter().map(|p| (*p).to_owned()).collect(),
    )
}

/// With a NetworkPolicy the pods may connect only to DNS, the providers and what else the spec
/// makes the server call: a compromised pod cannot reach the cluster's other services.
#[test]
fn network_policy_egress_allows_only_what_the_server_calls() {
    let dns = rule("any", &["53/UDP", "53/TCP"]);
    let both = ["Ingress", "Egress"].map(String::from).to_vec();

    // One built-in provider at its public API: 443 to public addresses only.
    let (types, rules) = egress_of("none-minimal", serde_json::json!({}));
    assert_eq!(types, both);
    assert_eq!(rules, [dns.clone(), rule("public", &["443/TCP"])]);

    // A provider with a baseUrl (may be in the cluster): its port to any address; Redis' port
    // from the URL in its Secret.
    let (_, rules) = egress_of("apikey-ingress", serde_json::json!({}));
    assert_eq!(rules, [dns.clone(), rule("any", &["443/TCP", "6379/TCP"])]);

    // Custom providers, gateways, telemetry: each URL's port.
    let (_, rules) = egress_of("everything", serde_json::json!({}));
    assert_eq!(
        rules,
        [
            dns.clone(),
            rule("any", &["443/TCP", "4318/TCP", "8000/TCP", "11434/TCP"])
        ]
    );

    // oidc: the issuer; oauth2: the token and userinfo endpoints (not the browser's
    // authorization URL).
    let mut oidc = server_named("oidc-ingress");
    let o = oidc.spec.auth.as_mut().unwrap().oidc.as_mut().unwrap();
    o.issuer = "http://keycloak.auth:8080/realms/ai".into();
    o.jwks_url = Some("http://keycloak-keys.auth:8081/certs".into());
    oidc.spec.network_policy = Some(serde_json::from_value(serde_json::json!({})).unwrap());
    let d = converse_operator::desired::network_policy::destinations(&oidc.spec, None);
    assert_eq!(d.anywhere.into_iter().collect::<Vec<_>>(), [8080, 8081]);
    assert_eq!(d.public.into_iter().collect::<Vec<_>>(), [443]);
    let mut oauth2 = server_named("oauth2-generated");
    let o = oauth2.spec.auth.as_mut().unwrap().oauth2.as_mut().unwrap();
    o.authorization_url = "https://login.example.com:9443/authorize".into();
    o.token_url = "https://login.example.com:8443/token".into();
    o.userinfo_url = "https://api.example.com/user".into();
    let d = converse_operator::desired::network_policy::destinations(&oauth2.spec, None);
    assert_eq!(d.anywhere.into_iter().collect::<Vec<_>>(), [443, 8443]);

    // DNS narrowed, and further rules after the operator's.
    let (_, rules) = egress_of(
        "none-minimal",
        serde_json::json!({"egress": {
            "dnsTo": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                       "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "extraRules": [{"ports": [{"port": 3128, "protocol": "TCP"}]}]
        }}),
    );
    assert_eq!(rules.len(), 3, "{rules:?}");
    assert!(rules[0].0.contains("kube-dns"), "{rules:?}");
    assert_eq!(rules[0].1, dns.1);
    assert_eq!(rules[1], rule("public", &["443/TCP"]));
    assert_eq!(rules[2], rule("any", &["3128/TCP"]));

    // Opted out: egress is not restricted, only who may connect.
    let (types, rules) = egress_of(
        "apikey-ingress",
        serde_json::json!({"egress": {"allowAll": true}}),
    );
    assert_eq!(types, ["Ingress"]);
    assert!(rules.is_empty());
}

/// spec.gateway becomes an HTTPRoute with the Ingress's paths (PathPrefix) to the Service's port,
/// a request timeout no shorter than the server's longest call, and no Ingress; its first host
/// name is the public URL, and all of them are allowed hosts.
#[test]
fn gateway_builds_an_http_route_like_the_ingress() {
    let server = server_named("oauth2-gateway");
    let objects = render(&server);
    assert!(objects.ingress.is_none());
    let route = objects.http_route.clone().expect("an HTTPRoute");
    assert_eq!(route.metadata.name.as_deref(), Some("routed"));
    assert_eq!(route.metadata.namespace.as_deref(), Some("ai-tools"));
    assert!(route.metadata.owner_references.is_some());
    let value = serde_json::to_value(&route).unwrap();
    assert_eq!(value["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(value["kind"], "HTTPRoute");
    assert_eq!(
        value["spec"],
        serde_json::json!({
            "parentRefs": [{"name": "public", "namespace": "gateway-system", "sectionName": "https"}],
            "hostnames": ["mcp.example.com", "mcp.example.org"],
            "rules": [{
                "matches": [
                    {"path": {"type": "PathPrefix", "value": "/mcp"}},
                    {"path": {"type": "PathPrefix", "value": "/.well-known/oauth-protected-resource"}},
                    {"path": {"type": "PathPrefix", "value": "/oauth"}},
                ],
                "backendRefs": [{"name": "routed", "port": 8080}],
                // Defaults: 2 × (3 attempts × 10m + 2 × 30 s).
                "timeouts": {"request": "1h2m"},
            }],
        })
    );
    assert_eq!(objects.url, "https://mcp.example.com/mcp");
    assert_eq!(
        env_value(&objects, "MCP_OAUTH_CALLBACK_URL"),
        Some("https://mcp.example.com/oauth/callback")
    );
    let hosts = env_value(&objects, "HTTP_ALLOWED_HOSTS").unwrap();
    assert!(
        hosts.starts_with("mcp.example.com,mcp.example.org,routed,"),
        "{hosts}"
    );

    // The same timeout as the Ingress's read timeout, and only the MCP paths without oauth2.
    let mut other = server_named("apikey-ingress");
    let ingress_read = render(&other)
        .ingress
        .unwrap()
        .metadata
        .annotations
        .unwrap()["nginx.ingress.kubernetes.io/proxy-read-timeout"]
        .clone();
    other.spec.ingress = None;
    other.spec.sessions = None;
    other.spec.gateway = server.spec.gateway.clone();
    let route = render(&other).http_route.unwrap();
    let rule = &route.spec.rules[0];
    let paths: Vec<_> = rule
        .matches
        .iter()
        .map(|m| m.path.as_ref().unwrap().value.clone().unwrap())
        .collect();
    assert_eq!(paths, ["/mcp", "/.well-known/oauth-protected-resource"]);
    let request = rule.timeouts.as_ref().unwrap().request.clone().unwrap();
    let secs: u64 = ingress_read.parse().unwrap();
    assert_eq!(
        request,
        converse_operator::desired::http_route::gateway_duration(std::time::Duration::from_secs(
            secs
        ))
    );
    // Port 80 by default.
    assert_eq!(rule.backend_refs[0].port, Some(80));

    // No spec.gateway: no HTTPRoute (the apply phase deletes one it owns).
    assert!(render(&server_named("apikey-ingress")).http_route.is_none());
}
