//! `deploy/Dockerfile`: no container engine runs here, so the file is parsed and held to what
//! the workspace builds. Each service has a target whose image copies the binary the build stage
//! made from `target/release/<binary>` (a binary of the workspace, which exists there once
//! built), runs it as a non-root user with an exec-form entrypoint, and sets only variables the
//! binary reads, on the ports it exposes.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use std::collections::{BTreeMap, BTreeSet};

/// One instruction: keyword (upper case) and its arguments, continuation lines joined.
#[derive(Debug, Clone, PartialEq)]
struct Instruction {
    keyword: String,
    arguments: String,
}

fn parse(text: &str) -> Vec<Instruction> {
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                pending.push_str(part.trim());
                pending.push(' ');
            }
            None => {
                pending.push_str(line);
                let (keyword, arguments) = pending.split_once(' ').unwrap_or((&pending, ""));
                instructions.push(Instruction {
                    keyword: keyword.to_uppercase(),
                    arguments: arguments.trim().to_owned(),
                });
                pending.clear();
            }
        }
    }
    assert!(pending.is_empty(), "the file ends inside a continued line");
    instructions
}

/// A build stage: its base image and its instructions.
#[derive(Debug)]
struct Stage {
    base: String,
    instructions: Vec<Instruction>,
}

fn stages(instructions: &[Instruction]) -> BTreeMap<String, Stage> {
    let mut stages: BTreeMap<String, Stage> = BTreeMap::new();
    let mut current = None;
    for i in instructions {
        match i.keyword.as_str() {
            "FROM" => {
                let words: Vec<&str> = i.arguments.split_whitespace().collect();
                let [base, as_, name] = words.as_slice() else {
                    panic!("every stage is named: FROM {}", i.arguments);
                };
                assert!(as_.eq_ignore_ascii_case("as"), "FROM {}", i.arguments);
                let stage = Stage {
                    base: (*base).to_owned(),
                    instructions: Vec::new(),
                };
                assert!(
                    stages.insert((*name).to_owned(), stage).is_none(),
                    "stage {name} twice"
                );
                current = Some((*name).to_owned());
            }
            "ARG" if current.is_none() => {}
            _ => {
                let name = current
                    .as_ref()
                    .unwrap_or_else(|| panic!("{} before FROM", i.keyword));
                stages.get_mut(name).unwrap().instructions.push(i.clone());
            }
        }
    }
    stages
}

fn of<'a>(stage: &'a Stage, keyword: &str) -> Vec<&'a str> {
    stage
        .instructions
        .iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.arguments.as_str())
        .collect()
}

/// `KEY=VALUE` pairs of the stage's ENV instructions.
fn environment(stage: &Stage) -> BTreeMap<String, String> {
    of(stage, "ENV")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {pair}: KEY=VALUE"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The binaries the workspace builds, from `cargo metadata`.
fn workspace_binaries() -> BTreeSet<String> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(common::repository())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn each_service_image_runs_its_workspace_binary_as_non_root() {
    let root = common::repository();
    let text = std::fs::read_to_string(root.join("deploy/Dockerfile")).unwrap();
    let stages = stages(&parse(&text));
    let build = &stages["build"];
    let build_run = of(build, "RUN").join(" ");
    let binaries = workspace_binaries();
    let ignored = std::fs::read_to_string(root.join("deploy/Dockerfile.dockerignore")).unwrap();
    assert!(
        ignored.lines().any(|l| l.trim() == "target"),
        "the context leaves target/ out"
    );
    for (target, binary, grpc_port) in [
        ("actuator", "faasconf-actuator", 50051),
        ("policy", "faasconf-policy", 50052),
    ] {
        let stage = stages
            .get(target)
            .unwrap_or_else(|| panic!("no target {target}"));
        assert!(
            binaries.contains(binary),
            "{binary} is not a binary of the workspace"
        );
        // The build stage makes it and puts it where the image copies it from.
        assert!(
            build_run.contains(&format!("--bin {binary}")),
            "the build builds {binary}"
        );
        assert!(
            build_run.contains(&format!("target/release/{binary}")) && build_run.contains("/out/"),
            "the build copies target/release/{binary} to /out/"
        );
        assert!(
            common::bin_dir().join(binary).is_file(),
            "{binary} exists where cargo builds it"
        );
        let installed = format!("/usr/local/bin/{binary}");
        assert!(
            of(stage, "COPY").contains(&format!("--from=build /out/{binary} {installed}").as_str()),
            "{target}: copies /out/{binary} to {installed}"
        );
        assert_ne!(
            stage.base, build.base,
            "{target}: a small runtime base, not the build image"
        );
        let entrypoint: Vec<String> = serde_json::from_str(of(stage, "ENTRYPOINT")[0])
            .unwrap_or_else(|e| panic!("{target}: ENTRYPOINT in exec form: {e}"));
        assert_eq!(entrypoint, vec![installed.clone()], "{target}");
        let user = of(stage, "USER");
        assert_eq!(user.len(), 1, "{target}: one USER");
        let uid = user[0].split(':').next().unwrap();
        assert!(
            uid.parse::<u32>().is_ok_and(|u| u != 0),
            "{target}: numeric non-root USER, not {uid}"
        );
        // Only variables the binary reads; the ports it listens on are the ones exposed.
        let env = environment(stage);
        let known = common::environment_of(binary);
        for name in env.keys() {
            assert!(known.contains(name), "{target}: {binary} reads no {name}");
        }
        let port = |key: &str| env[key].rsplit(':').next().unwrap().to_owned();
        let exposed: BTreeSet<String> = of(stage, "EXPOSE")
            .iter()
            .flat_map(|a| a.split_whitespace().map(str::to_owned))
            .collect();
        let listened = BTreeSet::from([port("FAASCONF_GRPC_ADDR"), port("FAASCONF_METRICS_ADDR")]);
        assert_eq!(exposed, listened, "{target}");
        assert_eq!(
            port("FAASCONF_GRPC_ADDR"),
            grpc_port.to_string(),
            "{target}"
        );
    }
    // The policy writes only under its volume.
    let policy = &stages["policy"];
    let env = environment(policy);
    assert!(
        of(policy, "VOLUME")
            .iter()
            .any(|v| v.contains("/var/lib/faasconf"))
    );
    for key in ["FAASCONF_STORE", "FAASCONF_MODELS"] {
        assert!(
            env[key].starts_with("/var/lib/faasconf/"),
            "{key} on the volume"
        );
    }
}

#[test]
fn continued_lines_and_comments_are_parsed() {
    let parsed = parse("# c\nFROM a AS b\nRUN x \\\n    && y\n\nENV A=1 \\\n    B=2\n");
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[1].arguments, "x && y");
    let stages = stages(&parsed);
    assert_eq!(environment(&stages["b"]).len(), 2);
}
