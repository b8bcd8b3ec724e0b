//! Builds the test components and the SDK example for wasm32-wasip2 and
//! exposes their paths to the tests as `MDMHUB_WASM_<NAME>`.

const GUESTS: &[(&str, &str)] = &[
    ("mdmhub-example-rust-minimal", "examples/rust-minimal"),
    ("mdmhub-test-hostile", "tests/components/hostile"),
    ("mdmhub-test-bad-describe", "tests/components/bad-describe"),
    ("mdmhub-test-other-world", "tests/components/other-world"),
];

fn main() {
    let root = mdmhub_build_support::workspace_root();
    for (_, dir) in GUESTS {
        mdmhub_build_support::watch(&root.join(dir));
    }
    let names: Vec<&str> = GUESTS.iter().map(|(n, _)| *n).collect();
    for (name, path) in names.iter().zip(mdmhub_build_support::build_guests(&names)) {
        let var = name
            .trim_start_matches("mdmhub-")
            .replace('-', "_")
            .to_uppercase();
        println!("cargo:rustc-env=MDMHUB_WASM_{var}={}", path.display());
    }
    println!("cargo:rerun-if-changed=build.rs");
}
