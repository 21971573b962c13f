//! Placeholder: the step benchmark lands in the next commit.
fn main() {}
