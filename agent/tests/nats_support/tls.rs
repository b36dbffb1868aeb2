//! Certificates for the NATS TLS tests, made at run time with rcgen: a CA
//! and a server certificate for 127.0.0.1 that it signed, and a second CA
//! that signed nothing the server shows (a wrong CA).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// PEM files in a test's scratch directory.
pub struct TestPki {
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    /// A CA of its own that signed nothing the server shows.
    pub other_ca: PathBuf,
    /// The server's certificate (for 127.0.0.1 and localhost).
    pub server_cert: PathBuf,
    /// The server's private key (PKCS#8).
    pub server_key: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

impl TestPki {
    /// Makes the certificates and writes them into `dir`.
    pub fn new(dir: &Path) -> Self {
        let ca_issuer = ca("spillway test CA");
        let other = ca("spillway other CA");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca_issuer).unwrap();
        let pki = Self {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        };
        std::fs::write(&pki.ca, ca_issuer.pem()).unwrap();
        std::fs::write(&pki.other_ca, other.pem()).unwrap();
        std::fs::write(&pki.server_cert, cert.pem()).unwrap();
        std::fs::write(&pki.server_key, key.serialize_pem()).unwrap();
        pki
    }

    /// The `nats-server` arguments that make it require TLS with this
    /// certificate.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--tls".to_owned(),
            "--tlscert".to_owned(),
            self.server_cert.display().to_string(),
            "--tlskey".to_owned(),
            self.server_key.display().to_string(),
        ]
    }
}
