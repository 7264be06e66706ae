//! Service account tokens: the `serviceaccounts/token` subresource (TokenRequest, what
//! `kubectl create token` calls) and the authenticator that accepts the tokens it issues.
//!
//! Tokens are JWTs signed with ES256 by a key the server generates once and keeps under
//! `DATA_DIR/pki/sa.key` (PKCS#8 PEM), with upstream's claims: issuer and default audience
//! `https://kubernetes.default.svc.cluster.local`, subject
//! `system:serviceaccount:<ns>:<name>`, and the private `kubernetes.io` claim naming the
//! namespace, the service account (name and uid) and the object the token is bound to. The key
//! id is upstream's: base64url of the SHA-256 of the DER public key.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ferrokube_api::{ApiError, FieldError};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::authn::UserInfo;
use crate::object;
use crate::registry::Registry;

/// The issuer and default audience, as kubeadm configures kube-apiserver.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The DER prefix of a P-256 SubjectPublicKeyInfo; the 65-byte point follows.
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("service account key {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("service account key {path}: {message}")]
    Key { path: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Signs and verifies service account tokens.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    kid: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish()
    }
}

impl TokenSigner {
    /// Loads the key at `path`, creating it (mode 0600) on first start.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let rng = SystemRandom::new();
        let pkcs8 = if path.exists() {
            let pem = std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: shown.clone(),
                source,
            })?;
            let body: String = pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<Vec<_>>()
                .concat();
            STANDARD.decode(body.trim()).map_err(|e| Error::Key {
                path: shown.clone(),
                message: e.to_string(),
            })?
        } else {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|e| Error::Key {
                    path: shown.clone(),
                    message: e.to_string(),
                })?;
            let b64 = STANDARD.encode(doc.as_ref());
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap_or(""))
                .collect();
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                lines.join("\n")
            );
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                    path: shown.clone(),
                    source,
                })?;
            }
            write_private(path, pem.as_bytes()).map_err(|source| Error::Io {
                path: shown.clone(),
                source,
            })?;
            doc.as_ref().to_vec()
        };
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|e| Error::Key {
                path: shown,
                message: e.to_string(),
            })?;
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(key.public_key().as_ref());
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(&spki));
        Ok(TokenSigner { key, kid, rng })
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default())
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map(|s| s.as_ref().to_vec())
            .unwrap_or_default();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// The claims of a token this signer issued, if its signature holds.
    fn verify(&self, token: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header["alg"] != "ES256" {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(format!("{h}.{p}").as_bytes(), &sig)
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    }
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

/// `POST .../serviceaccounts/NAME/token`: issues a token for the account, answering the
/// TokenRequest with `status.token` and `status.expirationTimestamp` (201).
pub async fn token_request(
    signer: &TokenSigner,
    reg: &Registry,
    ns: &str,
    name: &str,
    body: Value,
) -> Result<Value, ApiError> {
    let Some(sa) = reg
        .live_object("", "v1", "serviceaccounts", ns, name)
        .await?
    else {
        return Err(ApiError::not_found("", "serviceaccounts", name));
    };
    let mut req = body;
    if !req.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a TokenRequest",
        ));
    }
    let spec = req.get("spec").cloned().unwrap_or(json!({}));
    let expiration = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    let mut errs = Vec::new();
    if expiration < 600 {
        errs.push(FieldError::invalid(
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration less than 10 minutes",
        ));
    } else if expiration > 1 << 32 {
        errs.push(FieldError::invalid(
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| vec![ISSUER.to_string()]);
    let bound = spec
        .get("boundObjectRef")
        .filter(|b| b.is_object())
        .cloned();
    let mut private = json!({"namespace": ns,
        "serviceaccount": {"name": name, "uid": object::uid(&sa)}});
    if let Some(b) = &bound {
        let kind = b.get("kind").and_then(Value::as_str).unwrap_or("");
        let bname = b.get("name").and_then(Value::as_str).unwrap_or("");
        let resource = match kind {
            "Pod" => "pods",
            "Secret" => "secrets",
            "Node" => "nodes",
            _ => {
                errs.push(FieldError::not_supported(
                    "spec.boundObjectRef.kind",
                    kind,
                    &["Pod", "Secret", "Node"],
                ));
                ""
            }
        };
        if !resource.is_empty() {
            let obj_ns = if kind == "Node" { "" } else { ns };
            match reg.live_object("", "v1", resource, obj_ns, bname).await? {
                None => return Err(ApiError::not_found("", resource, bname)),
                Some(obj) => {
                    let uid = object::uid(&obj).to_string();
                    if let Some(want) = b.get("uid").and_then(Value::as_str)
                        && !want.is_empty()
                        && want != uid
                    {
                        return Err(ApiError::conflict(
                            "",
                            resource,
                            bname,
                            &format!(
                                "the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
                            ),
                        ));
                    }
                    private[kind.to_lowercase()] = json!({"name": bname, "uid": uid});
                }
            }
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            name,
            &errs,
        ));
    }
    let now = ferrokube_api::time::now();
    let iat = now.as_second();
    let exp = iat + expiration;
    let claims = json!({
        "aud": audiences,
        "exp": exp,
        "iat": iat,
        "iss": ISSUER,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": private,
        "nbf": iat,
        "sub": format!("system:serviceaccount:{ns}:{name}"),
    });
    let token = signer.sign(&claims);
    let expires = jiff::Timestamp::from_second(exp)
        .map(ferrokube_api::time::format_rfc3339)
        .unwrap_or_default();
    let mut spec_out = json!({"audiences": audiences, "expirationSeconds": expiration,
        "boundObjectRef": bound});
    if spec_out["boundObjectRef"].is_null() {
        spec_out["boundObjectRef"] = Value::Null;
    }
    req["kind"] = json!("TokenRequest");
    req["apiVersion"] = json!("authentication.k8s.io/v1");
    let mut meta = req.get("metadata").cloned().unwrap_or(json!({}));
    meta["name"] = json!(name);
    meta["namespace"] = json!(ns);
    meta["creationTimestamp"] = Value::Null;
    req["metadata"] = meta;
    req["spec"] = spec_out;
    req["status"] = json!({"token": token, "expirationTimestamp": expires});
    Ok(req)
}

