//! The links of the graph drawing. A full mesh of 100 clusters has 9,900 of them, so they are not a list of
//! reactive views (one wasm-to-DOM call per element and attribute, two effects per link: 1.3 s to draw the
//! 100-cluster mesh, a third of a second to show one change). They are written as markup in one piece, which
//! the browser's own parser turns into elements, and once the page runs, a live change rewrites only the links
//! it changed, in place (a focused link keeps its focus). One click handler and one key handler on the layer
//! serve every link: the link is read from its `data-link`.
//!
//! Each link stays a focusable element with its name (`aria-label`), its health as a word and a colour, one-way
//! links dashed: what a keyboard, a screen reader and an SVG export get is unchanged. Fewer elements per link:
//! the name for the pointer (`<title>`) is added to a link when the pointer first comes over it, and the wide
//! transparent path that makes a thin link easy to hit is drawn only up to [`HIT_PATHS_UP_TO`] links (beyond,
//! the links lie closer together than its width, and it doubled what the browser builds and paints).

use std::collections::HashSet;
use std::fmt::Write;
use std::sync::Arc;

use super::canvas::has_reverse;
use super::{SELECTED, Selection, colour};
use crate::model::topology::{Graph, Health, Layout};
use crate::model::{ClusterName, TeamMap};

/// What one link draws.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct LinkDraw {
    pub from: ClusterName,
    pub to: ClusterName,
    pub health: Health,
    pub one_way: bool,
    /// With a team picked: whether the team's shared services are reached along it.
    pub team: Option<bool>,
    pub selected: bool,
    /// The path, from the layout.
    pub d: Arc<str>,
    /// Whether it has the wide transparent path that takes clicks near it.
    pub hit: bool,
}

/// Up to how many links each gets a wide path that takes the clicks near it (a full mesh of 45 clusters).
pub(super) const HIT_PATHS_UP_TO: usize = 2_000;

impl LinkDraw {
    pub(super) fn id(&self) -> String {
        format!("{}->{}", self.from, self.to)
    }

    fn label(&self) -> String {
        format!(
            "Link {} to {}: {}{}",
            self.from,
            self.to,
            self.health.label(),
            if self.one_way { ", one-way" } else { "" }
        )
    }

    /// The link element's attributes; `None`: absent.
    pub(super) fn attributes(&self) -> [(&'static str, Option<String>); 10] {
        [
            ("data-link", Some(self.id())),
            ("data-health", Some(self.health.label().to_string())),
            ("data-one-way", Some(self.one_way.to_string())),
            ("data-team-link", self.team.map(|c| c.to_string())),
            ("data-selected", self.selected.then(|| "true".to_string())),
            (
                "opacity",
                Some(if self.team == Some(false) { "0.2" } else { "1" }.to_string()),
            ),
            ("tabindex", Some("0".to_string())),
            ("role", Some("button".to_string())),
            ("aria-label", Some(self.label())),
            (
                "class",
                Some("cursor-pointer focus:outline-none".to_string()),
            ),
        ]
    }

    /// What the link element holds: a wide transparent path that takes the clicks near it (see `hit`), and the
    /// drawn path.
    pub(super) fn inner(&self, out: &mut String) {
        let h = self.health;
        let stroke = if self.selected { SELECTED } else { colour(h) };
        let width = if self.selected {
            "3.5"
        } else if self.team == Some(true) {
            "3"
        } else {
            "1.6"
        };
        let dash = if self.one_way {
            " stroke-dasharray=\"6 4\""
        } else if h == Health::Unknown {
            " stroke-dasharray=\"2 3\""
        } else {
            ""
        };
        let d = escape(&self.d);
        if self.hit {
            let _ = write!(
                out,
                "<path d=\"{d}\" fill=\"none\" stroke=\"transparent\" stroke-width=\"10\"></path>"
            );
        }
        let _ = write!(
            out,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dash} marker-end=\"url(#arrow-{})\"></path>",
            h.label(),
        );
    }

