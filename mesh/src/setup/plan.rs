//! Plans: every object of a step compared with the cluster by a server-side dry run.

use super::*;

/// One step of a cluster's plan: what it writes, compared with the cluster, and the commands by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub step: Step,
    pub objects: Vec<ObjectChange>,
    pub commands: Vec<String>,
}

/// The plan of one cluster: every step, each object diffed against the cluster (server-side dry run).
pub async fn plan_cluster(
    t: &Target,
    cluster: &ClusterSetup,
    settings: &Settings,
) -> Vec<PlannedStep> {
    let mut out = vec![];
    for step in Step::ALL {
        let mut objects_out = vec![];
        for obj in objects(step, cluster, settings) {
            objects_out.push(diff_object(&t.client, &obj).await);
        }
        out.push(PlannedStep {
            step,
            objects: objects_out,
            commands: commands(step, cluster, settings),
        });
    }
    out
}

/// One object of a plan, compared with what the cluster holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectChange {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub yaml: String,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    Create,
    Update {
        diff: String,
    },
    Unchanged,
    /// Not compared (the object holds generated keys, or the cluster could not be asked).
    Unknown {
        reason: String,
    },
}

/// Strips what the server adds so live and desired objects compare on content.
pub(super) fn normalize(mut v: Value) -> Value {
    if let Some(m) = v["metadata"].as_object_mut() {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            m.remove(k);
        }
        if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            if a.is_empty() {
                m.remove("annotations");
            }
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

/// Compares one planned object with the cluster: a server-side dry-run apply shows what the object would
/// become, diffed against what is live now.
pub async fn diff_object(client: &Client, obj: &Value) -> ObjectChange {
    let yaml = serde_yaml::to_string(obj).unwrap_or_default();
    let meta = &obj["metadata"];
    let mut change = ObjectChange {
        kind: obj["kind"].as_str().unwrap_or("").to_string(),
        namespace: meta["namespace"].as_str().map(String::from),
        name: meta["name"].as_str().unwrap_or("").to_string(),
        yaml,
        change: Change::Unchanged,
    };
    if obj.to_string().contains("<") && change.kind == "Secret" {
        change.change = Change::Unknown {
            reason: "holds keys generated at apply time".into(),
        };
        return change;
    }
    let live = get_live(client, obj).await;
    let Some(live) = live else {
        change.change = Change::Create;
        return change;
    };
    match crate::apply::apply(client, obj, true).await {
        Ok(after) => {
            let before = normalize(serde_json::to_value(&live).unwrap_or(Value::Null));
            let after = normalize(serde_json::to_value(&after).unwrap_or(Value::Null));
            if before == after {
                change.change = Change::Unchanged;
            } else {
                let a = serde_yaml::to_string(&before).unwrap_or_default();
                let b = serde_yaml::to_string(&after).unwrap_or_default();
                let diff = similar::TextDiff::from_lines(&a, &b)
                    .unified_diff()
                    .context_radius(3)
                    .header("live", "after apply")
                    .to_string();
                change.change = Change::Update { diff };
            }
        }
        Err(e) => {
            change.change = Change::Unknown {
                reason: format!("the dry run failed: {e}"),
            }
        }
    }
    change
}
