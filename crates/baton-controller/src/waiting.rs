//! Which running containers baton is holding before their command: the kubelet says such a container
//! runs (baton waits inside it), but its `baton run --after STEP` names a step that has not ended. The
//! pod's spec and the other containers' states tell what the kubelet cannot, so that a live table
//! does not show every step of a pod as running at once.

use std::collections::HashMap;

use baton_contract::layout::ENV_STEP;
use k8s_openapi::api::core::v1::{Container, Pod};

use crate::status::{State, StepStatus};

/// A `baton run` command line's step name and the steps it runs after.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Order {
    pub name: Option<String>,
    /// Step names, without `:done`.
    pub after: Vec<String>,
}

/// The order of a container whose command is `…/baton run [OPTIONS] -- …`; `None` for any other.
pub fn order(container: &Container) -> Option<Order> {
    let words: Vec<&str> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(String::as_str)
        .collect();
    let run = words.iter().position(|w| *w == "run")?;
    let binary = words.get(run.checked_sub(1)?)?;
    if binary.rsplit('/').next() != Some("baton") {
        return None;
    }
    let mut order = Order::default();
    let mut options = words[run + 1..].iter().take_while(|w| **w != "--");
    while let Some(word) = options.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_string())),
            None => (*word, None),
        };
        let mut value = || inline.clone().or_else(|| options.next().map(|v| v.to_string()));
        match flag {
            "--after" => {
                if let Some(step) = value() {
                    order.after.push(step.strip_suffix(":done").unwrap_or(&step).to_string());
                }
            }
            "--name" => order.name = value(),
            _ => {}
        }
    }
    if order.name.is_none() {
        order.name =
            container.env.iter().flatten().find(|e| e.name == ENV_STEP).and_then(|e| e.value.clone());
    }
    Some(order)
}

/// Sets `waiting_for` on each running step whose `--after` steps (in this pod) have not all ended.
pub fn mark(pod: &Pod, steps: &mut [StepStatus]) {
    let Some(spec) = pod.spec.as_ref() else { return };
    let containers = spec.init_containers.iter().flatten().chain(&spec.containers);
    let orders: Vec<(&str, Order)> = containers.filter_map(|c| Some((c.name.as_str(), order(c)?))).collect();
    // A step name, as `--after` gives it, to the state of the container that runs that step.
    let states: HashMap<&str, State> = orders
        .iter()
        .filter_map(|(container, order)| {
            let state = steps.iter().find(|s| s.name == *container)?.state;
            Some((order.name.as_deref().unwrap_or(container), state))
        })
        .collect();
    for step in steps.iter_mut().filter(|s| s.state == State::Running) {
        let Some((_, order)) = orders.iter().find(|(container, _)| *container == step.name) else { continue };
        step.waiting_for = order
            .after
            .iter()
            .filter(|after| states.get(after.as_str()).is_some_and(|state| *state != State::Terminated))
            .cloned()
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(command: &[&str], env: Option<&str>) -> Container {
        let env = env.map(|name| json!([{"name": ENV_STEP, "value": name}])).unwrap_or(json!([]));
        serde_json::from_value(json!({"name": "c", "command": command, "env": env})).unwrap()
    }

    #[test]
    fn reads_the_order_of_a_baton_run_command_line() {
        let c = container(
            &[
                "/var/run/baton/bin/baton",
                "run",
                "--name",
                "test",
                "--after=build",
                "--after",
                "lint:done",
                "--timeout",
                "5m",
                "--",
                "make",
                "--after",
                "x",
            ],
            None,
        );
        assert_eq!(
            order(&c),
            Some(Order { name: Some("test".into()), after: vec!["build".into(), "lint".into()] })
        );
        let named_by_env =
            container(&["/var/run/baton/bin/baton", "run", "--after", "a", "--", "true"], Some("b"));
        assert_eq!(order(&named_by_env).unwrap().name.as_deref(), Some("b"));
        assert_eq!(order(&container(&["sh", "-c", "run"], None)), None);
        assert_eq!(order(&container(&["/usr/bin/make", "run"], None)), None);
    }
}
