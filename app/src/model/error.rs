//! The one error type on the wire. Every variant is something a user can act on; anything unexpected is
//! `Internal` with a short incident id that is also in the server log (the details stay there).

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use super::Role;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("sign in first")]
    Unauthenticated,
    #[error("this needs the {needed} role; you are signed in as {have}")]
    Forbidden { needed: Role, have: Role },
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("cluster {cluster} (step: {step}): {message}")]
    Cluster {
        cluster: String,
        step: String,
        message: String,
    },
    #[error("too many attempts: {0}")]
    Throttled(String),
    /// The action gives or exports power: the user must re-enter their password first.
    #[error("{0}")]
    ReauthRequired(String),
    /// The request itself is not acceptable here (e.g. a state change sent from another site).
    #[error("refused: {0}")]
    Refused(String),
    /// The console is at a limit (password checks, live streams); nothing was done, try again.
    #[error("the console is busy: {0}")]
    Busy(String),
    #[error(
        "something went wrong on the server (incident {incident}); an admin can find it in the log"
    )]
    Internal { incident: String },
    /// The request itself failed (network, encoding); not produced by our code.
    #[error("request failed: {0}")]
    Transport(String),
}

/// A field's error, for showing next to the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError<'a> {
    pub field: &'a str,
    pub message: &'a str,
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The message for `field`, when this error is about it.
    pub fn for_field(&self, field: &str) -> Option<&str> {
        match self {
            AppError::Invalid { field: f, message } if f == field => Some(message),
            _ => None,
        }
    }

    /// The HTTP status the server answers with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated => 401,
            AppError::Forbidden { .. } => 403,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) => 409,
            AppError::Invalid { .. } => 422,
            AppError::Cluster { .. } => 502,
            AppError::Throttled(_) => 429,
            AppError::ReauthRequired(_) | AppError::Refused(_) => 403,
            AppError::Busy(_) => 503,
            AppError::Internal { .. } | AppError::Transport(_) => 500,
        }
    }
}

impl From<mesh_ids::InvalidName> for AppError {
    fn from(e: mesh_ids::InvalidName) -> Self {
        AppError::invalid(e.what, e.to_string())
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => {
                AppError::invalid("request", m)
            }
            // On the server, what fails to deserialize is the request's arguments (JSON input): the
            // caller's mistake, such as an invalid cluster name.
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Deserialization(m) => AppError::invalid("request", m),
            other => AppError::Transport(other.to_string()),
        }
    }
}
