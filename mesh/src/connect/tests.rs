use super::*;

fn api(code: u16, reason: &str, message: &str) -> kube::Error {
    kube::Error::Api(Box::new(
        kube::core::Status::failure(message, reason).with_code(code),
    ))
}

#[test]
fn answers_from_something_that_is_not_the_kubernetes_api_are_never_echoed() {
    let body = "<html>internal admin console — db password hunter2</html>";
    let p = classify(&api(404, "Failed to parse error data", body));
    assert!(!p.to_string().contains("hunter2"), "{p}");
    assert!(
        p.to_string().contains("does not speak the Kubernetes API"),
        "{p}"
    );
    // A real Kubernetes Status is shown, cut to one line.
    let p = classify(&api(
        403,
        "Forbidden",
        "secrets is forbidden: User \"x\" cannot list\nsecrets",
    ));
    assert!(p.to_string().contains("cannot list secrets"), "{p}");
    let long = "y".repeat(5000);
    assert!(
        classify(&api(500, "InternalError", &long))
            .to_string()
            .len()
            < 600
    );
}

#[test]
fn only_allowed_addresses_are_reached() {
    let any = Reach::default();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
    assert!(
        any.refuses(ip("127.0.0.1"))
            .is_some_and(|m| m.contains("--allow-loopback-clusters"))
    );
    assert!(any.refuses(ip("::1")).is_some());
    assert!(
        any.refuses(ip("169.254.169.254"))
            .is_some_and(|m| m.contains("link-local"))
    );
    assert!(any.refuses(ip("fe80::1")).is_some());
    assert!(
        any.refuses(ip("::ffff:169.254.169.254")).is_some(),
        "mapped v4"
    );
    assert!(any.refuses(ip("0.0.0.0")).is_some());
    assert!(any.refuses(ip("224.0.0.1")).is_some());
    assert_eq!(any.refuses(ip("10.1.2.3")), None);
    assert_eq!(any.refuses(ip("203.0.113.5")), None);
    let ranged = Reach {
        networks: Reach::parse_networks("10.0.0.0/8, fd00::/8").expect("nets"),
        allow_loopback: true,
    };
    assert_eq!(ranged.refuses(ip("10.200.0.1")), None);
    assert_eq!(ranged.refuses(ip("fd12::1")), None);
    assert_eq!(ranged.refuses(ip("127.0.0.1")), None);
    assert!(
        ranged
            .refuses(ip("11.0.0.1"))
            .is_some_and(|m| m.contains("10.0.0.0/8"))
    );
    let metadata_listed = Reach {
        networks: Reach::parse_networks("169.254.0.0/16").expect("nets"),
        allow_loopback: false,
    };
    assert_eq!(
        metadata_listed.refuses(ip("169.254.1.1")),
        None,
        "listed on purpose"
    );
    assert!(Reach::parse_networks("10.0.0.0/33").is_err());
    assert!(Reach::parse_networks("not-a-net").is_err());
    assert_eq!(
        Reach::parse_networks("192.0.2.7").expect("host")[0].to_string(),
        "192.0.2.7/32"
    );
}