    /// The whole link element.
    pub(super) fn markup(&self, out: &mut String) {
        out.push_str("<g");
        for (name, value) in self.attributes() {
            if let Some(v) = value {
                let _ = write!(out, " {name}=\"{}\"", escape(&v));
            }
        }
        out.push('>');
        self.inner(out);
        out.push_str("</g>");
    }
}

/// The links to draw, in the layout's order: those touching a cluster a filter hides are left out.
pub(super) fn link_draws(
    graph: &Graph,
    layout: &Layout,
    team: Option<&TeamMap>,
    hidden: &HashSet<String>,
    selected: Option<&Selection>,
) -> Vec<LinkDraw> {
    let picked = match selected {
        Some(Selection::Link(f, t)) => Some((f, t)),
        _ => None,
    };
    let hit = layout.edges.len() <= HIT_PATHS_UP_TO;
    layout
        .edges
        .iter()
        .filter(|e| !hidden.contains(e.from.as_str()) && !hidden.contains(e.to.as_str()))
        .filter_map(|e| {
            let link = graph.link(&e.from, &e.to)?;
            Some(LinkDraw {
                from: e.from.clone(),
                to: e.to.clone(),
                health: link.health,
                one_way: !has_reverse(graph, link),
                team: team.map(|m| m.links.contains(&(e.from.to_string(), e.to.to_string()))),
                selected: picked == Some((&e.from, &e.to)),
                d: e.d.clone(),
                hit,
            })
        })
        .collect()
}

/// The markup of all of `links`.
pub(super) fn markup(links: &[LinkDraw]) -> String {
    let mut out = String::with_capacity(links.len() * 420);
    for l in links {
        l.markup(&mut out);
    }
    out
}

/// `s` safe in a quoted attribute value or in text (`>` is safe in both).
fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['&', '<', '"']) {
        return s.into();
    }
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
        .into()
}

/// The link a `data-link` value names (`from->to`; cluster names hold no `>`).
#[cfg(any(feature = "hydrate", test))]
pub(super) fn parse_id(id: &str) -> Option<(ClusterName, ClusterName)> {
    let (from, to) = id.split_once("->")?;
    Some((ClusterName::new(from).ok()?, ClusterName::new(to).ok()?))
}

/// Keeps the drawn links in step with the links to draw (browser only).
#[cfg(feature = "hydrate")]
pub(super) struct Drawn {
    /// What is drawn, in order.
    shown: Vec<LinkDraw>,
}

#[cfg(feature = "hydrate")]
impl Drawn {
    /// What the layer holds already (the server's markup, or the one it was built with).
    pub(super) fn new(links: &[LinkDraw]) -> Self {
        Drawn {
            shown: links.to_vec(),
        }
    }

