//! The deployment files agree with the binary: the manifests' args and environment make a command
//! line the real binary accepts, every environment variable is one the binary reads, ports and
//! probes line up, the probes exist, OAuth is the inbound auth, and every ConfigMap and Secret key
//! referenced exists.

use std::{collections::BTreeSet, path::Path};

use clap::{CommandFactory, Parser};
use port_integrations_mcp::config::{Cli, Command};
use serde::Deserialize;
use serde_json::Value;

use crate::{common::*, http::http_args};

fn docs(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    yaml_serde::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

fn one(file: &str, kind: &str) -> Value {
    let all = docs(file);
    let found: Vec<&Value> = all.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "{file}: one {kind}");
    found[0].clone()
}

/// Every environment variable the binary reads, across all commands.
fn known_env() -> BTreeSet<String> {
    fn walk(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(&Cli::command(), &mut out);
    out
}

/// The long flag of the option that reads `var`, on the top-level command or on `http`.
fn flag_for(var: &str) -> String {
    let cli = Cli::command();
    let http = cli.find_subcommand("http").expect("an http command");
    for arg in cli.get_arguments().chain(http.get_arguments()) {
        if arg.get_env().and_then(|e| e.to_str()) == Some(var) {
            return format!("--{}", arg.get_long().expect("a long flag"));
        }
    }
    panic!("no option of `http` reads {var}")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn kubernetes_manifests_match_the_binary() {
    let deployment = one("deployment.yaml", "Deployment");
    let service = one("service.yaml", "Service");
    let hpa = one("hpa.yaml", "HorizontalPodAutoscaler");
    let secret = one("secret.example.yaml", "Secret");
    let configmap = one("configmap.yaml", "ConfigMap");
    let name = deployment["metadata"]["name"].as_str().unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];

    // The args, with every non-secret variable the pod gets as its flag (ConfigMap references
    // resolved), are a valid command line for the real binary.
    let mut argv = vec!["port-integrations-mcp".to_string()];
    argv.extend(strings(&container["args"]));
    for env in container["env"].as_array().unwrap() {
        let value = match env["valueFrom"]["configMapKeyRef"]["key"].as_str() {
            Some(key) => configmap["data"][key].as_str(),
            None => env["value"].as_str(),
        };
        if let Some(value) = value {
            argv.push(flag_for(env["name"].as_str().unwrap()));
            argv.push(value.to_string());
        }
    }
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let Command::Http(http) = &cli.command else {
        panic!("the deployment must run `http`")
    };
    assert!(
        http.stateless,
        "replicas behind a plain Service must be stateless"
    );
    assert!(
        !http.listen.ip().is_loopback(),
        "must listen beyond loopback in a pod"
    );

    // OAuth is the inbound auth: the settings the binary derives (with its start-up refusals)
    // hold the ConfigMap's issuer and public URL, no static token and no passthrough, and the
    // public URL's host is an accepted Host (clients reach the pods through it).
    let settings = http.settings().unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(settings.auth_token.is_none() && !settings.token_passthrough);
    let oauth = settings.oauth.as_ref().expect("OAuth settings");
    let data = &configmap["data"];
    assert_eq!(oauth.issuers, vec![data["oauth-issuer"].as_str().unwrap()]);
    assert_eq!(oauth.resource, data["public-url"].as_str().unwrap());
    assert_eq!(oauth.audience, oauth.resource);
    assert_eq!(oauth.read_scope, data["oauth-read-scope"].as_str().unwrap());
    assert_eq!(
        oauth.write_scope,
        data["oauth-write-scope"].as_str().unwrap()
    );
    let public_host = oauth.public_url.host_str().unwrap();
    let hosts = port_integrations_mcp::transport::http::allowed_hosts(&settings);
    assert!(
        hosts.iter().any(|h| h == public_host),
        "{public_host} must be an accepted Host: {hosts:?}"
    );
    assert!(
        container.get("volumeMounts").is_none(),
        "no inbound token file to mount"
    );
    let secret_keys: BTreeSet<&str> = secret["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();

    // Every variable is one the binary reads; secrets come from the Secret, not literals.
    let known = known_env();
    for env in container["env"].as_array().unwrap() {
        let var = env["name"].as_str().unwrap();
        assert!(
            known.contains(var),
            "{var} is not read by the binary: {known:?}"
        );
        if let Some(key) = env["valueFrom"]["configMapKeyRef"]["key"].as_str() {
            assert_eq!(
                env["valueFrom"]["configMapKeyRef"]["name"],
                configmap["metadata"]["name"]
            );
            assert!(data[key].is_string(), "{key} missing from the ConfigMap");
        }
        if let Some(key) = env["valueFrom"]["secretKeyRef"]["key"].as_str() {
            assert_eq!(
                env["valueFrom"]["secretKeyRef"]["name"],
                secret["metadata"]["name"]
            );
            assert!(secret_keys.contains(key), "{key} missing from the Secret");
        }
        if var.contains("SECRET") || var == "PORT_API_KEY" || var == "PORT_MCP_AUTH_TOKEN" {
            assert!(env.get("value").is_none(), "{var} must come from a Secret");
        }
        if var == "PORT_REGION" {
            let region = env["value"].as_str().unwrap();
            Cli::try_parse_from(["port-integrations-mcp", "--region", region, "stdio"]).unwrap();
        }
    }
    let names: BTreeSet<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains("PORT_CLIENT_ID") && names.contains("PORT_CLIENT_SECRET"));

    // Ports line up: container port = --listen port; Service and probes point at it.
    let port = &container["ports"][0];
    assert_eq!(
        port["containerPort"].as_u64().unwrap(),
        u64::from(http.listen.port())
    );
    let port_name = port["name"].as_str().unwrap();
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port_name);
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], port_name);
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], port_name);
    // Prometheus scrapes the metrics listener: the annotations name its port and path, a
    // container port opens it, and the Service (which the Ingress exposes) does not.
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    let metrics_listen: std::net::SocketAddr = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "PORT_MCP_METRICS_LISTEN")
        .and_then(|e| e["value"].as_str())
        .unwrap()
        .parse()
        .unwrap();
    let metrics_port = metrics_listen.port().to_string();
    assert_eq!(annotations["prometheus.io/port"], metrics_port.as_str());
    assert!(
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["containerPort"].as_u64().map(|n| n.to_string())
                == Some(metrics_port.clone()))
    );
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["port"].as_u64().map(|n| n.to_string()) != Some(metrics_port.clone())),
        "the Service must not expose the metrics port"
    );
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], name);

    // The probe paths exist on the real app and never call Port.
    let fake = FakePort::start().await;
    let addr = crate::http::serve(&fake, http_args(true)).await;
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        let status = reqwest::get(format!("http://{addr}{path}"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{probe} {path}");
    }
    assert!(fake.port.requests().is_empty());

    // Termination grace covers the server's drain.
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let drain: u64 = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "PORT_MCP_SHUTDOWN_GRACE_SECS")
        .and_then(|e| e["value"].as_str())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        grace > drain,
        "the pod is killed before the server finishes draining"
    );
}

