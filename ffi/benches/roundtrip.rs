//! Placeholder: the C boundary round-trip bench (filled in next).
fn main() {}
