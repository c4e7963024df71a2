//! sidekey's HTTPS client (`https.rs`, its trimmed ring provider) completes
//! real TLS handshakes: TLS 1.3 and TLS 1.2, with RSA and ECDSA server
//! certificates, against a loopback rustls server using ring's full
//! provider. The certificates in `tests/tls/` are a throwaway test CA and
//! two `localhost` leaves (valid until 2126), made with openssl for this
//! test only.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ProtocolVersion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CA: &[u8] = include_bytes!("tls/ca.pem");

/// Serve one HTTPS answer per connection with `cert`/`key`, speaking only
/// `version`; reports each handshake's negotiated version and suite.
async fn server(
    cert: &[u8],
    key: &[u8],
    version: &'static rustls::SupportedProtocolVersion,
) -> (
    u16,
    tokio::sync::mpsc::UnboundedReceiver<(ProtocolVersion, String)>,
) {
    let chain = vec![CertificateDer::from_pem_slice(cert).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let (_, session) = tls.get_ref();
            let _ = tx.send((
                session.protocol_version().unwrap(),
                format!("{:?}", session.negotiated_cipher_suite().unwrap().suite()),
            ));
            let mut head = [0u8; 1024];
            let _ = tls.read(&mut head).await;
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
            let _ = tls.shutdown().await;
        }
    });
    (port, rx)
}

async fn get(port: u16) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(CA).unwrap())
        .unwrap();
    let client =
        sidekey_aws::https::client_trusting::<Empty<Bytes>>(roots, Duration::from_secs(2), 1)
            .unwrap();
    let uri = format!("https://localhost:{port}/").parse().unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| format!("{e:?}"))?;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn handshakes_with_tls13_and_tls12_rsa_and_ecdsa() {
    let certs: [(&[u8], &[u8]); 2] = [
        (include_bytes!("tls/rsa.pem"), include_bytes!("tls/rsa.key")),
        (
            include_bytes!("tls/ecdsa.pem"),
            include_bytes!("tls/ecdsa.key"),
        ),
    ];
    for (cert, key) in certs {
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let (port, mut seen) = server(cert, key, version).await;
            assert_eq!(
                get(port).await.as_deref(),
                Ok("ok"),
                "{:?}",
                version.version
            );
            let (negotiated, suite) = seen.recv().await.unwrap();
            assert_eq!(negotiated, version.version);
            assert!(suite.contains("AES"), "{suite}");
        }
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    // The server's chain is fine, but the client trusts no CA that signed it.
    let (port, _seen) = server(
        include_bytes!("tls/rsa.pem"),
        include_bytes!("tls/rsa.key"),
        &rustls::version::TLS13,
    )
    .await;
    let client = sidekey_aws::https::client_trusting::<Empty<Bytes>>(
        rustls::RootCertStore::empty(),
        Duration::from_secs(2),
        1,
    )
    .unwrap();
    let uri = format!("https://localhost:{port}/").parse().unwrap();
    let err = client.get(uri).await.unwrap_err();
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
}
