//! `eventline keys list|create|revoke`: the API keys of the running `eventline up`, through its
//! gateway with the admin key (`GET/POST /v1/keys`, `DELETE /v1/keys/{id}`). The keys live in
//! `up`'s memory as well as its database, so they are managed where they are enforced.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Exit;
use crate::cli::{KeysArgs, KeysCommand};
use crate::config::Config;

pub async fn run(args: KeysArgs, config: &Config) -> anyhow::Result<()> {
    let (url, admin) = crate::remote::locate(config, args.url.as_deref(), args.key.as_deref())?;
    let http = crate::remote::http_client(config, Some(Duration::from_secs(30)))?;
    let call = |method: reqwest::Method, path: String| http.request(method, format!("{url}{path}")).bearer_auth(&admin);
    let answer = |r: reqwest::Response| async move {
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            let message = body["error"]["message"]
                .as_str()
                .map_or_else(|| format!("the gateway answered {status}"), str::to_owned);
            let code = if status.is_client_error() { 2 } else { 1 };
            Err(anyhow::Error::from(Exit::new(code, message)))
        }
    };
    let unreachable =
        |e: reqwest::Error| Exit::new(1, format!("cannot reach `eventline up` at {url}: {}", e.without_url()));
    match args.command {
        KeysCommand::List { json } => {
            let body = answer(call(reqwest::Method::GET, "/v1/keys".into()).send().await.map_err(unreachable)?).await?;
            let keys = body["keys"].as_array().cloned().unwrap_or_default();
            if json {
                for k in keys {
                    outln!("{k}");
                }
            } else {
                outln!("{:<14} {:<7} {:<12} {:<25} {}", "KEY", "ROLE", "USER", "CREATED", "EXPIRES");
                for k in keys {
                    let text = |f: &str| k[f].as_str().unwrap_or("-").to_owned();
                    let expires = match (k["expires_at"].as_str(), k["expired"].as_bool()) {
                        (Some(at), Some(true)) => format!("{at} (expired)"),
                        (Some(at), _) => at.to_owned(),
                        (None, _) if k["bootstrap"] == true => "never (admin.key)".to_owned(),
                        (None, _) => "never".to_owned(),
                    };
                    outln!(
                        "{:<14} {:<7} {:<12} {:<25} {expires}",
                        text("key_id"),
                        text("role"),
                        text("user_id"),
                        text("created_at")
                    );
                }
            }
        }
        KeysCommand::Create { role, user, expires_in } => {
            let body = json!({"role": role, "user_id": user, "expires_in": expires_in});
            let created =
                answer(call(reqwest::Method::POST, "/v1/keys".into()).json(&body).send().await.map_err(unreachable)?)
                    .await?;
            eprintln!(
                "eventline: created key {} (role {}{}{}); the secret below is shown only now",
                created["key_id"].as_str().unwrap_or("?"),
                created["role"].as_str().unwrap_or("?"),
                created["user_id"].as_str().map(|u| format!(", user {u}")).unwrap_or_default(),
                created["expires_at"].as_str().map(|t| format!(", expires {t}")).unwrap_or_default(),
            );
            outln!("{}", created["key"].as_str().unwrap_or_default());
        }
        KeysCommand::Revoke { key_id } => {
            let r = call(reqwest::Method::DELETE, format!("/v1/keys/{key_id}")).send().await.map_err(unreachable)?;
            answer(r).await?;
            eprintln!("eventline: revoked {key_id}");
        }
    }
    Ok(())
}
