use eventline_model::{schema, topics};

use crate::Exit;

pub fn run(topic: &str) -> anyhow::Result<()> {
    match schema::schema_for(topic) {
        Some(s) => {
            outln!("{}", serde_json::to_string_pretty(s)?);
            Ok(())
        }
        None => {
            let known: Vec<&str> = topics::BUILTIN_TOPICS.iter().map(|(t, _)| *t).collect();
            Err(Exit::new(
                2,
                format!("no schema for topic `{topic}`: schemas exist for the built-in topics {}", known.join(", ")),
            )
            .into())
        }
    }
}
