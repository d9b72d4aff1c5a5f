//! The workflow template, as the controller hands it to the pod (JSON): only the fields the emissary
//! acts on are read; everything else is ignored. It comes from `/var/run/argo/template` (written by
//! the init container), else from `ARGO_TEMPLATE`, whose value `offloaded` means the configmap
//! mounted at `/argo/config/ARGO_TEMPLATE` (templates over 128 KiB).

use std::io;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::files::{read_capped, read_config};
use super::Env;

/// The largest template baton reads (the controller offloads above 128 KiB; a configmap holds 1 MiB).
const TEMPLATE_CAP: u64 = 4 << 20;
/// `ARGO_TEMPLATE`'s value when the template is in the configmap.
const OFFLOADED: &str = "offloaded";

/// The template as JSON: read through `serde_json::Value`, which baton already carries, rather
/// than typed structs, to keep the binary small. Fields of another type than Argo's are ignored.
#[derive(Debug)]
pub struct Template(Value);

/// The elements of the array at `value[key]`, if it is one.
fn list<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

/// `containerSet.retryStrategy`, as Argo's emissary applies it.
#[derive(Debug, PartialEq, Eq)]
pub struct Retry {
    /// Runs of the command in all. Argo makes `retries: N` a backoff of N steps: N runs in all, not
    /// N + 1 as its field's documentation says (its e2e asserts 2 runs for "2").
    pub attempts: u32,
    /// The pause between two runs (`duration`; Argo's backoff has no factor and no jitter).
    pub pause: Duration,
}

impl Template {
    pub fn parse(json: &[u8]) -> Result<Template, String> {
        match serde_json::from_slice::<Value>(json).map_err(|e| e.to_string())? {
            object @ Value::Object(_) => Ok(Template(object)),
            _ => Err("it is not a JSON object".into()),
        }
    }

    /// Reads the template: the file, else `ARGO_TEMPLATE` (or the configmap it points to).
    pub fn read(env: &Env) -> Result<Template, String> {
        let file = env.dir.join("template");
        let (json, source) = match read_capped(&file, TEMPLATE_CAP) {
            Ok(Some(json)) => (json, file.display().to_string()),
            Ok(None) => match std::env::var_os("ARGO_TEMPLATE") {
                Some(v) if v == OFFLOADED => {
                    let offloaded = env.config_dir.join("ARGO_TEMPLATE");
                    match read_config(&offloaded, TEMPLATE_CAP) {
                        Ok(Some(json)) => (json, offloaded.display().to_string()),
                        Ok(None) => return Err(unreadable(&offloaded, io::ErrorKind::NotFound.into())),
                        Err(e) => return Err(unreadable(&offloaded, e)),
                    }
                }
                Some(v) => (v.into_encoded_bytes(), "ARGO_TEMPLATE".to_string()),
                None => {
                    return Err(format!(
                        "neither {} nor the variable ARGO_TEMPLATE is there: the template comes from Argo's init \
                         container; run this container in a pod made by Argo's controller",
                        file.display()
                    ))
                }
            },
            Err(e) => return Err(unreadable(&file, e)),
        };
        Template::parse(&json).map_err(|e| format!("the template in {source} is not one Argo wrote ({e})"))
    }

    fn container_set(&self) -> Option<&Value> {
        self.0.get("containerSet").filter(|s| s.is_object())
    }

    /// The members of the container set (none without one).
    fn members(&self) -> &[Value] {
        self.container_set().map_or(&[], |set| list(set, "containers"))
    }

    /// The container-set members `name` waits for.
    pub fn dependencies(&self, name: &str) -> Vec<String> {
        let mine = self.members().iter().filter(|m| text(m, "name") == Some(name));
        mine.flat_map(|m| list(m, "dependencies").iter().filter_map(Value::as_str).map(str::to_string)).collect()
    }

    /// The containers whose outputs the pod exists for: the members of a container set, else `main`.
    pub fn main_names(&self) -> Vec<String> {
        match self.container_set() {
            Some(_) => self.members().iter().filter_map(|m| text(m, "name")).map(str::to_string).collect(),
            None => vec!["main".to_string()],
        }
    }

    pub fn is_sidecar(&self, name: &str) -> bool {
        list(&self.0, "sidecars").iter().any(|s| text(s, "name") == Some(name))
    }

    /// Whether the output is copied to `ctr/<name>/stdout` and `combined` even without
    /// ARGO_INCLUDE_SCRIPT_OUTPUT: the logs are archived.
    pub fn archives_logs(&self) -> bool {
        let archive = self.0.get("archiveLocation");
        archive.and_then(|a| a.get("archiveLogs")).and_then(Value::as_bool) == Some(true)
    }

