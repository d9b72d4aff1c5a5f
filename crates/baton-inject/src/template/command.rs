//! A step's command: what the container runs without baton (by Kubernetes' rules), that command
//! wrapped in `baton run`, and its `--message-limit` lowered when the pod gains containers.

use std::path::Path;

use baton_contract::layout::DEFAULT_DIR;

use super::read::Container;
use crate::error::Refusal;
use crate::images::{ImageConfigs, ImageRef};
use crate::order;
use crate::Options;

/// The kubelet's default `terminationMessagePath`, which is also baton's.
const DEFAULT_TERMINATION_PATH: &str = "/dev/termination-log";

/// A container whose command is already `…/baton run …`: injected before, or written for baton by
/// hand. It is left exactly as it is.
pub fn runs_baton(command: &[String]) -> bool {
    command.len() >= 2
        && Path::new(&command[0]).file_name().is_some_and(|n| n == "baton")
        && command[1] == "run"
}

/// What the container runs without baton, by Kubernetes' rules: its command, else the image's
/// ENTRYPOINT, plus the image's CMD when it has no args either (args stay where they are).
pub(super) fn original_command(
    c: &Container<'_>,
    pull_secrets: &[String],
    namespace: Option<&str>,
    arch: &str,
    images: &dyn ImageConfigs,
) -> Result<Vec<String>, Refusal> {
    if !c.command.is_empty() {
        return Ok(c.command.clone());
    }
    let image = c.image.ok_or_else(|| Refusal::Malformed {
        field: format!("container {}", c.name),
        problem: "without command and without image".to_string(),
    })?;
    let unknown = |reason| Refusal::UnknownEntrypoint {
        container: c.name.to_string(),
        image: image.to_string(),
        reason,
    };
    let config = match images.config(&ImageRef { image, pull_secrets, namespace, arch }) {
        Ok(Some(config)) => config,
        Ok(None) => return Err(unknown(None)),
        Err(reason) => return Err(unknown(Some(reason))),
    };
    let mut run = config.entrypoint;
    if c.args.is_empty() {
        run.extend(config.cmd);
        if run.is_empty() {
            return Err(Refusal::NothingToRun { container: c.name.to_string(), image: image.to_string() });
        }
    }
    Ok(run)
}

/// `[DIR/bin/baton, run, --name=<container>, <options>…, --, <original command…>]`.
pub(super) fn wrapped(
    c: &Container<'_>,
    order: &order::StepOrder,
    original: &[String],
    options: &Options,
    limit: usize,
) -> Vec<String> {
    let mut command =
        vec![format!("{}/bin/baton", options.dir), "run".to_string(), format!("--name={}", c.name)];
    if options.dir != DEFAULT_DIR {
        command.push(format!("--dir={}", options.dir));
    }
    command.extend(order.after.iter().map(|a| format!("--after={a}")));
    command.extend(order.until.iter().map(|u| format!("--until={u}")));
    if let Some(path) = c.termination_path.filter(|p| *p != DEFAULT_TERMINATION_PATH) {
        command.push(format!("--termination-path={path}"));
    }
    command.push(format!("--message-limit={limit}"));
    command.push("--".to_string());
    command.extend(original.iter().cloned());
    command
}

/// A `baton run` command with its `--message-limit` (4096 when absent) lowered to `limit`, or `None`
/// when it is within it already. The option goes where it was, else just before `--`; a command
/// without `--` is left alone (where its options end is not known).
pub(super) fn relimited(command: &[String], limit: usize) -> Option<Vec<String>> {
    let end = command.iter().position(|a| a == "--")?;
    let options = command.get(2..end)?;
    let (at, len, value) = match options.iter().position(|a| a.starts_with("--message-limit")) {
        Some(i) => match options[i].strip_prefix("--message-limit=") {
            Some(value) => (2 + i, 1, value.parse().ok()?),
            None if options[i] == "--message-limit" => (2 + i, 2, options.get(i + 1)?.parse().ok()?),
            None => return None,
        },
        None => (end, 0, baton_contract::message::KUBELET_FILE_LIMIT),
    };
    if value <= limit {
        return None;
    }
    let mut lowered = command.to_vec();
    lowered.splice(at..at + len, [format!("--message-limit={limit}")]);
    Some(lowered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn a_limit_is_lowered_where_it_is_or_added_before_the_command() {
        let lowered = |text: &str| relimited(&words(text), 2048).map(|c| c.join(" "));
        assert_eq!(
            lowered("baton run --name=a --message-limit=4096 --after=b -- x").as_deref(),
            Some("baton run --name=a --message-limit=2048 --after=b -- x")
        );
        assert_eq!(
            lowered("baton run --message-limit 3000 -- x --message-limit=9").as_deref(),
            Some("baton run --message-limit=2048 -- x --message-limit=9")
        );
        assert_eq!(
            lowered("baton run --name=a -- x").as_deref(),
            Some("baton run --name=a --message-limit=2048 -- x")
        );
        assert_eq!(lowered("baton run --message-limit=1024 -- x"), None, "already within");
        assert_eq!(lowered("baton run --message-limit=2048 -- x"), None);
        assert_eq!(lowered("baton run x"), None, "no -- : where the options end is unknown");
    }
}
