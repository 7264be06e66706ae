//! ferrokube-bench: load generators that measure a running cluster through its API, the way
//! clients use it (HTTPS, HTTP/2, client certificates), and print the figures the issues name.

pub mod api;
mod conn;
pub mod controllers;
pub mod scheduler;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] ferrokube_client::Error),
    #[error("connecting to {server}: {message}")]
    Connect { server: String, message: String },
    #[error("{what}: HTTP {status}: {body}")]
    Api {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{what}: {message}")]
    Request { what: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
