//! Every YAML the console reads goes through here: kubeconfigs, settings typed into the wizard, peer gateways
//! sent by a cluster's owner, and YAML read back from the clusters themselves. YAML's anchors and aliases let
//! a few kilobytes stand for gigabytes (each alias repeats the whole node it names, and aliases of aliases
//! multiply), and `serde_yaml` bounds only the number of alias jumps, not what they expand to. So each text is
//! first walked once with a budget — nodes, scalar bytes and nesting depth counted *as expanded* — and only a
//! text within its budget is deserialized. The walk stops at the first node over budget, so a bomb costs no
//! more than the budget. Callers on the async runtime use [`parse_off_runtime`] (or run the parse in
//! `spawn_blocking` themselves) so even a text at its budget never holds up an async worker.

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};

/// How much a text may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The text itself, in bytes.
    pub input_bytes: usize,
    /// Nodes (scalars, sequences, mappings) after expanding aliases, over all documents.
    pub nodes: usize,
    /// Bytes of scalars after expanding aliases, over all documents.
    pub scalar_bytes: usize,
    /// Nesting of sequences and mappings.
    pub depth: usize,
    /// Documents in one text (`---` separated).
    pub documents: usize,
}

impl Limits {
    /// What a person pastes or uploads: a kubeconfig, a peer gateway bundle, the extensions ConfigMap.
    pub const INPUT: Limits = Limits {
        input_bytes: 1024 * 1024,
        nodes: 200_000,
        scalar_bytes: 8 * 1024 * 1024,
        depth: 64,
        documents: 1000,
    };
    /// A small value read from a cluster (e.g. the `mesh` key of istiod's ConfigMap): smaller, because it is
    /// parsed on every change a watch sees.
    pub const CLUSTER_VALUE: Limits = Limits {
        input_bytes: 1024 * 1024,
        nodes: 20_000,
        scalar_bytes: 2 * 1024 * 1024,
        depth: 64,
        documents: 1,
    };
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("it is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "it expands to more than {limit} values (anchors and aliases repeat what they name); write the values out instead of aliasing them"
    )]
    TooManyNodes { limit: usize },
    #[error(
        "it expands to more than {limit} bytes of text (anchors and aliases repeat what they name); write the values out instead of aliasing them"
    )]
    TooMuchText { limit: usize },
    #[error("it nests more than {limit} levels deep")]
    TooDeep { limit: usize },
    #[error("it has more than {limit} documents")]
    TooManyDocuments { limit: usize },
    #[error("not valid YAML: {0}")]
    Syntax(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Walks every document of `text` as expanded, refusing it at the first limit it passes.
pub fn check(text: &str, limits: &Limits) -> Result<()> {
    if text.len() > limits.input_bytes {
        return Err(Error::TooLarge {
            size: text.len(),
            limit: limits.input_bytes,
        });
    }
    let mut budget = Budget {
        limits: *limits,
        nodes: 0,
        bytes: 0,
        depth: 0,
        over: None,
    };
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        if i >= limits.documents {
            return Err(Error::TooManyDocuments {
                limit: limits.documents,
            });
        }
        if let Err(e) = Count(&mut budget).deserialize(doc) {
            return Err(budget.over.take().unwrap_or_else(|| syntax(e, limits)));
        }
    }
    Ok(())
}

/// A parse error; serde_yaml's own cap on alias jumps is an expansion limit too, and says so.
fn syntax(e: serde_yaml::Error, limits: &Limits) -> Error {
    let m = e.to_string();
    if m.contains("repetition limit exceeded") {
        Error::TooManyNodes {
            limit: limits.nodes,
        }
    } else {
        Error::Syntax(m)
    }
}

/// One document, checked against `limits`, then deserialized.
pub fn from_str<T: DeserializeOwned>(text: &str, limits: &Limits) -> Result<T> {
    check(text, limits)?;
    serde_yaml::from_str(text).map_err(|e| syntax(e, limits))
}

/// Every document (empty ones included, as null), checked against `limits`, then deserialized.
pub fn documents<T: DeserializeOwned>(text: &str, limits: &Limits) -> Result<Vec<T>> {
    check(text, limits)?;
    let mut out = vec![];
    for doc in serde_yaml::Deserializer::from_str(text) {
        out.push(T::deserialize(doc).map_err(|e| syntax(e, limits))?);
    }
    Ok(out)
}

/// Runs `parse` on tokio's blocking pool when called inside a runtime (so a large text never holds up an
/// async worker), or right here otherwise.
pub async fn parse_off_runtime<T, F>(parse: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return parse();
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A panic in `parse` drops `tx`; the caller then panics too, as it would have inline.
    let _task = tokio::task::spawn_blocking(move || {
        let _ = tx.send(parse());
    });
    rx.await
        .unwrap_or_else(|_| panic!("a YAML parse on the blocking pool panicked"))
}

struct Budget {
    limits: Limits,
    nodes: usize,
    bytes: usize,
    depth: usize,
    over: Option<Error>,
}