    /// Brings `layer` to `links`: the whole layer written again when most of it changed (the browser's parser
    /// is the fastest way to many elements), else each changed link rewritten in place, each gone one removed,
    /// each new one added.
    pub(super) fn update(&mut self, layer: &leptos::web_sys::Element, links: Vec<LinkDraw>) {
        let pair = |l: &LinkDraw| (l.from.clone(), l.to.clone());
        // The same links as before (what a change of states gives): compared item by item.
        let same = self.shown.len() == links.len()
            && self
                .shown
                .iter()
                .zip(&links)
                .all(|(a, b)| a.from == b.from && a.to == b.to);
        let (changed, gone): (Vec<usize>, Vec<&LinkDraw>) = if same {
            let changed = (0..links.len())
                .filter(|&i| self.shown[i] != links[i])
                .collect();
            (changed, vec![])
        } else {
            let before: std::collections::HashMap<_, &LinkDraw> =
                self.shown.iter().map(|l| (pair(l), l)).collect();
            let now: HashSet<_> = links.iter().map(pair).collect();
            let changed = (0..links.len())
                .filter(|&i| before.get(&pair(&links[i])) != Some(&&links[i]))
                .collect();
            let gone = self
                .shown
                .iter()
                .filter(|l| !now.contains(&pair(l)))
                .collect();
            (changed, gone)
        };
        if changed.is_empty() && gone.is_empty() {
            return;
        }
        if (changed.len() + gone.len()) * 4 > links.len().max(1) {
            layer.set_inner_html(&markup(&links));
        } else {
            for l in gone {
                if let Some(el) = find(layer, &l.id()) {
                    el.remove();
                }
            }
            let mut text = String::new();
            for &i in &changed {
                let l = &links[i];
                text.clear();
                match find(layer, &l.id()) {
                    // In place: a focused link stays focused.
                    Some(el) => {
                        for (name, value) in l.attributes() {
                            let _ = match value {
                                Some(v) => el.set_attribute(name, &v),
                                None => el.remove_attribute(name),
                            };
                        }
                        l.inner(&mut text);
                        el.set_inner_html(&text);
                    }
                    None => {
                        l.markup(&mut text);
                        let _ = layer.insert_adjacent_html("beforeend", &text);
                    }
                }
            }
        }
        self.shown = links;
    }
}

/// Gives the link under the pointer its name as a `<title>` (the pointer's tooltip), once.
#[cfg(feature = "hydrate")]
pub(super) fn name_on_hover(ev: &leptos::web_sys::Event) {
    use leptos::wasm_bindgen::JsCast;
    let Some(link) = ev
        .target()
        .and_then(|t| t.dyn_into::<leptos::web_sys::Element>().ok())
        .and_then(|t| t.closest("[data-link]").ok().flatten())
    else {
        return;
    };
    if link
        .query_selector(":scope > title")
        .ok()
        .flatten()
        .is_none()
        && let Some(label) = link.get_attribute("aria-label")
    {
        let _ =
            link.insert_adjacent_html("afterbegin", &format!("<title>{}</title>", escape(&label)));
    }
}

/// The drawn link `id`.
#[cfg(feature = "hydrate")]
fn find(layer: &leptos::web_sys::Element, id: &str) -> Option<leptos::web_sys::Element> {
    let quoted = id.replace('\\', "\\\\").replace('"', "\\\"");
    layer
        .query_selector(&format!(":scope > [data-link=\"{quoted}\"]"))
        .ok()
        .flatten()
}

