//! Name resolution inside pods: the DNS configuration handed to the runtime (which writes the
//! container's resolv.conf) from the pod's dnsPolicy and dnsConfig, and the kubelet-managed
//! /etc/hosts, as upstream writes them.

use k8s_openapi::api::core::v1::Pod;

use crate::cri::api::DnsConfig;

/// What `--cluster-dns`, `--cluster-domain` and the host's resolv.conf say.
#[derive(Clone, Debug, Default)]
pub struct DnsSettings {
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub host_servers: Vec<String>,
    pub host_searches: Vec<String>,
    pub host_options: Vec<String>,
}

/// Upstream's limits on what a resolv.conf may hold.
const MAX_SERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;

/// Parses a resolv.conf.
pub fn parse_resolv_conf(text: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut servers, mut searches, mut options) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("").trim();
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => servers.extend(f.next().map(String::from)),
            Some("search") | Some("domain") => {
                searches = f.map(String::from).collect();
            }
            Some("options") => options.extend(f.map(String::from)),
            _ => {}
        }
    }
    (servers, searches, options)
}

impl DnsSettings {
    pub fn load(
        cluster_dns: &[String],
        cluster_domain: &str,
        resolv_conf: &std::path::Path,
    ) -> Self {
        let text = std::fs::read_to_string(resolv_conf).unwrap_or_default();
        let (host_servers, host_searches, host_options) = parse_resolv_conf(&text);
        DnsSettings {
            cluster_dns: cluster_dns.to_vec(),
            cluster_domain: cluster_domain.to_string(),
            host_servers,
            host_searches,
            host_options,
        }
    }
}

/// The effective policy: `ClusterFirst` on the host network is `Default` unless
/// `ClusterFirstWithHostNet`; ClusterFirst without cluster DNS falls back to `Default` (the
/// caller reports `MissingClusterDNS`).
pub fn effective_policy(pod: &Pod, settings: &DnsSettings) -> (&'static str, bool) {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let policy = spec
        .and_then(|s| s.dns_policy.as_deref())
        .unwrap_or("ClusterFirst");
    let wanted = match policy {
        "None" => "None",
        "Default" => "Default",
        "ClusterFirstWithHostNet" => "ClusterFirst",
        _ if host_network => "Default",
        _ => "ClusterFirst",
    };
    if wanted == "ClusterFirst" && settings.cluster_dns.is_empty() {
        ("Default", true)
    } else {
        (wanted, false)
    }
}

/// The DNS configuration for a pod's sandbox.
pub fn pod_dns_config(pod: &Pod, settings: &DnsSettings) -> DnsConfig {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let (policy, _) = effective_policy(pod, settings);
    let mut cfg = match policy {
        "ClusterFirst" => {
            let d = &settings.cluster_domain;
            let mut searches = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()];
            searches.extend(settings.host_searches.iter().cloned());
            DnsConfig {
                servers: settings.cluster_dns.clone(),
                searches,
                options: vec!["ndots:5".into()],
            }
        }
        "Default" => DnsConfig {
            servers: settings.host_servers.clone(),
            searches: settings.host_searches.clone(),
            options: settings.host_options.clone(),
        },
        _ => DnsConfig::default(),
    };
    if let Some(extra) = pod.spec.as_ref().and_then(|s| s.dns_config.as_ref()) {
        for s in extra.nameservers.iter().flatten() {
            if !cfg.servers.contains(s) {
                cfg.servers.push(s.clone());
            }
        }
        for s in extra.searches.iter().flatten() {
            if !cfg.searches.contains(s) {
                cfg.searches.push(s.clone());
            }
        }
        for o in extra.options.iter().flatten() {
            let rendered = match &o.value {
                Some(v) => format!("{}:{v}", o.name.as_deref().unwrap_or("")),
                None => o.name.clone().unwrap_or_default(),
            };
            let name = o.name.clone().unwrap_or_default();
            cfg.options
                .retain(|x| x.split(':').next() != Some(name.as_str()));
            cfg.options.push(rendered);
        }
    }
    cfg.servers.truncate(MAX_SERVERS);
    cfg.searches.truncate(MAX_SEARCHES);
    cfg
}

/// The pod's hostname: `spec.hostname` or the pod name, cut to 63 characters as upstream.
pub fn pod_hostname(pod: &Pod) -> String {
    let name = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    if name.len() <= 63 {
        return name;
    }
    name[..63].trim_end_matches(['-', '.']).to_string()
}

