//! The documents name real things: every backticked Rust name in the
//! project's Markdown (`Swim::handle_packet`, `NodeConfig`, `join_timeout`)
//! is defined somewhere in the workspace's sources, or is a listed external
//! name (std, runtimes, Go memberlist's API). A rename that leaves a document
//! behind fails here, with the file and line of every stale name.
//!
//! The check is lexical on purpose: no parser, no dependency. Sources are
//! tokenized (comments and string literals dropped) and every name an item
//! introduces is collected — `fn`, `struct`, `enum`, `trait`, `type`,
//! `const`, `static`, `mod`, `macro_rules!`, `use … as`, enum variants,
//! struct fields — plus file names (a file is a module, an example or a
//! binary), crate names, and string literals that are whole identifiers (a
//! metric or setting key the code spells). A name in a document resolves if
//! each of its `::` segments is among them. Whether `A::b` is `A`'s own
//! method is not checked: a document naming a method of the wrong type still
//! passes, a name that no longer exists anywhere does not.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The Markdown whose names are checked, relative to the workspace root;
/// directories mean every `.md` file directly in them.
const DOCUMENTS: &[&str] = &[
    "README.md",
    "ARCHITECTURE.md",
    "CONTRIBUTING.md",
    "BENCHMARKS.md",
    "chaos/README.md",
    "chaos/RESULTS.md",
    "crates/swim-core/README.md",
    "crates/swim-node/README.md",
    "crates/swim-node/GO.md",
    "crates/swim-tokio/README.md",
    "crates/swim-async-std/README.md",
    "crates/swim-agent/README.md",
    "crates/swim-sim/README.md",
    "docs",
];

/// A path starting with one of these is outside the workspace: not checked.
const EXTERNAL_ROOTS: &str = "
    std core alloc tokio async_std smol async_io async_net futures futures_lite serde serde_json
    figment clap hyper tracing metrics turmoil rand rand_chacha proptest criterion memberlist
";

/// Names from outside the workspace that documents use on their own (and
/// as the first segment of a path: `Duration::from_secs`).
const EXTERNAL_NAMES: &str = "
    Vec String Option Result Box Arc Duration Instant SocketAddr IpAddr HashMap BTreeMap
    Default Clone Debug Send Sync Iterator Future no_std missing_docs unsafe_code

    TransmitLimitedQueue NamedBroadcast NodeStateType NetTransport Memberlist
    DefaultLANConfig DefaultWANConfig DefaultLocalConfig
    EventDelegate ConflictDelegate AliveDelegate MergeDelegate PingDelegate
    NotifyJoin NotifyLeave NotifyUpdate NotifyMsg NotifyAlive NotifyMerge NotifyConflict
    NotifyPingComplete AckPayload LocalState MergeRemoteState GetBroadcasts NodeMeta
    NumMembers LocalNode UpdateNode SendBestEffort SendReliable GetHealthScore
    TCPTimeout UDPBufferSize ProbeInterval ProbeTimeout GossipInterval GossipNodes
    GossipToTheDeadTime PushPullInterval IndirectChecks RetransmitMult SuspicionMult
    SuspicionMaxTimeoutMult AwarenessMaxMultiplier DeadNodeReclaimTime EnableCompression
    GossipVerifyIncoming GossipVerifyOutgoing HandoffQueueDepth SkipInboundLabelCheck
    pushPullScale retransmitLimit nodeLock udpRecvBufSize setUDPRecvBuf

    Coordinate Create DefaultQueryTimeout EventBuffer Invalidates MsgpackHandle SetTags
    QueryResponseSizeLimit QuerySizeLimit RecentIntentTimeout SendToAddress decodeTags
    encodeMessage encodeTags handleQuery handleQueryResponse kRandomMembers relayResponse
    shouldProcessQuery statusLTime GetCachedCoordinate DistanceTo KeyManager
    RemoveFailedNode forceLeave handlePrune eraseNode ReconnectTimeout TombstoneTimeout
    ReapInterval ReconnectInterval handleNodeConflict resolveNodeConflict RejoinAfterLeave
    NumNodes MaxQueueDepth MinQueueDepth QueueCheckInterval QueueDepthWarning checkQueueDepth
    getQueueMax UserEventSizeLimit QueryBuffer
    event_time query_time intent_queue event_queue query_queue coordinate_resets

    VmRSS stats_alloc RcvbufErrors
    epoll_wait clock_gettime malloc_trim mmap_threshold trim_threshold
