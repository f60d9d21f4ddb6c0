use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
struct World {
    commandment: String,
}

ate::stable_name!(World = " ");

fn main() {}
