//! Host bindings of `mdmhub:connector@0.1.0`. A future breaking version gets
//! a sibling module and a conversion into the newest types.

wasmtime::component::bindgen!({
    path: "../wit/0.1.0",
    world: "connector",
    imports: { default: async },
    exports: { default: async },
    additional_derives: [serde::Serialize, serde::Deserialize],
});
