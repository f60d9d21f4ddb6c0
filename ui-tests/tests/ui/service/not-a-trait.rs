// The attribute on a struct.
use ate::prelude::*;

#[service]
struct Bank;

fn main() {}
