//! The client side: how one faasconf process reaches another (the policy its actuators, the
//! CLI the policy). TLS settings and a bearer token, all optional, and the rule that a token
//! never crosses a plaintext connection unless the operator allowed it by flag (loopback
//! development), nor goes to an endpoint that is not a well-formed `http(s)://host:port` URL.

use std::path::PathBuf;
use std::time::Duration;

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::{SecurityError, Token, read};

/// How a client reaches a service: TLS settings and a token, all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSecurityFiles {
    /// PEM CA certificates to verify the server with (TLS; `https://` endpoints).
    pub tls_ca: Option<PathBuf>,
    /// PEM certificate this client presents (mutual TLS).
    pub tls_client_cert: Option<PathBuf>,
    /// PEM key of that certificate.
    pub tls_client_key: Option<PathBuf>,
    /// File holding the bearer token to send.
    pub token_file: Option<PathBuf>,
}

/// A client's security, loaded; `flags` name the files in errors (e.g. `--actuator-tls-ca`).
#[derive(Debug, Clone, Default)]
pub struct ClientSecurity {
    tls: Option<ClientTlsConfig>,
    token: Option<Token>,
    /// The token may go over `http://` (the operator's flag, for loopback development).
    plaintext_token: bool,
    flags: Option<ClientFlags>,
}

/// The names of a client's flags, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct ClientFlags {
    /// The CA flag.
    pub tls_ca: &'static str,
    /// The client certificate flag.
    pub tls_client_cert: &'static str,
    /// The client key flag.
    pub tls_client_key: &'static str,
    /// The token file flag.
    pub token_file: &'static str,
    /// The flag that lets the token go over plaintext.
    pub allow_plaintext_token: &'static str,
}

impl ClientSecurity {
    /// Reads the files.
    pub fn load(files: &ClientSecurityFiles, flags: ClientFlags) -> Result<Self, SecurityError> {
        let identity = match (&files.tls_client_cert, &files.tls_client_key) {
            (Some(c), Some(k)) => Some(Identity::from_pem(
                read(flags.tls_client_cert, c)?,
                read(flags.tls_client_key, k)?,
            )),
            (None, None) => None,
            (Some(_), None) => {
                return Err(SecurityError::Invalid {
                    flag: flags.tls_client_key,
                    message: format!("missing: {} needs its key", flags.tls_client_cert),
                });
            }
            (None, Some(_)) => {
                return Err(SecurityError::Invalid {
                    flag: flags.tls_client_cert,
                    message: format!("missing: {} needs its certificate", flags.tls_client_key),
                });
            }
        };
        let tls = match (&files.tls_ca, identity) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(SecurityError::Invalid {
                    flag: flags.tls_ca,
                    message: format!(
                        "missing: a client certificate is for TLS; give the CA that signed the server's ({})",
                        flags.tls_ca
                    ),
                });
            }
            (Some(ca), identity) => {
                let mut config = ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(read(flags.tls_ca, ca)?));
                if let Some(identity) = identity {
                    config = config.identity(identity);
                }
                Some(config)
            }
        };
        let token = files
            .token_file
            .as_deref()
            .map(|p| Token::from_file(flags.token_file, p))
            .transpose()?;
        Ok(Self {
            tls,
            token,
            plaintext_token: false,
            flags: Some(flags),
        })
    }

    /// Lets the token go over plaintext `http://` connections (the operator's explicit flag;
    /// for loopback development).
    pub fn allow_plaintext_token(mut self, allow: bool) -> Self {
        self.plaintext_token = allow;
        self
    }

    /// Whether this client may call `endpoint`: a `http://` or `https://` URL with a host,
    /// `https://` when TLS is configured, and no token over `http://` unless allowed. The
    /// error says what to change, naming the flags.
    pub fn check_endpoint(&self, endpoint: &str) -> Result<http::Uri, ConnectError> {
        let refuse = |message: String| ConnectError {
            endpoint: faasconf_core::limits::clip(endpoint).into_owned(),
            message,
        };
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| refuse(format!("not a URL ({e}); e.g. http://127.0.0.1:50051")))?;
        let secure = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(refuse("the scheme must be http:// or https://".into())),
        };
        if uri.host().is_none_or(str::is_empty) {
            return Err(refuse("names no host".into()));
        }
        let flags = self.flags.unwrap_or(ClientFlags::NONE);
        if !secure && self.tls.is_some() {
            return Err(refuse(format!(
                "TLS is configured ({}): use an https:// endpoint",
                flags.tls_ca
            )));
        }
        if !secure && self.token.is_some() && !self.plaintext_token {
            return Err(refuse(format!(
                "the token ({}) would travel in plaintext: use https:// with {}, or allow it for loopback development with {}",
                flags.token_file, flags.tls_ca, flags.allow_plaintext_token
            )));
        }
        Ok(uri)
    }

    /// A channel to `endpoint` (checked by [`ClientSecurity::check_endpoint`]) that sends the
    /// token, with `connect_timeout`, and `request_timeout` for each call when given (not for
    /// clients of long-lived streams). Errors name the endpoint and every cause.
    pub async fn connect(
        &self,
        endpoint: &str,
        connect_timeout: Duration,
        request_timeout: Option<Duration>,
    ) -> Result<AuthChannel, ConnectError> {
        let uri = self.check_endpoint(endpoint)?;
        let failed = |e: tonic::transport::Error| ConnectError {
            endpoint: endpoint.to_owned(),
            message: chain(&e),
        };
        let mut e = Endpoint::from(uri).connect_timeout(connect_timeout);
        if let Some(timeout) = request_timeout {
            e = e.timeout(timeout);
        }
        if let Some(tls) = &self.tls {
            e = e.tls_config(tls.clone()).map_err(failed)?;
        }
        let channel = e.connect().await.map_err(failed)?;
        Ok(InterceptedService::new(
            channel,
            Credentials {
                token: self.token.clone(),
            },
        ))
    }
}

