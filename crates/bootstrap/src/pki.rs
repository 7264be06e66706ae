//! The cluster PKI under `DATA_DIR/pki/`: a CA, the API server's serving certificate and client
//! certificates, created on first start and reused after. The serving certificate is issued
//! again when it no longer covers an address the server is reached at.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::{Error, Result, io_err};

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The files of the cluster PKI.
#[derive(Clone, Debug)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca: CertPair,
}

impl Pki {
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn serving_cert_path(&self) -> PathBuf {
        self.dir.join("apiserver.crt")
    }
    pub fn serving_key_path(&self) -> PathBuf {
        self.dir.join("apiserver.key")
    }

    /// Loads the CA under `dir`, creating it (10 years) if absent.
    pub fn load_or_create(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let (crt, key) = (dir.join("ca.crt"), dir.join("ca.key"));
        let ca = if crt.exists() && key.exists() {
            CertPair {
                cert_pem: read(&crt)?,
                key_pem: read(&key)?,
            }
        } else {
            let key_pair = KeyPair::generate().map_err(cert_err("ca"))?;
            let mut params = CertificateParams::default();
            params.distinguished_name = dn("kubernetes-ca", None);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            set_validity(&mut params, 3650);
            let cert = params.self_signed(&key_pair).map_err(cert_err("ca"))?;
            let pair = CertPair {
                cert_pem: cert.pem(),
                key_pem: key_pair.serialize_pem(),
            };
            write(&key, &pair.key_pem, true)?;
            write(&crt, &pair.cert_pem, false)?;
            pair
        };
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca,
        })
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>> {
        let key = KeyPair::from_pem(&self.ca.key_pem).map_err(cert_err("ca key"))?;
        Issuer::from_ca_cert_pem(&self.ca.cert_pem, key).map_err(cert_err("ca"))
    }

    /// Issues a client certificate: user = `common_name`, groups = `organizations` (1 year).
    pub fn issue_client(&self, common_name: &str, organizations: &[&str]) -> Result<CertPair> {
        let key_pair = KeyPair::generate().map_err(cert_err(common_name))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name, Some(organizations));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut params, 365);
        let cert = params
            .signed_by(&key_pair, &self.issuer()?)
            .map_err(cert_err(common_name))?;
        Ok(CertPair {
            cert_pem: cert.pem(),
            key_pem: key_pair.serialize_pem(),
        })
    }

    /// Issues a serving certificate for the given DNS names and IP addresses (1 year).
    pub fn issue_serving(&self, common_name: &str, sans: &[String]) -> Result<CertPair> {
        let key_pair = KeyPair::generate().map_err(cert_err(common_name))?;
        let mut params = CertificateParams::new(sans.to_vec()).map_err(cert_err(common_name))?;
        params.distinguished_name = dn(common_name, None);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut params, 365);
        let cert = params
            .signed_by(&key_pair, &self.issuer()?)
            .map_err(cert_err(common_name))?;
        Ok(CertPair {
            cert_pem: cert.pem(),
            key_pem: key_pair.serialize_pem(),
        })
    }

    /// Makes sure `apiserver.crt` exists, is signed by this CA and covers every SAN in `sans`;
    /// issues a new one otherwise.
    pub fn ensure_serving(&self, sans: &[String]) -> Result<CertPair> {
        let (crt, key) = (self.serving_cert_path(), self.serving_key_path());
        if crt.exists() && key.exists() {
            let pair = CertPair {
                cert_pem: read(&crt)?,
                key_pem: read(&key)?,
            };
            if covers(&pair.cert_pem, sans) && signed_by(&pair.cert_pem, &self.ca.cert_pem) {
                return Ok(pair);
            }
            tracing::info!(path = %crt.display(), "serving certificate does not cover every address; issuing a new one");
        }
        let pair = self.issue_serving("kube-apiserver", sans)?;
        write(&key, &pair.key_pem, true)?;
        write(&crt, &pair.cert_pem, false)?;
        Ok(pair)
    }

    /// Makes sure a client certificate `NAME.crt`/`NAME.key` exists; issues it otherwise.
    pub fn ensure_client(
        &self,
        name: &str,
        common_name: &str,
        organizations: &[&str],
    ) -> Result<CertPair> {
        let (crt, key) = (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
        );
        if crt.exists() && key.exists() {
            let pair = CertPair {
                cert_pem: read(&crt)?,
                key_pem: read(&key)?,
            };
            if signed_by(&pair.cert_pem, &self.ca.cert_pem) {
                return Ok(pair);
            }
        }
        let pair = self.issue_client(common_name, organizations)?;
        write(&key, &pair.key_pem, true)?;
        write(&crt, &pair.cert_pem, false)?;
        Ok(pair)
    }
}

