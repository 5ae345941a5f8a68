//! `--workflow` and `--profiles`: what a service serves.

use super::served_workflows;

#[test]
fn profiles_replace_the_named_workflow_s_and_errors_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut set = faasconf_core::catalog::ProfileSet::shipped_ml();
    set.functions.retain(|name, _| name == "resnet");
    if let Some(p) = set.functions.get_mut("resnet") {
        p.cpu_core_seconds *= 2.0;
    }
    let path = dir.path().join("p.json");
    std::fs::write(&path, serde_json::to_string(&set).unwrap()).unwrap();
    let names = ["parallel".to_owned(), "sequential".to_owned()];
    let plain = served_workflows(&names, &[]).unwrap();
    let flag = format!("sequential={}", path.display());
    let served = served_workflows(&names, &[flag]).unwrap();
    assert_eq!(served[0], plain[0], "parallel untouched");
    assert_ne!(served[1].fingerprint(), plain[1].fingerprint());
    let resnet = |w: &faasconf_core::Workflow| {
        w.functions[w.function_index("resnet").unwrap()]
            .profile
            .cpu_core_seconds
    };
    assert!((resnet(&served[1]) - 2.0 * resnet(&plain[1])).abs() < 1e-12);
    let bare = path.display().to_string();
    for (flags, names, needle) in [
        (vec![bare.clone()], &names[..], "several workflows"),
        (
            vec![format!("ghost={bare}")],
            &names[..],
            "no served workflow",
        ),
        (
            vec!["parallel=/nonexistent.json".to_owned()],
            &names[..1],
            "--profiles parallel=",
        ),
    ] {
        let e = format!("{:#}", served_workflows(names, &flags).unwrap_err());
        assert!(e.contains(needle), "{e}");
    }
    // A bare file with one workflow served; a function it does not have is refused.
    assert!(served_workflows(&names[..1], &[bare]).is_ok());
    set.functions
        .insert("ghost".into(), set.functions["resnet"]);
    std::fs::write(&path, serde_json::to_string(&set).unwrap()).unwrap();
    let e = format!(
        "{:#}",
        served_workflows(&names[..1], &[path.display().to_string()]).unwrap_err()
    );
    assert!(e.contains("\"ghost\" is not in workflow"), "{e}");
}