impl ClientFlags {
    /// Names for a client built without flags.
    const NONE: Self = Self {
        tls_ca: "the CA setting",
        tls_client_cert: "the client certificate setting",
        tls_client_key: "the client key setting",
        token_file: "the token setting",
        allow_plaintext_token: "the plaintext-token setting",
    };
}

/// A service could not be reached, or may not be called: the endpoint and why (every cause of
/// a transport error, not only "transport error").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{endpoint}: {message}")]
pub struct ConnectError {
    /// The endpoint (clipped).
    pub endpoint: String,
    /// Why.
    pub message: String,
}

/// An error and its sources, joined (`transport error: tcp connect error: Connection refused`).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// A channel that sends the client's token with every request.
pub type AuthChannel = InterceptedService<Channel, Credentials>;

/// Adds `authorization: Bearer <token>` to every request when a token is configured.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    token: Option<Token>,
}

impl Interceptor for Credentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.token {
            let value = format!("Bearer {}", token.0)
                .parse()
                .map_err(|_| tonic::Status::internal("the token cannot be sent as a header"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const FLAGS: ClientFlags = ClientFlags {
        tls_ca: "--actuator-tls-ca",
        tls_client_cert: "--actuator-tls-client-cert",
        tls_client_key: "--actuator-tls-client-key",
        token_file: "--actuator-token-file",
        allow_plaintext_token: "--allow-plaintext-token",
    };

    fn with_token() -> ClientSecurity {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "s3cret").unwrap();
        ClientSecurity::load(
            &ClientSecurityFiles {
                token_file: Some(file.path().to_owned()),
                ..Default::default()
            },
            FLAGS,
        )
        .unwrap()
    }

    #[test]
    fn a_token_never_goes_over_plaintext_unless_allowed() {
        let client = with_token();
        let refused = client.check_endpoint("http://127.0.0.1:50051").unwrap_err();
        assert!(refused.to_string().starts_with("http://127.0.0.1:50051: "));
        assert!(
            refused.message.contains("--allow-plaintext-token"),
            "{refused}"
        );
        assert!(!refused.to_string().contains("s3cret"));
        client.check_endpoint("https://actuator:50051").unwrap();
        let allowed = client.allow_plaintext_token(true);
        allowed.check_endpoint("http://127.0.0.1:50051").unwrap();
        // Without a token there is nothing to leak.
        ClientSecurity::default()
            .check_endpoint("http://127.0.0.1:50051")
            .unwrap();
    }

    #[test]
    fn malformed_endpoints_are_named() {
        let client = ClientSecurity::default();
        for bad in ["", "not a url", "ftp://x:1", "127.0.0.1:50051", "http://"] {
            let e = client.check_endpoint(bad).unwrap_err();
            assert_eq!(e.endpoint, bad, "{e}");
        }
        let long = format!("http://{}", "a".repeat(1 << 20));
        let e = client.check_endpoint(&format!("{long} x")).unwrap_err();
        assert!(e.to_string().len() < 1024);
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_endpoint_and_the_cause() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let endpoint = format!("http://{addr}");
        let e = ClientSecurity::default()
            .connect(&endpoint, Duration::from_secs(2), None)
            .await
            .unwrap_err();
        assert_eq!(e.endpoint, endpoint);
        assert!(e.message.len() > "transport error".len(), "{e}");
    }
}
