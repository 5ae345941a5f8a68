//! Where `faasconf recommend` puts a recommendation for a CI job: merged into an OpenFaaS
//! `stack.yml` in place, or one Deployment patch file per function for `kubectl patch`.
//!
//! The stack file is rewritten whole or not at all (written beside it, then renamed), and only
//! the knobs faasconf decides change: `limits` and `requests` (cpu, memory),
//! `environment.max_inflight` and the `com.openfaas.scale.min`/`max` labels. Everything else a
//! function has (image, handler, other variables and labels) stays. YAML comments are not kept.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_yaml_ng::{Mapping, Value};

/// Merges the `functions:` of `fragment` (see `policy::openfaas_fragment`) into the stack file
/// at `stack`. Every recommended function must be in the stack; if one is missing nothing is
/// written.
pub fn merge_into_stack(stack: &Path, fragment: &serde_json::Value) -> Result<Vec<String>> {
    let at = || format!("--stack {}", stack.display());
    let text = std::fs::read_to_string(stack).with_context(at)?;
    let mut document: Value = serde_yaml_ng::from_str(&text).with_context(at)?;
    let functions = document
        .get_mut("functions")
        .and_then(Value::as_mapping_mut)
        .with_context(|| format!("{}: no `functions:` mapping", at()))?;
    let recommended = fragment["functions"]
        .as_object()
        .context("the recommendation has no functions")?;
    let missing: Vec<&String> = recommended
        .keys()
        .filter(|name| !functions.contains_key(name.as_str()))
        .collect();
    if !missing.is_empty() {
        let present: Vec<&str> = functions.keys().filter_map(Value::as_str).collect();
        bail!(
            "{}: functions {missing:?} of the recommendation are not in it (it has {present:?}); nothing was written",
            at()
        );
    }
    let mut changed = Vec::new();
    for (name, settings) in recommended {
        let entry = functions
            .get_mut(name.as_str())
            .and_then(Value::as_mapping_mut)
            .with_context(|| format!("{}: functions.{name} is not a mapping", at()))?;
        let settings: Value = serde_yaml_ng::to_value(settings)?;
        merge(entry, &settings, &format!("{}: functions.{name}", at()))?;
        changed.push(name.clone());
    }
    let out = serde_yaml_ng::to_string(&document)?;
    write_atomically(stack, &out).with_context(at)?;
    Ok(changed)
}