/// The kubelet-managed /etc/hosts of a pod.
pub fn hosts_file(pod: &Pod, pod_ips: &[String], cluster_domain: &str, host_hosts: &str) -> String {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let mut out = String::new();
    if host_network {
        out.push_str("# Kubernetes-managed hosts file (host network).\n");
        out.push_str(host_hosts);
        if !host_hosts.ends_with('\n') && !host_hosts.is_empty() {
            out.push('\n');
        }
    } else {
        out.push_str("# Kubernetes-managed hosts file.\n");
        out.push_str("127.0.0.1\tlocalhost\n");
        out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
        out.push_str("fe00::0\tip6-localnet\n");
        out.push_str("fe00::0\tip6-mcastprefix\n");
        out.push_str("fe00::1\tip6-allnodes\n");
        out.push_str("fe00::2\tip6-allrouters\n");
        let hostname = pod_hostname(pod);
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let subdomain = spec
            .and_then(|s| s.subdomain.clone())
            .filter(|s| !s.is_empty());
        for ip in pod_ips {
            match &subdomain {
                Some(sd) => out.push_str(&format!(
                    "{ip}\t{hostname}.{sd}.{ns}.svc.{cluster_domain}\t{hostname}\n"
                )),
                None => out.push_str(&format!("{ip}\t{hostname}\n")),
            }
        }
    }
    let aliases = spec.and_then(|s| s.host_aliases.as_ref());
    if let Some(aliases) = aliases.filter(|a| !a.is_empty()) {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            let names = a.hostnames.clone().unwrap_or_default().join("\t");
            out.push_str(&format!("{}\t{names}\n", a.ip));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostAlias, PodDNSConfig, PodDNSConfigOption, PodSpec};
    use kube::api::ObjectMeta;

    fn pod(spec: PodSpec) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            spec: Some(spec),
            ..Default::default()
        }
    }

    fn settings(cluster_dns: &[&str]) -> DnsSettings {
        let (s, q, o) =
            parse_resolv_conf("nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n");
        DnsSettings {
            cluster_dns: cluster_dns.iter().map(|s| s.to_string()).collect(),
            cluster_domain: "cluster.local".into(),
            host_servers: s,
            host_searches: q,
            host_options: o,
        }
    }

    #[test]
    fn cluster_first_points_at_cluster_dns_with_the_namespace_search_path() {
        let c = pod_dns_config(&pod(PodSpec::default()), &settings(&["10.96.0.10"]));
        assert_eq!(c.servers, vec!["10.96.0.10"]);
        assert_eq!(
            c.searches,
            vec![
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(c.options, vec!["ndots:5"]);
    }

    #[test]
    fn without_cluster_dns_or_on_the_host_network_pods_use_the_host_resolver() {
        let s = settings(&[]);
        assert_eq!(
            effective_policy(&pod(PodSpec::default()), &s),
            ("Default", true)
        );
        assert_eq!(
            pod_dns_config(&pod(PodSpec::default()), &s).servers,
            vec!["192.0.2.53"]
        );
        let host = pod(PodSpec {
            host_network: Some(true),
            ..Default::default()
        });
        assert_eq!(
            effective_policy(&host, &settings(&["10.96.0.10"])),
            ("Default", false)
        );
    }

    #[test]
    fn dns_config_adds_servers_searches_and_overrides_options() {
        let p = pod(PodSpec {
            dns_policy: Some("None".into()),
            dns_config: Some(PodDNSConfig {
                nameservers: Some(vec!["1.2.3.4".into()]),
                searches: Some(vec!["ns1.svc.cluster-domain.example".into()]),
                options: Some(vec![PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                }]),
            }),
            ..Default::default()
        });
        let c = pod_dns_config(&p, &settings(&["10.96.0.10"]));
        assert_eq!(c.servers, vec!["1.2.3.4"]);
        assert_eq!(c.options, vec!["ndots:2"]);
    }

    #[test]
    fn hosts_files_name_the_pod_and_its_aliases() {
        let p = pod(PodSpec {
            hostname: Some("db-0".into()),
            subdomain: Some("db".into()),
            host_aliases: Some(vec![HostAlias {
                ip: "127.0.0.1".into(),
                hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
            }]),
            ..Default::default()
        });
        let h = hosts_file(&p, &["10.244.0.5".into()], "cluster.local", "");
        assert!(h.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.244.0.5\tdb-0.db.shop.svc.cluster.local\tdb-0\n"));
        assert!(
            h.ends_with("\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n")
        );
    }
}
