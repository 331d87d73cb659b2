//! The cluster's PKI, made fresh by every `up` with openssl: a CA, the API server's serving
//! certificate, one client certificate per component identity, the ServiceAccount signing key,
//! and a kubeconfig per identity.

use std::path::{Path, PathBuf};

use base64::Engine;

use crate::cmd;
use crate::error::{IoContext, Result};

/// One client identity: the certificate's CN is the user name, O the groups.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    /// File stem and kubeconfig name.
    pub file: &'static str,
    pub user: &'static str,
    pub group: Option<&'static str>,
}

pub const ADMIN: Identity = Identity {
    file: "admin",
    user: "testenv-admin",
    group: Some("system:masters"),
};
pub const CONTROLLER_MANAGER: Identity = Identity {
    file: "kube-controller-manager",
    user: "system:kube-controller-manager",
    group: None,
};
pub const SCHEDULER: Identity = Identity {
    file: "kube-scheduler",
    user: "system:kube-scheduler",
    group: None,
};
/// The Node authorizer and NodeRestriction admission recognise the kubelet by this name/group.
pub const KUBELET: Identity = Identity {
    file: "kubelet",
    user: "system:node:localhost",
    group: Some("system:nodes"),
};
pub const KUBE_PROXY: Identity = Identity {
    file: "kube-proxy",
    user: "system:kube-proxy",
    group: None,
};
/// CoreDNS reads Services and EndpointSlices; the built-in `system:kube-dns` binding covers
/// the `kube-dns` ServiceAccount only, so testenv binds this user itself.
pub const COREDNS: Identity = Identity {
    file: "coredns",
    user: "testenv:coredns",
    group: None,
};
/// The API server's client identity towards the kubelet (logs, exec, port-forward).
pub const APISERVER_KUBELET_CLIENT: Identity = Identity {
    file: "apiserver-kubelet-client",
    user: "kube-apiserver-kubelet-client",
    group: Some("system:masters"),
};

pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn cert(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.crt"))
    }
    pub fn key(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.key"))
    }
    pub fn sa_key(&self) -> PathBuf {
        self.dir.join("sa.key")
    }
    pub fn sa_pub(&self) -> PathBuf {
        self.dir.join("sa.pub")
    }
}

/// Subject alternative names of the API server's serving certificate: every name and address a
/// client (host or pod) uses to reach it.
pub fn apiserver_sans(extra_ips: &[&str]) -> Vec<String> {
    let mut sans: Vec<String> = [
        crate::layout::KUBERNETES_SERVICE_IP,
        crate::layout::BRIDGE_IP,
        "127.0.0.1",
    ]
    .iter()
    .chain(extra_ips)
    .map(|ip| format!("IP:{ip}"))
    .collect();
    for dns in [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    ] {
        sans.push(format!("DNS:{dns}"));
    }
    sans
}

/// Generates the whole PKI into `dir` (created, mode 0700).
pub fn generate(dir: &Path) -> Result<Pki> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .ctx(|| format!("creating {}", dir.display()))?;
    let pki = Pki {
        dir: dir.to_path_buf(),
    };
    // EC P-256 keys: generated in milliseconds, unlike RSA.
    let cnf = dir.join("ca.cnf");
    write_cnf(
        &cnf,
        &[
            "basicConstraints = critical,CA:TRUE",
            "keyUsage = critical,keyCertSign,cRLSign,digitalSignature",
        ],
    )?;
    openssl_req(
        &pki.ca_key(),
        &pki.ca_cert(),
        "/CN=converse-testenv-ca",
        &cnf,
        3650,
        None,
    )?;

    let san = apiserver_sans(&[]).join(",");
    sign(
        &pki,
        "apiserver",
        "/CN=kube-apiserver",
        "serverAuth",
        Some(&san),
    )?;
    for id in [
        ADMIN,
        CONTROLLER_MANAGER,
        SCHEDULER,
        KUBELET,
        KUBE_PROXY,
        COREDNS,
        APISERVER_KUBELET_CLIENT,
    ] {
        let subject = match id.group {
            Some(g) => format!("/O={g}/CN={}", id.user),
            None => format!("/CN={}", id.user),
        };
        sign(&pki, id.file, &subject, "clientAuth", None)?;
    }

    // The ServiceAccount token signing key must be RSA (or EC) in PEM; RSA is what every
    // Kubernetes guide uses and the API server's JWKS publishes.
    cmd::run(
        "openssl",
        [
            "genpkey".as_ref(),
            "-algorithm".as_ref(),
            "RSA".as_ref(),
            "-pkeyopt".as_ref(),
            "rsa_keygen_bits:2048".as_ref(),
            "-out".as_ref(),
            pki.sa_key().as_os_str(),
        ],
    )?;
    cmd::run(
        "openssl",
        [
            "pkey".as_ref(),
            "-in".as_ref(),
            pki.sa_key().as_os_str(),
            "-pubout".as_ref(),
            "-out".as_ref(),
            pki.sa_pub().as_os_str(),
        ],
    )?;
    Ok(pki)
}

