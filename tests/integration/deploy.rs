//! The deployment files: these machines have no Docker engine, so this
//! checks what can be checked without one. docker-compose.yml parses, every
//! service it depends on exists, every file it and the Dockerfile reference
//! exists, the schedule is one valid cron expression, and the commands the
//! containers run are accepted by medallion's own command line.

use std::path::Path;

use clap::Parser;
use medallion::cli::Cli;
use serde_yaml_ng::Value;

use crate::support::project_root;

fn compose() -> Value {
    let text = std::fs::read_to_string(project_root().join("docker-compose.yml")).unwrap();
    let mut value: Value = serde_yaml_ng::from_str(&text).expect("docker-compose.yml parses");
    // Resolve `<<: *anchor` merge keys as docker compose does.
    value.apply_merge().unwrap();
    value
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_services_reference_what_exists() {
    let root = project_root();
    let doc = compose();
    let services = doc["services"].as_mapping().expect("services");
    for name in ["minio", "create-bucket", "pipeline", "scheduler"] {
        assert!(services.contains_key(name), "service {name} missing");
    }
    for (name, service) in services {
        if let Some(deps) = service["depends_on"].as_mapping() {
            for dep in deps.keys() {
                assert!(
                    services.contains_key(dep),
                    "{name:?} depends on unknown {dep:?}"
                );
            }
        }
        if let Some(build) = service.get("build") {
            let context = root.join(build["context"].as_str().unwrap());
            assert!(context.is_dir());
            assert!(
                context
                    .join(build["dockerfile"].as_str().unwrap_or("Dockerfile"))
                    .is_file()
            );
        }
        assert!(
            service.get("image").is_some() || service.get("build").is_some(),
            "{name:?} has neither image nor build"
        );
    }
    // Containers reach MinIO by its service name.
    let env = &services["pipeline"]["environment"];
    assert_eq!(env["AWS_ENDPOINT_URL"].as_str(), Some("http://minio:9000"));
    assert_eq!(env["AWS_ALLOW_HTTP"].as_str(), Some("true"));
}

#[test]
fn dockerfile_copies_files_that_exist() {
    let root = project_root();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let mut copies = 0;
    for line in dockerfile.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = rest.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            assert!(
                root.join(source).exists(),
                "Dockerfile copies {source}, which does not exist"
            );
            copies += 1;
        }
    }
    assert!(copies >= 6, "{copies} COPY sources");
    // The scheduler's entrypoint is the script the image installs.
    let entry = strings(&compose()["services"]["scheduler"]["entrypoint"]);
    assert_eq!(entry, ["/usr/local/bin/medallion-scheduler"]);
    assert!(
        dockerfile.contains("COPY scripts/docker-scheduler.sh /usr/local/bin/medallion-scheduler")
    );
    assert!(Path::new(&root.join("scripts/docker-scheduler.sh")).is_file());
}

#[test]
fn schedule_is_one_cron_expression_and_commands_parse() {
    let text = std::fs::read_to_string(project_root().join("docker-compose.yml")).unwrap();
    let doc = compose();
    let schedule = doc["x-schedule"].as_str().expect("x-schedule");
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "cron needs 5 fields: {schedule}");
    for f in fields {
        assert!(
            f.chars().all(|c| c.is_ascii_digit() || "*/,-".contains(c)),
            "bad cron field {f}"
        );
    }
    assert_eq!(
        text.matches(schedule).count(),
        1,
        "the schedule is written in one place"
    );
    let scheduler = &doc["services"]["scheduler"]["environment"];
    assert_eq!(scheduler["MEDALLION_SCHEDULE"].as_str(), Some(schedule));

    // The commands the containers run are valid medallion command lines.
    let pipeline = strings(&doc["services"]["pipeline"]["command"]);
    Cli::try_parse_from(std::iter::once("medallion".to_string()).chain(pipeline))
        .expect("pipeline command parses");
    let run_args = scheduler["MEDALLION_RUN_ARGS"].as_str().unwrap();
    Cli::try_parse_from(
        ["medallion", "run"]
            .into_iter()
            .chain(run_args.split_whitespace()),
    )
    .expect("scheduler's run arguments parse");

    // The cluster profile: scheduler and executors are medallion commands,
    // and the runs reach the scheduler by its service name.
    let services = doc["services"].as_mapping().unwrap();
    for name in [
        "ballista-scheduler",
        "ballista-executor-1",
        "ballista-executor-2",
    ] {
        let service = &services[name];
        assert_eq!(
            strings(&service["profiles"]),
            ["cluster"],
            "{name} is in the cluster profile"
        );
        let command = strings(&service["command"]);
        Cli::try_parse_from(std::iter::once("medallion".to_string()).chain(command))
            .unwrap_or_else(|e| panic!("{name}'s command parses: {e}"));
    }
    let env = &doc["x-medallion-env"];
    assert_eq!(
        env["MEDALLION_SCHEDULER"].as_str(),
        Some("df://ballista-scheduler:50050")
    );
    assert!(
        env["MEDALLION_ENGINE"]
            .as_str()
            .is_some_and(|e| e.contains("MEDALLION_ENGINE")),
        "the engine is chosen when compose starts"
    );
}
