//! TLS to PostgreSQL, chosen in the URL as libpq does: `sslmode=disable|prefer|require|verify-ca|
//! verify-full` and `sslrootcert=<CA PEM file>`. Without `sslmode` the connection is plain (as
//! before; eventline's own test servers are on loopback). `require` encrypts without checking the
//! certificate (libpq's meaning); `verify-ca` and `verify-full` check it against `sslrootcert`,
//! and both also check the host name (stricter than libpq's `verify-ca`). rustls with ring.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::{Client, Config, NoTls};

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// How to reach one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgTls {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
}

impl PgTls {
    pub fn verifies(&self) -> bool {
        matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = v.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Takes `sslmode` and `sslrootcert` out of `url` (tokio-postgres knows only part of them);
/// returns the rest of the URL and the TLS settings. The error names the parameter.
pub fn split(url: &str) -> Result<(String, PgTls), String> {
    let mut tls = PgTls { mode: SslMode::Disable, root_cert: None };
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_owned(), tls)) };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => {
                tls.mode = match decode(v).as_str() {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    _ => {
                        return Err("sslmode: use disable, prefer, require, verify-ca or verify-full".to_owned());
                    }
                }
            }
            "sslrootcert" => tls.root_cert = Some(PathBuf::from(decode(v))),
            _ => kept.push(pair),
        }
    }
    if tls.verifies() && tls.root_cert.is_none() {
        return Err("sslmode=verify-ca / verify-full needs sslrootcert=<the CA's PEM file>".to_owned());
    }
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((rest, tls))
}

/// Why a connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TLS settings (a CA file that cannot be read) or the handshake (a certificate the CA
    /// did not sign): not a network blip, so not worth retrying.
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Postgres(#[from] tokio_postgres::Error),
}

/// A session on `config` with `tls`; its connection runs on a task of its own (ending it is logged
/// at debug level as `what`).
pub async fn connect(config: &Config, tls: &PgTls, what: &'static str) -> Result<Client, ConnectError> {
    let client = match tls.mode {
        SslMode::Disable => {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "{what}: the PostgreSQL connection ended");
                }
            });
            client
        }
        mode => {
            let mut config = config.clone();
            config.ssl_mode(if mode == SslMode::Prefer {
                tokio_postgres::config::SslMode::Prefer
            } else {
                tokio_postgres::config::SslMode::Require
            });
            let connector =
                tokio_postgres_rustls::MakeRustlsConnect::new(client_config(tls).map_err(ConnectError::Tls)?);
            let (client, connection) = config.connect(connector).await.map_err(|e| {
                // tokio-postgres names a failed handshake only in its message; say why it failed.
                if e.to_string().contains("TLS") {
                    let why = std::error::Error::source(&e).map_or_else(String::new, |s| format!(": {s}"));
                    ConnectError::Tls(format!("{e}{why}"))
                } else {
                    ConnectError::Postgres(e)
                }
            })?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "{what}: the PostgreSQL connection ended");
                }
            });
            client
        }
    };
    Ok(client)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls settings for `tls`: checked against `sslrootcert`, or (require, prefer) encrypted
/// without a check.
pub fn client_config(tls: &PgTls) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if !tls.verifies() {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider())))
            .with_no_client_auth());
    }
    let path = tls.root_cert.as_ref().ok_or("sslrootcert is missing")?;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("sslrootcert {}: no PEM certificate in it", path.display()));
    }
    for c in certs {
        roots.add(c).map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `sslmode=require`: the connection is encrypted; the certificate is not checked (libpq's
/// meaning; use verify-full to check it).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_the_url() {
        let (rest, tls) =
            split("postgres://u:p@h:5432/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x")
                .unwrap();
        assert_eq!(rest, "postgres://u:p@h:5432/db?application_name=x");
        assert_eq!(tls, PgTls { mode: SslMode::VerifyFull, root_cert: Some("/tmp/ca.pem".into()) });
        assert_eq!(split("postgres://u@h/db").unwrap().1.mode, SslMode::Disable);
        assert_eq!(split("postgres://u@h/db?sslmode=require").unwrap().0, "postgres://u@h/db");
        assert!(split("postgres://u@h/db?sslmode=verify-full").unwrap_err().contains("sslrootcert"));
        assert!(split("postgres://u@h/db?sslmode=sometimes").unwrap_err().contains("sslmode"));
    }
}