    pub fn retry(&self) -> Result<Retry, String> {
        let once = Retry { attempts: 1, pause: Duration::ZERO };
        let Some(strategy) = self.container_set().and_then(|s| s.get("retryStrategy")) else { return Ok(once) };
        // Kubernetes' IntOrString, as Go's IntValue() reads it: a string that is no number counts as 0.
        let retries = match strategy.get("retries") {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(i64::MAX),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => return Ok(once),
        };
        let pause = match text(strategy, "duration").unwrap_or("") {
            "" => Duration::ZERO,
            text => parse_go_duration(text).map_err(|e| {
                format!(
                    "containerSet.retryStrategy.duration {text:?}: {e}; write a Go duration such as 300ms, 5s or 1m"
                )
            })?,
        };
        // Argo runs the command 0 times for retries <= 0 and reports success; baton runs it once.
        Ok(Retry { attempts: retries.clamp(1, i64::from(u32::MAX)) as u32, pause })
    }

    fn outputs(&self, kind: &str) -> &[Value] {
        self.0.get("outputs").map_or(&[], |o| list(o, kind))
    }

    /// Some artifact of the template is read or written by an artifact plugin (v4.0+): an artifact
    /// location anywhere in it (inputs, outputs, `archiveLocation`) has a `plugin` object.
    pub fn uses_plugins(&self) -> bool {
        fn walk(value: &Value) -> bool {
            match value {
                Value::Object(map) => map.iter().any(|(k, v)| (k == "plugin" && v.is_object()) || walk(v)),
                Value::Array(items) => items.iter().any(walk),
                _ => false,
            }
        }
        walk(&self.0)
    }

    /// Input artifacts with a path, which someone must put there before the command runs.
    pub fn has_input_artifacts(&self) -> bool {
        self.0
            .get("inputs")
            .is_some_and(|i| list(i, "artifacts").iter().any(|a| text(a, "path").is_some_and(|p| !p.is_empty())))
    }

    /// Output parameters read from files (`valueFrom.path`).
    pub fn parameter_paths(&self) -> impl Iterator<Item = &str> {
        let from = self.outputs("parameters").iter().filter_map(|p| p.get("valueFrom"));
        from.filter_map(|v| text(v, "path")).filter(|p| !p.is_empty())
    }

    pub fn artifact_paths(&self) -> impl Iterator<Item = &str> {
        self.outputs("artifacts").iter().filter_map(|a| text(a, "path")).filter(|p| !p.is_empty())
    }

    /// Whether `path` is on a volume the template mounts: Argo's wait container reads those itself
    /// (through `/mainctrfs`), so the emissary does not copy them.
    pub fn on_volume(&self, path: &str) -> bool {
        // Argo looks at the container's mounts, else the script's, else the container set's.
        let Some(owner) =
            ["container", "script", "containerSet"].iter().find_map(|k| self.0.get(*k).filter(|v| v.is_object()))
        else {
            return false;
        };
        list(owner, "volumeMounts").iter().filter_map(|m| text(m, "mountPath")).any(|mount| within(mount, path))
    }
}

fn unreadable(path: &Path, e: io::Error) -> String {
    format!("cannot read the template {}: {e}", path.display())
}

/// The parts of a path after lexical clean-up (`.` dropped, `..` taking one back), as Go's
/// `filepath.Clean` resolves them; and whether it is absolute.
pub fn clean(path: &str) -> (bool, Vec<&str>) {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if path.starts_with('/') => {} // `/..` is `/`
            _ => parts.push(part),
        }
    }
    (path.starts_with('/'), parts)
}

/// `target` is `base` or below it, lexically (Go's `filepath.Rel` without `..`).
pub fn within(base: &str, target: &str) -> bool {
    let (base_abs, base) = clean(base);
    let (target_abs, target) = clean(target);
    base_abs == target_abs && target.len() >= base.len() && target[..base.len()] == base[..]
}