/// The subject alternative names a server certificate needs: the usual in-cluster names of the
/// `kubernetes` Service, loopback, this host's name and addresses, and any extras.
pub fn default_sans(bind_address: &str, service_ip: &str, extra: &[String]) -> Vec<String> {
    let mut sans: Vec<String> = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "127.0.0.1",
        "::1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            sans.push(h.to_string());
        }
    }
    if !service_ip.is_empty() {
        sans.push(service_ip.to_string());
    }
    if !bind_address.is_empty() && bind_address != "0.0.0.0" && bind_address != "::" {
        sans.push(bind_address.to_string());
    }
    sans.extend(extra.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    sans.retain(|s| seen.insert(s.clone()));
    sans
}

fn dn(cn: &str, orgs: Option<&[&str]>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for o in orgs.unwrap_or(&[]) {
        dn.push(DnType::OrganizationName, *o);
    }
    dn.push(DnType::CommonName, cn);
    dn
}

fn set_validity(params: &mut CertificateParams, days: i64) {
    let now = jiff::Timestamp::now();
    let to_time = |t: jiff::Timestamp| {
        let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
        rcgen::date_time_ymd(d.year() as i32, d.month() as u8, d.day() as u8)
    };
    // A day of slack before now tolerates clocks that disagree a little.
    params.not_before = to_time(now - jiff::SignedDuration::from_hours(24));
    params.not_after = to_time(now + jiff::SignedDuration::from_hours(24 * days));
}

fn covers(cert_pem: &str, sans: &[String]) -> bool {
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()) else {
        return false;
    };
    let Ok(cert) = pem.parse_x509() else {
        return false;
    };
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return false;
    };
    let have: Vec<String> = ext
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    sans.iter().all(|s| have.contains(s))
}

fn signed_by(cert_pem: &str, ca_pem: &str) -> bool {
    let parse = |p: &str| -> Option<Vec<u8>> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(p.as_bytes()).ok()?;
        Some(pem.contents)
    };
    let (Some(cert_der), Some(ca_der)) = (parse(cert_pem), parse(ca_pem)) else {
        return false;
    };
    let (Ok((_, cert)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(&cert_der),
        x509_parser::parse_x509_certificate(&ca_der),
    ) else {
        return false;
    };
    cert.verify_signature(Some(ca.public_key())).is_ok()
}

fn cert_err(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::Certificate {
        what: what.to_string(),
        message: e.to_string(),
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

/// Writes atomically (temp file + rename); private keys are created mode 0600.
pub(crate) fn write(path: &Path, contents: &str, private: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(contents.as_bytes()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Pki::load_or_create(dir.path()).unwrap();
        let b = Pki::load_or_create(dir.path()).unwrap();
        assert_eq!(a.ca.cert_pem, b.ca.cert_pem);
        let sans = default_sans("127.0.0.1", "10.96.0.1", &[]);
        let s1 = a.ensure_serving(&sans).unwrap();
        let s2 = b.ensure_serving(&sans).unwrap();
        assert_eq!(s1.cert_pem, s2.cert_pem);
        assert!(covers(&s1.cert_pem, &sans));
        assert!(signed_by(&s1.cert_pem, &a.ca.cert_pem));
    }

    #[test]
    fn serving_certificate_is_reissued_for_a_new_address() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path()).unwrap();
        let first = pki
            .ensure_serving(&default_sans("", "10.96.0.1", &[]))
            .unwrap();
        let wider = default_sans("", "10.96.0.1", &["192.0.2.7".into()]);
        let second = pki.ensure_serving(&wider).unwrap();
        assert_ne!(first.cert_pem, second.cert_pem);
        assert!(covers(&second.cert_pem, &wider));
    }

    #[test]
    fn client_certificates_carry_user_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path()).unwrap();
        let c = pki
            .issue_client("kubernetes-admin", &["system:masters"])
            .unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(c.cert_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let subject = cert.subject().to_string();
        assert!(subject.contains("CN=kubernetes-admin"), "{subject}");
        assert!(subject.contains("O=system:masters"), "{subject}");
        assert!(signed_by(&c.cert_pem, &pki.ca.cert_pem));
    }
}
