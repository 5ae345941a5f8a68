//! Where `faasconf recommend` puts a recommendation for a CI job: merged into an OpenFaaS
//! `stack.yml` in place, or one Deployment patch file per function for `kubectl patch`.
//!
//! The stack file is rewritten whole or not at all (written beside it, then renamed), and only
//! the knobs faasconf decides change (`faasconf_openfaas::stack_fields`): `limits` (cpu,
//! memory), `environment.max_inflight`, the `com.openfaas.scale.min`/`max` labels, and
//! `requests` — where the operator's request is at or below the new limit it stays, unless
//! [`Requests::EqualLimits`] (`--requests-equal-limits`). The edit is format-preserving
//! (`yaml-edit`, a lossless YAML syntax tree): comments, key order, quoting and layout of
//! everything else stay byte for byte. The edited text is read back and must equal the file's
//! data with exactly these changes; where it does not (an alias the knobs live behind, a
//! construct the lossless editor gets wrong) the file is written reformatted instead, with
//! those same changes and a warning.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use faasconf_core::FunctionConfig;
use serde_yaml_ng::{Mapping, Value};

/// What becomes of an operator's `requests` in the stack file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requests {
    /// A request at or below the new limit stays (the operator sized it); a missing one, one
    /// above the new limit or one that does not parse becomes the limit.
    KeepLower,
    /// Every request becomes its limit.
    EqualLimits,
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The functions configured, in the recommendation's order.
    pub changed: Vec<String>,
    /// Requests kept below their new limit, e.g. `resnet requests.cpu 100m (limit 1500m)`.
    pub kept_requests: Vec<String>,
    /// The file had to be written reformatted (comments and layout not kept).
    pub reformatted: bool,
}

/// One value set at `functions.<function>.<section>.<key>`.
#[derive(Debug, Clone, PartialEq)]
struct Edit {
    function: String,
    section: String,
    key: String,
    value: String,
}

/// Merges `recommended` (function, configuration) into the stack file at `stack`. Every
/// recommended function must be in the stack; if one is missing nothing is written.
pub fn merge_into_stack(
    stack: &Path,
    recommended: &[(String, FunctionConfig)],
    requests: Requests,
) -> Result<Merged> {
    let at = || format!("--stack {}", stack.display());
    let text = std::fs::read_to_string(stack).with_context(at)?;
    let original: Value = serde_yaml_ng::from_str(&text).with_context(at)?;
    let functions = original
        .get("functions")
        .and_then(Value::as_mapping)
        .with_context(|| format!("{}: no `functions:` mapping", at()))?;
    let missing: Vec<&String> = recommended
        .iter()
        .map(|(name, _)| name)
        .filter(|name| !functions.contains_key(name.as_str()))
        .collect();
    if !missing.is_empty() {
        let present: Vec<&str> = functions.keys().filter_map(Value::as_str).collect();
        bail!(
            "{}: functions {missing:?} of the recommendation are not in it (it has {present:?}); nothing was written",
            at()
        );
    }
    let mut edits = Vec::new();
    let mut kept_requests = Vec::new();
    for (name, config) in recommended {
        let entry = functions
            .get(name.as_str())
            .and_then(Value::as_mapping)
            .with_context(|| format!("{}: functions.{name} is not a mapping", at()))?;
        let (mut more, kept) = edits_of(name, entry, config, requests)
            .map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
        edits.append(&mut more);
        kept_requests.extend(kept);
    }
    let mut expected = original;
    apply_to_data(&mut expected, &edits);
    let (out, reformatted) = match lossless_edit(&text, &edits) {
        Some(out) if serde_yaml_ng::from_str::<Value>(&out).ok().as_ref() == Some(&expected) => {
            (out, false)
        }
        _ => (serde_yaml_ng::to_string(&expected)?, true),
    };
    write_atomically(stack, &out).with_context(at)?;
    Ok(Merged {
        changed: recommended.iter().map(|(name, _)| name.clone()).collect(),
        kept_requests,
        reformatted,
    })
}

/// The edits that configure function `name` (its stack entry `entry`), and the requests kept.
fn edits_of(
    name: &str,
    entry: &Mapping,
    config: &FunctionConfig,
    requests: Requests,
) -> Result<(Vec<Edit>, Vec<String>), String> {
    let fields = faasconf_openfaas::stack_fields(config);
    let mut edits = Vec::new();
    let mut kept = Vec::new();
    for (section, values) in fields.as_object().into_iter().flatten() {
        let existing = match entry.get(section.as_str()) {
            None => None,
            Some(Value::Mapping(m)) => Some(m),
            Some(_) => return Err(format!("functions.{name}.{section}: is not a mapping")),
        };
        for (key, value) in values.as_object().into_iter().flatten() {
            let value = value.as_str().unwrap_or_default().to_owned();
            if section == "requests" && requests == Requests::KeepLower {
                let operator = existing.and_then(|m| m.get(key.as_str()));
                if let Some(request) = operator.and_then(|q| kept_request(key, q, &value)) {
                    kept.push(format!("{name} requests.{key} {request} (limit {value})"));
                    continue;
                }
            }
            edits.push(Edit {
                function: name.to_owned(),
                section: section.clone(),
                key: key.clone(),
                value,
            });
        }
    }
    Ok((edits, kept))
}

