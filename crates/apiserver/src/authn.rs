//! Authentication: who is calling. Client certificates signed by the cluster CA name the user
//! (CN) and groups (O), as upstream's x509 authenticator does.

use rustls::pki_types::CertificateDer;

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The identity of components running inside the server process.
    pub fn loopback() -> Self {
        UserInfo {
            name: "system:apiserver".into(),
            uid: String::new(),
            groups: vec!["system:authenticated".into(), "system:masters".into()],
        }
    }
}

/// The user named by a verified client certificate chain (the leaf comes first). The TLS layer
/// has already checked the chain against the client CA.
pub fn from_client_certificate(chain: &[CertificateDer<'_>]) -> Option<UserInfo> {
    let leaf = chain.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())?
        .to_string();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(String::from))
        .collect();
    groups.push("system:authenticated".into());
    Some(UserInfo {
        name,
        uid: String::new(),
        groups,
    })
}
