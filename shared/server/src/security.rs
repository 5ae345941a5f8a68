//! Transport security and authentication of the services and of the clients between them.
//!
//! - TLS (optional): a server presents `--tls-cert`/`--tls-key`; with `--tls-client-ca` it
//!   also demands a client certificate chaining to that CA (mutual TLS). A TLS server refuses
//!   plaintext connections.
//! - A bearer token (optional): with `--auth-token-file` every RPC except grpc.health.v1 must
//!   carry `authorization: Bearer <token>`, else it is answered UNAUTHENTICATED. The token is
//!   read from a file (a mounted Kubernetes Secret) at start.
//! - Clients ([`ClientSecurity`]): a CA to verify the server, a client identity for mutual TLS,
//!   a token file; [`ClientSecurity::connect`] gives a channel that sends the token.
//!
//! Secrets are never logged: a [`Token`] prints as `<redacted>`, and errors name files, not
//! contents.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tower::{Layer, Service};

mod client;
pub use client::{
    AuthChannel, ClientFlags, ClientSecurity, ClientSecurityFiles, ConnectError, Credentials, chain,
};

/// Why security settings cannot be used. Names the flag and the file, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A file could not be read.
    #[error("{flag} {path}: {source}")]
    Read {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A setting is wrong (which flag, and why).
    #[error("{flag}: {message}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
    /// TLS could not be set up with these files.
    #[error("TLS: {0}")]
    Tls(#[from] tonic::transport::Error),
}

pub(crate) fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(path).map_err(|source| SecurityError::Read {
        flag,
        path: path.to_owned(),
        source,
    })
}

/// A bearer token. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub(crate) String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Reads the token from `path` (surrounding whitespace dropped); `flag` names it in errors.
    pub fn from_file(flag: &'static str, path: &Path) -> Result<Self, SecurityError> {
        let bytes = read(flag, path)?;
        let text = String::from_utf8(bytes).map_err(|_| SecurityError::Invalid {
            flag,
            message: format!("{} is not UTF-8 text", path.display()),
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(SecurityError::Invalid {
                flag,
                message: format!("{} is empty", path.display()),
            });
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecurityError::Invalid {
                flag,
                message: format!(
                    "{} holds characters a header cannot carry (printable ASCII without spaces only)",
                    path.display()
                ),
            });
        }
        Ok(Self(token.to_owned()))
    }

    /// Whether an `authorization` header value carries this token (constant time in the
    /// token's length, so timing does not tell how much of a guess was right).
    fn admits(&self, header: Option<&http::HeaderValue>) -> bool {
        let Some(presented) = header
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
        else {
            return false;
        };
        let (a, b) = (presented.as_bytes(), self.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// The security flags of a server, as files (the same flags on both services).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ServerSecurityFiles {
    /// PEM certificate chain to serve gRPC with over TLS (with --tls-key); plaintext connections
    /// are then refused.
    #[arg(long, env = "FAASCONF_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "FAASCONF_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates client certificates must chain to: mutual TLS.
    #[arg(long, env = "FAASCONF_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// File holding a bearer token (e.g. a mounted Secret): every RPC except health must send
    /// `authorization: Bearer <token>`, else UNAUTHENTICATED.
    #[arg(long, env = "FAASCONF_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// Also serve grpc.health.v1, alone and in plaintext, on this address: Kubernetes gRPC
    /// probes do not speak TLS.
    #[arg(long, env = "FAASCONF_HEALTH_ADDR")]
    pub health_addr: Option<std::net::SocketAddr>,
}

/// A server's security, loaded.
#[derive(Debug, Clone, Default)]
pub struct ServerSecurity {
    /// TLS settings (none: plaintext).
    pub tls: Option<ServerTlsConfig>,
    /// The token RPCs must carry (none: no check).
    pub token: Option<Token>,
    /// Where health is also served in plaintext.
    pub health_addr: Option<std::net::SocketAddr>,
}

impl ServerSecurity {
    /// Reads the files; a half-given pair (certificate without key) or a client CA without a
    /// certificate is an error naming the missing flag.
    pub fn load(files: &ServerSecurityFiles) -> Result<Self, SecurityError> {
        let tls = match (&files.tls_cert, &files.tls_key) {
            (Some(cert), Some(key)) => {
                let identity =
                    Identity::from_pem(read("--tls-cert", cert)?, read("--tls-key", key)?);
                let mut config = ServerTlsConfig::new().identity(identity);
                if let Some(ca) = &files.tls_client_ca {
                    config =
                        config.client_ca_root(Certificate::from_pem(read("--tls-client-ca", ca)?));
                }
                Some(config)
            }
            (None, None) if files.tls_client_ca.is_some() => {
                return Err(SecurityError::Invalid {
                    flag: "--tls-client-ca",
                    message: "needs --tls-cert and --tls-key (mutual TLS is TLS first)".into(),
                });
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(SecurityError::Invalid {
                    flag: "--tls-key",
                    message: "missing: --tls-cert needs its key".into(),
                });
            }
            (None, Some(_)) => {
                return Err(SecurityError::Invalid {
                    flag: "--tls-cert",
                    message: "missing: --tls-key needs its certificate".into(),
                });
            }
        };
        let token = files
            .auth_token_file
            .as_deref()
            .map(|p| Token::from_file("--auth-token-file", p))
            .transpose()?;
        Ok(Self {
            tls,
            token,
            health_addr: files.health_addr,
        })
    }

    /// What is enabled, for the start-up log (no secrets).
    pub fn describe(&self) -> String {
        format!(
            "tls: {}, bearer token: {}",
            if self.tls.is_some() { "on" } else { "off" },
            if self.token.is_some() {
                "required"
            } else {
                "off"
            }
        )
    }
}

/// Answers UNAUTHENTICATED to every RPC without the token, health checks excepted.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    token: Option<Token>,
}

