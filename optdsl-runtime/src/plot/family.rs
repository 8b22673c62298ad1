//! Which panel each optimizer of a multi-optimizer picture goes in, and how
//! its line looks there: optimizers are grouped by the family `optdsl list`
//! shows (each built-in's [`BuiltinInfo::family`](crate::builtin::BuiltinInfo)),
//! rules loaded from files get a panel of their own, and within a panel no
//! two lines share a color or a marker.

use super::style::{color, Marker, PALETTE};
use crate::builtin::{builtins, Family};
use plotters::style::RGBColor;

/// The panel an optimizer is drawn in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// A built-in family.
    Family(Family),
    /// Rules loaded with `--rule`: they have no built-in family.
    UserRules,
}

impl Group {
    /// The family of the built-in called `name` (case ignored, as
    /// [`builtin_rule`](crate::builtin::builtin_rule) ignores it), if there is one.
    pub fn of_builtin(name: &str) -> Option<Group> {
        let key = name.to_ascii_lowercase();
        builtins()
            .iter()
            .find(|b| b.name == key)
            .map(|b| Group::Family(b.family))
    }

    /// The built-in `name`'s family, or [`Group::UserRules`] for a name no
    /// built-in has.
    pub fn of_name(name: &str) -> Group {
        Group::of_builtin(name).unwrap_or(Group::UserRules)
    }

    /// The panel's heading: "adam family", "user rules".
    pub fn title(self) -> String {
        match self {
            Group::Family(f) => format!("{f} family"),
            Group::UserRules => "user rules (--rule)".into(),
        }
    }

    /// Panels come in the order `optdsl list` first shows each family,
    /// rules from files last.
    fn rank(self) -> usize {
        let all = builtins();
        match self {
            Group::Family(f) => f as usize,
            Group::UserRules => all.len() + 1,
        }
    }
}

/// One panel: its group and the optimizers drawn in color in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panel {
    /// What the panel holds.
    pub group: Group,
    /// Indices into the caller's list of optimizers, in the list's order.
    pub members: Vec<usize>,
}

/// How one optimizer's line is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Look {
    /// The line's and markers' color.
    pub color: RGBColor,
    /// The marker at each point.
    pub marker: Marker,
}

/// Splits optimizers with these groups into panels, one per group present,
/// in [`Group`]'s order; each optimizer lands in exactly one panel.
pub fn panels(groups: &[Group]) -> Vec<Panel> {
    let mut out: Vec<Panel> = Vec::new();
    for (i, &group) in groups.iter().enumerate() {
        match out.iter_mut().find(|p| p.group == group) {
            Some(p) => p.members.push(i),
            None => out.push(Panel {
                group,
                members: vec![i],
            }),
        }
    }
    out.sort_by_key(|p| p.group.rank());
    out
}

/// The look of each of `n` optimizers laid out in `panels`: the `k`-th
/// member of a panel gets palette color `start + k` (cyclically), where
/// `start` counts the members of the panels before it, and marker `k`. So a
/// panel of up to [`PALETTE`]`.len()` lines has no color twice (and up to
/// ten lines, ten different hues), and a picture of up to that many
/// optimizers has no color twice at all. Optimizers in no panel get the
/// first look.
pub fn looks(panels: &[Panel], n: usize) -> Vec<Look> {
    let mut out = vec![
        Look {
            color: PALETTE[0],
            marker: Marker::Circle,
        };
        n
    ];
    let mut start = 0;
    for p in panels {
        for (k, &i) in p.members.iter().enumerate() {
            if let Some(look) = out.get_mut(i) {
                *look = Look {
                    color: color(start + k),
                    marker: Marker::nth(k),
                };
            }
        }
        start += p.members.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in, and three rules from files, the way `compare --all
    /// --rule ...` lists them, in registry order and reversed.
    fn every_optimizer(reverse: bool) -> Vec<(String, Group)> {
        let mut names: Vec<String> = builtins().iter().map(|b| b.name.to_string()).collect();
        names.extend(["my_rule", "other-rule", "MY_SGD"].map(String::from));
        if reverse {
            names.reverse();
        }
        names
            .into_iter()
            .map(|n| {
                let g = Group::of_name(&n);
                (n, g)
            })
            .collect()
    }

    #[test]
    fn every_optimizer_lands_in_exactly_one_panel_of_its_family() {
        for reverse in [false, true] {
            let all = every_optimizer(reverse);
            let groups: Vec<Group> = all.iter().map(|(_, g)| *g).collect();
            let ps = panels(&groups);
            let mut seen = vec![0; all.len()];
            for p in &ps {
                assert!(!p.members.is_empty());
                for &i in &p.members {
                    seen[i] += 1;
                    let (name, _) = &all[i];
                    match Group::of_builtin(name) {
                        Some(g) => assert_eq!(p.group, g, "{name}"),
                        None => assert_eq!(p.group, Group::UserRules, "{name}"),
                    }
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "{seen:?}");
            // One panel per family `optdsl list` shows, plus the user rules last.
            let mut families: Vec<Family> = builtins().iter().map(|b| b.family).collect();
            families.sort_by_key(|&f| f as usize);
            families.dedup();
            assert_eq!(ps.len(), families.len() + 1);
            assert_eq!(ps.last().map(|p| p.group), Some(Group::UserRules));
            assert_eq!(ps[0].group, Group::of_name(builtins()[0].name));
        }
    }

    #[test]
    fn colors_and_markers_do_not_repeat_within_a_panel() {
        for reverse in [false, true] {
            let all = every_optimizer(reverse);
            let groups: Vec<Group> = all.iter().map(|(_, g)| *g).collect();
            let ps = panels(&groups);
            let look = looks(&ps, all.len());
            for p in &ps {
                assert!(p.members.len() <= PALETTE.len(), "{:?} too big", p.group);
                for (a, &i) in p.members.iter().enumerate() {
                    for &j in &p.members[a + 1..] {
                        let (x, y) = (look[i], look[j]);
                        assert_ne!(
                            x.color, y.color,
                            "{} and {} share a color in {:?}",
                            all[i].0, all[j].0, p.group
                        );
                        if p.members.len() <= Marker::ALL.len() {
                            assert_ne!(x.marker, y.marker, "{} and {}", all[i].0, all[j].0);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn up_to_twenty_optimizers_all_get_different_colors() {
        // The first twenty built-ins span several families.
        let groups: Vec<Group> = builtins()
            .iter()
            .take(PALETTE.len())
            .map(|b| Group::Family(b.family))
            .collect();
        let ps = panels(&groups);
        assert!(ps.len() > 2);
        let look = looks(&ps, groups.len());
        for i in 0..look.len() {
            for j in i + 1..look.len() {
                assert_ne!(look[i].color, look[j].color, "{i} and {j}");
            }
        }
    }

    #[test]
    fn names_no_builtin_has_are_user_rules() {
        assert_eq!(Group::of_name("Adam"), Group::Family(Family::Adam));
        assert_eq!(Group::of_name("momentum"), Group::Family(Family::Sgd));
        assert_eq!(Group::of_name("my_rule"), Group::UserRules);
        assert_eq!(Group::of_builtin("my_rule"), None);
        assert_eq!(Group::UserRules.title(), "user rules (--rule)");
    }
}
