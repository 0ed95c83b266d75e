//! Per-user rights on clusters (`--oidc-impersonate`): what the console does on a cluster for a single sign-on
//! user — a page's reads, a preview's dry run, a job the user started — goes out as that user
//! (`Impersonate-User`, `Impersonate-Group`), so the cluster's own RBAC decides. A job carries its starter as
//! a task-local; a server function or a page rendered on the server finds the signed-in user through the
//! request in its context. Work nobody started (the topology's watches, token renewal) stays the console's
//! own.

use std::future::Future;

use super::store::Store;

/// Who the console acts as on clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub username: String,
    pub groups: Vec<String>,
}

tokio::task_local! {
    static ACTING: Option<Actor>;
}

/// The user the current work acts for, if it acts for one: the job's (task-local), else the signed-in user
/// of the request being served (a server function, or a page rendered on the server).
pub async fn current() -> Option<Actor> {
    if let Some(a) = ACTING.try_with(Clone::clone).ok().flatten() {
        return Some(a);
    }
    let parts = leptos::prelude::use_context::<http::request::Parts>()?;
    let session = parts.extensions.get::<tower_sessions::Session>()?.clone();
    let st = leptos::prelude::use_context::<super::state::AppState>()?;
    let user = super::session::user_in(&session, &st).await.ok()??;
    of_user(&st.store, user).await
}

/// Runs `work` acting for `actor`.
pub async fn scope<F: Future>(actor: Option<Actor>, work: F) -> F::Output {
    ACTING.scope(actor, work).await
}

/// The actor of a user by name: a single sign-on user with the groups of their last sign-in; None for a
/// local account (the console acts as itself for it).
pub async fn of_username(store: &Store, username: &str) -> Option<Actor> {
    let (user, _) = store.user_by_name(username).await.ok()??;
    of_user(store, user).await
}

/// The actor of `user`: with the groups of their last sign-in when they signed in through the provider.
async fn of_user(store: &Store, user: super::store::User) -> Option<Actor> {
    if !user.sso {
        return None;
    }
    let groups = store.sso_groups(user.id).await.ok()?;
    Some(Actor {
        username: user.username,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_actor_is_there_inside_its_scope_only() {
        assert_eq!(current().await, None);
        let alice = Actor {
            username: "alice@example.com".into(),
            groups: vec!["platform-admins".into()],
        };
        let seen = scope(Some(alice.clone()), async { current().await }).await;
        assert_eq!(seen, Some(alice));
        assert_eq!(current().await, None);
        assert_eq!(scope(None, async { current().await }).await, None);
    }
}
