//! What a caller asks for: a Secrets Manager secret or an SSM parameter, with
//! its version selector, and the IAM role it is read as (`roleArn`; the
//! function's own for none). A [`Key`] is both the cache key and the
//! upstream request, so the two can never disagree: two roles reading one
//! id are two entries.

use std::fmt;
use std::sync::Arc;

/// The IAM role a value is read as (its ARN), or `None` for the function's
/// own credentials.
pub type Role = Option<Arc<str>>;

/// Which AWS service a key belongs to. TTLs are configured per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// AWS Secrets Manager (`GetSecretValue`).
    Secret,
    /// AWS Systems Manager Parameter Store (`GetParameter`,
    /// `GetParametersByPath`).
    Parameter,
}

/// A `GetSecretValue` request: the secret's name or ARN and an optional
/// version id and/or staging label (both may be given; the service checks
/// that they agree).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretRequest {
    /// Name, partial ARN or full ARN of the secret.
    pub id: String,
    /// `VersionId`, if the caller pinned one.
    pub version_id: Option<String>,
    /// `VersionStage` (e.g. `AWSPREVIOUS`), if the caller asked for one.
    pub version_stage: Option<String>,
    /// The role it is read as.
    pub role: Role,
}

impl SecretRequest {
    /// The current version (`AWSCURRENT`) of `id`.
    pub fn current(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            version_id: None,
            version_stage: None,
            role: None,
        }
    }
}

/// A `GetParameter` request. `version` and `label` become the `name:selector`
/// suffix the service expects; at most one of them may be set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ParameterRequest {
    /// Parameter name or ARN, without a selector suffix.
    pub name: String,
    /// A numeric version selector.
    pub version: Option<u64>,
    /// A label selector.
    pub label: Option<String>,
    /// Whether `SecureString` values are decrypted. Part of the key: the
    /// encrypted and decrypted answers are different values.
    pub with_decryption: bool,
    /// The role it is read as.
    pub role: Role,
}

impl ParameterRequest {
    /// The latest version of `name`, decrypted or not.
    pub fn latest(name: impl Into<String>, with_decryption: bool) -> Self {
        Self {
            name: name.into(),
            version: None,
            label: None,
            with_decryption,
            role: None,
        }
    }

    /// The name as `GetParameter` takes it: `name`, `name:version` or `name:label`.
    pub fn selector_name(&self) -> String {
        match (&self.version, &self.label) {
            (Some(v), _) => format!("{}:{v}", self.name),
            (None, Some(l)) => format!("{}:{l}", self.name),
            (None, None) => self.name.clone(),
        }
    }
}

/// A `GetParametersByPath` request: every parameter under `path`, all
/// pages merged into one value. Each combination of the flags is its own
/// entry: a recursive tree holds more than a flat one, and the decrypted
/// tree differs from the encrypted one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathRequest {
    /// The hierarchy, starting with `/` (`/app/prod/`).
    pub path: String,
    /// Whether parameters in sub-paths are included.
    pub recursive: bool,
    /// Whether `SecureString` values are decrypted.
    pub with_decryption: bool,
    /// The role it is read as.
    pub role: Role,
}

/// One cache entry's identity: the kind, the id and the version selector.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// A Secrets Manager secret.
    Secret(SecretRequest),
    /// An SSM parameter.
    Parameter(ParameterRequest),
    /// The parameters under an SSM path, as one value.
    Path(PathRequest),
}

impl Key {
    /// The current version of a secret.
    pub fn secret(id: impl Into<String>) -> Self {
        Key::Secret(SecretRequest::current(id))
    }

    /// The latest version of a parameter.
    pub fn parameter(name: impl Into<String>, with_decryption: bool) -> Self {
        Key::Parameter(ParameterRequest::latest(name, with_decryption))
    }

    /// The service this key is read from.
    pub fn kind(&self) -> Kind {
        match self {
            Key::Secret(_) => Kind::Secret,
            Key::Parameter(_) | Key::Path(_) => Kind::Parameter,
        }
    }

    /// The id as the caller gave it (secret id, parameter name or path).
    pub fn id(&self) -> &str {
        match self {
            Key::Secret(r) => &r.id,
            Key::Parameter(r) => &r.name,
            Key::Path(r) => &r.path,
        }
    }

    /// The role it is read as, if not the function's own.
    pub fn role(&self) -> Option<&str> {
        match self {
            Key::Secret(r) => r.role.as_deref(),
            Key::Parameter(r) => r.role.as_deref(),
            Key::Path(r) => r.role.as_deref(),
        }
    }

    /// The same key read as `role`.
    pub fn with_role(mut self, role: Role) -> Self {
        match &mut self {
            Key::Secret(r) => r.role = role,
            Key::Parameter(r) => r.role = role,
            Key::Path(r) => r.role = role,
        }
        self
    }

    /// Whether the key names one immutable version (a secret's `versionId`,
    /// a parameter's numeric version): its value never changes, so the cache
    /// never refreshes it ahead of a read.
    pub fn is_pinned(&self) -> bool {
        match self {
            Key::Secret(r) => r.version_id.is_some(),
            Key::Parameter(r) => r.version.is_some(),
            Key::Path(_) => false,
        }
    }

    /// Approximate heap size of the key, for the byte bound.
    pub(crate) fn heap_size(&self) -> usize {
        let own = match self {
            Key::Secret(r) => {
                r.id.len()
                    + r.version_id.as_ref().map_or(0, String::len)
                    + r.version_stage.as_ref().map_or(0, String::len)
            }
            Key::Parameter(r) => r.name.len() + r.label.as_ref().map_or(0, String::len),
            Key::Path(r) => r.path.len(),
        };
        // A role's ARN is shared by its keys: counted once per key anyway.
        own + self.role().map_or(0, str::len)
    }
}

/// Keys print as ids and selectors only, which are safe to log.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Secret(r) => {
                write!(f, "secret {}", r.id)?;
                if let Some(v) = &r.version_id {
                    write!(f, " versionId={v}")?;
                }
                if let Some(s) = &r.version_stage {
                    write!(f, " versionStage={s}")?;
                }
            }
            Key::Parameter(r) => write!(f, "parameter {}", r.selector_name())?,
            Key::Path(r) => write!(f, "parameters under {} recursive={}", r.path, r.recursive)?,
        }
        match self.role() {
            Some(role) => write!(f, " as {role}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_selector_suffix() {
        let mut p = ParameterRequest::latest("/app/db", true);
        assert_eq!(p.selector_name(), "/app/db");
        p.version = Some(3);
        assert_eq!(p.selector_name(), "/app/db:3");
        p.version = None;
        p.label = Some("prod".into());
        assert_eq!(p.selector_name(), "/app/db:prod");
    }

    #[test]
    fn decryption_is_part_of_the_key() {
        assert_ne!(Key::parameter("/a", true), Key::parameter("/a", false));
    }
}
