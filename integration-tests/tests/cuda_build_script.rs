//! `deploy/cuda/build-offline.sh`: the stand-in it writes in place of tracel's LLVM bundle.
//! The CUDA build itself (LLVM from apt, burn-cuda) is too long for CI; here the script runs
//! with `--stand-in-only` against a fake LLVM installation, and the stand-in it writes must sit
//! where `tracel-llvm-bundler` looks, mark the bundle installed, and answer `llvm-config` as
//! the CUDA build needs: only the static archives that exist, no system libraries beyond the
//! ones the link needs, everything else from the real `llvm-config`.

#![allow(clippy::unwrap_used)] // tests may panic on what they did not expect

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::repository;

/// The bundler version the lock file pins: the bundle's folder is named after it.
fn bundler_version() -> String {
    let lock = std::fs::read_to_string(repository().join("Cargo.lock")).unwrap();
    let mut lines = lock.lines();
    lines
        .find(|l| *l == r#"name = "tracel-llvm-bundler""#)
        .expect("Cargo.lock pins tracel-llvm-bundler");
    let version = lines.next().unwrap();
    version
        .strip_prefix(r#"version = ""#)
        .and_then(|v| v.strip_suffix('"'))
        .unwrap()
        .to_owned()
}

/// An LLVM installation whose `llvm-config` names Polly (no archive here) and LLVM's tools'
/// system libraries, as Debian's does.
fn fake_llvm(root: &Path) -> PathBuf {
    let prefix = root.join("llvm");
    common::write_script(
        &prefix.join("bin/llvm-config"),
        &format!(
            "#!/bin/sh\ncase \" $* \" in\n  *\" --libs \"*) echo \"-lLLVMCore -lPolly -lLLVMSupport\" ;;\n  \
             *\" --system-libs \"*) echo \"-lrt /usr/lib/libz3.so -lxml2\" ;;\n  \
             *\" --libdir \"*) echo {lib} ;;\n  *) echo \"real: $*\" ;;\nesac\n",
            lib = prefix.join("lib").display()
        ),
    );
    std::fs::create_dir_all(prefix.join("lib")).unwrap();
    for archive in ["libLLVMCore.a", "libLLVMSupport.a"] {
        std::fs::write(prefix.join("lib").join(archive), b"").unwrap();
    }
    prefix
}

fn stand_in_only(home: &Path, prefix: &Path) -> Output {
    Command::new("bash")
        .arg(repository().join("deploy/cuda/build-offline.sh"))
        .arg("--stand-in-only")
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("FAASCONF_LLVM_PREFIX", prefix)
        .output()
        .unwrap()
}

fn llvm_config(bundle: &Path, argument: &str) -> String {
    let out = Command::new(bundle.join("bin/llvm-config"))
        .args(["--link-static", argument])
        .output()
        .unwrap();
    assert!(out.status.success(), "{argument}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn the_stand_in_sits_where_the_bundler_looks_and_answers_for_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = fake_llvm(dir.path());
    let out = stand_in_only(dir.path(), &prefix);
    assert!(out.status.success(), "{out:?}");

    let bundle = dir
        .path()
        .join("data/tracel")
        .join(format!("tracel-llvm-{}", bundler_version()));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        bundle.to_str().unwrap()
    );
    assert!(
        bundle.join(".tracel-llvm-installed").exists(),
        "the bundler's sentinel"
    );

    assert_eq!(llvm_config(&bundle, "--libs"), "-lLLVMCore -lLLVMSupport");
    assert_eq!(
        llvm_config(&bundle, "--system-libs"),
        "-lrt -ldl -lm -lz -lzstd"
    );
    assert_eq!(
        llvm_config(&bundle, "--libdir"),
        prefix.join("lib").to_str().unwrap()
    );
    assert_eq!(
        llvm_config(&bundle, "--cxxflags"),
        "real: --link-static --cxxflags"
    );
}

#[test]
fn a_prefix_without_llvm_config_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("not-llvm");
    std::fs::create_dir_all(&empty).unwrap();
    let out = stand_in_only(dir.path(), &empty);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("FAASCONF_LLVM_PREFIX"), "{stderr}");
    assert!(stderr.contains("not-llvm/bin/llvm-config"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "no stand-in written");
}