";
/// One name in a document that resolves to nothing.
#[derive(Debug, PartialEq)]
struct Unresolved {
    file: String,
    line: usize,
    span: String,
    problem: String,
}

#[test]
fn every_rust_name_in_the_documents_is_defined() {
    let root = workspace_root();
    let defined = definitions(&root);
    let mut checked = 0;
    let mut unresolved = Vec::new();
    for doc in documents(&root) {
        let text = fs::read_to_string(&doc).unwrap();
        let file = doc.strip_prefix(&root).unwrap().display().to_string();
        for (line, span) in code_spans(&text) {
            let Some(path) = rust_path(&span) else {
                continue;
            };
            checked += 1;
            if let Some(problem) = first_unknown(&path, &defined) {
                unresolved.push(Unresolved {
                    file: file.clone(),
                    line,
                    span,
                    problem,
                });
            }
        }
    }
    for u in &unresolved {
        println!("{}:{}: `{}`: {}", u.file, u.line, u.span, u.problem);
    }
    assert!(
        checked > 300,
        "only {checked} names checked: is the extraction broken?"
    );
    assert!(
        unresolved.is_empty(),
        "{} of {checked} names in the documents are defined nowhere (listed above): \
         fix the document, or list an external name in tests/tests/docs.rs",
        unresolved.len()
    );
}

#[test]
fn a_stale_name_is_reported_with_its_line() {
    let node: BTreeSet<String> =
        tokens_defined("pub struct Node { pub join_timeout: u8 }\nimpl Node { fn join() {} }")
            .into_iter()
            .collect();
    let mut all = node.clone();
    all.insert("Net".into()); // defined elsewhere, not in swim_node
    let defined = Definitions {
        all,
        crates: BTreeMap::from([("swim_node".into(), node)]),
    };
    let doc = "A `Node` has a `join_timeout`;\n```sh\n`Gone::x`\n```\nsee `Node::join()` and\n\
               `swim_node::Net`, not `cargo test -p x`, `node.name` or `name`.\n\
               ```\nNode::join → Node::gone\n```";
    let found: Vec<_> = code_spans(doc)
        .into_iter()
        .filter_map(|(line, span)| {
            let path = rust_path(&span)?;
            Some((line, span.clone(), first_unknown(&path, &defined)))
        })
        .collect();
    assert_eq!(
        found,
        [
            (1, "Node".to_string(), None),
            (1, "join_timeout".to_string(), None),
            (5, "Node::join()".to_string(), None),
            (
                6,
                "swim_node::Net".to_string(),
                Some("`Net` is defined nowhere in swim_node or its dependencies".to_string())
            ),
            (8, "Node::join".to_string(), None),
            (
                8,
                "Node::gone".to_string(),
                Some("`gone` is defined nowhere".to_string())
            ),
        ]
    );
}

