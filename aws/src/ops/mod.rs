//! One module per AWS operation, each the one place that knows it: its
//! request shape, how its answer is read into the cache's records, the
//! body sidekey writes when it answers that operation itself, and the
//! error codes it answers with (gathered by [`crate::errors`]).
//!
//! Nothing here performs I/O: the fetcher ([`crate::fetcher`], feature
//! `client`) sends what these build and hands back what they read.

pub mod assume_role;
pub mod batch_get_secret_value;
pub mod describe_secret;
pub mod get_parameter;
pub mod get_parameters;
pub mod get_parameters_by_path;
pub mod get_secret_value;

/// An AWS service as sidekey calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// AWS Secrets Manager (AWS JSON 1.1).
    SecretsManager,
    /// AWS Systems Manager, for Parameter Store (AWS JSON 1.1).
    Ssm,
    /// AWS Security Token Service, for `AssumeRole` (the query protocol:
    /// a form in, XML out).
    Sts,
}

impl Service {
    /// The service and operation an `X-Amz-Target` names
    /// (`secretsmanager.GetSecretValue`, `AmazonSSM.GetParameter`).
    pub fn of_target(target: &str) -> Option<(Service, &str)> {
        let (prefix, name) = target.split_once('.')?;
        let service = [Service::SecretsManager, Service::Ssm]
            .into_iter()
            .find(|s| s.target_prefix() == prefix)?;
        let plain = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric());
        plain.then_some((service, name))
    }

    /// The name requests are signed for (the credential scope's service).
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
            Service::Sts => "sts",
        }
    }

    /// The `X-Amz-Target` prefix of its operations (STS has none: its
    /// operation is a form field).
    pub fn target_prefix(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "AmazonSSM",
            Service::Sts => "",
        }
    }

    /// The first label of its endpoints' host names.
    pub fn endpoint_prefix(self) -> &'static str {
        self.signing_name()
    }
}

/// An operation: the service and the name its `X-Amz-Target` carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The service it belongs to.
    pub service: Service,
    /// Its name (`GetSecretValue`).
    pub name: &'static str,
}

impl Operation {
    /// The `X-Amz-Target` header's value (`secretsmanager.GetSecretValue`).
    pub fn target(self) -> String {
        format!("{}.{}", self.service.target_prefix(), self.name)
    }
}

/// The request fields that name what an operation changes, for the
/// operations that change a value sidekey may hold (or make an id that was
/// not found exist). The extension drops what it holds for those ids when
/// such a call, passed through, succeeds: a function that writes a secret
/// reads its own write next.
pub fn changes(service: Service, operation: &str) -> &'static [&'static str] {
    match (service, operation) {
        (
            Service::SecretsManager,
            "PutSecretValue"
            | "UpdateSecret"
            | "UpdateSecretVersionStage"
            | "RotateSecret"
            | "CancelRotateSecret"
            | "DeleteSecret"
            | "RestoreSecret"
            | "ReplicateSecretToRegions"
            | "RemoveRegionsFromReplication"
            | "StopReplicationToReplica",
        ) => &["SecretId"],
        (Service::SecretsManager, "CreateSecret") => &["Name"],
        (
            Service::Ssm,
            "PutParameter"
            | "DeleteParameter"
            | "LabelParameterVersion"
            | "UnlabelParameterVersion",
        ) => &["Name"],
        (Service::Ssm, "DeleteParameters") => &["Names"],
        _ => &[],
    }
}

/// `{"A":[a1,a2],"B":[b1]}` from JSON elements, in a wiped buffer of its
/// exact size: measured first, so it never reallocates and no unwiped copy
/// of a value is left in freed memory. The many-value answers sidekey
/// writes are built with it from the values' cached bodies.
pub(crate) fn two_lists(a: (&str, &[&[u8]]), b: (&str, &[&[u8]])) -> zeroize::Zeroizing<Vec<u8>> {
    let list_len = |items: &[&[u8]]| {
        items.iter().map(|i| i.len()).sum::<usize>() + items.len().saturating_sub(1)
    };
    // {"A":[...],"B":[...]}: braces 2, quotes 4, colons 2, brackets 4, comma 1.
    let size = 13 + a.0.len() + b.0.len() + list_len(a.1) + list_len(b.1);
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(size));
    out.push(b'{');
    for (n, (name, items)) in [a, b].into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item);
        }
        out.push(b']');
    }
    out.push(b'}');
    debug_assert_eq!(out.len(), size);
    out
}
