//! ferrokube-kubelet: the node agent. It registers the node and keeps its status and Lease
//! fresh, runs the pods bound to the node (and static pods from a manifest directory) as
//! containers through CRI, reports their status, and serves their logs, exec, attach and
//! port-forward streams and resource stats.
//!
//! The container runtime is a trait ([`cri::Runtime`]): containerd over CRI's gRPC API on real
//! nodes, an in-memory fake on simulated ("hollow") nodes, which run the very same kubelet code.

pub mod agent;
pub mod backoff;
pub mod cgroups;
pub mod clock;
pub mod config;
pub mod cri;
pub mod dns;
pub mod env;
pub mod hollow;
pub mod images;
pub mod kubelet;
pub mod lifecycle;
pub mod logs;
pub mod metrics;
pub mod node;
pub mod objects;
pub mod probes;
pub mod qos;
pub mod runtime_config;
pub mod runtime_pod;
pub mod server;
pub mod static_pods;
pub mod stats;
pub mod status;
pub mod volumes;

pub use config::Config;
pub use kubelet::{Deps, Kubelet};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Runtime(#[from] cri::Error),
    #[error("API: {0}")]
    Api(#[from] kube::Error),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Tls(#[from] server::tls::Error),
    #[error("stopped")]
    Cancelled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
