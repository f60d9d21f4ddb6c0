// Several mistakes: each is reported at its own tokens, and the code that uses the generated
// items reports nothing more.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(name = "bank.Account", read = "sometimes")]
struct Account {
    #[dao(index, unique, sorted)]
    number: String,
    #[dao(unique)]
    email: String,
}

async fn lookup(dio: &Dio) -> Result<(), DioError> {
    let account: Option<Dao<Account>> = Account::find_by_number(dio, "42").await?;
    let _ = account;
    assert_eq!(Account::TYPE_NAME, "bank.Account");
    Ok(())
}

fn main() {
    let _ = lookup;
}
