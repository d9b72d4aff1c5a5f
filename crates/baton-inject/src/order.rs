//! The order of the steps, from the pod's annotations, checked before any pod exists: a typo must
//! never become a step that waits forever.
//!
//! - default: each container runs `--after` the one listed before it;
//! - `baton.dev/order: parallel`: no order but what `baton.dev/after.<container>` says;
//! - `baton.dev/after.<container>: "a,b:done"`: that container's `--after` list (replaces the default);
//! - `baton.dev/sidecars: "proxy,db"`: those start at once, are left out of the default chain, and stop
//!   (`--until`) when every other container has ended. A name not (yet) in the pod is accepted: a
//!   mesh's injector may add that container after baton's webhook has seen the pod;
//! - the proxies of the meshes ([`MESH_PROXIES`]) are sidecars without being named: as a step they
//!   would never end, and the Job would hang.

use std::collections::BTreeMap;

use crate::error::Refusal;

pub const ORDER: &str = "baton.dev/order";
pub const AFTER_PREFIX: &str = "baton.dev/after.";
pub const SIDECARS: &str = "baton.dev/sidecars";
/// The containers that meshes and agents add beside the pod's own (Istio's, Linkerd's and Vault's
/// injectors), which serve the steps and never end by themselves: sidecars by default.
pub const MESH_PROXIES: [&str; 3] = ["istio-proxy", "linkerd-proxy", "vault-agent"];

/// What one container waits for and, for a sidecar, what it outlives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepOrder {
    /// `--after` values: `build` (must have succeeded) or `build:done` (ended in any way).
    pub after: Vec<String>,
    /// `--until` values: empty unless the container is a sidecar.
    pub until: Vec<String>,
}

/// The order of every container of `names` (in spec order), from the pod's annotations.
pub fn plan(names: &[String], annotations: &BTreeMap<String, String>) -> Result<Vec<StepOrder>, Refusal> {
    let unknown = |annotation: &str, name: &str| Refusal::UnknownContainer {
        annotation: annotation.to_string(),
        name: name.to_string(),
        known: names.to_vec(),
    };
    let parallel = match annotations.get(ORDER).map(String::as_str) {
        None | Some("sequential") => false,
        Some("parallel") => true,
        Some(other) => {
            return Err(Refusal::BadAnnotation {
                annotation: ORDER.to_string(),
                value: other.to_string(),
                expected: "use parallel, or sequential (the default)".to_string(),
            })
        }
    };
    // Names of containers that are not in the pod (yet) are kept: they may arrive later.
    let named = annotations.get(SIDECARS).map(|list| items(list).collect::<Vec<_>>()).unwrap_or_default();
    let sidecars: Vec<&str> =
        names.iter().map(String::as_str).filter(|n| named.contains(n) || MESH_PROXIES.contains(n)).collect();
    // An after-annotation for a container that does not exist is a typo too.
    for key in annotations.keys() {
        if let Some(name) = key.strip_prefix(AFTER_PREFIX) {
            if !names.iter().any(|n| n == name) {
                return Err(unknown(key, name));
            }
        }
    }

    let is_sidecar = |name: &str| sidecars.contains(&name);
    let mut previous: Option<&str> = None;
    let mut orders = Vec::with_capacity(names.len());
    for name in names {
        let key = format!("{AFTER_PREFIX}{name}");
        let mut order = StepOrder::default();
        match annotations.get(&key) {
            Some(list) => {
                for item in items(list) {
                    let (target, done) = match item.split_once(':') {
                        None => (item, false),
                        Some((target, "done")) => (target, true),
                        Some(_) => {
                            return Err(Refusal::BadAnnotation {
                                annotation: key,
                                value: list.clone(),
                                expected: format!("write each entry as NAME or NAME:done, not {item:?}"),
                            })
                        }
                    };
                    if target == name {
                        return Err(Refusal::SelfReference { annotation: key, container: name.clone() });
                    }
                    if !names.iter().any(|n| n == target) {
                        return Err(unknown(&key, target));
                    }
                    let value = if done { format!("{target}:done") } else { target.to_string() };
                    if !order.after.contains(&value) {
                        order.after.push(value);
                    }
                }
            }
            None if !parallel && !is_sidecar(name) => order.after.extend(previous.map(str::to_string)),
            None => {}
        }
        if is_sidecar(name) {
            order.until = names.iter().filter(|n| !is_sidecar(n)).cloned().collect();
        } else {
            previous = Some(name);
        }
        orders.push(order);
    }
    check_cycles(names, &orders)?;
    Ok(orders)
}