/// The operator's request `request` of resource `key` when it is at or below `limit`.
fn kept_request(key: &str, request: &Value, limit: &str) -> Option<String> {
    let request = match request {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let parse = match key {
        "cpu" => faasconf_openfaas::parse_cpu_millis,
        "memory" => faasconf_openfaas::parse_memory_mib,
        _ => return None,
    };
    (parse(&request)? <= parse(limit)?).then_some(request)
}

/// `edits` applied to the stack's data: what the edited file must read back as.
fn apply_to_data(document: &mut Value, edits: &[Edit]) {
    for edit in edits {
        let entry = &mut document["functions"][edit.function.as_str()];
        if let Value::Mapping(entry) = entry {
            let section = entry
                .entry(Value::String(edit.section.clone()))
                .or_insert_with(|| Value::Mapping(Mapping::new()));
            if let Value::Mapping(section) = section {
                section.insert(
                    Value::String(edit.key.clone()),
                    Value::String(edit.value.clone()),
                );
            }
        }
    }
}

/// `edits` applied to the text itself, everything else kept; `None` where the text's structure
/// is not what the edits need (an alias in the way).
fn lossless_edit(text: &str, edits: &[Edit]) -> Option<String> {
    let document = yaml_edit::Document::from_str(text).ok()?;
    let functions = document.as_mapping()?.get_mapping("functions")?;
    for edit in edits {
        let entry = functions.get_mapping(edit.function.as_str())?;
        if !entry.contains_key(edit.section.as_str()) {
            entry.set(edit.section.as_str(), yaml_edit::Mapping::new());
        }
        let section = entry.get_mapping(edit.section.as_str())?;
        section.set(edit.key.as_str(), edit.value.as_str());
    }
    Some(document.to_string())
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

    fn recommended() -> Vec<(String, FunctionConfig)> {
        vec![(
            "resnet".to_owned(),
            FunctionConfig {
                cpu_millis: 1500,
                memory_mib: 2048,
                replicas: 3,
                concurrency: 6,
            },
        )]
    }

    fn merge(stack: &Path) -> Result<Merged> {
        merge_into_stack(stack, &recommended(), Requests::KeepLower)
    }

    fn read(stack: &Path) -> Value {
        serde_yaml_ng::from_str(&std::fs::read_to_string(stack).unwrap()).unwrap()
    }

    #[test]
    fn the_knobs_change_and_everything_else_stays() {
        let dir = tempfile::tempdir().unwrap();
        let stack = dir.path().join("stack.yml");
        std::fs::write(&stack, STACK).unwrap();
        let merged = merge(&stack).unwrap();
        assert_eq!(merged.changed, vec!["resnet"]);
        assert!(!merged.reformatted);
        let merged = read(&stack);
        let resnet = &merged["functions"]["resnet"];
        assert_eq!(resnet["image"], "ghcr.io/x/resnet:1");
        assert_eq!(resnet["environment"]["write_timeout"], "60s");
        assert_eq!(resnet["environment"]["max_inflight"], "6");
        assert_eq!(resnet["labels"]["team"], "ml");
        assert_eq!(resnet["labels"]["com.openfaas.scale.max"], "3");
        assert_eq!(resnet["limits"]["cpu"], "1500m");
        assert_eq!(resnet["requests"]["memory"], "2048Mi");
        assert_eq!(merged["functions"]["other"]["image"], "ghcr.io/x/other:1");
        assert_eq!(merged["provider"]["name"], "openfaas");
    }

    /// An operator's stack as people write them: comments, blank lines, quoting, a flow
    /// mapping, requests below the limits.
    const COMMENTED: &str = "version: 1.0   # faas-cli 0.16\nprovider:\n  name: openfaas\n  gateway: \"http://127.0.0.1:8080\"\n\n# The ML pipeline.\nfunctions:\n  resnet:\n    lang: python3-http   # our template\n    image: ghcr.io/x/resnet:1\n    environment:\n      write_timeout: 60s\n      max_inflight: 2   # tuned by faasconf\n    limits:\n      cpu: \"1000m\"\n      memory: 1Gi\n    requests:\n      cpu: 100m       # burstable on purpose\n      memory: 4Gi\n\n  other: {image: 'ghcr.io/x/other:1', limits: {cpu: 200m}}\n";

    #[test]
    fn comments_layout_and_lower_requests_stay() {
        let dir = tempfile::tempdir().unwrap();
        let stack = dir.path().join("stack.yml");
        std::fs::write(&stack, COMMENTED).unwrap();
        let other = FunctionConfig {
            cpu_millis: 300,
            memory_mib: 256,
            replicas: 2,
            concurrency: 4,
        };
        let mut both = recommended();
        both.push(("other".to_owned(), other));
        let merged = merge_into_stack(&stack, &both, Requests::KeepLower).unwrap();
        assert!(!merged.reformatted);
        assert_eq!(
            merged.kept_requests,
            vec!["resnet requests.cpu 100m (limit 1500m)"]
        );
        let text = std::fs::read_to_string(&stack).unwrap();
        // Every line of the original that holds no value we set is still there, as it was.
        for line in [
            "version: 1.0   # faas-cli 0.16",
            "  gateway: \"http://127.0.0.1:8080\"",
            "# The ML pipeline.",
            "    lang: python3-http   # our template",
            "      cpu: 100m       # burstable on purpose",
            "      write_timeout: 60s",
        ] {
            assert!(text.contains(line), "{line:?} lost:\n{text}");
        }
        assert!(text.contains("# tuned by faasconf"), "{text}");
        let data = read(&stack);
        let resnet = &data["functions"]["resnet"];
        assert_eq!(resnet["requests"]["cpu"], "100m", "the lower request stays");
        // 4Gi is above the new 2048Mi limit: a request may not exceed its limit.
        assert_eq!(resnet["requests"]["memory"], "2048Mi");
        assert_eq!(resnet["limits"]["memory"], "2048Mi");
        assert_eq!(resnet["environment"]["max_inflight"], "6");
        let other = &data["functions"]["other"];
        assert_eq!(other["image"], "ghcr.io/x/other:1");
        assert_eq!(other["limits"]["cpu"], "300m");
        assert_eq!(
            other["requests"]["cpu"], "300m",
            "absent requests become the limits"
        );
        assert_eq!(other["labels"]["com.openfaas.scale.min"], "2");

        // Asked to, every request becomes its limit.
        std::fs::write(&stack, COMMENTED).unwrap();
        let merged = merge_into_stack(&stack, &recommended(), Requests::EqualLimits).unwrap();
        assert!(merged.kept_requests.is_empty());
        assert_eq!(
            read(&stack)["functions"]["resnet"]["requests"]["cpu"],
            "1500m"
        );
    }

    #[test]
    fn knobs_behind_an_alias_are_written_reformatted_with_the_same_changes() {
        let dir = tempfile::tempdir().unwrap();
        let stack = dir.path().join("stack.yml");
        let aliased = "common: &common\n  cpu: 100m\nfunctions:\n  resnet:\n    image: x\n    limits: *common\n";
        std::fs::write(&stack, aliased).unwrap();
        let merged = merge(&stack).unwrap();
        let data = read(&stack);
        assert_eq!(data["functions"]["resnet"]["limits"]["cpu"], "1500m");
        assert_eq!(
            data["common"]["cpu"], "100m",
            "the anchor's other user is untouched"
        );
        assert_eq!(data["functions"]["resnet"]["image"], "x");
        // Either the lossless edit got it right, or the file was rewritten: never half.
        if !merged.reformatted {
            assert!(std::fs::read_to_string(&stack).unwrap().contains("&common"));
        }
    }

    #[test]
    fn a_function_missing_from_the_stack_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let stack = dir.path().join("stack.yml");
        let without = STACK.replace("  resnet:", "  renamed:");
        std::fs::write(&stack, &without).unwrap();
        let error = merge(&stack).unwrap_err().to_string();
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
                Just(" # c".to_owned()),
                Just(" none".to_owned()),
                ".{0,4}",
            ];
            prop_oneof![
                edited(STACK.to_owned(), insert.clone(), 4),
                edited(COMMENTED.to_owned(), insert, 4),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: cases(64), failure_persistence: None, ..ProptestConfig::default() })]

            /// Edited or arbitrary stack files: the merge writes a stack that reads back as the
            /// original's data with the recommendation in it and nothing else changed, or fails
            /// leaving the file byte for byte as it was.
            #[test]
            fn fuzz_stack_merges_are_whole_or_nothing(text in stack()) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("stack.yml");
                std::fs::write(&path, &text).unwrap();
                match merge(&path) {
                    Ok(merged) => {
                        prop_assert_eq!(merged.changed, vec!["resnet".to_owned()]);
                        let before: Value = serde_yaml_ng::from_str(&text).unwrap();
                        let after = read(&path);
                        let resnet = &after["functions"]["resnet"];
                        prop_assert_eq!(&resnet["limits"]["cpu"], "1500m");
                        prop_assert_eq!(&resnet["environment"]["max_inflight"], "6");
                        // Outside the function's knobs, nothing moved.
                        let mut unchanged = after.clone();
                        let mut was = before.clone();
                        for v in [&mut unchanged, &mut was] {
                            if let Some(f) = v["functions"].as_mapping_mut() {
                                f.remove("resnet");
                            }
                        }
                        prop_assert_eq!(unchanged, was);
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
        let error = format!("{:#}", merge(&stack).unwrap_err());
        assert!(error.contains("functions.resnet.labels"), "{error}");
    }
}
