//! A certificate authority made at start, and a server certificate for
//! 127.0.0.1 signed by it, so that clients trust the fake API server exactly
//! as they trust an EKS cluster: through the CA bundle they were given.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate generation failed")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS configuration failed")]
    Rustls(#[from] rustls::Error),
}

/// One CA for a test run; every fake cluster's server certificate chains to it.
pub struct TestCa {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    pub fn generate() -> Result<Self, TlsError> {
        // rustls (webpki) insists on a real CA: CA:TRUE and keyCertSign.
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.distinguished_name.push(DnType::CommonName, "fake-kube test CA");
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(vec!["localhost".to_owned()])?;
        server_params.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![server_cert.der().clone(), ca_cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            server_config: Arc::new(config),
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER (what `kube::Config::root_cert` takes).
    pub fn ca_der(&self) -> Vec<u8> {
        self.ca_der.to_vec()
    }

    /// Base64 of the PEM: the form of EKS's `certificateAuthority.data` and
    /// a kubeconfig's `certificate-authority-data`.
    pub fn ca_data(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        self.server_config.clone()
    }
}
