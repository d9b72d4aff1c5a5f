//! Why a pod cannot be injected: one sentence each, naming the thing and saying what to do.

use std::fmt;

/// A refusal, with the object it concerns (`Job ci/build`) when the caller knew it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectError {
    /// `Pod ci/build`, `Job build`, … ; `None` for a bare pod template.
    pub object: Option<String>,
    pub refusal: Refusal,
}

impl fmt::Display for InjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.object {
            Some(object) => write!(f, "{object}: {}", self.refusal),
            None => write!(f, "{}", self.refusal),
        }
    }
}

impl std::error::Error for InjectError {}

impl From<Refusal> for InjectError {
    fn from(refusal: Refusal) -> Self {
        InjectError { object: None, refusal }
    }
}

/// Everything that makes the injection refuse a pod. The `Display` text is the sentence users see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{field} is {}, but baton needs restartPolicy Never (a restarted container would re-run half \
         of the steps; a Job's backoffLimit retries whole pods instead): set {field}: Never",
        policy.as_deref().map_or("not set, which means Always".to_string(), |p| format!("{p:?}"))
    )]
    RestartPolicy { field: String, policy: Option<String> },

    #[error("annotation {annotation} names container {name:?}, which is not in the pod: use one of {}", known.join(", "))]
    UnknownContainer { annotation: String, name: String, known: Vec<String> },

    #[error(
        "annotation {annotation} makes container {container} wait for itself: remove {container} from it"
    )]
    SelfReference { annotation: String, container: String },

    #[error(
        "the containers wait for each other in a cycle, {}, so none of them would ever start: \
         change the baton.dev/after.* or baton.dev/sidecars annotations to break it",
        cycle.join(" → ")
    )]
    Cycle { cycle: Vec<String> },

    #[error("annotation {annotation} is {value:?}: {expected}")]
    BadAnnotation { annotation: String, value: String, expected: String },

    #[error(
        "container {container} has no command and the ENTRYPOINT of its image {image} is unknown{}: \
         add the image to an --images file, or let baton read it from the registry (imagePullSecrets or a \
         docker config file), or set the container's command",
        reason.as_deref().map_or(String::new(), |r| format!(" ({r})"))
    )]
    UnknownEntrypoint { container: String, image: String, reason: Option<String> },

    #[error(
        "container {container} has no command and no args, and its image {image} has neither ENTRYPOINT nor \
         CMD, so there is nothing to run: set the container's command"
    )]
    NothingToRun { container: String, image: String },

    #[error(
        "the pod already has a volume named {volume:?} that is not an emptyDir, and baton needs that name for \
         its shared folder: rename the volume"
    )]
    VolumeTaken { volume: String },

    #[error(
        "container {container} already mounts volume {volume:?} at {dir}, where baton's shared folder goes: \
         move that mount, or choose another folder with --dir"
    )]
    MountTaken { container: String, volume: String, dir: String },

    #[error(
        "the pod has a container named {name:?}, the name of baton's init container: rename the container"
    )]
    NameTaken { name: String },

    #[error("{field} is {problem}: fix the manifest")]
    Malformed { field: String, problem: String },
}