/// The service account a bearer token names, if the token is one this server issued, has not
/// expired, is meant for this server and its account (and bound object) still exist.
pub async fn authenticate(signer: &TokenSigner, reg: &Registry, token: &str) -> Option<UserInfo> {
    let claims = signer.verify(token)?;
    let now = ferrokube_api::time::now().as_second();
    if claims["iss"] != ISSUER {
        return None;
    }
    let exp = claims["exp"].as_i64()?;
    let nbf = claims["nbf"].as_i64().unwrap_or(0);
    // Upstream allows a minute of clock skew either way.
    if now > exp + 60 || now + 60 < nbf {
        return None;
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == ISSUER,
        Value::Array(a) => a.iter().any(|x| x == ISSUER),
        _ => false,
    };
    if !aud_ok {
        return None;
    }
    let k = &claims["kubernetes.io"];
    let ns = k["namespace"].as_str()?;
    let name = k["serviceaccount"]["name"].as_str()?;
    let uid = k["serviceaccount"]["uid"].as_str()?;
    let sa = reg
        .live_object("", "v1", "serviceaccounts", ns, name)
        .await
        .ok()??;
    if object::uid(&sa) != uid {
        return None;
    }
    for (claim, resource, scoped) in [
        ("pod", "pods", true),
        ("secret", "secrets", true),
        ("node", "nodes", false),
    ] {
        if let Some(b) = k.get(claim).filter(|b| b.is_object()) {
            let bname = b["name"].as_str()?;
            let obj = reg
                .live_object("", "v1", resource, if scoped { ns } else { "" }, bname)
                .await
                .ok()??;
            if b["uid"].as_str() != Some(object::uid(&obj)) {
                return None;
            }
        }
    }
    Some(UserInfo {
        name: format!("system:serviceaccount:{ns}:{name}"),
        uid: uid.to_string(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_and_tokens_verify_only_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pki/sa.key");
        let a = TokenSigner::load_or_create(&path).unwrap();
        let again = TokenSigner::load_or_create(&path).unwrap();
        assert_eq!(a.kid, again.kid, "the key is kept on disk");
        let token = a.sign(&json!({"sub": "x"}));
        assert_eq!(again.verify(&token).unwrap()["sub"], "x");
        let other = TokenSigner::load_or_create(&dir.path().join("other.key")).unwrap();
        assert!(other.verify(&token).is_none());
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'A');
        assert!(a.verify(&tampered).is_none());
        assert_eq!(token.split('.').count(), 3);
    }
}