/// The entries of a comma-separated list, trimmed, empty ones dropped.
fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Every `--after` and `--until` says "that one ends before this one ends"; a cycle in that
/// relation is a pod that never completes.
fn check_cycles(names: &[String], orders: &[StepOrder]) -> Result<(), Refusal> {
    let index = |name: &str| names.iter().position(|n| n == name);
    // before[i]: the containers that must end before container i can end.
    let before: Vec<Vec<usize>> = orders
        .iter()
        .map(|o| {
            o.after
                .iter()
                .map(|a| a.strip_suffix(":done").unwrap_or(a))
                .chain(o.until.iter().map(String::as_str))
                .filter_map(index)
                .collect()
        })
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; names.len()];
    for start in 0..names.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Depth-first, with an explicit stack of (node, next edge) so deep chains cannot overflow.
        let mut stack = vec![(start, 0usize)];
        marks[start] = Mark::Open;
        while let Some(&mut (node, ref mut edge)) = stack.last_mut() {
            if let Some(&next) = before[node].get(*edge) {
                *edge += 1;
                match marks[next] {
                    Mark::New => {
                        marks[next] = Mark::Open;
                        stack.push((next, 0));
                    }
                    Mark::Open => {
                        let from = stack.iter().position(|&(n, _)| n == next).unwrap_or(0);
                        // The stack runs from waiter to awaited; print in running order.
                        let mut cycle: Vec<usize> = stack[from..].iter().map(|&(n, _)| n).collect();
                        cycle.reverse();
                        // Start at the container listed first in the pod.
                        let first = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
                        cycle.rotate_left(first);
                        cycle.push(cycle[0]);
                        let cycle = cycle.into_iter().map(|n| names[n].clone()).collect();
                        return Err(Refusal::Cycle { cycle });
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn afters(orders: &[StepOrder]) -> Vec<Vec<&str>> {
        orders.iter().map(|o| o.after.iter().map(String::as_str).collect()).collect()
    }

    #[test]
    fn default_is_one_after_the_other() {
        let o = plan(&names(&["a", "b", "c"]), &annotations(&[])).unwrap();
        assert_eq!(afters(&o), [vec![], vec!["a"], vec!["b"]]);
        assert!(o.iter().all(|o| o.until.is_empty()));
    }

    #[test]
    fn parallel_with_after_annotations_is_a_dag() {
        let a = annotations(&[
            (ORDER, "parallel"),
            ("baton.dev/after.unit", "prepare"),
            ("baton.dev/after.lint", " prepare "),
            ("baton.dev/after.report", "unit,lint:done"),
        ]);
        let o = plan(&names(&["prepare", "unit", "lint", "report"]), &a).unwrap();
        assert_eq!(afters(&o), [vec![], vec!["prepare"], vec!["prepare"], vec!["unit", "lint:done"]]);
    }

    #[test]
    fn an_after_annotation_replaces_the_default_and_may_be_empty() {
        let a = annotations(&[("baton.dev/after.c", "a"), ("baton.dev/after.b", "")]);
        let o = plan(&names(&["a", "b", "c", "d"]), &a).unwrap();
        assert_eq!(afters(&o), [vec![], vec![], vec!["a"], vec!["c"]]);
    }

    #[test]
    fn sidecars_start_at_once_and_outlive_the_rest() {
        let a = annotations(&[(SIDECARS, "proxy, db")]);
        let o = plan(&names(&["proxy", "migrate", "db", "test"]), &a).unwrap();
        assert_eq!(afters(&o), [vec![], vec![], vec![], vec!["migrate"]]);
        assert_eq!(o[0].until, ["migrate", "test"]);
        assert_eq!(o[2].until, ["migrate", "test"]);
        assert!(o[1].until.is_empty() && o[3].until.is_empty());
    }

    #[test]
    fn mesh_proxies_are_sidecars_without_being_named() {
        let n = names(&["build", "test", "istio-proxy"]);
        let o = plan(&n, &annotations(&[])).unwrap();
        assert_eq!(afters(&o), [vec![], vec!["build"], vec![]]);
        assert_eq!(o[2].until, ["build", "test"]);
        for proxy in MESH_PROXIES {
            let o = plan(&names(&[proxy, "a", "b"]), &annotations(&[])).unwrap();
            assert_eq!((afters(&o), &o[0].until), (vec![vec![], vec![], vec!["a"]], &names(&["a", "b"])));
        }
    }

    #[test]
    fn sidecars_may_name_containers_that_arrive_later() {
        // Before the mesh's injector: the name is kept for later, the steps run as usual.
        let a = annotations(&[(SIDECARS, "envoy, db")]);
        let o = plan(&names(&["build", "test"]), &a).unwrap();
        assert_eq!(afters(&o), [vec![], vec!["build"]]);
        assert!(o.iter().all(|o| o.until.is_empty()));
        // After it: the container is a sidecar.
        let o = plan(&names(&["build", "test", "envoy"]), &a).unwrap();
        assert_eq!(o[2], StepOrder { after: vec![], until: names(&["build", "test"]) });
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let n = names(&["build", "test"]);
        let err = plan(&n, &annotations(&[("baton.dev/after.test", "biuld")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "annotation baton.dev/after.test names container \"biuld\", which is not in the pod: use one of build, test"
        );
        let err = plan(&n, &annotations(&[("baton.dev/after.tset", "build")])).unwrap_err();
        assert!(matches!(&err, Refusal::UnknownContainer { name, .. } if name == "tset"), "{err}");
        let err = plan(&n, &annotations(&[("baton.dev/after.build", "build:done")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "annotation baton.dev/after.build makes container build wait for itself: remove build from it"
        );
        let err = plan(&n, &annotations(&[(ORDER, "random")])).unwrap_err();
        assert!(err.to_string().contains("use parallel, or sequential"), "{err}");
        let err = plan(&n, &annotations(&[("baton.dev/after.test", "build:ok")])).unwrap_err();
        assert!(err.to_string().contains("NAME or NAME:done"), "{err}");
    }

    #[test]
    fn cycles_are_refused_with_their_path() {
        let n = names(&["a", "b", "c"]);
        let a = annotations(&[("baton.dev/after.a", "c")]);
        let err = plan(&n, &a).unwrap_err();
        assert_eq!(err, Refusal::Cycle { cycle: names(&["a", "b", "c", "a"]) });
        assert!(err.to_string().contains("a → b → c → a"), "{err}");
        // A step that waits for a sidecar's end waits for itself: the sidecar ends after it.
        let a = annotations(&[(SIDECARS, "db"), ("baton.dev/after.test", "db:done")]);
        let err = plan(&names(&["db", "test"]), &a).unwrap_err();
        assert!(matches!(&err, Refusal::Cycle { cycle } if cycle.len() == 3), "{err}");
    }

    #[test]
    fn a_long_chain_does_not_overflow() {
        let n: Vec<String> = (0..20_000).map(|i| format!("s{i}")).collect();
        let o = plan(&n, &BTreeMap::new()).unwrap();
        assert_eq!(o[19_999].after, ["s19998"]);
    }
}
