//! A small fuzzing harness on stable Rust over proptest strategies, shared by the crates' fuzz tests
//! (`mesh/tests/fuzz.rs`, `app/tests/fuzz.rs`): each target runs for a bounded time (`MESHDECK_FUZZ_SECS`,
//! default 2 s), must never panic, and prints its executions; a crash is shrunk to a small input and
//! reported with it. Plus the strategies every target uses: bytes as text, and random edits of a real
//! document.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// How long each target runs: `MESHDECK_FUZZ_SECS` (default 2 s).
pub fn budget() -> Duration {
    let secs = std::env::var("MESHDECK_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

thread_local! {
    /// Set while a check runs: its panics are expected findings, not noise for the log.
    static FUZZING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `check` on generated inputs until the budget is spent; on a panic, shrinks the input and fails.
pub fn fuzz<T: Debug + Clone>(name: &str, strategy: impl Strategy<Value = T>, check: impl Fn(&T)) {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !FUZZING.with(|f| f.get()) {
                default(info);
            }
        }));
    });
    let fails = |v: &T| {
        FUZZING.with(|f| f.set(true));
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(v))).is_err();
        FUZZING.with(|f| f.set(false));
        failed
    };
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let deadline = Instant::now() + budget();
    let mut executions = 0u64;
    let mut slowest = Duration::ZERO;
    while Instant::now() < deadline {
        let mut tree = strategy.new_tree(&mut runner).expect("a generated input");
        let value = tree.current();
        executions += 1;
        let start = Instant::now();
        let failed = fails(&value);
        slowest = slowest.max(start.elapsed());
        if failed {
            // Shrink: simplify while it still fails, step back when it stops failing.
            let mut smallest = value;
            loop {
                let v = tree.current();
                if fails(&v) {
                    smallest = v;
                    if !tree.simplify() {
                        break;
                    }
                } else if !tree.complicate() {
                    break;
                }
            }
            panic!(
                "fuzz {name}: a crash after {executions} executions; smallest input: {smallest:?}"
            );
        }
    }
    eprintln!(
        "fuzz {name}: executions={executions} crashes=0 slowest_ms={}",
        slowest.as_millis()
    );
    assert!(executions > 0);
    assert!(
        slowest < Duration::from_secs(5),
        "fuzz {name}: one input took {slowest:?}: parsing must stay within its budget"
    );
}

/// Random edits (insert, delete, replace) of a real document.
pub fn edits_of(seed: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<usize>(), 0u8..3, any::<char>(), 1usize..6), 0..10).prop_map(
        move |edits| {
            let mut s: Vec<char> = seed.chars().collect();
            for (at, kind, c, n) in edits {
                let at = at % (s.len() + 1);
                match kind {
                    0 => s.insert(at, c),
                    1 => {
                        let end = (at + n).min(s.len());
                        s.drain(at..end);
                    }
                    _ => {
                        if at < s.len() {
                            s[at] = c;
                        }
                    }
                }
            }
            s.into_iter().collect()
        },
    )
}

/// Text from bytes, as a browser or a file upload may send it.
pub fn bytes() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..2000)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}
