//! What is compared across the clusters checked together: their roots of trust and trust bundles.

use super::*;

/// Runs every check on every cluster (concurrently; an unreachable cluster fails alone), then compares the
/// roots of trust across them.
pub async fn check_all(clusters: Vec<(ClusterName, Client)>) -> Vec<ClusterChecks> {
    let mut all = futures::future::join_all(
        clusters
            .into_iter()
            .map(|(name, client)| async move { check_cluster(&name, &client).await }),
    )
    .await;
    compare_roots(&mut all);
    all
}

/// Adds the cross-cluster comparison of the roots of trust to each cluster's results.
pub fn compare_roots(all: &mut [ClusterChecks]) {
    if all.iter().any(|c| c.trusted_roots.len() > 1) {
        return compare_bundles(all);
    }
    let mut by_root: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in all.iter() {
        if let Some(f) = &c.root_fingerprint {
            by_root
                .entry(f.clone())
                .or_default()
                .push(c.cluster.to_string());
        }
    }
    let majority = by_root
        .iter()
        .max_by_key(|(_, v)| v.len())
        .map(|(k, _)| k.clone());
    for c in all.iter_mut() {
        let Some(pos) = c.results.iter().position(|r| r.id == CheckId::RootOfTrust) else {
            continue;
        };
        if c.results[pos].status == Status::Fail {
            continue;
        }
        let Some(mine) = &c.root_fingerprint else {
            continue;
        };
        if by_root.len() > 1 && Some(mine) != majority.as_ref() {
            let others: Vec<String> = by_root
                .iter()
                .filter(|(k, _)| *k != mine)
                .map(|(k, v)| format!("{} ({})", short(k), v.join(", ")))
                .collect();
            c.results[pos] = CheckResult::new(
                CheckId::RootOfTrust,
                Status::Fail,
                format!(
                    "this cluster's root of trust {} differs from the others: {}",
                    short(mine),
                    others.join("; ")
                ),
            )
            .fix(
                "Peers only trust each other with one shared root: write a cacerts Secret signed by the shared root in \
                 istio-system, then restart istiod (kubectl rollout restart deployment -n istio-system -l app=istiod), \
                 which reads cacerts only when it starts.",
            );
        } else if by_root.len() == 1 && all_len_gt_one(&by_root) {
            c.results[pos].message =
                format!("root {} is the same in every cluster checked", short(mine));
        }
    }
}

/// The comparison while a root rotation is under way (some cluster trusts a bundle of roots): each cluster's
/// signing root (the first it serves) must be trusted by every other cluster, and it must trust theirs — then
/// traffic flows both ways whatever root each side signs with.
fn compare_bundles(all: &mut [ClusterChecks]) {
    // A cluster serving no root (unreachable, istiod not up) has its own failing check; it is not compared.
    let view: Vec<(String, Option<String>, Vec<String>)> = all
        .iter()
        .filter(|c| !c.trusts().is_empty())
        .map(|c| {
            (
                c.cluster.to_string(),
                c.root_fingerprint.clone(),
                c.trusts(),
            )
        })
        .collect();
    for c in all.iter_mut() {
        let Some(pos) = c.results.iter().position(|r| r.id == CheckId::RootOfTrust) else {
            continue;
        };
        if c.results[pos].status == Status::Fail {
            continue;
        }
        let Some(mine) = c.root_fingerprint.clone() else {
            continue;
        };
        let trusts = c.trusts();
        let mut gaps = vec![];
        for (name, signs, theirs) in &view {
            if *name == c.cluster.as_str() {
                continue;
            }
            if !theirs.contains(&mine) {
                gaps.push(format!(
                    "{name} does not trust this cluster's root {}",
                    short(&mine)
                ));
            }
            if let Some(signs) = signs
                && !trusts.contains(signs)
            {
                gaps.push(format!(
                    "this cluster does not trust {name}'s root {}",
                    short(signs)
                ));
            }
        }
        let listed = trusts
            .iter()
            .map(|f| short(f))
            .collect::<Vec<_>>()
            .join(" and ");
        c.results[pos] = if gaps.is_empty() {
            CheckResult::new(
                CheckId::RootOfTrust,
                Status::Pass,
                format!(
                    "signs with root {}; trusts roots {listed}; every cluster checked trusts this cluster's root and \
                     this cluster trusts theirs",
                    short(&mine)
                ),
            )
        } else {
            CheckResult::new(
                CheckId::RootOfTrust,
                Status::Fail,
                format!("signs with root {}, trusts {listed}: {}", short(&mine), gaps.join("; ")),
            )
            .fix(
                "During a root rotation every cluster must trust both roots before any signs with the new one: put \
                 the bundle of both roots into each cluster's cacerts root-cert.pem and restart its istiod (or \
                 retry the rotation job, which does this in order).",
            )
        };
    }
}

fn all_len_gt_one(by_root: &BTreeMap<String, Vec<String>>) -> bool {
    by_root.values().map(Vec::len).sum::<usize>() > 1
}
