//! The docs that exist twice stay one: the Go-to-Rust table of swim-node's
//! API docs (crates/swim-node/GO.md) stands in the README as it is.

#[test]
fn the_readme_has_the_go_mapping_as_the_api_docs_do() {
    let readme = include_str!("../../README.md");
    let table = include_str!("../../crates/swim-node/GO.md");
    assert!(
        readme.contains(table),
        "README.md's Go table differs from crates/swim-node/GO.md: copy it over"
    );
}
