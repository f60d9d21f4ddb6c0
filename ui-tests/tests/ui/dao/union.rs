use ate::prelude::*;

#[derive(Dao, Clone, Copy)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
