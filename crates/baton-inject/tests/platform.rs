//! The images of a pod are asked for with the pod's platform: a multi-platform image's ENTRYPOINT is
//! that of the variant its nodes pull.

use std::cell::RefCell;

use baton_inject::{plan_template, ImageConfig, ImageConfigs, ImageRef, Options};
use serde_json::json;

/// Records the architecture each image is asked for.
#[derive(Default)]
struct Recording(RefCell<Vec<(String, String)>>);

impl ImageConfigs for Recording {
    fn config(&self, image: &ImageRef<'_>) -> Result<Option<ImageConfig>, String> {
        self.0.borrow_mut().push((image.image.to_string(), image.arch.to_string()));
        Ok(Some(ImageConfig { entrypoint: vec!["/app".into()], cmd: vec![] }))
    }
}

#[test]
fn images_are_asked_for_with_the_pods_arch() {
    let pod = |node_selector| {
        json!({"spec": {"restartPolicy": "Never", "nodeSelector": node_selector,
                        "containers": [{"name": "a", "image": "app:1"}]}})
    };
    let asked = Recording::default();
    plan_template(&pod(json!({"kubernetes.io/arch": "arm64"})), None, &Options::default(), &asked).unwrap();
    plan_template(&pod(json!(null)), None, &Options::default(), &asked).unwrap();
    assert_eq!(
        asked.0.into_inner(),
        [("app:1".to_string(), "arm64".to_string()), ("app:1".to_string(), "amd64".to_string())]
    );
}
