//! Errors of the controllers: an API call that failed (retryable unless the server said the
//! request itself is wrong) or an object the controller cannot act on. Every reconcile returns
//! this one type; the work queue retries all of them with backoff.

/// What went wrong while reconciling a key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} {object}: {source}")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{object}: {message}")]
    Invalid { object: String, message: String },
    /// Expected and retried: e.g. a hash collision that was just recorded in the status.
    #[error("{0}")]
    Retry(String),
    /// An API call whose failure needs no more context than kube-rs gives.
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn api(action: &'static str, object: impl Into<String>, source: kube::Error) -> Self {
        Error::Api {
            action,
            object: object.into(),
            source,
        }
    }

    pub fn invalid(object: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            object: object.into(),
            message: message.into(),
        }
    }

    /// The HTTP status the API server answered with, if this is an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Api { source, .. } | Error::Kube(source) => api_code(source),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }

    /// The server's message (what upstream controllers put into events and conditions).
    pub fn api_message(&self) -> String {
        match self {
            Error::Api {
                source: kube::Error::Api(s),
                ..
            }
            | Error::Kube(kube::Error::Api(s)) => s.message.clone(),
            other => other.to_string(),
        }
    }

    /// Whether the server refused because the namespace is being deleted.
    pub fn is_namespace_terminating(&self) -> bool {
        match self {
            Error::Api {
                source: kube::Error::Api(s),
                ..
            }
            | Error::Kube(kube::Error::Api(s)) => {
                s.details
                    .as_ref()
                    .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
                    || (s.code == 403 && s.message.contains("because it is being terminated"))
            }
            _ => false,
        }
    }
}

/// The HTTP status of a kube-rs error that came from the API server.
pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}