impl AuthLayer {
    /// Checks `token` (none: lets everything through).
    pub fn new(token: Option<Token>) -> Self {
        Self { token }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            token: self.token.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    token: Option<Token>,
}

/// The path prefix of the health service, which probes call without credentials.
const HEALTH: &str = "/grpc.health.v1.Health/";

impl<S, B, R> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let admitted = match &self.token {
            None => true,
            Some(token) => {
                request.uri().path().starts_with(HEALTH)
                    || token.admits(request.headers().get(http::header::AUTHORIZATION))
            }
        };
        if admitted {
            Box::pin(self.inner.call(request))
        } else {
            tracing::debug!(
                path = request.uri().path(),
                "refused: no valid bearer token"
            );
            let status = tonic::Status::unauthenticated(
                "this RPC needs `authorization: Bearer <token>` with the service's token",
            );
            Box::pin(std::future::ready(Ok(status.into_http())))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn token_file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn tokens_are_read_trimmed_and_never_printed() {
        let f = token_file("  s3cret-token\n");
        let token = Token::from_file("--auth-token-file", f.path()).unwrap();
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        let security = ServerSecurity {
            tls: None,
            token: Some(token.clone()),
            health_addr: None,
        };
        assert!(!format!("{security:?} {}", security.describe()).contains("s3cret"));
        let header = |v: &str| http::HeaderValue::from_str(v).unwrap();
        assert!(token.admits(Some(&header("Bearer s3cret-token"))));
        assert!(!token.admits(Some(&header("Bearer s3cret-tokeN"))));
        assert!(!token.admits(Some(&header("Bearer s3cret"))));
        assert!(!token.admits(Some(&header("s3cret-token"))));
        assert!(!token.admits(None));
    }

    #[test]
    fn bad_token_files_are_named_without_their_contents() {
        let empty = token_file(" \n");
        let error = Token::from_file("--auth-token-file", empty.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("--auth-token-file: ") && error.contains("is empty"),
            "{error}"
        );
        let spaced = token_file("two words");
        let error = Token::from_file("--token-file", spaced.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("--token-file: ") && !error.contains("two words"),
            "{error}"
        );
        let missing =
            Token::from_file("--token-file", Path::new("/nonexistent/token")).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("--token-file /nonexistent/token: "),
            "{missing}"
        );
    }

    #[test]
    fn half_given_tls_settings_name_the_missing_flag() {
        let files = |cert: bool, key: bool, ca: bool| ServerSecurityFiles {
            tls_cert: cert.then(|| PathBuf::from("c.pem")),
            tls_key: key.then(|| PathBuf::from("k.pem")),
            tls_client_ca: ca.then(|| PathBuf::from("ca.pem")),
            auth_token_file: None,
            health_addr: None,
        };
        let flag = |f: ServerSecurityFiles| match ServerSecurity::load(&f) {
            Err(SecurityError::Invalid { flag, .. }) => flag,
            other => panic!("{other:?}"),
        };
        assert_eq!(flag(files(true, false, false)), "--tls-key");
        assert_eq!(flag(files(false, true, false)), "--tls-cert");
        assert_eq!(flag(files(false, false, true)), "--tls-client-ca");
        assert!(
            ServerSecurity::load(&files(false, false, false))
                .unwrap()
                .tls
                .is_none()
        );
        let client = ClientSecurityFiles {
            tls_client_cert: Some("c.pem".into()),
            tls_client_key: Some("k.pem".into()),
            ..Default::default()
        };
        let flags = ClientFlags {
            tls_ca: "--tls-ca",
            tls_client_cert: "--tls-client-cert",
            tls_client_key: "--tls-client-key",
            token_file: "--token-file",
            allow_plaintext_token: "--allow-plaintext-token",
        };
        // The identity files are read first: a missing one is named.
        let error = ClientSecurity::load(&client, flags)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("--tls-client-cert c.pem"), "{error}");
    }

    #[tokio::test]
    async fn only_health_passes_without_the_token() {
        use tower::ServiceExt;
        let f = token_file("t0k3n");
        let token = Token::from_file("--auth-token-file", f.path()).unwrap();
        let inner = tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::from("served")))
        });
        let service = AuthLayer::new(Some(token)).layer(inner);
        let call = |path: &str, auth: Option<&str>| {
            let mut r = http::Request::builder().uri(path);
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            service.clone().oneshot(r.body(()).unwrap())
        };
        let grpc_status = |r: &http::Response<String>| {
            r.headers()
                .get("grpc-status")
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let refused = call("/faasconf.v1.Policy/RecommendConfig", None)
            .await
            .unwrap();
        assert_eq!(
            grpc_status(&refused).as_deref(),
            Some("16"),
            "UNAUTHENTICATED"
        );
        let wrong = call("/faasconf.v1.Policy/RecommendConfig", Some("Bearer nope"))
            .await
            .unwrap();
        assert_eq!(grpc_status(&wrong).as_deref(), Some("16"));
        let reflection = call(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            None,
        );
        assert_eq!(
            grpc_status(&reflection.await.unwrap()).as_deref(),
            Some("16")
        );
        let served = call("/faasconf.v1.Policy/RecommendConfig", Some("Bearer t0k3n"))
            .await
            .unwrap();
        assert_eq!(served.into_body(), "served");
        let health = call("/grpc.health.v1.Health/Check", None).await.unwrap();
        assert_eq!(health.into_body(), "served");
    }
}
