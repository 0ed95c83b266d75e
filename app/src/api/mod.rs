//! Server functions: the console's public HTTP endpoints (`/api/<name>`). Each one is thin — authenticate
//! and authorize first, call a service from `ssr`, convert to wire types, return (README, invariant 3).

mod access;
mod charts;
mod checks;
mod clusters;
mod day2;
mod identity;
mod jobs;
mod portal;
mod session;
mod setup;
mod topology;
mod users;

pub use access::*;
pub use charts::*;
pub use checks::*;
pub use clusters::*;
pub use day2::*;
pub use identity::*;
pub use jobs::*;
pub use portal::*;
pub use session::*;
pub use setup::*;
pub use topology::*;
pub use users::*;
