use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
struct Wrapper<T> {
    #[dao(index)]
    inner: T,
}

async fn lookup(dio: &Dio) {
    // The finder exists even though the derive failed: no second error here.
    let _ = Wrapper::<u32>::find_by_inner(dio, &1).await;
}

fn main() {
    let _ = lookup;
}
