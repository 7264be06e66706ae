//! ferrokube-bootstrap: what it takes to stand a cluster up and let nodes in.
//!
//! The cluster PKI (a CA, the API server's serving certificate, client certificates) and the
//! kubeconfig files that carry them; later the bootstrap tokens and `init` / `join` / `reset`.

pub mod kubeconfig;
pub mod pki;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate {what}: {message}")]
    Certificate { what: String, message: String },
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        path: std::path::PathBuf,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
