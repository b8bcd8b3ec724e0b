//! A valid component of another world: mdmhub must reject it by name.

wit_bindgen::generate!({
    inline: "package test:other; world other { export hello: func() -> string; }",
});

struct Other;

impl Guest for Other {
    fn hello() -> String {
        "not a connector".into()
    }
}

export!(Other);
