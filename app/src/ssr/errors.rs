//! Mapping of server-side errors to the wire's `AppError`. Errors a user can act on keep their message;
//! everything else is logged with a short incident id, and only the id goes to the browser.

use crate::model::AppError;

use super::{auth, jobs, passwords, registry, store};

/// Logs `detail` under a new incident id and returns the error the browser sees.
pub fn incident(detail: impl std::fmt::Display) -> AppError {
    use rand::Rng;
    let id: String = {
        let mut rng = rand::rngs::OsRng;
        (0..8)
            .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
            .collect()
    };
    tracing::error!(incident = %id, "{detail}");
    AppError::Internal { incident: id }
}

impl From<store::Error> for AppError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Conflict(what) => AppError::Conflict(format!("{what} already exists")),
            store::Error::NotFound(what) => AppError::NotFound(what),
            store::Error::Busy(what) => AppError::Conflict(what),
            e @ store::Error::Full => AppError::Busy(e.to_string()),
            store::Error::Invalid { field, message } => AppError::invalid(field, message),
            other => incident(other),
        }
    }
}

impl From<registry::Error> for AppError {
    fn from(e: registry::Error) -> Self {
        match e {
            registry::Error::Invalid { field, message } => AppError::invalid(field, message),
            e @ registry::Error::Duplicate(_) => AppError::Conflict(e.to_string()),
            registry::Error::NotFound(what) => AppError::NotFound(format!("cluster {what:?}")),
            registry::Error::Unusable { cluster, problem } => AppError::Cluster {
                cluster,
                step: "connectivity test".into(),
                message: problem.to_string(),
            },
            registry::Error::NotAllowed { cluster, problem } => {
                AppError::invalid("kubeconfig", format!("cluster {cluster}: {problem}"))
            }
            e @ registry::Error::Sealed(_) => AppError::Conflict(e.to_string()),
            registry::Error::Access {
                cluster,
                step,
                message,
            } => AppError::Cluster {
                cluster,
                step: step.into(),
                message,
            },
            registry::Error::Store(e) => e.into(),
        }
    }
}

impl From<auth::Error> for AppError {
    fn from(e: auth::Error) -> Self {
        match e {
            auth::Error::BadCredentials => AppError::invalid("password", e.to_string()),
            e @ auth::Error::Throttled { .. } => AppError::Throttled(e.to_string()),
            auth::Error::Password(p) => p.into(),
            auth::Error::Store(s) => s.into(),
        }
    }
}

impl From<passwords::Error> for AppError {
    fn from(e: passwords::Error) -> Self {
        match e {
            e @ (passwords::Error::TooShort | passwords::Error::TooLong) => {
                AppError::invalid("password", e.to_string())
            }
            e @ passwords::Error::Busy => AppError::Busy(e.to_string()),
            other => incident(other),
        }
    }
}

impl From<jobs::Error> for AppError {
    fn from(e: jobs::Error) -> Self {
        match e {
            e @ jobs::Error::Busy(_) => AppError::Conflict(e.to_string()),
            jobs::Error::Conflict(m) => AppError::Conflict(m),
            jobs::Error::NotFound(what) => AppError::NotFound(what),
            jobs::Error::Invalid { field, message } => AppError::invalid(field, message),
            jobs::Error::Ca(e) => AppError::invalid("root", e.to_string()),
            jobs::Error::Store(e) => e.into(),
            e @ jobs::Error::HandedOver => AppError::Busy(format!("{e}; try again in a moment")),
            other @ (jobs::Error::Sealed | jobs::Error::Unrecorded(_)) => incident(other),
        }
    }
}
