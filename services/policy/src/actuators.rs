//! The actuators this policy may tune against: the ones its operator configured
//! (`--actuator`, `--allowed-actuator`), and no other. A tuning session connects with the
//! policy's actuator credential (a bearer token, a client certificate), so an endpoint a caller
//! names freely would hand that credential to whoever listens there.

use faasconf_core::limits::quoted;
use faasconf_server::security::ClientSecurity;

use crate::error::PolicyError;

/// The configured actuators and how to reach them.
#[derive(Debug, Clone, Default)]
pub struct Actuators {
    default: Option<String>,
    /// `scheme://host:port` of every endpoint a session may use.
    allowed: Vec<String>,
    client: ClientSecurity,
}

/// Why the configured actuators cannot be used (a startup error naming the flag).
#[derive(Debug, thiserror::Error)]
#[error("{flag} {source}")]
pub struct ActuatorsError {
    /// The flag that named the endpoint.
    pub flag: &'static str,
    /// What is wrong with it.
    #[source]
    pub source: faasconf_server::security::ConnectError,
}

impl Actuators {
    /// `default` (also allowed) and `allowed`, each checked against `client`'s rules: a
    /// well-formed `http(s)://` URL, `https://` with TLS, no token over plaintext unless allowed.
    pub fn new(
        default: Option<String>,
        allowed: Vec<String>,
        client: ClientSecurity,
    ) -> Result<Self, ActuatorsError> {
        let mut keys = Vec::new();
        let named = default
            .iter()
            .map(|e| ("--actuator", e))
            .chain(allowed.iter().map(|e| ("--allowed-actuator", e)));
        for (flag, endpoint) in named {
            let uri = client
                .check_endpoint(endpoint)
                .map_err(|source| ActuatorsError { flag, source })?;
            keys.push(key(&uri));
        }
        Ok(Self {
            default,
            allowed: keys,
            client,
        })
    }

    /// How sessions reach the actuators.
    pub fn client(&self) -> &ClientSecurity {
        &self.client
    }

    /// The endpoint a `StartTuning` asks for (empty: the default), if this policy may use it.
    pub fn resolve(&self, requested: &str) -> Result<String, PolicyError> {
        const FIELD: &str = "actuator_endpoint";
        if requested.is_empty() {
            return self.default.clone().ok_or_else(|| {
                PolicyError::field(
                    FIELD,
                    "missing, and this policy has no default actuator (start it with --actuator)",
                )
            });
        }
        let uri = self
            .client
            .check_endpoint(requested)
            .map_err(|e| PolicyError::field(FIELD, e.to_string()))?;
        if !self.allowed.contains(&key(&uri)) {
            return Err(PolicyError::field(
                FIELD,
                format!(
                    "{} is not an actuator this policy is configured for (its operator allows them with --actuator and --allowed-actuator)",
                    quoted(requested)
                ),
            ));
        }
        Ok(requested.to_owned())
    }
}

/// `scheme://host:port`, lowercased, with the scheme's default port made explicit: two
/// spellings of one endpoint compare equal.
fn key(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    let host = uri.host().unwrap_or_default().to_ascii_lowercase();
    format!("{scheme}://{host}:{port}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_configured_actuators_are_used() {
        let actuators = Actuators::new(
            Some("http://127.0.0.1:50051".into()),
            vec!["http://Actuator.faasconf:80/".into()],
            ClientSecurity::default(),
        )
        .unwrap();
        assert_eq!(actuators.resolve("").unwrap(), "http://127.0.0.1:50051");
        actuators.resolve("http://127.0.0.1:50051/").unwrap();
        actuators.resolve("http://actuator.faasconf").unwrap();
        for refused in [
            "http://127.0.0.1:50052",
            "https://127.0.0.1:50051",
            "http://evil.example:50051",
            "not a url",
        ] {
            let e = actuators.resolve(refused).unwrap_err();
            assert!(
                matches!(&e, PolicyError::Invalid(f) if f[0].field == "actuator_endpoint"),
                "{refused}: {e}"
            );
        }
        let none = Actuators::default();
        assert!(none.resolve("").is_err());
        assert!(none.resolve("http://127.0.0.1:50051").is_err());
    }

    #[test]
    fn a_malformed_configured_endpoint_names_its_flag() {
        let e = Actuators::new(
            None,
            vec!["127.0.0.1:50051".into()],
            ClientSecurity::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--allowed-actuator 127.0.0.1:50051"),
            "{e}"
        );
    }
}
