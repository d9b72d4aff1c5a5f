//! The docker credentials (dockercreds.basicDockerBuilder.Write): `.docker/config.json`.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;

use super::{read_capped, Basic, LoadError};
use crate::tekton::message::{go_field, go_json_string};

/// The e-mail Tekton writes for `-basic-docker` entries.
const DOCKER_EMAIL: &str = "not@val.id";

/// One `auths` entry as Tekton's `entry` struct keeps it: every other field of a docker config
/// (identitytoken, …) is dropped by Go's decoding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct DockerEntry {
    username: String,
    password: String,
    auth: String,
    email: String,
}

pub(super) fn docker_json(
    cfg: &[String],
    config: &[String],
    basic: &[Basic],
    secrets: &Path,
) -> Result<Option<Vec<u8>>, LoadError> {
    let mut auths: BTreeMap<String, DockerEntry> = BTreeMap::new();
    for name in cfg {
        // A .dockercfg is the map of registries itself.
        let path = secrets.join(name).join(".dockercfg");
        auths.extend(docker_auths(&path, false)?);
    }
    for name in config {
        let path = secrets.join(name).join(".dockerconfigjson");
        auths.extend(docker_auths(&path, true)?);
    }
    for b in basic {
        let mut userpass = b.username.clone();
        userpass.push(b':');
        userpass.extend_from_slice(&b.password);
        auths.insert(
            b.url.clone(),
            DockerEntry {
                username: go_string(&b.username),
                password: go_string(&b.password),
                auth: base64::engine::general_purpose::STANDARD.encode(userpass),
                email: DOCKER_EMAIL.to_string(),
            },
        );
    }
    if auths.is_empty() {
        return Ok(None);
    }
    // json.Marshal(configFile{Auth: auths}): map keys sorted, omitempty on all but auth.
    let mut out = String::from("{\"auths\":{");
    for (i, (registry, e)) in auths.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&go_json_string(registry.as_bytes()));
        out.push_str(":{");
        let mut fields = Vec::new();
        for (key, value, always) in [
            ("username", &e.username, false),
            ("password", &e.password, false),
            ("auth", &e.auth, true),
            ("email", &e.email, false),
        ] {
            if always || !value.is_empty() {
                fields.push(format!("\"{key}\":{}", go_json_string(value.as_bytes())));
            }
        }
        out.push_str(&fields.join(","));
        out.push('}');
    }
    out.push_str("}}");
    Ok(Some(out.into_bytes()))
}

/// The registries of a `.dockercfg` (`nested` false) or `.dockerconfigjson` (`nested`: under
/// `auths`) secret, decoded as Go decodes them into Tekton's `entry`.
fn docker_auths(path: &Path, nested: bool) -> Result<BTreeMap<String, DockerEntry>, LoadError> {
    let what = if nested { "a .dockerconfigjson" } else { "a .dockercfg" };
    let bad = |why: String| {
        LoadError::Secret(format!(
            "the docker credentials {} are not {what} ({why}); fix the secret (kubectl create secret docker-registry)",
            path.display()
        ))
    };
    let bytes = read_capped(path).map_err(|e| {
        LoadError::Secret(format!(
            "cannot read the docker credentials {}: {e}; the secret must have the key {}",
            path.display(),
            path.file_name().unwrap_or_default().to_string_lossy()
        ))
    })?;
    // Parsed as a Value: serde_json's syntax errors carry no part of the input (typed errors would).
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("not JSON: error at line {} column {}", e.line(), e.column())))?;
    let map = if nested {
        match &value {
            serde_json::Value::Object(top) => go_field(top, "auths"),
            serde_json::Value::Null => None,
            _ => return Err(bad("not a JSON object".into())),
        }
    } else {
        Some(&value)
    };
    let mut auths = BTreeMap::new();
    match map {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(registries)) => {
            for (registry, entry) in registries {
                let entry = match entry {
                    serde_json::Value::Null => DockerEntry::default(),
                    serde_json::Value::Object(fields) => {
                        let text = |name: &str| match go_field(fields, name) {
                            None | Some(serde_json::Value::Null) => Ok(String::new()),
                            Some(serde_json::Value::String(s)) => Ok(s.clone()),
                            Some(_) => Err(bad(format!("{registry}: {name} is not a string"))),
                        };
                        DockerEntry {
                            username: text("username")?,
                            password: text("password")?,
                            auth: text("auth")?,
                            email: text("email")?,
                        }
                    }
                    _ => return Err(bad(format!("{registry}: not a JSON object"))),
                };
                auths.insert(registry.clone(), entry);
            }
        }
        Some(_) => return Err(bad("the registries are not a JSON object".into())),
    }
    Ok(auths)
}

/// Bytes as a Go string reaches JSON: invalid UTF-8 becomes U+FFFD.
fn go_string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
