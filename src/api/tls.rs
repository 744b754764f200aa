//! TLS whose certificate, key and client CA can change while the service runs: every new
//! handshake takes the credentials loaded last (a rustls certificate resolver and a client
//! verifier that read them through `arc-swap`), and open connections keep theirs. A new set
//! of files that does not load (half written, a key that is not the certificate's) is refused
//! and the previous set stays in use.

use arc_swap::ArcSwap;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    server::{
        ClientHello, ResolvesServerCert, WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject};
use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

/// The files the TLS flags name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--tls-cert`: PEM certificate chain.
    pub cert: PathBuf,
    /// `--tls-key`: its PEM private key.
    pub key: PathBuf,
    /// `--tls-client-ca`: PEM CA certificates client certificates must chain to (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// Why a set of TLS files could not be used, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {0}: {1}")]
    Read(PathBuf, #[source] std::io::Error),
    /// A file holds no usable PEM of what it should.
    #[error("{0}: {1}")]
    Pem(PathBuf, String),
    /// The key does not belong to the certificate, or rustls refuses them.
    #[error("{0}: {1}")]
    Tls(PathBuf, #[source] rustls::Error),
}

/// What one load of the files gave.
struct Loaded {
    key: Arc<CertifiedKey>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    not_after: i64,
    /// The files' bytes, to tell a change from a re-read.
    bytes: Vec<u8>,
}

/// TLS credentials that can be reloaded.
pub struct TlsCredentials {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    key: ArcSwap<CertifiedKey>,
    verifier: Option<Arc<ArcSwap<Arc<dyn ClientCertVerifier>>>>,
    not_after: AtomicI64,
    bytes: parking_lot::Mutex<Vec<u8>>,
}

impl std::fmt::Debug for TlsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCredentials")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read(path.to_owned(), e))
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem(path.to_owned(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Pem(path.to_owned(), "no PEM certificate".into()));
    }
    Ok(certs)
}

/// When a DER certificate stops being valid (Unix seconds).
fn not_after(path: &Path, der: &CertificateDer<'_>) -> Result<i64, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| TlsError::Pem(path.to_owned(), format!("not an X.509 certificate: {e}")))?;
    Ok(cert.validity().not_after.timestamp())
}

impl TlsCredentials {
    /// Loads the files (ring's cryptography).
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded = Self::read_files(&files, &provider)?;
        Ok(Arc::new(Self {
            key: ArcSwap::new(loaded.key),
            verifier: loaded.verifier.map(|v| Arc::new(ArcSwap::from_pointee(v))),
            not_after: AtomicI64::new(loaded.not_after),
            bytes: parking_lot::Mutex::new(loaded.bytes),
            files,
            provider,
        }))
    }

    fn read_files(files: &TlsFiles, provider: &Arc<CryptoProvider>) -> Result<Loaded, TlsError> {
        let cert_pem = read(&files.cert)?;
        let key_pem = read(&files.key)?;
        let ca_pem = files.client_ca.as_deref().map(read).transpose()?;
        let mut bytes = [cert_pem.as_slice(), &key_pem].concat();
        bytes.extend(ca_pem.iter().flatten());
        let chain = certificates(&files.cert, &cert_pem)?;
        let not_after = not_after(&files.cert, &chain[0])?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| TlsError::Pem(files.key.clone(), e.to_string()))?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::Tls(files.key.clone(), e))?;
        let certified = CertifiedKey::new(chain, signing);
        certified
            .keys_match()
            .map_err(|e| TlsError::Tls(files.key.clone(), e))?;
        let verifier = match (&files.client_ca, ca_pem) {
            (Some(path), Some(pem)) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(path, &pem)? {
                    roots
                        .add(cert)
                        .map_err(|e| TlsError::Tls(path.clone(), e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| TlsError::Pem(path.clone(), e.to_string()))?;
                Some(verifier)
            }
            _ => None,
        };
        Ok(Loaded {
            key: Arc::new(certified),
            verifier,
            not_after,
            bytes,
        })
    }

    /// Reads the files again; if they changed and load, new handshakes use them (true). If
    /// they do not load, the credentials in use stay and the error names the file.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let loaded = Self::read_files(&self.files, &self.provider);
        let mut bytes = self.bytes.lock();
        let loaded = match loaded {
            Ok(loaded) if loaded.bytes == *bytes => return Ok(false),
            other => other?,
        };
        self.key.store(loaded.key);
        if let (Some(current), Some(verifier)) = (&self.verifier, loaded.verifier) {
            current.store(Arc::new(verifier));
        }
        self.not_after.store(loaded.not_after, Ordering::Relaxed);
        *bytes = loaded.bytes;
        Ok(true)
    }

    /// The files these credentials come from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// When the certificate served now stops being valid (Unix seconds).
    pub fn not_after(&self) -> i64 {
        self.not_after.load(Ordering::Relaxed)
    }

    /// The rustls configuration of the listener: each handshake asks for the credentials
    /// current at that moment. ALPN offers HTTP/2 and HTTP/1.1 (gRPC-Web, the dashboard).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, rustls::Error> {
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &self.verifier {
            Some(verifier) => {
                builder.with_client_cert_verifier(Arc::new(CurrentVerifier(verifier.clone())))
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(CurrentKey(self.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Hands every handshake the certificate loaded last.
#[derive(Debug)]
struct CurrentKey(Arc<TlsCredentials>);

impl ResolvesServerCert for CurrentKey {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.key.load_full())
    }
}

/// Verifies client certificates against the CA loaded last.
#[derive(Debug)]
struct CurrentVerifier(Arc<ArcSwap<Arc<dyn ClientCertVerifier>>>);

impl CurrentVerifier {
    fn current(&self) -> Arc<Arc<dyn ClientCertVerifier>> {
        self.0.load_full()
    }
}

impl ClientCertVerifier for CurrentVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    // Hints only help a client that holds several certificates choose; they would have to
    // outlive a reload, so none are sent.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

impl crate::ops::reload::Reload for TlsCredentials {
    fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.files.cert.clone(), self.files.key.clone()];
        files.extend(self.files.client_ca.clone());
        files
    }

    fn reload(&self) -> Result<bool, (PathBuf, String)> {
        TlsCredentials::reload(self).map_err(|e| {
            let file = match &e {
                TlsError::Read(f, _) | TlsError::Pem(f, _) | TlsError::Tls(f, _) => f.clone(),
            };
            (file, e.to_string())
        })
    }
}