#[test]
fn dockerfile_runs_a_valid_command() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Dockerfile"))
            .unwrap();
    let cmd_line = text.lines().find(|l| l.starts_with("CMD ")).unwrap();
    let args: Vec<String> = serde_json::from_str(cmd_line.trim_start_matches("CMD ")).unwrap();
    let mut argv = vec!["port-integrations-mcp".to_string()];
    argv.extend(args);
    let cli = Cli::try_parse_from(&argv).unwrap();
    let Command::Http(http) = cli.command else {
        panic!("CMD must run http")
    };
    let expose = text.lines().find(|l| l.starts_with("EXPOSE ")).unwrap();
    assert_eq!(
        expose.trim_start_matches("EXPOSE ").trim(),
        http.listen.port().to_string()
    );
    // `docker run IMAGE http ...` replaces CMD: the image's PORT_MCP_LISTEN keeps it reachable
    // from outside the container, on the same address.
    let env_listen = text
        .lines()
        .find_map(|l| l.strip_prefix("ENV PORT_MCP_LISTEN="))
        .expect("the image sets PORT_MCP_LISTEN");
    assert_eq!(env_listen.trim(), http.listen.to_string());
    assert!(!http.listen.ip().is_loopback(), "unreachable from outside");

    // Safe by default: the image's command, with no inbound auth given, refuses to start (the
    // container would otherwise serve its Port credentials to anyone who reaches the port)...
    let refused = http.settings().map(|_| ()).unwrap_err();
    assert!(
        matches!(refused, port_integrations_mcp::config::ConfigError::ExposedWithoutToken { addr } if addr == http.listen),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("PORT_MCP_AUTH_TOKEN"),
        "{refused}"
    );
    // ... and the documented ways in start it: an inbound token (`-e PORT_MCP_AUTH_TOKEN`), or a
    // mounted token file (`-e PORT_MCP_AUTH_TOKEN_FILE=/run/secrets/...`).
    let mut with_token = argv.clone();
    with_token.extend(["--auth-token".to_string(), "s3cret-inbound".to_string()]);
    let Command::Http(http) = Cli::try_parse_from(&with_token).unwrap().command else {
        unreachable!()
    };
    let settings = http.settings().unwrap();
    assert_eq!(
        settings.auth_token.as_ref().map(|t| t.expose().to_string()),
        Some("s3cret-inbound".to_string())
    );
    let dir = std::env::temp_dir().join(format!("dockerfile-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("port_mcp_auth_token");
    std::fs::write(&file, "from-a-secret-file\n").unwrap();
    let mut with_file = argv.clone();
    with_file.extend(["--auth-token-file".to_string(), file.display().to_string()]);
    let Command::Http(http) = Cli::try_parse_from(&with_file).unwrap().command else {
        unreachable!()
    };
    let settings = http.settings().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        settings.auth_token.as_ref().map(|t| t.expose().to_string()),
        Some("from-a-secret-file".to_string())
    );
    assert!(
        text.contains("FROM scratch"),
        "final stage must be the empty image"
    );
    assert!(text.contains("--locked"), "builds must use Cargo.lock");
    // The build script embeds Port's default mappings: the image build needs both.
    for input in ["build.rs", "assets"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("COPY ") && l.split_whitespace().any(|w| w == input)),
            "the image build does not copy {input}"
        );
    }
}
