//! The README's configuration reference is generated from `vars::VARIABLES`, so it
//! cannot drift from what the server parses. `UPDATE_DOCS=1 cargo test` rewrites it.

const START: &str = "<!-- config-reference:start -->\n";
const END: &str = "<!-- config-reference:end -->";

#[test]
fn readme_configuration_reference_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let start = readme
        .find(START)
        .expect("README lacks the config-reference start marker")
        + START.len();
    let end = readme
        .find(END)
        .expect("README lacks the config-reference end marker");
    let want = converse_config::render_markdown_reference();
    if readme[start..end] == want {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{}{}", &readme[..start], want, &readme[end..]);
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    panic!(
        "README.md's configuration reference is out of date; run `UPDATE_DOCS=1 cargo test -p converse-config --test readme_reference`"
    );
}