/// The link an event on the layer concerns: the `data-link` of its target or the target's nearest holder.
#[cfg(feature = "hydrate")]
pub(super) fn link_of(ev: &leptos::web_sys::Event) -> Option<(ClusterName, ClusterName)> {
    use leptos::wasm_bindgen::JsCast;
    let target = ev.target()?.dyn_into::<leptos::web_sys::Element>().ok()?;
    let holder = target.closest("[data-link]").ok()??;
    parse_id(&holder.get_attribute("data-link")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::topology::{GroupBy, layout};
    use mesh_ids::graph::LinkEdge;

    fn name(s: &str) -> ClusterName {
        ClusterName::new(s).expect("name")
    }

    fn link(from: &str, to: &str, health: Health) -> LinkEdge {
        LinkEdge {
            from: name(from),
            to: name(to),
            health,
            conditions: std::sync::Arc::from(Vec::new()),
            address: None,
            expected_address: None,
            reasons: vec![],
        }
    }

    fn graph() -> Graph {
        let mut g = Graph {
            clusters: ["c1", "c2", "c3"]
                .iter()
                .map(|c| crate::model::topology::test_cluster(c, Some("n")))
                .collect(),
            links: vec![
                link("c1", "c2", Health::Healthy),
                link("c2", "c1", Health::Healthy),
                link("c2", "c3", Health::Failing),
            ],
            findings: vec![],
        };
        g.sort();
        g
    }

    #[test]
    fn draws_each_link_with_its_state_and_name() {
        let g = graph();
        let l = layout(&g, GroupBy::Network);
        let sel = Selection::Link(name("c2"), name("c3"));
        let draws = link_draws(&g, &l, None, &HashSet::new(), Some(&sel));
        assert_eq!(draws.len(), 3);
        let html = markup(&draws);
        assert_eq!(html.matches("<g ").count(), 3, "{html}");
        assert!(html.contains(
            "<g data-link=\"c2->c3\" data-health=\"failing\" data-one-way=\"true\" data-selected=\"true\""
        ));
        assert!(html.contains("aria-label=\"Link c2 to c3: failing, one-way\""));
        // Three links: each with the wide path that takes clicks near it.
        assert_eq!(
            html.matches("stroke=\"transparent\" stroke-width=\"10\"")
                .count(),
            3
        );
        assert!(
            !html.contains("<title>"),
            "named for the pointer on hover only"
        );
        assert!(html.contains("stroke-dasharray=\"6 4\" marker-end=\"url(#arrow-failing)\""));
        assert!(html.contains(&format!("stroke=\"{SELECTED}\" stroke-width=\"3.5\"")));
        // Both ways: drawn solid, neither selected.
        let c1c2 = draws.iter().find(|d| d.id() == "c1->c2").expect("c1->c2");
        assert!(!c1c2.one_way && !c1c2.selected && c1c2.team.is_none());
        assert_eq!(parse_id("c2->c3"), Some((name("c2"), name("c3"))));
        assert_eq!(parse_id("c2-c3"), None);
    }

    #[test]
    fn leaves_out_links_of_hidden_clusters_and_marks_a_teams_links() {
        let g = graph();
        let l = layout(&g, GroupBy::Network);
        let hidden: HashSet<String> = ["c3".to_string()].into();
        let draws = link_draws(&g, &l, None, &hidden, None);
        assert_eq!(
            draws.iter().map(LinkDraw::id).collect::<Vec<_>>(),
            ["c1->c2", "c2->c1"]
        );
        let map = TeamMap {
            links: [("c1".to_string(), "c2".to_string())].into(),
            ..TeamMap::default()
        };
        let draws = link_draws(&g, &l, Some(&map), &HashSet::new(), None);
        let html = markup(&draws);
        assert!(html.contains("data-link=\"c1->c2\" data-health=\"healthy\" data-one-way=\"false\" data-team-link=\"true\" opacity=\"1\""), "{html}");
        assert!(html.contains("data-link=\"c2->c1\" data-health=\"healthy\" data-one-way=\"false\" data-team-link=\"false\" opacity=\"0.2\""), "{html}");
    }

    #[test]
    fn a_large_mesh_has_no_wide_hit_paths() {
        let names: Vec<String> = (0..46).map(|i| format!("c{i:02}")).collect();
        let mut g = Graph {
            clusters: names
                .iter()
                .map(|c| crate::model::topology::test_cluster(c, None))
                .collect(),
            links: vec![],
            findings: vec![],
        };
        for a in &names {
            for b in names.iter().filter(|b| *b != a) {
                g.links.push(link(a, b, Health::Healthy));
            }
        }
        g.sort();
        let l = layout(&g, GroupBy::Network);
        let draws = link_draws(&g, &l, None, &HashSet::new(), None);
        assert_eq!(draws.len(), 46 * 45);
        assert!(draws.len() > HIT_PATHS_UP_TO && draws.iter().all(|d| !d.hit));
        let html = markup(&draws);
        assert_eq!(
            html.matches("<path ").count(),
            draws.len(),
            "one path per link"
        );
        assert!(!html.contains("stroke=\"transparent\""));
    }

    #[test]
    fn escapes_what_it_writes() {
        assert_eq!(escape("a<b>&\"c\""), "a&lt;b>&amp;&quot;c&quot;");
        assert_eq!(escape("M1 2 Q3 4 5 6"), "M1 2 Q3 4 5 6");
    }
}
