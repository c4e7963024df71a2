//! The fleet section's reading of its figures, written by hand from a run
//! at the commit the section names (the tables above it are generated).

/// What the figures say, where sidekey loses and what would win it back.
pub const NOTES: &str = "\
### Reading\n\n(to be written from the run)\n";
