//! The input schemas `tools/list` advertises, and the output schema of
//! `consensus`, are a contract with every client (and with the models reading
//! their descriptions), so they are committed in `server/tests/tool_schemas.json`
//! and a change must be deliberate: regenerate with
//! `UPDATE_SCHEMAS=1 cargo test -p converse-server --test tool_schemas`.

use std::path::Path;

use converse_server::tools::chat::ChatParams;
use converse_server::tools::consensus::ConsensusParams;
use converse_server::tools::consensus_result;
use rmcp::handler::server::common::schema_for_input;

#[test]
fn advertised_input_schemas_are_unchanged() {
    // The same function rmcp's #[tool] macro uses for `inputSchema`.
    let schemas = serde_json::json!({
        "chat": *schema_for_input::<ChatParams>().expect("chat schema"),
        "consensus": *schema_for_input::<ConsensusParams>().expect("consensus schema"),
        // The same function the consensus tool's `output_schema` attribute calls.
        "consensus outputSchema": *consensus_result::output_schema(),
    });
    let want = serde_json::to_string_pretty(&schemas).expect("schemas serialise") + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tool_schemas.json");
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have == want {
        return;
    }
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, want).expect("write tests/tool_schemas.json");
        return;
    }
    panic!(
        "the tools' input schemas differ from tests/tool_schemas.json (what clients see); \
         if the change is intended, run `UPDATE_SCHEMAS=1 cargo test -p converse-server \
         --test tool_schemas` and commit the result. Now:\n{want}"
    );
}
