//! ferrokube-net: the pod network of a node.
//!
//! The node's pod CIDR becomes a CNI conflist (the standard `bridge` plugin with `host-local`
//! addresses from the CIDR, `portmap` for hostPort) that the container runtime applies to each
//! sandbox. Pods may answer connections that come in from outside, but traffic they start
//! toward the host's uplink is dropped unless egress is allowed: test clusters must never send
//! packets off the machine. Routes between nodes and cluster DNS come later.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid CIDR {cidr:?}: {reason}")]
    Cidr { cidr: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{command}: {message}")]
    Command { command: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An IPv4 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`; host bits must be zero.
    pub fn parse(s: &str) -> Result<Cidr> {
        let bad = |reason: &str| Error::Cidr {
            cidr: s.to_string(),
            reason: reason.to_string(),
        };
        let (ip, prefix) = s.split_once('/').ok_or_else(|| bad("missing /prefix"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("prefix is not a number"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("prefix must be between 8 and 30"));
        }
        let mask = u32::MAX << (32 - prefix as u32);
        if u32::from(ip) & !mask != 0 {
            return Err(bad("host bits are set"));
        }
        Ok(Cidr {
            network: ip,
            prefix,
        })
    }

    /// The n-th address of the network.
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + n)
    }

    /// The gateway pods route through: the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        self.nth(1)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix as u32);
        u32::from(ip) & mask == u32::from(self.network)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The settings of a node's pod network.
#[derive(Clone, Debug)]
pub struct PodNetwork {
    /// The CNI network's name (also host-local's data directory name).
    pub name: String,
    /// The Linux bridge pods attach to.
    pub bridge: String,
    pub cidr: Cidr,
    /// host-local keeps its allocations here (instead of the host-wide /var/lib/cni).
    pub ipam_data_dir: PathBuf,
    /// Whether pods may open connections to the outside world (then their traffic is
    /// masqueraded); otherwise it is dropped at the uplink.
    pub allow_egress: bool,
}

/// The file name the conflist is written to.
pub const CONFLIST_NAME: &str = "10-ferrokube.conflist";

impl PodNetwork {
    /// The CNI conflist for the runtime.
    pub fn conflist(&self) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": self.name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": true,
                    "ipMasq": self.allow_egress,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": self.ipam_data_dir,
                        "ranges": [[{"subnet": self.cidr.to_string(), "gateway": self.cidr.gateway().to_string()}]],
                        "routes": [{"dst": "0.0.0.0/0"}]
                    }
                },
                {
                    "type": "portmap",
                    "capabilities": {"portMappings": true},
                    "snat": true
                }
            ]
        })
    }

    /// Writes the conflist into `conf_dir` (atomically: the runtime watches the directory).
    pub fn write_conflist(&self, conf_dir: &Path) -> Result<PathBuf> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(conf_dir).map_err(io(conf_dir))?;
        let path = conf_dir.join(CONFLIST_NAME);
        let tmp = conf_dir.join(format!(".{CONFLIST_NAME}.tmp"));
        let text = serde_json::to_string_pretty(&self.conflist()).expect("conflist serializes");
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(path)
    }

    /// The iptables chain holding this bridge's egress rules.
    pub fn egress_chain(&self) -> String {
        let mut c = format!("FK-EGRESS-{}", self.bridge);
        c.truncate(28);
        c
    }
}

/// The interface holding the IPv4 default route (the uplink).
pub fn uplink() -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[1] == "00000000").then(|| f[0].to_string())
    })
}

fn iptables(args: &[&str]) -> Result<()> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .map_err(|e| Error::Command {
            command: format!("iptables {}", args.join(" ")),
            message: format!("{e} (install Debian's iptables package)"),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command: format!("iptables {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Installs the egress guard for a bridge: forwarded packets from the bridge to the uplink are
/// dropped unless they belong to a connection that came in. Idempotent; no-op with egress
/// allowed or without an uplink.
pub fn install_egress_guard(net: &PodNetwork) -> Result<()> {
    if net.allow_egress {
        return Ok(());
    }
    let Some(up) = uplink() else {
        return Ok(());
    };
    let chain = net.egress_chain();
    let _ = iptables(&["-N", &chain]);
    iptables(&["-F", &chain])?;
    iptables(&[
        "-A",
        &chain,
        "-i",
        &net.bridge,
        "-o",
        &up,
        "-m",
        "conntrack",
        "--ctstate",
        "RELATED,ESTABLISHED",
        "-j",
        "RETURN",
    ])?;
    iptables(&["-A", &chain, "-i", &net.bridge, "-o", &up, "-j", "DROP"])?;
    if iptables(&["-C", "FORWARD", "-j", &chain]).is_err() {
        iptables(&["-I", "FORWARD", "1", "-j", &chain])?;
    }
    Ok(())
}

/// Removes the egress guard and the bridge (after every pod is gone). Idempotent.
pub fn teardown(net: &PodNetwork) {
    let chain = net.egress_chain();
    while iptables(&["-D", "FORWARD", "-j", &chain]).is_ok() {}
    let _ = iptables(&["-F", &chain]);
    let _ = iptables(&["-X", &chain]);
    let _ = Command::new("ip")
        .args(["link", "del", &net.bridge])
        .output();
    let _ = std::fs::remove_dir_all(net.ipam_data_dir.join(&net.name));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_name_their_gateway() {
        let c = Cidr::parse("10.244.3.0/24").unwrap();
        assert_eq!(c.gateway(), Ipv4Addr::new(10, 244, 3, 1));
        assert!(c.contains(Ipv4Addr::new(10, 244, 3, 200)));
        assert!(!c.contains(Ipv4Addr::new(10, 244, 4, 1)));
        assert!(
            Cidr::parse("10.244.3.1/24")
                .unwrap_err()
                .to_string()
                .contains("host bits")
        );
        assert!(Cidr::parse("10.244.0.0").is_err());
        assert!(Cidr::parse("fd00::/64").is_err());
    }

    #[test]
    fn the_conflist_is_a_bridge_with_host_local_addresses_and_portmap() {
        let dir = tempfile::tempdir().unwrap();
        let net = PodNetwork {
            name: "ferrokube".into(),
            bridge: "cni0".into(),
            cidr: Cidr::parse("10.244.0.0/24").unwrap(),
            ipam_data_dir: dir.path().join("ipam"),
            allow_egress: false,
        };
        let path = net.write_conflist(dir.path()).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.244.0.0/24");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["gateway"], "10.244.0.1");
        assert_eq!(v["plugins"][1]["type"], "portmap");
        assert_eq!(v["plugins"][1]["capabilities"]["portMappings"], true);
        assert_eq!(net.egress_chain(), "FK-EGRESS-cni0");
    }
}
