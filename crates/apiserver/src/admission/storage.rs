//! `DefaultStorageClass` (a claim without `storageClassName` gets the default class) and
//! `StorageObjectInUseProtection` (claims and volumes carry the protection finalizers the
//! pvc-protection and pv-protection controllers remove once nothing uses them).

use serde_json::{Value, json};

use crate::object;
use crate::registry::Registry;

pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
const IS_DEFAULT: &str = "storageclass.kubernetes.io/is-default-class";
const IS_DEFAULT_BETA: &str = "storageclass.beta.kubernetes.io/is-default-class";

fn is_default_class(sc: &Value) -> bool {
    let ann = |k: &str| {
        sc.pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            == Some("true")
    };
    ann(IS_DEFAULT) || ann(IS_DEFAULT_BETA)
}

/// The default StorageClass: with several, the newest (then the first by name), as upstream
/// picks since 1.26.
pub fn default_class(reg: &Registry) -> Option<String> {
    let mut defaults: Vec<Value> =
        super::cached_in_namespace(reg, "storage.k8s.io", "storageclasses", "")
            .into_iter()
            .filter(is_default_class)
            .collect();
    defaults.sort_by(|a, b| {
        let ts = |v: &Value| object::meta_str(v, "creationTimestamp").to_string();
        ts(b)
            .cmp(&ts(a))
            .then_with(|| object::name(a).cmp(object::name(b)))
    });
    defaults.first().map(|sc| object::name(sc).to_string())
}

pub fn default_storage_class(reg: &Registry, pvc: &mut Value) {
    // Only a missing field is defaulted: `""` asks for no class.
    if pvc.pointer("/spec/storageClassName").is_some() {
        return;
    }
    if let Some(class) = default_class(reg) {
        if !pvc["spec"].is_object() {
            pvc["spec"] = json!({});
        }
        pvc["spec"]["storageClassName"] = json!(class);
    }
}

pub fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let mut f = object::finalizers(obj);
    if !f.iter().any(|x| x == finalizer) {
        f.push(finalizer.to_string());
        object::set_finalizers(obj, &f);
    }
}
