//! Sign-in throttling in the store: attempts counted per source, per user and source, per user from unknown
//! browsers; on SQLite and Postgres.

use super::*;

async fn sign_in_is_throttled_after_repeated_failures(store: Store) {
    use app::ssr::auth::{self, Attempter, Error as AuthError};
    use app::ssr::secrets::SecretBox;
    use app::ssr::store::Limits;
    let secrets = SecretBox::from_key(&[9u8; 32]).expect("key");
    let limits = Limits::default();
    let generated = auth::bootstrap_admin(&store, None)
        .await
        .expect("bootstrap")
        .expect("generated password");
    assert!(generated.len() >= 20);
    assert!(
        auth::bootstrap_admin(&store, Some("another-password"))
            .await
            .expect("again")
            .is_none(),
        "only once"
    );
    let from = |addr: &str| Attempter {
        source: addr.into(),
        device: None,
    };
    let t = 1_000_000;
    let admin = auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.1"),
        "admin",
        &generated,
        t,
    )
    .await
    .expect("sign in");
    assert_eq!(admin.role, Role::Admin);
    // The browser that signed in is known from now on.
    let known = Attempter {
        source: "192.0.2.1".into(),
        device: Some(auth::issue_device(&secrets, &admin, t)),
    };
    let attacker = from("203.0.113.7");
    for i in 0..limits.per_user_and_source {
        let e = auth::sign_in(
            &store,
            &secrets,
            &limits,
            &attacker,
            "admin",
            "wrong-password!",
            t + i,
        )
        .await
        .expect_err("wrong");
        assert!(matches!(e, AuthError::BadCredentials), "{e}");
    }
    // Now even the right password is refused from that address until the window passes…
    let e = auth::sign_in(
        &store,
        &secrets,
        &limits,
        &attacker,
        "admin",
        &generated,
        t + 10,
    )
    .await
    .expect_err("throttled");
    assert!(matches!(e, AuthError::Throttled { .. }), "{e}");
    assert!(e.to_string().contains("try again in 15 minutes"), "{e}");
    // …but not from the admin's own browser, nor from another address.
    auth::sign_in(
        &store,
        &secrets,
        &limits,
        &known,
        "admin",
        &generated,
        t + 11,
    )
    .await
    .expect("the admin's own browser is not locked out");
    auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.2"),
        "admin",
        &generated,
        t + 12,
    )
    .await
    .expect("another address is not locked out");
    let later = t + limits.window + 1;
    auth::sign_in(
        &store, &secrets, &limits, &attacker, "admin", &generated, later,
    )
    .await
    .expect("window passed");

    // Spraying many usernames from one address stops at the per-address limit.
    let sprayer = from("198.51.100.9");
    let mut refused = 0;
    for i in 0..(limits.per_source + 5) {
        match auth::sign_in(
            &store,
            &secrets,
            &limits,
            &sprayer,
            &format!("user{i}"),
            "whatever-password",
            later,
        )
        .await
        {
            Err(AuthError::BadCredentials) => {}
            Err(AuthError::Throttled { .. }) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        refused, 5,
        "all but the first {} are refused",
        limits.per_source
    );

    // Guesses from many addresses lock the name for unknown browsers only; an admin lifts it.
    let t2 = later + limits.window + 1;
    for i in 0..limits.per_user_untrusted {
        let e = auth::sign_in(
            &store,
            &secrets,
            &limits,
            &from(&format!("10.9.{}.{}", i / 200, i % 200)),
            "admin",
            "nope-nope-nope",
            t2,
        )
        .await
        .expect_err("wrong");
        assert!(matches!(e, AuthError::BadCredentials), "{e}");
    }
    let e = auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.99"),
        "admin",
        &generated,
        t2,
    )
    .await
    .expect_err("unknown browsers are held");
    assert!(e.to_string().contains("unknown browsers"), "{e}");
    auth::sign_in(&store, &secrets, &limits, &known, "admin", &generated, t2)
        .await
        .expect("but never the admin's own browser");
    let locks = store.sign_in_locks(t2, &limits).await.expect("locks");
    assert!(
        locks
            .iter()
            .any(|l| l.kind == "user" && l.username == "admin"),
        "{locks:?}"
    );
    assert!(
        store
            .clear_attempts(Some("admin"), None)
            .await
            .expect("unlock")
            > 0
    );
    auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.99"),
        "admin",
        &generated,
        t2,
    )
    .await
    .expect("lifted");

    // Parallel guesses are counted like sequential ones: never more than the limit get a verdict.
    let t3 = t2 + limits.window + 1;
    let store2 = store.clone();
    let secrets = std::sync::Arc::new(secrets);
    let tries = (0..(limits.per_user_and_source * 3)).map(|_| {
        let (store, secrets) = (store2.clone(), secrets.clone());
        tokio::spawn(async move {
            auth::sign_in(
                &store,
                &secrets,
                &limits,
                &from("203.0.113.50"),
                "admin",
                "parallel-guess!",
                t3,
            )
            .await
        })
    });
    let mut judged = 0;
    for r in futures::future::join_all(tries).await {
        match r.expect("task") {
            Err(AuthError::BadCredentials) => judged += 1,
            Err(AuthError::Throttled { .. }) | Err(AuthError::Password(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        judged, limits.per_user_and_source,
        "parallel guesses beyond the limit are refused unjudged"
    );

    // What is stored is bounded: a username no user can have is stored as ''.
    let huge = "x".repeat(100_000);
    let e = auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.200"),
        &huge,
        "whatever-password",
        t3,
    )
    .await
    .expect_err("unknown");
    assert_eq!(e.to_string(), "wrong username or password");
    let locks = store
        .sign_in_locks(
            t3,
            &Limits {
                per_user_and_source: 1,
                per_source: 1000,
                per_user_untrusted: 1000,
                window: limits.window,
            },
        )
        .await
        .expect("locks");
    assert!(locks.iter().all(|l| l.username.len() <= 64), "{locks:?}");

    // Unknown users and disabled users get the same answer as a wrong password.
    let t4 = t3 + limits.window + 1;
    let e = auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.3"),
        "nobody",
        "whatever-password",
        t4,
    )
    .await
    .expect_err("unknown");
    assert_eq!(e.to_string(), "wrong username or password");
    store.set_disabled(admin.id, true).await.expect("disable");
    let e = auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.3"),
        "admin",
        &generated,
        t4 + 1,
    )
    .await
    .expect_err("disabled");
    assert_eq!(e.to_string(), "wrong username or password");
}

#[tokio::test]
async fn sqlite_sign_in_is_throttled_after_repeated_failures() {
    sign_in_is_throttled_after_repeated_failures(sqlite().await).await;
}

#[tokio::test]
async fn postgres_sign_in_is_throttled_after_repeated_failures() {
    sign_in_is_throttled_after_repeated_failures(postgres().await).await;
}
