//! The HTTPS certificate: which one the servers use, generating the desk's own (a local CA
//! and a server certificate for this machine's addresses and the public host), and exporting
//! the CA for browsers and phones that verify HTTPS.

use std::path::Path;

use provdesk_core::desk::{TLS_DIR, TlsSettings};
use provdesk_serve::http::tls;
use serde::Serialize;
use ts_rs::TS;

use crate::address::interfaces;
use crate::error::{DeskError, DeskResult};
use crate::service::DeskService;

/// Which certificate HTTPS uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub enum CertificateSource {
    /// Certificate and key files named in the settings.
    #[serde(rename = "own")]
    Own,
    /// ProvDesk's own, in `DESK/tls/`.
    #[serde(rename = "generated")]
    Generated,
    /// None yet: generated when HTTPS first starts, or with the Generate button.
    #[serde(rename = "none yet")]
    NoneYet,
}

/// The state of the HTTPS certificate, as the Settings screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct CertificateInfo {
    pub source: CertificateSource,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
}

/// A certificate generated (or found current), with what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct CertificateGenerated {
    pub certificate: CertificateInfo,
    pub message: String,
}

impl DeskService {
    /// Which certificate the servers use under the desk's settings.
    pub fn certificate_info(&self) -> CertificateInfo {
        let settings = self.desk().settings();
        let tls_dir = self.root().join(TLS_DIR);
        let ca = tls_dir.join(tls::CA_CERT_FILE);
        if settings.tls.cert.is_some() {
            CertificateInfo {
                source: CertificateSource::Own,
                ca_file: None,
                cert_file: settings.tls.cert.as_ref().map(|p| p.display().to_string()),
            }
        } else if ca.is_file() {
            let cert = tls_dir.join(tls::SERVER_CERT_FILE);
            CertificateInfo {
                source: CertificateSource::Generated,
                ca_file: Some(ca.display().to_string()),
                cert_file: cert.is_file().then(|| cert.display().to_string()),
            }
        } else {
            CertificateInfo {
                source: CertificateSource::NoneYet,
                ca_file: None,
                cert_file: None,
            }
        }
    }

    /// Creates the desk's local CA and a server certificate for this machine's addresses
    /// (and the public host), unless a valid one is there already.
    pub fn generate_certificate(&self) -> DeskResult<CertificateGenerated> {
        let settings = self.desk().settings();
        if settings.tls.cert.is_some() {
            return Err(DeskError::invalid(
                "the desk uses its own certificate files; clear tls.cert and tls.key and save first to use a generated one",
            ));
        }
        let mut hosts: Vec<String> = settings.server.public_host.iter().cloned().collect();
        hosts.extend(
            interfaces()
                .into_iter()
                .filter(|i| !i.loopback)
                .map(|i| i.ip),
        );
        let generated = TlsSettings {
            client_ca: settings.tls.client_ca.clone(),
            require_client_cert: settings.tls.require_client_cert,
            ..Default::default()
        };
        let material = tls::load_or_generate(self.root(), &generated, &hosts).map_err(|e| {
            DeskError::internal(format!(
                "{e}; check that the desk's tls/ folder is writable"
            ))
        })?;
        let cert = self.desk().display_path(&material.cert_path);
        let message = if material.generated {
            format!(
                "Generated {} for {}. Export the CA and install it on browsers (phones accept it without).",
                cert.display(),
                if hosts.is_empty() {
                    "localhost".to_string()
                } else {
                    hosts.join(", ")
                }
            )
        } else {
            format!("{} is current; kept it.", cert.display())
        };
        Ok(CertificateGenerated {
            certificate: self.certificate_info(),
            message,
        })
    }

    /// The desk's CA certificate (PEM), created first when there is none.
    pub fn export_ca(&self) -> DeskResult<String> {
        tls::export_ca(self.root()).map_err(|e| {
            DeskError::internal(format!(
                "{e}; check that the desk's tls/ folder is writable"
            ))
        })
    }

    /// Writes the CA certificate to `path` (where the technician chose to save it).
    pub fn export_ca_to(&self, path: &Path) -> DeskResult<()> {
        let pem = self.export_ca()?;
        std::fs::write(path, pem).map_err(|e| DeskError::io(path, e))
    }
}

/// Checks that own certificate files load as a pair: one that does not would only fail
/// later, when HTTPS starts. `None` when fine or when no own files are named.
pub(crate) fn own_certificate_problem(root: &Path, settings: &TlsSettings) -> Option<String> {
    if settings.cert.is_none() || settings.key.is_none() {
        return None;
    }
    tls::load_or_generate(root, settings, &[]).err().map(|e| {
        format!(
            "{e}; pick a PEM certificate and its matching private key, or clear both to use the generated certificate"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_keeps_and_exports_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let desk = DeskService::open(&dir.path().join("desk")).unwrap();
        assert_eq!(desk.certificate_info().source, CertificateSource::NoneYet);
        let first = desk.generate_certificate().unwrap();
        assert_eq!(first.certificate.source, CertificateSource::Generated);
        assert!(first.message.starts_with("Generated "), "{}", first.message);
        let again = desk.generate_certificate().unwrap();
        assert!(
            again.message.ends_with("is current; kept it."),
            "{}",
            again.message
        );
        let out = dir.path().join("provdesk-ca.pem");
        desk.export_ca_to(&out).unwrap();
        let pem = std::fs::read_to_string(&out).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        let json = serde_json::to_value(desk.certificate_info()).unwrap();
        assert_eq!(json["source"], "generated");
    }
}
