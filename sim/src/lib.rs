//! Seeded fault simulation (to be written).
