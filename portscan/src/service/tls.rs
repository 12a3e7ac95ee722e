//! TLS for version detection: a client that completes any handshake, whatever certificate
//! the server shows (we inspect the service, we do not trust it), and what that certificate
//! says: subject, issuer, names and expiry.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::parse_x509_certificate;

use common::contract::timestamp::rfc3339;

/// What a server's certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub subject: String,
    pub issuer: String,
    /// The subject alternative names: DNS names, and addresses.
    pub names: Vec<String>,
    /// When it stops being valid, RFC 3339 UTC.
    pub not_after: String,
}

impl Certificate {
    /// Reads a DER certificate; `None` if it does not parse.
    pub fn read(der: &[u8]) -> Option<Self> {
        let (_, cert) = parse_x509_certificate(der).ok()?;
        let names = match cert.subject_alternative_name() {
            Ok(Some(extension)) => extension
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(name) => Some((*name).to_owned()),
                    GeneralName::IPAddress(bytes) => address(bytes),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let seconds = cert.validity().not_after.timestamp();
        let not_after = if seconds >= 0 {
            UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
        };
        Some(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            names,
            not_after: rfc3339(not_after),
        })
    }
}

/// An IPv4 or IPv6 address in a subject alternative name.
fn address(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

/// A client configuration that takes every certificate: signatures on the handshake are
/// still checked (a broken handshake is no service to name), the chain is not.
#[expect(
    deprecated,
    reason = "ring lacks post-quantum key exchange, which inspecting a service does not need; \
              aws-lc-rs would need cmake to build"
)]
pub fn client_config() -> Arc<ClientConfig> {
    let provider = Arc::new(ring::default_provider());
    let inspector = Arc::new(Inspector {
        algorithms: provider.signature_verification_algorithms,
    });
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(inspector)
        .with_no_client_auth();
    Arc::new(config)
}

/// The server's name for the handshake: the address (rustls sends no SNI for one).
pub fn server_name(address: std::net::IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(address.into())
}

/// Accepts any certificate chain; checks handshake signatures as rustls' own would.
#[derive(Debug)]
struct Inspector {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Inspector {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_names() {
        assert_eq!(address(&[127, 0, 0, 1]).as_deref(), Some("127.0.0.1"));
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(address(&v6).as_deref(), Some("::1"));
        assert_eq!(address(&[1, 2, 3]), None);
    }

    #[test]
    fn a_config_builds() {
        let _ = client_config();
        assert!(Certificate::read(b"not der").is_none());
    }
}