/// Go's `time.ParseDuration` for a pause: `300ms`, `1.5s`, `1m30s`; units ns, us (µs), ms, s, m, h.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    match baton_contract::duration::parse_go(text)? {
        ns if ns < 0 => Err("it is negative; the pause between runs has to be positive".into()),
        ns => Ok(Duration::from_nanos(ns as u64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(json: &str) -> Template {
        Template::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn an_empty_template_is_one_main_container() {
        let tmpl = t("{}");
        assert_eq!(tmpl.main_names(), ["main"]);
        assert!(tmpl.dependencies("main").is_empty());
        assert_eq!(tmpl.retry().unwrap(), Retry { attempts: 1, pause: Duration::ZERO });
        assert!(!tmpl.archives_logs());
    }

    #[test]
    fn container_sets() {
        let tmpl = t(r#"{"name":"x","containerSet":{"containers":[{"name":"a","image":"i"},
            {"name":"b","dependencies":["a"],"env":[{"name":"E","value":"v"}]},{"name":"main","dependencies":["a","b"]}]},
            "sidecars":[{"name":"proxy"}],"archiveLocation":{"archiveLogs":true},"unknown":{"x":1}}"#);
        assert_eq!(tmpl.main_names(), ["a", "b", "main"]);
        assert_eq!(tmpl.dependencies("main"), ["a", "b"]);
        assert_eq!(tmpl.dependencies("a"), Vec::<String>::new());
        assert!(tmpl.is_sidecar("proxy") && !tmpl.is_sidecar("a"));
        assert!(tmpl.archives_logs());
    }

    // Argo: TestContainerSetGetRetryStrategy, and the e2e TestWorkflowTemplateWithRetryStrategyInContainerSet
    // (retries "2" runs a failing member twice).
    #[test]
    fn retries_as_argo_counts_them() {
        let retry = |s: &str| t(&format!(r#"{{"containerSet":{{"containers":[],"retryStrategy":{s}}}}}"#)).retry();
        assert_eq!(retry(r#"{"retries":100}"#).unwrap(), Retry { attempts: 100, pause: Duration::ZERO });
        assert_eq!(
            retry(r#"{"retries":"2","duration":"5s"}"#).unwrap(),
            Retry { attempts: 2, pause: Duration::from_secs(5) }
        );
        assert_eq!(retry(r#"{"retries":"x"}"#).unwrap().attempts, 1);
        assert_eq!(retry(r#"{"retries":0}"#).unwrap().attempts, 1);
        assert_eq!(retry(r#"{"duration":"1s"}"#).unwrap().attempts, 1);
        assert!(retry(r#"{"retries":1,"duration":"-1s"}"#).unwrap_err().contains("negative"));
        assert!(retry(r#"{"retries":1,"duration":"5"}"#).unwrap_err().contains("missing unit"));
    }

    #[test]
    fn outputs_and_volumes() {
        let tmpl = t(r#"{"container":{"volumeMounts":[{"name":"w","mountPath":"/work/"}]},
            "outputs":{"parameters":[{"name":"p","valueFrom":{"path":"/tmp/p"}},{"name":"q","value":"v"}],
            "artifacts":[{"name":"a","path":"/tmp/a/"},{"name":"s3only"}]}}"#);
        assert_eq!(tmpl.parameter_paths().collect::<Vec<_>>(), ["/tmp/p"]);
        assert_eq!(tmpl.artifact_paths().collect::<Vec<_>>(), ["/tmp/a/"]);
        assert!(!tmpl.uses_plugins());
        let plugin = r#"{"inputs":{"artifacts":[{"name":"a","path":"/a","plugin":{"name":"p"}}]}}"#;
        assert!(Template::parse(plugin.as_bytes()).unwrap().uses_plugins());
        assert!(!Template::parse(br#"{"metadata":{"labels":{"plugin":"x"}}}"#).unwrap().uses_plugins());
        assert!(tmpl.on_volume("/work") && tmpl.on_volume("/work/x/y") && tmpl.on_volume("/tmp/../work/z"));
        assert!(!tmpl.on_volume("/workshop") && !tmpl.on_volume("/tmp/p") && !tmpl.on_volume("work"));
    }

    #[test]
    fn lexical_paths() {
        assert_eq!(clean("/a/./b/../c/"), (true, vec!["a", "c"]));
        assert_eq!(clean("/../x"), (true, vec!["x"]));
        assert_eq!(clean("a/../../x"), (false, vec!["..", "x"]));
        assert!(within("/", "/anything"));
    }

    #[test]
    fn go_durations() {
        let ok = |s: &str| parse_go_duration(s).unwrap();
        assert_eq!(ok("300ms"), Duration::from_millis(300));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("2us"), Duration::from_micros(2));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok(".5h"), Duration::from_secs(1800));
        for bad in ["", "5", "s", "1d", "1.2.3s", "1h 2m", "9999999999h"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }
}
