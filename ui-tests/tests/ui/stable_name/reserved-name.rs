use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
struct Sneaky {
    text: String,
}

ate::stable_name!(Sneaky = "ate.schema");

fn main() {}