/// The code cites the protocol document by section (`docs/protocol.md §5.2`);
/// every cited section must be a heading there, so a renumbering that leaves
/// a citation behind fails here with the file that cites it.
#[test]
fn every_cited_protocol_section_exists() {
    let root = workspace_root();
    let protocol = fs::read_to_string(root.join("docs/protocol.md")).unwrap();
    let sections: BTreeSet<String> = protocol
        .lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| {
            let number = l.trim_start_matches('#').split_whitespace().next()?;
            let number = number.trim_end_matches('.');
            number
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.')
                .then(|| number.to_string())
        })
        .collect();
    let mut files = Vec::new();
    for dir in ["crates", "chaos", "tests", "fuzz", "interop"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.push(root.join(".ci/run"));
    let mut cited = 0;
    let mut missing = Vec::new();
    // This file spells the citation form in its own docs and code.
    files.retain(|f| !f.ends_with("tests/tests/docs.rs"));
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        for (at, _) in text.match_indices("docs/protocol.md §") {
            // "docs/protocol.md §5.2 steps 1–3, §6" cites 5.2 and 6.
            let rest = &text[at + "docs/protocol.md ".len()..];
            let line = rest.lines().next().unwrap_or_default();
            for part in line.split('§').skip(1) {
                let number: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                let number = number.trim_end_matches('.').to_string();
                cited += 1;
                if !sections.contains(&number) {
                    let name = file.strip_prefix(&root).unwrap().display().to_string();
                    missing.push(format!("{name}: §{number}"));
                }
            }
        }
    }
    assert!(
        cited > 15,
        "only {cited} citations found: is the scan broken?"
    );
    assert!(
        missing.is_empty(),
        "cited sections missing from docs/protocol.md: {missing:?}"
    );
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn documents(root: &Path) -> Vec<PathBuf> {
    let mut docs = Vec::new();
    for entry in DOCUMENTS {
        let path = root.join(entry);
        if path.is_dir() {
            let mut mds: Vec<_> = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "md"))
                .collect();
            mds.sort();
            docs.extend(mds);
        } else {
            assert!(path.is_file(), "{entry} is listed in DOCUMENTS but missing");
            docs.push(path);
        }
    }
    docs
}

/// The names the workspace defines: all of them, and by crate (with what
/// the crate's workspace dependencies define, since it may re-export them).
struct Definitions {
    all: BTreeSet<String>,
    crates: BTreeMap<String, BTreeSet<String>>,
}