fn sign(pki: &Pki, stem: &str, subject: &str, usage: &str, san: Option<&str>) -> Result<()> {
    let cnf = pki.dir.join(format!("{stem}.cnf"));
    let mut ext = vec![
        "basicConstraints = critical,CA:FALSE".to_string(),
        "keyUsage = critical,digitalSignature,keyEncipherment".to_string(),
        format!("extendedKeyUsage = {usage}"),
    ];
    if let Some(san) = san {
        ext.push(format!("subjectAltName = {san}"));
    }
    let ext: Vec<&str> = ext.iter().map(String::as_str).collect();
    write_cnf(&cnf, &ext)?;
    openssl_req(
        &pki.key(stem),
        &pki.cert(stem),
        subject,
        &cnf,
        365,
        Some((&pki.ca_cert(), &pki.ca_key())),
    )
}

/// A config file of our own: with `-x509`, openssl would otherwise add the system config's
/// `v3_ca` extensions to every certificate.
fn write_cnf(path: &Path, ext: &[&str]) -> Result<()> {
    let text = format!(
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n[ext]\n{}\n",
        ext.join("\n")
    );
    std::fs::write(path, text).ctx(|| format!("writing {}", path.display()))
}

fn openssl_req(
    key: &Path,
    cert: &Path,
    subject: &str,
    cnf: &Path,
    days: u32,
    ca: Option<(&Path, &Path)>,
) -> Result<()> {
    let days = days.to_string();
    let fixed = [
        "req",
        "-x509",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-subj",
        subject,
        "-days",
        &days,
        "-extensions",
        "ext",
    ];
    let mut args: Vec<&std::ffi::OsStr> = fixed.iter().map(|s| s.as_ref()).collect();
    args.extend([
        "-config".as_ref(),
        cnf.as_os_str(),
        "-keyout".as_ref(),
        key.as_os_str(),
        "-out".as_ref(),
        cert.as_os_str(),
    ]);
    if let Some((ca_cert, ca_key)) = ca {
        args.extend([
            "-CA".as_ref(),
            ca_cert.as_os_str(),
            "-CAkey".as_ref(),
            ca_key.as_os_str(),
        ]);
    }
    cmd::run("openssl", args)?;
    Ok(())
}

/// Writes a kubeconfig for `id` with the CA and the client certificate embedded, so the file is
/// self-contained (tests and `kubectl` can use it from anywhere).
pub fn write_kubeconfig(pki: &Pki, id: Identity, server: &str, path: &Path) -> Result<()> {
    let b64 = |p: &Path| -> Result<String> {
        let bytes = std::fs::read(p).ctx(|| format!("reading {}", p.display()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    };
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: testenv
  context:
    cluster: testenv
    user: {user}
    namespace: default
current-context: testenv
",
        ca = b64(&pki.ca_cert())?,
        user = id.user,
        cert = b64(&pki.cert(id.file))?,
        key = b64(&pki.key(id.file))?,
    );
    write_private(path, text.as_bytes())
}

/// Writes a file readable by its owner only (keys, kubeconfigs).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .ctx(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .ctx(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pki_verifies_and_has_the_sans() {
        let dir = std::env::temp_dir().join(format!("testenv-pki-{}", std::process::id()));
        let pki = generate(&dir).unwrap();
        let verify = cmd::run(
            "openssl",
            [
                "verify".as_ref(),
                "-CAfile".as_ref(),
                pki.ca_cert().as_os_str(),
                pki.cert("apiserver").as_os_str(),
                pki.cert("admin").as_os_str(),
            ],
        )
        .unwrap();
        assert!(verify.contains("apiserver.crt: OK"), "{verify}");
        let text = cmd::run(
            "openssl",
            [
                "x509".as_ref(),
                "-noout".as_ref(),
                "-text".as_ref(),
                "-in".as_ref(),
                pki.cert("apiserver").as_os_str(),
            ],
        )
        .unwrap();
        for want in [
            "IP Address:10.0.0.1",
            "IP Address:10.244.0.1",
            "DNS:kubernetes.default.svc.cluster.local",
            "TLS Web Server Authentication",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        let admin = cmd::run(
            "openssl",
            [
                "x509".as_ref(),
                "-noout".as_ref(),
                "-subject".as_ref(),
                "-in".as_ref(),
                pki.cert("admin").as_os_str(),
            ],
        )
        .unwrap();
        assert!(admin.contains("O = system:masters"), "{admin}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