impl Budget {
    fn node<E: de::Error>(&mut self, bytes: usize) -> std::result::Result<(), E> {
        self.nodes += 1;
        self.bytes += bytes;
        if self.nodes > self.limits.nodes {
            return Err(self.stop(Error::TooManyNodes {
                limit: self.limits.nodes,
            }));
        }
        if self.bytes > self.limits.scalar_bytes {
            return Err(self.stop(Error::TooMuchText {
                limit: self.limits.scalar_bytes,
            }));
        }
        Ok(())
    }

    fn enter<E: de::Error>(&mut self) -> std::result::Result<(), E> {
        self.node(0)?;
        self.depth += 1;
        if self.depth > self.limits.depth {
            return Err(self.stop(Error::TooDeep {
                limit: self.limits.depth,
            }));
        }
        Ok(())
    }

    fn stop<E: de::Error>(&mut self, e: Error) -> E {
        let message = e.to_string();
        self.over = Some(e);
        E::custom(message)
    }
}

/// Counts one node and everything below it.
struct Count<'a>(&'a mut Budget);

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<(), E> {
        self.0.node(1)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<(), E> {
        self.0.node(8)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<(), E> {
        self.0.node(8)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<(), E> {
        self.0.node(8)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<(), E> {
        self.0.node(v.len())
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> std::result::Result<(), E> {
        self.0.node(v.len())
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        self.0.node(0)
    }
    fn visit_none<E: de::Error>(self) -> std::result::Result<(), E> {
        self.0.node(0)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        Count(self.0).deserialize(d)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<(), D::Error> {
        Count(self.0).deserialize(d)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        self.0.enter()?;
        while seq.next_element_seed(Count(&mut *self.0))?.is_some() {}
        self.0.depth -= 1;
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        self.0.enter()?;
        while map.next_key_seed(Count(&mut *self.0))?.is_some() {
            map.next_value_seed(Count(&mut *self.0))?;
        }
        self.0.depth -= 1;
        Ok(())
    }
    /// A tagged node (`!Tag value`): the value counts.
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> std::result::Result<(), A::Error> {
        use de::VariantAccess;
        let ((), variant) = data.variant_seed(Count(&mut *self.0))?;
        variant.newtype_variant_seed(Count(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classic "billion laughs": nine levels of nine aliases each.
    pub(crate) fn laughs(levels: usize) -> String {
        let mut s = String::from(
            "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..levels {
            let p = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
            ));
        }
        s
    }

    #[test]
    fn an_alias_bomb_is_refused_quickly_by_what_it_expands_to() {
        let bomb = laughs(9);
        assert!(bomb.len() < 1024, "{}", bomb.len());
        let start = std::time::Instant::now();
        let e = from_str::<serde_json::Value>(&bomb, &Limits::INPUT).expect_err("refused");
        assert!(matches!(e, Error::TooManyNodes { .. }), "{e}");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "the walk stops at the budget: {:?}",
            start.elapsed()
        );
        // The same shape, small enough, is fine: anchors and aliases are YAML, only their size is bounded.
        let small: serde_json::Value = from_str(&laughs(3), &Limits::INPUT).expect("small");
        assert_eq!(small["a2"][0][0][0], "lol");
    }

    #[test]
    fn long_strings_through_aliases_are_bounded_too() {
        let big = "x".repeat(64 * 1024);
        let mut s = format!("a: &a \"{big}\"\nb: [");
        for _ in 0..200 {
            s.push_str("*a,");
        }
        s.push_str("*a]\n");
        let e = check(&s, &Limits::INPUT).expect_err("refused");
        assert!(matches!(e, Error::TooMuchText { .. }), "{e}");
    }

    #[test]
    fn deep_nesting_size_and_documents_are_bounded() {
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(matches!(
            check(&deep, &Limits::INPUT),
            Err(Error::TooDeep { .. }) | Err(Error::Syntax(_))
        ));
        let big = "a: b\n".repeat(300_000);
        assert!(matches!(
            check(&big, &Limits::INPUT),
            Err(Error::TooLarge { .. })
        ));
        let docs = "a: 1\n---\n".repeat(5);
        let limits = Limits {
            documents: 3,
            ..Limits::INPUT
        };
        assert_eq!(
            check(&docs, &limits),
            Err(Error::TooManyDocuments { limit: 3 })
        );
    }

    #[test]
    fn ordinary_yaml_reads_as_before() {
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct T {
            name: String,
            tags: Vec<String>,
        }
        let t: T = from_str("name: '123'\ntags: [a, b]\n", &Limits::INPUT)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.name, "123");
        check("x: !custom b\ny: !!str 1\n", &Limits::INPUT).expect("tags are walked");
        let docs: Vec<serde_json::Value> =
            documents("a: 1\n---\nb: 2\n", &Limits::INPUT).expect("docs");
        assert_eq!(docs.len(), 2);
        assert!(matches!(
            from_str::<serde_json::Value>("a: [", &Limits::INPUT),
            Err(Error::Syntax(_))
        ));
    }

    #[tokio::test]
    async fn parses_run_on_the_blocking_pool() {
        let on_worker = std::thread::current().id();
        let (thread, v) = parse_off_runtime(|| {
            (
                std::thread::current().id(),
                from_str::<serde_json::Value>("a: 1", &Limits::INPUT),
            )
        })
        .await;
        assert_ne!(thread, on_worker);
        assert_eq!(v.expect("parsed")["a"], 1);
    }
}