fn definitions(root: &Path) -> Definitions {
    let mut all: BTreeSet<String> = EXTERNAL_NAMES
        .split_whitespace()
        .map(String::from)
        .collect();
    let mut own = BTreeMap::new();
    let mut dependencies = BTreeMap::new();
    let crate_dirs = ["chaos", "tests"].iter().map(|d| root.join(d)).chain(
        fs::read_dir(root.join("crates"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    for dir in crate_dirs {
        let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let rust_name = |line: &str| line.split(['"', ' ']).next().unwrap().replace('-', "_");
        let name = rust_name(
            manifest
                .lines()
                .find_map(|l| l.strip_prefix("name = \""))
                .expect("a package name"),
        );
        let deps: Vec<String> = manifest
            .lines()
            .filter(|l| l.starts_with("swim-") && l.contains("path ="))
            .map(rust_name)
            .collect();
        let names = names_in(&dir);
        all.extend(names.iter().cloned());
        all.insert(name.clone());
        own.insert(name.clone(), names);
        dependencies.insert(name, deps);
    }
    all.extend(names_in(&root.join("fuzz/fuzz_targets")));
    let mut crates = BTreeMap::new();
    for name in own.keys() {
        let mut names = BTreeSet::new();
        let mut pending = vec![name.clone()];
        while let Some(c) = pending.pop() {
            names.extend(own[&c].iter().cloned());
            pending.extend(dependencies[&c].iter().cloned());
        }
        crates.insert(name.clone(), names);
    }
    Definitions { all, crates }
}

/// What the `.rs` files below `dir` define. A file is a module, an example
/// or a binary, so its name counts; so does a directory holding a `mod.rs`
/// or `main.rs`.
fn names_in(dir: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    let mut names = BTreeSet::new();
    // This file's own strings (the allowed names, the self-test's names)
    // define nothing.
    files.retain(|f| !f.ends_with("tests/tests/docs.rs"));
    for file in files {
        let source = fs::read_to_string(&file).unwrap();
        names.extend(tokens_defined(&source));
        let stem = file
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .replace('-', "_");
        if stem == "mod" || stem == "main" || stem == "lib" {
            let dir = file.parent().unwrap().file_name().unwrap();
            names.insert(dir.to_string_lossy().replace('-', "_"));
        } else {
            names.insert(stem);
        }
    }
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A token of Rust source: an identifier, a whole-identifier string literal,
/// or one punctuation character.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Punct(char),
}

fn tokenize(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some((end, text)) = raw_string(&chars, i) {
            tokens.push(Token::Str(text));
            i = end;
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            i += if c == 'b' { 2 } else { 1 };
            let mut text = String::new();
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                text.push(chars[i]);
                i += 1;
            }
            tokens.push(Token::Str(text));
            i += 1;
        } else if c == '\'' {
            // A char literal ('a', '\n', '\u{1f}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c == 'b' && next == Some('\'') {
            i += 1; // b'x': the char literal follows
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else {
            if !c.is_whitespace() {
                tokens.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    tokens
}

/// A raw string (`r"…"`, `r#"…"#`, `br#"…"#`) starting at `i`: where it
/// ends and its text.
fn raw_string(chars: &[char], i: usize) -> Option<(usize, String)> {
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r')
        || (i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
    {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    j += hashes;
    if chars.get(j) != Some(&'"') {
        return None;
    }
    let start = j + 1;
    let mut k = start;
    while k < chars.len() {
        if chars[k] == '"'
            && chars[k + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return Some((k + 1 + hashes, chars[start..k].iter().collect()));
        }
        k += 1;
    }
    Some((chars.len(), chars[start..].iter().collect()))
}

/// The names a source file defines.
fn tokens_defined(source: &str) -> Vec<String> {
    let tokens = tokenize(source);
    let ident = |i: usize| match tokens.get(i) {
        Some(Token::Ident(s)) => Some(s.as_str()),
        _ => None,
    };
    let punct = |i: usize, c: char| tokens.get(i) == Some(&Token::Punct(c));
    let mut names = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Str(s) if is_identifier(s) => names.push(s.clone()),
            Token::Ident(keyword) => match keyword.as_str() {
                "fn" | "struct" | "enum" | "trait" | "type" | "const" | "static" | "mod"
                | "union" | "as" => {
                    if let Some(name) = ident(i + 1) {
                        names.push(name.to_string());
                    }
                    if matches!(keyword.as_str(), "struct" | "enum" | "union") {
                        names.extend(body_names(&tokens, i + 2));
                    }
                }
                "macro_rules" if punct(i + 1, '!') => {
                    if let Some(name) = ident(i + 2) {
                        names.push(name.to_string());
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    names
}

/// The variants and fields of the struct or enum whose generics or body
/// start at `start`: identifiers at the body's top level that follow `{`,
/// `,` or an attribute (variants), and identifiers followed by one `:` at
/// any depth (fields, of the struct or of a variant).
fn body_names(tokens: &[Token], start: usize) -> Vec<String> {
    let mut i = start;
    // Skip generics and where clauses up to the body; a tuple or unit
    // struct has no named fields.
    while i < tokens.len() {
        match &tokens[i] {
            Token::Punct('{') => break,
            Token::Punct(';') | Token::Punct('(') => return Vec::new(),
            _ => i += 1,
        }
    }
    let mut names = Vec::new();
    let mut depth = 0;
    let mut in_attribute = 0;
    let mut previous = Token::Punct('{');
    while i < tokens.len() {
        let token = &tokens[i];
        match token {
            Token::Punct('{') | Token::Punct('(') => depth += 1,
            Token::Punct('}') | Token::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Token::Punct('[') => in_attribute += 1,
            Token::Punct(']') => in_attribute -= 1,
            Token::Ident(name) if in_attribute == 0 => {
                let colon = tokens.get(i + 1) == Some(&Token::Punct(':'))
                    && tokens.get(i + 2) != Some(&Token::Punct(':'));
                let variant = depth == 1
                    && matches!(
                        previous,
                        Token::Punct('{') | Token::Punct(',') | Token::Punct(']')
                    );
                if colon || variant {
                    names.push(name.clone());
                }
            }
            _ => {}
        }
        previous = token.clone();
        i += 1;
    }
    names
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The names a Markdown text shows as code, with their lines: every inline
/// code span outside fenced blocks, and every `a::b` path inside fenced
/// blocks of Rust or of no language (the diagrams); shell blocks are
/// commands.
fn code_spans(text: &str) -> Vec<(usize, String)> {
    let mut prose = String::new();
    let mut spans = Vec::new();
    let mut fence: Option<bool> = None; // Some(whether its paths are checked)
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = match fence {
                Some(_) => None,
                None => {
                    let info = trimmed.trim_start_matches(['`', '~']).trim();
                    Some(info.is_empty() || info.starts_with("rust") || info == "text")
                }
            };
            prose.push('\n');
        } else if let Some(checked) = fence {
            if checked {
                spans.extend(fenced_paths(line).into_iter().map(|p| (number + 1, p)));
            }
            prose.push('\n');
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    let bytes = prose.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let run = bytes[i..].iter().take_while(|&&b| b == b'`').count();
        let open = i;
        i += run;
        // The span ends at the next run of exactly as many backticks.
        let mut j = i;
        let close = loop {
            if j >= bytes.len() {
                break None;
            }
            if bytes[j] == b'`' {
                let n = bytes[j..].iter().take_while(|&&b| b == b'`').count();
                if n == run {
                    break Some(j);
                }
                j += n;
            } else {
                j += 1;
            }
        };
        let Some(close) = close else { continue };
        let line = 1 + prose[..open].matches('\n').count();
        spans.push((line, prose[i..close].trim().replace('\n', " ")));
        i = close + run;
    }
    spans.sort_by_key(|(line, _)| *line);
    spans
}

/// The `a::b` paths on a line of a fenced block.
fn fenced_paths(line: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut word = String::new();
    for c in line.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            let path = word.trim_matches(':');
            if path.contains("::") && !path.contains(":::") {
                paths.push(path.to_string());
            }
            word.clear();
        }
    }
    paths
}

/// The Rust path a code span names, if it names one: `a::b::C`, `C`,
/// `Type::method`, `Type::method()`, `snake_case`. Not: anything with
/// spaces, operators, dots, slashes, flags or arguments; single lowercase
/// words (English, commands, crate names); ALL_CAPS (environment variables);
/// paths into external crates.
fn rust_path(span: &str) -> Option<Vec<String>> {
    let span = span.strip_suffix("()").unwrap_or(span);
    let span = span.strip_suffix('!').unwrap_or(span);
    if span.is_empty()
        || !span
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return None;
    }
    let segments: Vec<&str> = span.split("::").collect();
    if !segments.iter().all(|s| is_identifier(s)) || segments[0].starts_with('_') {
        return None;
    }
    // A path into another crate, or a method of a type from elsewhere
    // (`Duration::from_secs`).
    let external = |list: &str| list.split_whitespace().any(|name| name == segments[0]);
    if external(EXTERNAL_ROOTS) || (segments.len() > 1 && external(EXTERNAL_NAMES)) {
        return None;
    }
    if let [single] = segments[..] {
        let lowercase_word = single
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let all_caps = !single.chars().any(|c| c.is_ascii_lowercase());
        if lowercase_word || all_caps {
            return None;
        }
    }
    Some(
        segments
            .into_iter()
            .filter(|s| !matches!(*s, "crate" | "self" | "super" | "Self"))
            .map(str::to_string)
            .collect(),
    )
}

/// The first segment of `path` defined nowhere it could be: a path that
/// starts with a workspace crate is looked up in that crate (and the crates
/// it depends on), any other in the whole workspace.
fn first_unknown(path: &[String], defined: &Definitions) -> Option<String> {
    let (names, rest, scope) = match defined.crates.get(&path[0]) {
        Some(names) => (
            names,
            &path[1..],
            format!(" in {} or its dependencies", path[0]),
        ),
        None => (&defined.all, path, String::new()),
    };
    let unknown = rest.iter().find(|s| !names.contains(*s))?;
    Some(format!("`{unknown}` is defined nowhere{scope}"))
}