/// Sets every leaf of `settings` in `entry`, creating mappings on the way; a non-mapping in the
/// way is an error naming its path.
fn merge(entry: &mut Mapping, settings: &Value, path: &str) -> Result<()> {
    let Some(settings) = settings.as_mapping() else {
        bail!("{path}: expected a mapping");
    };
    for (key, value) in settings {
        let key_name = key.as_str().unwrap_or_default();
        match value {
            Value::Mapping(_) => {
                let child = entry
                    .entry(key.clone())
                    .or_insert_with(|| Value::Mapping(Mapping::new()));
                let Some(child) = child.as_mapping_mut() else {
                    bail!("{path}.{key_name}: is not a mapping in the stack file");
                };
                merge(child, value, &format!("{path}.{key_name}"))?;
            }
            _ => {
                entry.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(())
}

/// Writes `text` to `path` through a temporary file beside it and a rename.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temporary, text.as_bytes())?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes each YAML document of `patches` (one Deployment each) to `<dir>/<name>.yaml`; returns
/// the files. The directory is created if missing.
pub fn write_patch_files(dir: &Path, patches: &[(String, String)]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("--out-dir {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, text) in patches {
        let file = dir.join(format!("{name}.yaml"));
        write_atomically(&file, text).with_context(|| format!("--out-dir {}", file.display()))?;
        written.push(file);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const STACK: &str = "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  resnet:\n    image: ghcr.io/x/resnet:1\n    environment:\n      write_timeout: 60s\n    labels:\n      team: ml\n  other:\n    image: ghcr.io/x/other:1\n";

    fn fragment() -> serde_json::Value {
        serde_json::json!({"functions": {"resnet": {
            "limits": {"cpu": "1500m", "memory": "2048Mi"},
            "requests": {"cpu": "1500m", "memory": "2048Mi"},
            "environment": {"max_inflight": "6"},
            "labels": {"com.openfaas.scale.min": "3", "com.openfaas.scale.max": "3"},
        }}})
    }

    #[test]
    fn the_knobs_change_and_everything_else_stays() {
        let dir = tempfile::tempdir().unwrap();
        let stack = dir.path().join("stack.yml");
        std::fs::write(&stack, STACK).unwrap();
        assert_eq!(
            merge_into_stack(&stack, &fragment()).unwrap(),
            vec!["resnet"]
        );
        let merged: Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&stack).unwrap()).unwrap();
        let resnet = &merged["functions"]["resnet"];
        assert_eq!(resnet["image"], "ghcr.io/x/resnet:1");
        assert_eq!(resnet["environment"]["write_timeout"], "60s");
        assert_eq!(resnet["environment"]["max_inflight"], "6");
        assert_eq!(resnet["labels"]["team"], "ml");
        assert_eq!(resnet["labels"]["com.openfaas.scale.max"], "3");
        assert_eq!(resnet["limits"]["cpu"], "1500m");
        assert_eq!(merged["functions"]["other"]["image"], "ghcr.io/x/other:1");
        assert_eq!(merged["provider"]["name"], "openfaas");
    }

    #[test]
    fn a_function_missing_from_the_stack_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let stack = dir.path().join("stack.yml");
        let without = STACK.replace("  resnet:", "  renamed:");
        std::fs::write(&stack, &without).unwrap();
        let error = merge_into_stack(&stack, &fragment())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("[\"resnet\"]") && error.contains("nothing was written"),
            "{error}"
        );
        assert_eq!(std::fs::read_to_string(&stack).unwrap(), without);
    }

    mod fuzz {
        use faasconf_core::testing::{cases, edited};
        use proptest::prelude::*;

        use super::*;

        fn stack() -> impl Strategy<Value = String> {
            let insert = prop_oneof![
                Just("\n".to_owned()),
                Just(": ".to_owned()),
                Just("  ".to_owned()),
                Just("- ".to_owned()),
                Just("&a ".to_owned()),
                Just("*a".to_owned()),
                Just("{".to_owned()),
                Just(" none".to_owned()),
                ".{0,4}",
            ];
            edited(STACK.to_owned(), insert, 4)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: cases(64), failure_persistence: None, ..ProptestConfig::default() })]

            /// Edited or arbitrary stack files: the merge writes a stack that reads back with
            /// the recommendation in it, or fails leaving the file byte for byte as it was.
            #[test]
            fn fuzz_stack_merges_are_whole_or_nothing(text in stack()) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("stack.yml");
                std::fs::write(&path, &text).unwrap();
                match merge_into_stack(&path, &fragment()) {
                    Ok(changed) => {
                        prop_assert_eq!(changed, vec!["resnet".to_owned()]);
                        let merged: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                        let resnet = &merged["functions"]["resnet"];
                        prop_assert_eq!(&resnet["limits"]["cpu"], "1500m");
                        prop_assert_eq!(&resnet["environment"]["max_inflight"], "6");
                    }
                    Err(e) => {
                        prop_assert!(format!("{e:#}").contains("--stack"), "{e:#}");
                        prop_assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
                        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
                        prop_assert_eq!(leftovers, 1, "no temporary file is left");
                    }
                }
            }
        }
    }

    #[test]
    fn a_scalar_where_a_mapping_belongs_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let stack = dir.path().join("stack.yml");
        std::fs::write(
            &stack,
            STACK.replace("    labels:\n      team: ml\n", "    labels: none\n"),
        )
        .unwrap();
        let error = format!("{:#}", merge_into_stack(&stack, &fragment()).unwrap_err());
        assert!(error.contains("functions.resnet.labels"), "{error}");
    }
}
